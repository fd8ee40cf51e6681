package redial_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/redial"
)

// A client that stays connected: messages given to Send wait in a queue
// until a connection takes them, and OnConnect runs on every connect and
// reconnect, to authenticate or resubscribe.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, p, err := c.Read(r.Context())
			if err != nil {
				return
			}
			c.Write(r.Context(), typ, p)
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	got := make(chan string, 2)
	c := redial.New("ws"+strings.TrimPrefix(srv.URL, "http"), &redial.Options{
		OnConnect: func(ctx context.Context, conn *duplex.Conn) error {
			return conn.Write(ctx, duplex.MessageText, []byte("hello, on every connect"))
		},
		OnMessage: func(typ duplex.MessageType, p []byte) { got <- string(p) },
	})
	c.Send(ctx, duplex.MessageText, []byte("queued before Run")) // not lost while disconnected

	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }() // until ctx ends, Close, or a 401/403
	fmt.Println(<-got)
	fmt.Println(<-got)
	c.Close()
	fmt.Println(<-done)
	// Output:
	// hello, on every connect
	// queued before Run
	// <nil>
}
