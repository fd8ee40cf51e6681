//go:build linux

package interop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// Node's ws and Python's websockets clients against duplex's event-driven
// server, in both of its forms: connections detached from net/http
// (Conn.Detach) and connections ServeEvents accepted itself. The clients
// run the same scripted session as against the goroutine server (every
// message shape up to 16 MiB, fragments from the peer, pings both ways, a
// pipelined burst, every close code each way), without compression and
// with each peer's permessage-deflate variants. The gorilla, coder and
// gws clients meet ServeEvents in events_test.go.

// eventModes are the two ways to put a connection in the event loop.
var eventModes = []string{"detach", "serve-events"}

func TestEventModeNode(t *testing.T) {
	t.Parallel()
	node := requireNode(t)
	runScriptPeerEvents(t, scriptPeer{
		dir: "node", interp: node, name: "ws", client: "client.mjs", urlFirst: true,
		deflate: []deflateRun{
			{"defaults", []string{"--deflate"}, bigSize},
			{"no context takeover", []string{"--deflate", "--server-no-context-takeover", "--client-no-context-takeover"}, smallSize},
			{"10-bit windows", []string{"--deflate", "--server-max-window-bits=10", "--client-max-window-bits=10"}, smallSize},
		},
	})
}

func TestEventModePython(t *testing.T) {
	t.Parallel()
	requirePython(t)
	runScriptPeerEvents(t, scriptPeer{
		dir: "python", interp: python, name: "websockets", client: "client.py", plain: []string{"--compression=none"},
		deflate: []deflateRun{
			{"defaults", []string{"--compression=default"}, bigSize},
			{"no context takeover", []string{"--compression=custom", "--server-no-context-takeover", "--client-no-context-takeover"}, smallSize},
			{"9-bit windows", []string{"--compression=custom", "--server-max-window-bits=9", "--client-max-window-bits=9"}, smallSize},
		},
	})
}

// runScriptPeerEvents runs p's client script against each event mode,
// without compression and in each of p's deflate configurations, and
// checks what the server saw of the closes.
func runScriptPeerEvents(t *testing.T, p scriptPeer) {
	args := func(url string, flags ...string) []string {
		if p.urlFirst {
			return append([]string{p.client, url}, flags...)
		}
		return append(append([]string{p.client}, flags...), url)
	}
	for _, mode := range eventModes {
		t.Run(mode+"/"+p.name+" client", func(t *testing.T) {
			s := startEventEcho(t, mode, nil)
			runPeerScript(t, p.dir, p.interp, args(s.URL, p.plain...)...)
			s.checkMain(t, false)
			s.checkCloses(t)
		})
		for _, v := range p.deflate {
			t.Run(mode+"/deflate "+v.name+"/"+p.name+" client", func(t *testing.T) {
				s := startEventEcho(t, mode, &duplex.AcceptOptions{Compression: &duplex.CompressionOptions{}})
				runPeerScript(t, p.dir, p.interp, args(s.URL, append([]string{"--no-close-codes", fmt.Sprintf("--big-size=%d", v.size)}, v.flags...)...)...)
				s.checkMain(t, true)
			})
		}
	}
}

// eventEcho is the echo protocol of README.md served by EventConns.
type eventEcho struct {
	URL    string
	closes closeLog

	mu    sync.Mutex
	conns map[string]*eventSession
}

// eventSession is what the server saw of one connection, by its id.
type eventSession struct {
	id         string
	extensions string
	pinging    atomic.Bool // a cmd:ping waits for its pong
	closeCalls atomic.Int32
	done       chan struct{}
	err        error // what OnClose reported; set before done closes
}

// startEventEcho starts the echo server in the event mode given:
// "detach" behind net/http, or "serve-events".
func startEventEcho(t *testing.T, mode string, opts *duplex.AcceptOptions) *eventEcho {
	t.Helper()
	s := &eventEcho{conns: make(map[string]*eventSession)}
	if opts == nil {
		opts = &duplex.AcceptOptions{}
	}
	switch mode {
	case "detach":
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := duplex.Accept(w, r, opts)
			if err != nil {
				return
			}
			sess := s.session(connID(r))
			sess.extensions = c.Extensions()
			// A handler per connection carries its session from the first
			// message on; Detach may deliver one before it returns.
			if _, err := c.Detach(s.handler(sess)); err != nil {
				t.Errorf("Detach: %v", err)
				c.CloseNow()
			}
		}))
		testkit.Serve(t, srv)
		s.URL = wsURL(srv.URL)
	case "serve-events":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		h := s.handler(nil)
		h.OnOpen = func(c *duplex.EventConn) { c.Value().(*eventSession).extensions = c.Extensions() }
		es, err := duplex.ServeEvents(ln, h, &duplex.EventServerOptions{
			AcceptOptions: *opts,
			Check: func(r *http.Request) (any, int, string) {
				return s.session(connID(r)), 0, ""
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { es.Close() })
		s.URL = "ws://" + ln.Addr().String()
	default:
		t.Fatalf("unknown event mode %q", mode)
	}
	return s
}

