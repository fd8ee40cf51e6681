package interop

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// clientRun describes a duplex client's run against a peer's echo server.
type clientRun struct {
	// compression is offered when set; expectDeflate says the peer is
	// configured so that the offer must be accepted (see noDeflate).
	compression   *duplex.CompressionOptions
	expectDeflate bool

	// peerFragments: the peer's API sends "cmd:fragmented" in several frames.
	peerFragments bool

	// burst is how many similar messages to pipeline (context takeover).
	burst int

	// bigSize is the size of the large message; 0 means bigSize.
	bigSize int

	// closeCodes runs every close code, from each side, one connection each.
	closeCodes bool

	// closeQuirks are close codes the peer does not accept from duplex,
	// each with the reason; for them only duplex's side is checked.
	closeQuirks map[duplex.StatusCode]string
}

// runDuplexClient runs duplex's client through the whole exchange against
// the peer echo server at base (ws://host:port).
//
// Each step has its own deadline, scaled to the bytes it moves
// (testkit.Context): a fixed deadline for the whole run failed the 16 MiB
// compressed echo on a busy machine (issue 17).
func runDuplexClient(t *testing.T, base string, run clientRun) {
	o := duplex.DialOptions{Compression: run.compression}
	c, sniff := dialDuplex(t, base+"/c/main", o)
	if run.compression != nil && !strings.Contains(c.Extensions(), "permessage-deflate") {
		noDeflate(t, run.expectDeflate, fmt.Sprintf("duplex client offered %+v; Extensions() = %q", *run.compression, c.Extensions()))
	}
	t.Logf("extensions %q", c.Extensions())

	t.Run("messages", func(t *testing.T) {
		for _, m := range dataMessages(run.bigSize) {
			ctx, cancel := testkit.Context(t, 2*len(m.p))
			if err := c.Write(ctx, m.typ, m.p); err != nil {
				t.Fatalf("write %v: %v", m, err)
			}
			typ, p, err := c.Read(ctx)
			cancel()
			if err != nil {
				t.Fatalf("read echo of %v: %v", m, err)
			}
			checkEcho(t, m, typ, p)
		}
	})

	t.Run("fragmented", func(t *testing.T) {
		ctx, cancel := testkit.Context(t, 4*fragmentedSize)
		defer cancel()
		// duplex fragments; the peer reassembles and echoes.
		before := sniff.out.tally().Continuations
		m := message{"fragmented text", duplex.MessageText, fragText(fragmentedSize)}
		if err := writeFragmented(ctx, c, m.typ, m.p, 1000); err != nil {
			t.Fatalf("write fragmented: %v", err)
		}
		typ, p, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read echo of %v: %v", m, err)
		}
		checkEcho(t, m, typ, p)
		if sniff.out.tally().Continuations == before {
			t.Errorf("duplex's Writer sent %v in one frame", m)
		}

		// The peer fragments; duplex reassembles.
		before = sniff.in.tally().Continuations
		if err := c.Write(ctx, duplex.MessageText, []byte(fmt.Sprintf("cmd:fragmented %d", fragmentedSize))); err != nil {
			t.Fatal(err)
		}
		typ, p, err = c.Read(ctx)
		if err != nil {
			t.Fatalf("read cmd:fragmented: %v", err)
		}
		checkEcho(t, message{"cmd:fragmented", duplex.MessageBinary, pattern(fragmentedSize)}, typ, p)
		frags := sniff.in.tally().Continuations - before
		t.Logf("the peer sent %d continuation frames", frags)
		if run.peerFragments && frags == 0 {
			t.Errorf("the peer's fragmented message arrived in one frame")
		}
	})

	t.Run("ping", func(t *testing.T) {
		ctx, cancel := testkit.Context(t, 0)
		defer cancel()
		// duplex pings: the pong is seen only while a Read is pending.
		got := make(chan error, 1)
		go func() {
			typ, p, err := c.Read(ctx)
			if err == nil && (typ != duplex.MessageText || string(p) != "after ping") {
				err = fmt.Errorf("got %v %q; want text %q", typ, p, "after ping")
			}
			got <- err
		}()
		rtt, err := c.Ping(ctx)
		if err != nil {
			t.Errorf("duplex Ping: %v; want the peer's pong", err)
		}
		t.Logf("duplex Ping rtt %v", rtt)
		if err := c.Write(ctx, duplex.MessageText, []byte("after ping")); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatalf("read after ping: %v", err)
		}

		// The peer pings: duplex answers while reading, and the peer says
		// whether its pong came.
		if err := c.Write(ctx, duplex.MessageText, []byte("cmd:ping")); err != nil {
			t.Fatal(err)
		}
		typ, p, err := c.Read(ctx)
		if err != nil || typ != duplex.MessageText || string(p) != "pong" {
			t.Fatalf("cmd:ping: got %v %q, %v; want text \"pong\" (the peer saw duplex's pong)", typ, p, err)
		}
		if n := sniff.out.tally().Pongs; n == 0 {
			t.Errorf("duplex sent no pong frame")
		}
	})

	if run.burst > 0 {
		t.Run("burst", func(t *testing.T) {
			exchangeBurst(t, c, burstMessages(run.burst))
			if run.compression != nil {
				in, out := sniff.in.tally(), sniff.out.tally()
				t.Logf("compressed frames: received %d, sent %d", in.Compressed, out.Compressed)
				if in.Compressed == 0 || out.Compressed == 0 {
					t.Errorf("compressed frames: received %d, sent %d; want both > 0", in.Compressed, out.Compressed)
				}
			}
		})
	}

	if err := c.Close(duplex.StatusNormalClosure, "done"); err != nil {
		t.Errorf("Close main connection: %v", err)
	}

	if run.closeCodes {
		t.Run("close codes", func(t *testing.T) {
			ctl, _ := dialDuplex(t, base+"/c/control", o)
			for _, code := range closeCodes {
				t.Run(fmt.Sprint(uint16(code)), func(t *testing.T) {
					duplexCloses(t, base, o, code, ctl, run.closeQuirks[code])
					peerCloses(t, base, o, code)
				})
			}
			ctl.Close(duplex.StatusNormalClosure, "")
		})
	}
}

