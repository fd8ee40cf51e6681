// Command floor is the physical floor of the peer comparison (issue 8): the
// least work a WebSocket echo server can do. It answers the handshake,
// finds frame boundaries, unmasks and writes each frame back, and validates
// nothing. By default it is a single epoll loop with no goroutine and no
// buffer per connection, holding a few dozen bytes per idle connection;
// with -goroutine it does the same with a goroutine per connection.
//
// With -compress it agrees to permessage-deflate and echoes compressed
// frames as they came, which is a valid echo: the floor of the transport,
// without the cost of compressing.
package main

import (
	"flag"
	"log"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	compress := flag.Bool("compress", false, "agree to permessage-deflate; echo compressed frames as they are")
	goroutine := flag.Bool("goroutine", false, "a goroutine per connection instead of one epoll loop")
	flag.Parse()

	var err error
	if *goroutine {
		log.Printf("floor echo server (goroutine per connection) on %s (compress=%v)", *addr, *compress)
		err = serveGoroutines(*addr, *compress)
	} else {
		log.Printf("floor echo server (epoll) on %s (compress=%v)", *addr, *compress)
		err = serveEpoll(*addr, *compress)
	}
	log.Fatal(err)
}
