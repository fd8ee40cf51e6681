// Command gorilla is the echo server for gorilla/websocket in the peer
// comparison: it echoes every message, with its type, on any path.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/gorilla/websocket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	compress := flag.Bool("compress", false, "permessage-deflate, no context takeover, level 1")
	flag.Parse()

	// gorilla only ever negotiates no context takeover.
	up := websocket.Upgrader{
		CheckOrigin:       func(*http.Request) bool { return true },
		EnableCompression: *compress,
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if *compress {
			c.SetCompressionLevel(1)
		}
		for {
			typ, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, p); err != nil {
				return
			}
		}
	})
	log.Printf("gorilla echo server on %s (compress=%v)", *addr, *compress)
	log.Fatal(http.ListenAndServe(*addr, h))
}
