// Command coder is the echo server for coder/websocket in the peer
// comparison: it echoes every message, with its type, on any path.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"

	"github.com/coder/websocket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	compress := flag.Bool("compress", false, "permessage-deflate, no context takeover, level 1")
	flag.Parse()

	// coder compresses at flate.BestSpeed, level 1.
	opts := &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled}
	if *compress {
		opts.CompressionMode = websocket.CompressionNoContextTakeover
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(64 << 20) // the default, 32 KiB, is below the 64 KiB scenario
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	})
	log.Printf("coder echo server on %s (compress=%v)", *addr, *compress)
	log.Fatal(http.ListenAndServe(*addr, h))
}