// exchangeBurst pipelines msgs: a goroutine writes them all while this one
// reads and compares the echoes in order.
func exchangeBurst(t *testing.T, c *duplex.Conn, msgs []message) {
	t.Helper()
	n := 0
	for _, m := range msgs {
		n += 2 * len(m.p)
	}
	ctx, cancel := testkit.Context(t, n)
	defer cancel()
	werr := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := c.Write(ctx, m.typ, m.p); err != nil {
				werr <- fmt.Errorf("write %v: %w", m, err)
				return
			}
		}
		werr <- nil
	}()
	for _, m := range msgs {
		typ, p, err := c.Read(ctx)
		if err != nil {
			cancel() // the writer may be blocked
			t.Fatalf("read echo of %v: %v (writer: %v)", m, err, <-werr)
		}
		checkEcho(t, m, typ, p)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
}

// duplexCloses: duplex closes with code and the peer, asked on the control
// connection, says what it received. For odd codes a Read is pending when
// Close is called, the other path through Close.
func duplexCloses(t *testing.T, base string, o duplex.DialOptions, code duplex.StatusCode, ctl *duplex.Conn, quirk string) {
	t.Helper()
	ctx, cancel := testkit.Context(t, 0)
	defer cancel()
	id := fmt.Sprintf("client-close-%d", code)
	reason := closeReason(code)
	c, _ := dialDuplex(t, base+"/c/"+id, o)
	var pending chan error
	if code%2 == 1 {
		pending = make(chan error, 1)
		go func() {
			_, _, err := c.Read(ctx)
			pending <- err
		}()
		// The pong proves the Read above is running.
		if _, err := c.Ping(ctx); err != nil {
			t.Fatalf("ping before close: %v", err)
		}
	}
	if err := c.Close(code, reason); err != nil && quirk == "" {
		t.Errorf("duplex Close(%d, %q) = %v; want nil (the peer answers)", code, reason, err)
	}
	if pending != nil {
		err := <-pending
		var ce *duplex.CloseError
		if !errors.As(err, &ce) || ce.Code != code || !ce.Sent {
			t.Errorf("Read pending during Close(%d) returned %v; want our CloseError", code, err)
		}
	}
	if err := ctl.Write(ctx, duplex.MessageText, []byte("cmd:closed "+id)); err != nil {
		t.Fatal(err)
	}
	_, p, err := ctl.Read(ctx)
	if err != nil {
		t.Fatalf("cmd:closed: %v", err)
	}
	want := fmt.Sprintf("%d %s", code, reason)
	switch {
	case quirk != "":
		t.Logf("known peer deviation for %d (%s); the peer saw: %s", code, quirk, p)
	case string(p) != want:
		t.Errorf("after duplex Close(%d, %q) the peer saw %q; want %q", code, reason, p, want)
	}
}

// peerCloses: the peer closes with code and duplex's Read reports it.
func peerCloses(t *testing.T, base string, o duplex.DialOptions, code duplex.StatusCode) {
	t.Helper()
	ctx, cancel := testkit.Context(t, 0)
	defer cancel()
	reason := closeReason(code)
	c, _ := dialDuplex(t, fmt.Sprintf("%s/c/server-close-%d", base, code), o)
	if err := c.Write(ctx, duplex.MessageText, []byte(fmt.Sprintf("cmd:close %d %s", code, reason))); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctx)
	var ce *duplex.CloseError
	if !errors.As(err, &ce) || ce.Code != code || ce.Reason != reason || ce.Sent {
		t.Errorf("peer closed with %d %q: duplex Read returned %v; want the peer's CloseError", code, reason, err)
	}
	if got := duplex.CloseStatus(err); got != code {
		t.Errorf("CloseStatus = %v; want %v", got, code)
	}
}
