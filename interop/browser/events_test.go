//go:build linux

package browser

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// TestEventModeChromium has Chromium's own WebSocket stack exchange with
// duplex's event loop, in both of its forms (connections detached from
// net/http, and connections ServeEvents accepted), without compression
// and with permessage-deflate as Chromium offers it: three sockets, each
// with 200 text messages and a 1 MiB binary one, echoed and checked by
// the page, then closed by the page with 1000 "done".
func TestEventModeChromium(t *testing.T) {
	if !strings.Contains(echoPage, socketOpen) {
		t.Fatalf("echoPage no longer opens its sockets with %s; update servePageWithSocketURL", socketOpen)
	}
	for _, mode := range []string{"detach", "serve-events"} {
		for _, comp := range []struct {
			name string
			opts *duplex.CompressionOptions
		}{
			{"plain", nil},
			{"deflate", &duplex.CompressionOptions{}},
			{"deflate no context takeover", &duplex.CompressionOptions{NoContextTakeover: true}},
		} {
			t.Run(mode+"/"+comp.name, func(t *testing.T) {
				tb := newTab(t)
				ev := &eventEchoRecorder{}
				pageURL, wsURL := ev.start(t, mode, &duplex.AcceptOptions{Compression: comp.opts})

				const sockets, texts, binary = 3, 200, 1 << 20
				q := url.Values{"n": {fmt.Sprint(sockets)}, "texts": {fmt.Sprint(texts)}, "binary": {fmt.Sprint(binary)}, "ws": {wsURL}}
				tb.do("loading the page", chromedp.Navigate(pageURL+"/?"+q.Encode()))
				res := tb.result()
				if !res.OK || res.Messages != sockets*(texts+1) {
					t.Fatalf("page checked %d of %d echoes; errors: %q", res.Messages, sockets*(texts+1), res.Errors)
				}
				ends := ev.wait(t, sockets)
				for i, end := range ends {
					var ce *duplex.CloseError
					if !errors.As(end.err, &ce) || ce.Code != duplex.StatusNormalClosure || ce.Reason != "done" || ce.Sent {
						t.Errorf("socket %d ended with %v; want the page's close 1000 \"done\"", i, end.err)
					}
					if comp.opts != nil && !strings.HasPrefix(end.extensions, "permessage-deflate") {
						t.Errorf("socket %d agreed %q; want permessage-deflate", i, end.extensions)
					}
					if comp.opts == nil && end.extensions != "" {
						t.Errorf("socket %d agreed %q without compression configured", i, end.extensions)
					}
				}
				for i, ext := range res.Extensions {
					if want := ends[0].extensions; ext != want {
						t.Errorf("the page's ws.extensions of socket %d is %q; the server agreed %q", i, ext, want)
					}
				}
			})
		}
	}
}

// eventEchoRecorder echoes from the event loop and records how each
// connection ended.
type eventEchoRecorder struct {
	mu    sync.Mutex
	ends  []eventEnd // guarded by mu
	ended chan struct{}
}

type eventEnd struct {
	extensions string
	err        error
}

// start serves the echo page and the event-mode echo: in "detach" mode
// both from one net/http server, at /echo; in "serve-events" mode the
// sockets go to a listener of their own, which lets the page's origin in.
// It returns the page's base URL and the sockets' URL.
func (e *eventEchoRecorder) start(t *testing.T, mode string, opts *duplex.AcceptOptions) (pageURL, wsURL string) {
	t.Helper()
	e.ended = make(chan struct{}, 64)
	h := &duplex.EventHandler{
		OnMessage: func(c *duplex.EventConn, typ duplex.MessageType, p []byte) {
			c.Write(context.Background(), typ, p)
		},
		OnClose: func(c *duplex.EventConn, err error) {
			e.mu.Lock()
			e.ends = append(e.ends, eventEnd{c.Extensions(), err})
			e.mu.Unlock()
			e.ended <- struct{}{}
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", servePageWithSocketURL)
	if mode == "detach" {
		mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
			c, err := duplex.Accept(w, r, opts)
			if err != nil {
				t.Errorf("Accept: %v", err)
				return
			}
			if _, err := c.Detach(h); err != nil {
				t.Errorf("Detach: %v", err)
				c.CloseNow()
			}
		})
	}
	srv := httptest.NewServer(mux)
	testkit.Serve(t, srv)
	if mode == "detach" {
		return srv.URL, "ws" + strings.TrimPrefix(srv.URL, "http") + "/echo"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	o := duplex.EventServerOptions{AcceptOptions: *opts}
	o.OriginPatterns = []string{"http://" + srv.Listener.Addr().String()}
	s, err := duplex.ServeEvents(ln, h, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return srv.URL, "ws://" + ln.Addr().String() + "/echo"
}

// wait waits for n connections to end and returns how they did.
func (e *eventEchoRecorder) wait(t *testing.T, n int) []eventEnd {
	t.Helper()
	deadline := time.After(stepTimeout)
	for range n {
		select {
		case <-e.ended:
		case <-deadline:
			t.Fatalf("event-mode sockets still open %v after the page finished", stepTimeout)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]eventEnd(nil), e.ends...)
}

// socketOpen is how echoPage opens a socket.
const socketOpen = "new WebSocket(scheme + '//' + location.host + path)"

// servePageWithSocketURL serves echoPage, made to open its sockets at the
// URL in its "ws" query parameter when there is one.
func servePageWithSocketURL(w http.ResponseWriter, r *http.Request) {
	page := strings.Replace(echoPage, socketOpen, "new WebSocket(q.get('ws') ?? (scheme + '//' + location.host + path))", 1)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(page))
}
