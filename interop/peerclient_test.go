package interop

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// peerConn is a Go peer's client connection, seen through what the
// exchange needs. Each peer's test file adapts its library to it.
type peerConn interface {
	send(typ duplex.MessageType, p []byte) error
	// sendFragmented sends p as one message of several frames.
	sendFragmented(typ duplex.MessageType, p []byte) error
	recv() (duplex.MessageType, []byte, error)
	// ping sends a ping and returns once the matching pong has come; it
	// may exchange a text message "after ping" to keep the peer reading.
	ping() error
	// close runs the close handshake from the peer's side.
	close(code int, reason string) error
	// closed reads until the server's close frame and returns its code
	// and reason.
	closed() (code int, reason string, err error)
	// kill drops the connection without a handshake.
	kill()
}

// inflight counts the bytes a peer client sent since its last receive,
// to scale the wait for the echo: each peer adapter keeps one.
type inflight struct{ n atomic.Int64 }

func (f *inflight) sent(n int) { f.n.Add(int64(n)) }

// deadline is when the next message should have come, counting the bytes
// sent since the last one both ways, and resets the count.
func (f *inflight) deadline(t testing.TB) time.Time {
	return testkit.Deadline(t, 2*int(f.n.Swap(0)))
}

// errNoFragments is returned by sendFragmented when the peer cannot send
// a fragmented message in this configuration.
var errNoFragments = errors.New("peer cannot send fragmented messages here")

// peerDial opens a peer client connection to url.
type peerDial func(t *testing.T, url string) (peerConn, error)

// peerRun describes a peer client's run against duplex's echo server.
type peerRun struct {
	compressed    bool // the peer offers compression; duplex must agree
	peerFragments bool // sendFragmented really fragments
	burst         int
	bigSize       int // the large message's size; 0 means bigSize
	closeCodes    bool

	// closeQuirks are close codes the peer does not accept, each with the
	// reason; for them only duplex's side is checked.
	closeQuirks map[duplex.StatusCode]string
}