func (s *eventEcho) session(id string) *eventSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.conns[id]
	if sess == nil {
		sess = &eventSession{id: id, done: make(chan struct{})}
		s.conns[id] = sess
	}
	return sess
}

// handler serves the echo protocol; sess is the connection's session, or
// nil to take it from EventConn.Value (ServeEvents' Check stores it).
func (s *eventEcho) handler(sess *eventSession) *duplex.EventHandler {
	of := func(c *duplex.EventConn) *eventSession {
		if sess != nil {
			return sess
		}
		return c.Value().(*eventSession)
	}
	ctx := context.Background()
	return &duplex.EventHandler{
		OnMessage: func(c *duplex.EventConn, typ duplex.MessageType, p []byte) {
			cmd, arg, ok := parseCommand(p)
			if typ != duplex.MessageText || !ok {
				c.Write(ctx, typ, p)
				return
			}
			switch cmd {
			case "ping":
				// The pong reaches OnPong; EventConn.Ping does not wait.
				sess := of(c)
				sess.pinging.Store(true)
				if err := c.Ping(ctx, []byte("duplex ping")); err != nil {
					c.Write(ctx, duplex.MessageText, []byte("no pong: "+err.Error()))
				}
			case "fragmented":
				// EventConn has no streaming writer: the message goes
				// whole, and the client checks its bytes.
				n, _ := strconv.Atoi(arg)
				c.Write(ctx, duplex.MessageBinary, pattern(n))
			case "close":
				of(c).closeCalls.Add(1)
				c.Close(parseClose(arg))
			case "closed":
				// Waiting for another connection's end must not hold up
				// the loop's worker.
				go c.Write(ctx, duplex.MessageText, []byte(s.closes.wait(arg)))
			default:
				c.Write(ctx, duplex.MessageText, []byte("unknown command "+strconv.Quote(cmd)))
			}
		},
		OnPong: func(c *duplex.EventConn, p []byte) {
			if string(p) == "duplex ping" && of(c).pinging.CompareAndSwap(true, false) {
				c.Write(ctx, duplex.MessageText, []byte("pong"))
			}
		},
		OnClose: func(c *duplex.EventConn, err error) {
			sess := of(c)
			var ce *duplex.CloseError
			if errors.As(err, &ce) && !ce.Sent {
				s.closes.record(sess.id, int(ce.Code), ce.Reason, nil)
			} else {
				s.closes.record(sess.id, 0, "", err)
			}
			sess.err = err
			close(sess.done)
		},
	}
}

// ended waits for connection id to end and returns its session.
func (s *eventEcho) ended(t *testing.T, id string) *eventSession {
	t.Helper()
	sess := s.session(id)
	select {
	case <-sess.done:
		return sess
	case <-time.After(testkit.Wait(t, 0)):
		t.Fatalf("event server: connection %q has not ended", id)
		return nil
	}
}

// checkMain checks the main connection from the server's side: it agreed
// permessage-deflate when it should have, and ended with the client's
// close 1000.
func (s *eventEcho) checkMain(t *testing.T, compressed bool) {
	t.Helper()
	sess := s.ended(t, "main")
	t.Logf("event server: extensions %q; ended with %v", sess.extensions, sess.err)
	if compressed && sess.extensions == "" {
		noDeflate(t, true, "the event server answered the peer's offer without permessage-deflate")
	}
	var ce *duplex.CloseError
	if !errors.As(sess.err, &ce) || ce.Code != duplex.StatusNormalClosure || ce.Sent {
		t.Errorf("event server, main connection: OnClose got %v; want the client's 1000", sess.err)
	}
}

// checkCloses checks the close connections of a client's session:
// "client-close-<code>", closed by the client, and "server-close-<code>",
// closed by the server.
func (s *eventEcho) checkCloses(t *testing.T) {
	t.Helper()
	for _, code := range closeCodes {
		reason := closeReason(code)
		sess := s.ended(t, fmt.Sprintf("client-close-%d", code))
		var ce *duplex.CloseError
		if !errors.As(sess.err, &ce) || ce.Code != code || ce.Reason != reason || ce.Sent {
			t.Errorf("event server, peer closed with %d %q: OnClose got %v; want the peer's CloseError", code, reason, sess.err)
		}
		sess = s.ended(t, fmt.Sprintf("server-close-%d", code))
		if n := sess.closeCalls.Load(); n != 1 {
			t.Errorf("event server, server-close-%d: %d calls to Close; want 1", code, n)
		}
		if !errors.As(sess.err, &ce) || ce.Code != code || ce.Reason != reason || !ce.Sent {
			t.Errorf("event server, after Close(%d, %q): OnClose got %v; want our own CloseError", code, reason, sess.err)
		}
	}
}
