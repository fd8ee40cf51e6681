// Command gws is the echo server for lxzan/gws in the peer comparison: it
// echoes every message, with its type, on any path.
package main

import (
	"flag"
	"log"

	"github.com/lxzan/gws"
)

type echo struct{ gws.BuiltinEventHandler }

func (echo) OnPing(c *gws.Conn, p []byte) { c.WritePong(p) }

func (echo) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	c.WriteMessage(m.Opcode, m.Bytes())
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	compress := flag.Bool("compress", false, "permessage-deflate, no context takeover, level 1")
	flag.Parse()

	opt := &gws.ServerOption{
		CheckUtf8Enabled:   true,
		ReadMaxPayloadSize: 64 << 20,
		PermessageDeflate: gws.PermessageDeflate{
			Enabled: *compress,
			Level:   1,
			// gws compresses only messages of at least Threshold bytes;
			// its default, 512, compresses the 1 KiB scenario.
			ServerContextTakeover: false,
			ClientContextTakeover: false,
		},
	}
	// gws.Server is gws's own accept loop: a goroutine per connection,
	// pooled read buffers.
	log.Printf("gws echo server on %s (compress=%v)", *addr, *compress)
	log.Fatal(gws.NewServer(echo{}, opt).Run(*addr))
}
