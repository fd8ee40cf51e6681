//go:build linux

package duplex_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// serveEvents starts ServeEvents on a loopback port with an echo handler
// and returns its address; opened receives every accepted connection and
// ended how each ended (as confEcho reports it).
func serveEvents(t *testing.T, opts *duplex.EventServerOptions) (addr string, opened <-chan *duplex.EventConn, ended <-chan ending) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	open := make(chan *duplex.EventConn, 16)
	end := make(chan ending, 16)
	s, err := duplex.ServeEvents(ln, &duplex.EventHandler{
		OnOpen: func(c *duplex.EventConn) { open <- c },
		OnMessage: func(c *duplex.EventConn, typ duplex.MessageType, p []byte) {
			c.Write(context.Background(), typ, p)
		},
		OnClose: func(c *duplex.EventConn, err error) {
			end <- ending{err, c.Write(context.Background(), duplex.MessageText, []byte("after the end"))}
		},
	}, opts)
	if err != nil {
		t.Fatalf("ServeEvents: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String(), open, end
}

// Every handshake case of Accept gets the same answer from ServeEvents.
func TestServeEventsHandshake(t *testing.T) {
	for _, tt := range acceptCases {
		if tt.setCookie {
			continue // no handler runs before the answer
		}
		t.Run(tt.name, func(t *testing.T) {
			var opts duplex.EventServerOptions
			if tt.opts != nil {
				opts.AcceptOptions = *tt.opts
			}
			host, opened, _ := serveEvents(t, &opts)
			edits := tt.edits
			if tt.originHost != "" {
				edits = append(edits, "+Origin: http://"+tt.originHost)
			}
			req := editRequest(host, edits) + tt.body
			status, header, body := testkit.RawRequest(t, host, req)
			if status != tt.status {
				t.Fatalf("status %d (%q); want %d\nrequest:\n%s", status, body, tt.status, req)
			}
			for k, want := range tt.header {
				if got := header.Get(k); got != want {
					t.Errorf("%s = %q; want %q", k, got, want)
				}
			}
			if status == 101 {
				select {
				case <-opened:
				case <-time.After(testkit.Wait(t, 0)):
					t.Fatal("OnOpen was not called")
				}
				return
			}
			body = strings.TrimSpace(body)
			if body == "" || len(body) > 200 || !strings.Contains(body, tt.bodyHas) {
				t.Errorf("body = %q; want a short reason mentioning %q", body, tt.bodyHas)
			}
			select {
			case c := <-opened:
				t.Fatalf("OnOpen called for a refused handshake: %v", c)
			default:
			}
		})
	}
}

// The conformance table, with the library as a server that ServeEvents
// accepted.
func init() {
	confDrivers = append(confDrivers, confDriver{
		name:   "serve-events",
		roles:  asServer,
		shared: true,
		start: func(t *testing.T, r role, o confOptions) (*testkit.RawPeer, <-chan ending) {
			opts := &duplex.EventServerOptions{}
			opts.ReadLimit = o.readLimit
			opts.CloseTimeout = o.closeTimeout
			var offer http.Header
			if o.deflate {
				opts.Compression = &duplex.CompressionOptions{}
				offer = http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate"}}
			}
			addr, opened, ended := serveEvents(t, opts)
			peer, resp := testkit.DialRaw(t, "ws://"+addr+"/", offer)
			if ext := resp.Header.Get("Sec-WebSocket-Extensions"); o.deflate != strings.HasPrefix(ext, "permessage-deflate") {
				t.Fatalf("Sec-WebSocket-Extensions: %q; want permessage-deflate: %v", ext, o.deflate)
			}
			select {
			case c := <-opened:
				t.Cleanup(func() { c.CloseNow() })
			case <-time.After(5 * time.Second):
				t.Fatal("OnOpen was not called")
			}
			return peer, ended
		},
	})
}

// A client that connects and says nothing is dropped after the handshake
// timeout; one that sends an endless head gets 431.
func TestServeEventsSlowAndLargeRequests(t *testing.T) {
	addr, _, _ := serveEvents(t, &duplex.EventServerOptions{HandshakeTimeout: 200 * time.Millisecond})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if n, err := nc.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a server waiting for a request", n)
	} else if errors.Is(err, io.EOF) == false && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("silent client: %v; want the connection closed", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("silent client dropped after %v; want about the 200ms timeout", d)
	}

	long := "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + strings.Repeat("a", 9000) + "\r\n\r\n"
	status, _, body := testkit.RawRequest(t, addr, long)
	if status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("9 KB head: %d %q; want 431", status, body)
	}
}

// Check authenticates before the upgrade, as a handler does before Accept.
func TestServeEventsCheck(t *testing.T) {
	addr, opened, _ := serveEvents(t, &duplex.EventServerOptions{Check: func(r *http.Request) (any, int, string) {
		if r.URL.Query().Get("token") != "secret" {
			return nil, http.StatusUnauthorized, "invalid token"
		}
		return "user-" + r.URL.Query().Get("user"), 0, ""
	}})
	ctx, cancel := testkit.Context(t, 0)
	defer cancel()
	_, _, err := duplex.Dial(ctx, "ws://"+addr+"/ws?token=wrong", nil)
	var he *duplex.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != 401 || !strings.Contains(string(he.Body), "invalid token") {
		t.Fatalf("wrong token: %v; want 401 invalid token", err)
	}
	c, _, err := duplex.Dial(ctx, "ws://"+addr+"/ws?token=secret&user=ada", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if ec := <-opened; ec.Value() != "user-ada" {
		t.Fatalf("Value() = %v; want what Check returned", ec.Value())
	}
	if err := c.Write(ctx, duplex.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "hi" {
		t.Fatalf("echo %q, %v", p, err)
	}
}

// A broadcast to event-driven connections: one PreparedMessage, framed
// once per framing, reaches clients with and without compression.
func TestServeEventsWritePrepared(t *testing.T) {
	opts := &duplex.EventServerOptions{}
	opts.Compression = &duplex.CompressionOptions{NoContextTakeover: true}
	addr, opened, _ := serveEvents(t, opts)
	ctx, cancel := testkit.Context(t, 0)
	defer cancel()
	var clients []*duplex.Conn
	var servers []*duplex.EventConn
	for i := range 6 {
		var dopts *duplex.DialOptions
		if i%2 == 0 {
			dopts = &duplex.DialOptions{Compression: &duplex.CompressionOptions{}}
		}
		c, _, err := duplex.Dial(ctx, "ws://"+addr+"/", dopts)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		clients = append(clients, c)
		servers = append(servers, <-opened)
	}
	msg := strings.Repeat("broadcast ", 100)
	pm := duplex.NewPreparedMessage(duplex.MessageText, []byte(msg))
	for _, s := range servers {
		if err := s.WritePrepared(ctx, pm); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range clients {
		typ, p, err := c.Read(ctx)
		if err != nil || typ != duplex.MessageText || string(p) != msg {
			t.Fatalf("client %d got %v %d bytes, %v", i, typ, len(p), err)
		}
		if compressed := strings.HasPrefix(c.Extensions(), "permessage-deflate"); compressed != (i%2 == 0) {
			t.Fatalf("client %d: extensions %q", i, c.Extensions())
		}
	}
}
