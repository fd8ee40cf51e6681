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

// A writer that never waits on a slow client: it sends a client's queue
// with TryWritePreparedBatch and, when the socket is full, hands what is
// left to a goroutine that may wait, so one writer can serve many
// connections. Broadcasts are prepared once for every client.
func ExampleEventConn_TryWritePreparedBatch() {
	sent := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		ec, err := c.DetachValue(nil, "client 1")
		if err != nil {
			c.CloseNow()
			return
		}
		var queue []*duplex.PreparedMessage
		for _, s := range []string{"news 1", "news 2", "news 3"} {
			queue = append(queue, duplex.NewPreparedMessage(duplex.MessageText, []byte(s)))
		}
		n, err := ec.TryWritePreparedBatch(queue)
		if err == duplex.ErrWouldBlock {
			// The socket is full: the first n count as sent (the last
			// perhaps in part, finished by the next write). The rest,
			// even none, goes out the waiting way, off the writer.
			go func() {
				_, err := ec.WritePreparedBatch(context.Background(), queue[n:])
				sent <- err
			}()
			return
		}
		sent <- err
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	for range 3 {
		_, p, err := c.Read(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(string(p))
	}
	fmt.Println(<-sent)
	// Output:
	// news 1
	// news 2
	// news 3
	// <nil>
}
