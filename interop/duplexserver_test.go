package interop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// duplexServer is duplex's echo server, speaking the command protocol to
// peer clients. Besides answering "cmd:closed", it keeps every
// connection's record for the test to check directly.
type duplexServer struct {
	URL    string
	closes closeLog

	mu    sync.Mutex
	conns map[string]*serverConn
}

// serverConn is what the server saw of one connection. Fields are written
// by the connection's handler before done closes.
type serverConn struct {
	opened     chan struct{} // closed once extensions and sniff are set
	done       chan struct{}
	extensions string
	sniff      *sniffConn
	readErr    error // what ended the read loop
	closeCalls int   // server-initiated closes ("cmd:close")
	closeErr   error // what Close returned, when the server closed
}

func startDuplexServer(t *testing.T, opts *duplex.AcceptOptions) *duplexServer {
	t.Helper()
	s := &duplexServer{conns: make(map[string]*serverConn)}
	srv := newSniffServer(http.HandlerFunc(s.serve(opts)))
	testkit.Serve(t, srv)
	s.URL = wsURL(srv.URL)
	return s
}

func (s *duplexServer) conn(id string) *serverConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.conns[id]
	if sc == nil {
		sc = &serverConn{opened: make(chan struct{}), done: make(chan struct{})}
		s.conns[id] = sc
	}
	return sc
}

// ended waits for connection id to end and returns its record.
func (s *duplexServer) ended(t *testing.T, id string) *serverConn {
	t.Helper()
	sc := s.conn(id)
	select {
	case <-sc.done:
		return sc
	case <-time.After(testkit.Wait(t, 0)):
		t.Fatalf("duplex server: connection %q has not ended", id)
		return nil
	}
}

// extensionsWhenOpen returns the extensions agreed on connection sc.
func (sc *serverConn) extensionsWhenOpen() string {
	select {
	case <-sc.opened:
		return sc.extensions
	case <-time.After(testkit.Timeout(0)):
		return ""
	}
}

func (s *duplexServer) serve(opts *duplex.AcceptOptions) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		id := connID(r)
		c, err := duplex.Accept(w, r, opts)
		if err != nil {
			return
		}
		sc := s.conn(id)
		sc.extensions = c.Extensions()
		sc.sniff = sniffed(r)
		close(sc.opened)
		var bg sync.WaitGroup
		defer func() {
			bg.Wait()
			c.CloseNow()
			var ce *duplex.CloseError
			if errors.As(sc.readErr, &ce) && !ce.Sent {
				s.closes.record(id, int(ce.Code), ce.Reason, nil)
			} else {
				s.closes.record(id, 0, "", sc.readErr)
			}
			close(sc.done)
		}()
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				sc.readErr = err
				return
			}
			cmd, arg, ok := parseCommand(p)
			if typ != duplex.MessageText || !ok {
				if err := c.Write(ctx, typ, p); err != nil {
					sc.readErr = err
					return
				}
				continue
			}
			switch cmd {
			case "ping":
				// Ping needs this loop to go on reading to see the pong.
				bg.Go(func() {
					ctx, cancel := context.WithTimeout(ctx, testkit.Timeout(0))
					defer cancel()
					reply := "pong"
					if _, err := c.Ping(ctx); err != nil {
						reply = "no pong: " + err.Error()
					}
					c.Write(ctx, duplex.MessageText, []byte(reply))
				})
			case "fragmented":
				n, _ := strconv.Atoi(arg)
				if err := writeFragmented(ctx, c, duplex.MessageBinary, pattern(n), 4096); err != nil {
					sc.readErr = err
					return
				}
			case "close":
				code, reason := parseClose(arg)
				sc.closeCalls++
				if code%2 == 0 {
					// Nobody reads while Close runs: it reads the answer itself.
					sc.closeErr = c.Close(code, reason)
					_, _, sc.readErr = c.Read(ctx)
					return
				}
				// Close while this loop reads: a pong proves the loop is
				// inside Read before Close starts, so Close finds the
				// reader busy and waits for it to see the answer.
				bg.Go(func() {
					ctx, cancel := context.WithTimeout(ctx, testkit.Timeout(0))
					defer cancel()
					if _, err := c.Ping(ctx); err != nil {
						sc.closeErr = fmt.Errorf("ping before close: %w", err)
						c.CloseNow()
						return
					}
					sc.closeErr = c.Close(code, reason)
				})
			case "closed":
				if err := c.Write(ctx, duplex.MessageText, []byte(s.closes.wait(arg))); err != nil {
					sc.readErr = err
					return
				}
			default:
				c.Write(ctx, duplex.MessageText, []byte("unknown command "+strconv.Quote(cmd)))
			}
		}
	}
}

