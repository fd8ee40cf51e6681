//go:build linux

package duplex_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/duplexws/duplex"
)

// An echo server in event-driven mode: each handler returns right after
// Detach, so an idle connection costs no goroutine and no buffer, only
// its EventConn (64 bytes) and its socket.
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
