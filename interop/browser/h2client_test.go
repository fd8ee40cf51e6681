package browser

// Go client ↔ server over HTTP/2 (RFC 8441). These tests live beside the
// browser tests to share TestMain, which restarts the binary with the
// GODEBUG setting Go's server needs to advertise extended CONNECT.

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
	"golang.org/x/net/http2"
)

type h2Server struct {
	url  string
	tls  *tls.Config
	mu   sync.Mutex
	seen []string // "HTTP/2 CONNECT 127.0.0.1:port" per WebSocket request
}

// startH2Echo serves a duplex echo handler over TLS with HTTP/2 on, or
// HTTP/1.1 only when h2 is false.
func startH2Echo(t *testing.T, h2 bool, opts *duplex.AcceptOptions) *h2Server {
	t.Helper()
	s := &h2Server{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r.Proto+" "+r.Method+" "+r.RemoteAddr)
		s.mu.Unlock()
		c, err := duplex.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, p, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if string(p) == "close-4001" {
				c.Close(4001, "asked to")
				return
			}
			if c.Write(context.Background(), typ, p) != nil {
				return
			}
		}
	}))
	srv.EnableHTTP2 = h2
	srv.StartTLS()
	// An HTTP/2 WebSocket is a request in progress until its handler
	// returns, which a bare srv.Close waits for without end (issue 17).
	testkit.Serve(t, srv)
	s.url = "wss" + strings.TrimPrefix(srv.URL, "https") + "/echo"
	s.tls = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	return s
}

// TestGoClientHTTP2 runs three sockets over one HTTP/2 connection: echoes
// up to 2 MiB, a ping, a close from each side. Every step has a deadline
// scaled to its bytes, and the sockets are dropped before the server
// closes, so that a failure is printed however it happens (issue 17: a
// fixed 20 s for the whole run failed the ping on a busy machine, and the
// server's Close then waited for the open sockets until go test's
// timeout, hiding the failure).
func TestGoClientHTTP2(t *testing.T) {
	if reexecErr != nil {
		t.Fatal(reexecErr)
	}
	for _, compress := range []bool{false, true} {
		name := "plain"
		var copts *duplex.CompressionOptions
		if compress {
			name, copts = "deflate", &duplex.CompressionOptions{}
		}
		t.Run(name, func(t *testing.T) {
			srv := startH2Echo(t, true, &duplex.AcceptOptions{Compression: copts})
			tr := &http2.Transport{TLSClientConfig: srv.tls}
			t.Cleanup(tr.CloseIdleConnections)
			dial := func() *duplex.Conn {
				ctx, cancel := testkit.Context(t, 0)
				defer cancel()
				c, resp, err := duplex.Dial(ctx, srv.url, &duplex.DialOptions{HTTP2Transport: tr, Compression: copts})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.CloseNow() }) // before the server's cleanup
				if resp.ProtoMajor != 2 {
					t.Fatalf("handshake over HTTP/%d; want 2", resp.ProtoMajor)
				}
				if compress != strings.HasPrefix(c.Extensions(), "permessage-deflate") {
					t.Fatalf("Extensions() = %q with compression %v", c.Extensions(), compress)
				}
				return c
			}
			conns := []*duplex.Conn{dial(), dial(), dial()}
			for i, c := range conns {
				for _, msg := range []string{"hello", "", strings.Repeat("é", 1<<20)} {
					ctx, cancel := testkit.Context(t, 2*len(msg))
					if err := c.Write(ctx, duplex.MessageText, []byte(msg)); err != nil {
						t.Fatalf("conn %d: write of %d bytes: %v", i, len(msg), err)
					}
					_, p, err := c.Read(ctx)
					cancel()
					if err != nil || string(p) != msg {
						t.Fatalf("conn %d: echo of %d bytes: got %d, %v", i, len(msg), len(p), err)
					}
				}
			}
			ctx, cancel := testkit.Context(t, 0)
			defer cancel()
			// Ping needs a reader; the server's close reaches it.
			c := conns[0]
			readErr := make(chan error, 1)
			go func() {
				_, _, err := c.Read(ctx)
				readErr <- err
			}()
			if _, err := c.Ping(ctx); err != nil {
				t.Fatalf("ping over HTTP/2: %v", err)
			}
			if err := conns[1].Write(ctx, duplex.MessageText, []byte("close-4001")); err != nil {
				t.Fatal(err)
			}
			_, _, err := conns[1].Read(ctx)
			var ce *duplex.CloseError
			if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "asked to" || ce.Sent {
				t.Fatalf("server close over HTTP/2: %v; want the peer's 4001", err)
			}
			if err := c.Close(duplex.StatusNormalClosure, ""); err != nil {
				t.Errorf("close over HTTP/2: %v", err)
			}
			if err := <-readErr; duplex.CloseStatus(err) != duplex.StatusNormalClosure {
				t.Errorf("reader after close: %v", err)
			}
			conns[2].Close(duplex.StatusNormalClosure, "")

			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.seen) != 3 {
				t.Fatalf("server saw %d requests; want 3", len(srv.seen))
			}
			for _, s := range srv.seen {
				if s != srv.seen[0] || !strings.HasPrefix(s, "HTTP/2.0 CONNECT ") {
					t.Fatalf("requests %q: want 3 HTTP/2 CONNECTs over one connection", srv.seen)
				}
			}
		})
	}
}

// A server that speaks only HTTP/1.1: Dial falls back to the Upgrade
// handshake.
func TestGoClientHTTP2Fallback(t *testing.T) {
	srv := startH2Echo(t, false, nil)
	tr := &http2.Transport{TLSClientConfig: srv.tls}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := testkit.Context(t, 0)
	defer cancel()
	c, resp, err := duplex.Dial(ctx, srv.url, &duplex.DialOptions{HTTP2Transport: tr, TLSConfig: srv.tls})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if resp.ProtoMajor != 1 {
		t.Fatalf("fallback handshake over HTTP/%d; want 1", resp.ProtoMajor)
	}
	if err := c.Write(ctx, duplex.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || len(p) != 3 {
		t.Fatalf("echo after fallback: %v", err)
	}
}