// writeFragmented sends p as one message through Writer, chunk bytes per
// Write. duplex's Writer sends a frame each time its 16 KiB buffer fills.
func writeFragmented(ctx context.Context, c *duplex.Conn, typ duplex.MessageType, p []byte, chunk int) error {
	w, err := c.Writer(ctx, typ)
	if err != nil {
		return err
	}
	return writeChunks(w, p, chunk)
}

// writeChunks writes p to the message writer w, chunk bytes a Write, and
// closes it, which ends the message.
func writeChunks(w io.WriteCloser, p []byte, chunk int) error {
	for len(p) > 0 {
		n := min(chunk, len(p))
		if _, err := w.Write(p[:n]); err != nil {
			w.Close()
			return err
		}
		p = p[n:]
	}
	return w.Close()
}

// checkServerCloses checks what duplex's server saw of the close
// connections a peer client made: "client-close-<code>", closed by the
// peer, and "server-close-<code>", closed by duplex.
func (s *duplexServer) checkCloses(t *testing.T) {
	t.Helper()
	for _, code := range closeCodes {
		reason := closeReason(code)
		sc := s.ended(t, fmt.Sprintf("client-close-%d", code))
		var ce *duplex.CloseError
		if !errors.As(sc.readErr, &ce) || ce.Code != code || ce.Reason != reason || ce.Sent {
			t.Errorf("duplex server, peer closed with %d %q: Read returned %v; want the peer's CloseError", code, reason, sc.readErr)
		}
		sc = s.ended(t, fmt.Sprintf("server-close-%d", code))
		if sc.closeCalls != 1 || sc.closeErr != nil {
			t.Errorf("duplex server, Close(%d, %q) = %v (calls %d); want nil: the peer answered the close frame", code, reason, sc.closeErr, sc.closeCalls)
		}
		if !errors.As(sc.readErr, &ce) || ce.Code != code || !ce.Sent {
			t.Errorf("duplex server, after Close(%d): Read returned %v; want our own CloseError", code, sc.readErr)
		}
	}
}

// checkCompressedMain checks, after a subprocess client's run with
// compression, that it was compressed: it skips while duplex cannot
// negotiate permessage-deflate at all.
func (s *duplexServer) checkCompressedMain(t *testing.T) {
	t.Helper()
	if ext := s.conn("main").extensionsWhenOpen(); ext == "" {
		noDeflate(t, true, "duplex server answered the peer's offer without permessage-deflate")
	}
	s.checkMain(t, true, true)
}

// checkMain checks the main exchange connection of a peer client from the
// server's side: compression agreed, fragments and compressed frames seen.
func (s *duplexServer) checkMain(t *testing.T, peerFragments, compressed bool) {
	t.Helper()
	sc := s.ended(t, "main")
	in, out := sc.sniff.in.tally(), sc.sniff.out.tally()
	t.Logf("duplex server: extensions %q; frames in %+v, out %+v; ended with %v", sc.extensions, in, out, sc.readErr)
	if peerFragments && in.Continuations == 0 {
		t.Errorf("duplex server received no continuation frame: the peer's fragmented message was not fragmented")
	}
	if out.Continuations == 0 {
		t.Errorf("duplex server sent no continuation frame for cmd:fragmented")
	}
	if compressed {
		if !strings.Contains(sc.extensions, "permessage-deflate") {
			t.Errorf("duplex server extensions %q; want permessage-deflate", sc.extensions)
		}
		if in.Compressed == 0 || out.Compressed == 0 {
			t.Errorf("compressed frames: received %d, sent %d; want both > 0", in.Compressed, out.Compressed)
		}
	}
}
