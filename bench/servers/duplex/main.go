// Command duplex is the echo server for duplex in the peer comparison: it
// echoes every message, with its type, on any path.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"

	"github.com/duplexws/duplex"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	compress := flag.Bool("compress", false, "permessage-deflate, no context takeover, level 1")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to `file` until SIGINT")
	detach := flag.Bool("detach", false, "event-driven: hand each connection to the epoll loop (Conn.Detach)")
	flag.Parse()

	opts := &duplex.AcceptOptions{InsecureSkipOriginCheck: true, ReadLimit: 64 << 20}
	if *compress {
		opts.Compression = &duplex.CompressionOptions{Level: 1, NoContextTakeover: true}
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, opts)
		if err != nil {
			return
		}
		ctx := context.Background()
		if *detach {
			err := c.Detach(duplex.EventHandler{OnMessage: func(c *duplex.Conn, typ duplex.MessageType, p []byte) {
				c.Write(ctx, typ, p)
			}})
			if err != nil {
				c.CloseNow()
			}
			return
		}
		defer c.CloseNow()
		var buf []byte
		for {
			typ, p, err := c.ReadInto(ctx, buf)
			buf = p
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	})
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		go func() {
			<-sig
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(0)
		}()
	}
	log.Printf("duplex echo server on %s (compress=%v)", *addr, *compress)
	log.Fatal(http.ListenAndServe(*addr, h))
}