// runPeerClient runs a Go peer's client through the whole exchange against
// the duplex server s.
func runPeerClient(t *testing.T, s *duplexServer, dial peerDial, run peerRun) {
	c, err := dial(t, s.URL+"/c/main")
	if err != nil {
		t.Fatalf("peer dial: %v", err)
	}
	defer c.kill()
	if run.compressed {
		if ext := s.conn("main").extensionsWhenOpen(); ext == "" {
			c.kill()
			noDeflate(t, true, "duplex server answered the peer's offer without permessage-deflate")
		}
	}
	echo := func(t *testing.T, m message, fragmented bool) {
		t.Helper()
		send := c.send
		if fragmented {
			send = c.sendFragmented
		}
		err := send(m.typ, m.p)
		if errors.Is(err, errNoFragments) {
			t.Logf("%v: sending %v whole", err, m)
			err = c.send(m.typ, m.p)
		}
		if err != nil {
			t.Fatalf("peer send %v: %v", m, err)
		}
		typ, p, err := c.recv()
		if err != nil {
			t.Fatalf("peer read echo of %v: %v", m, err)
		}
		checkEcho(t, m, typ, p)
	}

	t.Run("messages", func(t *testing.T) {
		for _, m := range dataMessages(run.bigSize) {
			echo(t, m, false)
		}
	})
	t.Run("fragmented", func(t *testing.T) {
		echo(t, message{"fragmented text", duplex.MessageText, fragText(fragmentedSize)}, true)
		if err := c.send(duplex.MessageText, []byte(fmt.Sprintf("cmd:fragmented %d", fragmentedSize))); err != nil {
			t.Fatal(err)
		}
		typ, p, err := c.recv()
		if err != nil {
			t.Fatalf("read cmd:fragmented: %v", err)
		}
		checkEcho(t, message{"cmd:fragmented", duplex.MessageBinary, pattern(fragmentedSize)}, typ, p)
	})
	t.Run("ping", func(t *testing.T) {
		if err := c.ping(); err != nil {
			t.Errorf("peer ping: %v; want duplex's pong", err)
		}
		if err := c.send(duplex.MessageText, []byte("cmd:ping")); err != nil {
			t.Fatal(err)
		}
		typ, p, err := c.recv()
		if err != nil || typ != duplex.MessageText || string(p) != "pong" {
			t.Fatalf("cmd:ping: got %v %q, %v; want text \"pong\" (duplex's Ping saw the peer's pong)", typ, p, err)
		}
	})
	if run.burst > 0 {
		t.Run("burst", func(t *testing.T) {
			// The peer's APIs are not all safe for a concurrent reader and
			// writer, so the burst goes in windows small enough for the
			// socket buffers.
			msgs := burstMessages(run.burst)
			for len(msgs) > 0 {
				w := msgs[:min(len(msgs), 32)]
				msgs = msgs[len(w):]
				for _, m := range w {
					if err := c.send(m.typ, m.p); err != nil {
						t.Fatalf("peer send %v: %v", m, err)
					}
				}
				for _, m := range w {
					typ, p, err := c.recv()
					if err != nil {
						t.Fatalf("peer read echo of %v: %v", m, err)
					}
					checkEcho(t, m, typ, p)
				}
			}
		})
	}
	if err := c.close(int(duplex.StatusNormalClosure), "done"); err != nil {
		t.Errorf("peer close of the main connection: %v", err)
	}
	s.checkMain(t, run.peerFragments, run.compressed)

	if !run.closeCodes {
		return
	}
	t.Run("close codes", func(t *testing.T) {
		for _, code := range closeCodes {
			reason := closeReason(code)
			// The peer closes.
			id := fmt.Sprintf("client-close-%d", code)
			pc, err := dial(t, s.URL+"/c/"+id)
			if err != nil {
				t.Fatal(err)
			}
			quirk := run.closeQuirks[code]
			if err := pc.close(int(code), reason); err != nil {
				if quirk == "" {
					t.Errorf("peer close(%d, %q): %v", code, reason, err)
				} else {
					t.Logf("known peer deviation for %d (%s): peer close: %v", code, quirk, err)
				}
			}
			pc.kill()
			// duplex closes.
			pc, err = dial(t, fmt.Sprintf("%s/c/server-close-%d", s.URL, code))
			if err != nil {
				t.Fatal(err)
			}
			if err := pc.send(duplex.MessageText, []byte(fmt.Sprintf("cmd:close %d %s", code, reason))); err != nil {
				t.Fatal(err)
			}
			gotCode, gotReason, err := pc.closed()
			if quirk != "" {
				t.Logf("known peer deviation for %d (%s): the peer saw %d %q, %v", code, quirk, gotCode, gotReason, err)
			} else if err != nil || gotCode != int(code) || gotReason != reason {
				t.Errorf("duplex closed with %d %q; the peer saw %d %q, %v", code, reason, gotCode, gotReason, err)
			}
			pc.kill()
		}
		// And what duplex saw, from its own records and through the protocol.
		s.checkCloses(t)
		ctl, err := dial(t, s.URL+"/c/control")
		if err != nil {
			t.Fatal(err)
		}
		defer ctl.kill()
		for _, code := range closeCodes {
			if err := ctl.send(duplex.MessageText, []byte(fmt.Sprintf("cmd:closed client-close-%d", code))); err != nil {
				t.Fatal(err)
			}
			_, p, err := ctl.recv()
			want := fmt.Sprintf("%d %s", code, closeReason(code))
			if err != nil || !bytes.Equal(p, []byte(want)) {
				t.Errorf("cmd:closed client-close-%d = %q, %v; want %q", code, p, err, want)
			}
		}
		ctl.close(int(duplex.StatusNormalClosure), "")
	})
}
