//go:build linux

package duplex_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/duplexws/duplex"
)

// An echo server in event-driven mode: each handler returns right after
// Detach, so an idle connection costs no goroutine and no buffer, only
// its EventConn (80 bytes) and its socket.
func ExampleConn_Detach() {
	echo := &duplex.EventHandler{
		OnMessage: func(c *duplex.EventConn, typ duplex.MessageType, p []byte) {
			c.Write(context.Background(), typ, p) // p is valid until we return
		},
		OnClose: func(c *duplex.EventConn, err error) {
			// Release what c.Value() refers to, count the close, ...
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		if _, err := c.Detach(echo); err != nil {
			// Not a plain TCP connection (TLS, HTTP/2) or not Linux:
			// serve it with a goroutine instead.
			c.CloseNow()
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	c.Write(ctx, duplex.MessageText, []byte("hello from the event loop"))
	_, p, _ := c.Read(ctx)
	fmt.Println(string(p))
	fmt.Println(c.Close(duplex.StatusNormalClosure, "bye"))
	// Output:
	// hello from the event loop
	// <nil>
}

// startEventServer serves WebSockets on ln entirely in the event loop,
// the handshake included, without net/http: an idle connection costs no
// goroutine and no buffer. Check authenticates each request, and the
// value it returns stays with the connection.
func startEventServer(ln net.Listener) (*duplex.EventServer, error) {
	ctx := context.Background()
	return duplex.ServeEvents(ln, &duplex.EventHandler{
		OnMessage: func(c *duplex.EventConn, typ duplex.MessageType, p []byte) {
			reply := fmt.Sprintf("%s said %s", c.Value(), p) // p is valid until OnMessage returns
			c.Write(ctx, typ, []byte(reply))
		},
		OnClose: func(c *duplex.EventConn, err error) { /* c.Value() is still there */ },
	}, &duplex.EventServerOptions{
		Check: func(r *http.Request) (any, int, string) {
			if r.URL.Query().Get("token") != "s3cret" {
				return nil, http.StatusUnauthorized, "invalid token"
			}
			return "alice", 0, "" // the user the token belongs to
		},
	})
}

// A client of startEventServer above. On other systems than Linux,
// ServeEvents returns an error.
func ExampleServeEvents() {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // ":8080" in a real server
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := startEventServer(ln)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	ctx := context.Background()
	url := "ws://" + ln.Addr().String() + "/?token="
	_, _, err = duplex.Dial(ctx, url+"wrong", nil)
	var he *duplex.HandshakeError
	if errors.As(err, &he) {
		fmt.Println(he.StatusCode, strings.TrimSpace(string(he.Body)))
	}

	c, _, err := duplex.Dial(ctx, url+"s3cret", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	c.Write(ctx, duplex.MessageText, []byte("hi"))
	_, p, _ := c.Read(ctx)
	fmt.Println(string(p))
	fmt.Println(c.Close(duplex.StatusNormalClosure, ""))
	// Output:
	// 401 invalid token
	// alice said hi
	// <nil>
}
