// Command duplex is the echo server for duplex in the peer comparison: it
// echoes every message, with its type, on any path.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/duplexws/duplex"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	compress := flag.Bool("compress", false, "permessage-deflate, no context takeover, level 1")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to `file` until SIGINT")
	detach := flag.Bool("detach", false, "event-driven: hand each connection to the epoll loop (Conn.Detach)")
	events := flag.Bool("events", false, "event-driven from the accept: handshakes too in the epoll loop (ServeEvents), no net/http")
	memstats := flag.Duration("memstats", 0, "log the runtime's memory statistics, after a GC, at this `interval`")
	flag.Parse()
	if *memstats > 0 {
		go logMemStats(*memstats)
	}

	opts := &duplex.AcceptOptions{InsecureSkipOriginCheck: true, ReadLimit: 64 << 20}
	if *compress {
		opts.Compression = &duplex.CompressionOptions{Level: 1, NoContextTakeover: true}
	}
	echo := &duplex.EventHandler{OnMessage: func(c *duplex.EventConn, typ duplex.MessageType, p []byte) {
		c.Write(context.Background(), typ, p)
	}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, opts)
		if err != nil {
			return
		}
		ctx := context.Background()
		if *detach {
			if _, err := c.Detach(echo); err != nil {
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
	if *events {
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := duplex.ServeEvents(ln, echo, &duplex.EventServerOptions{AcceptOptions: *opts}); err != nil {
			log.Fatal(err)
		}
		select {}
	}
	log.Fatal(http.ListenAndServe(*addr, h))
}

// logMemStats shows where a server's memory goes, for the idle scenario.
func logMemStats(every time.Duration) {
	for range time.Tick(every) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		log.Printf("heap live %d KiB, in use %d KiB, idle %d KiB (released %d KiB); stacks %d KiB; GC meta %d KiB; other %d KiB; goroutines %d",
			m.HeapAlloc>>10, m.HeapInuse>>10, m.HeapIdle>>10, m.HeapReleased>>10, m.StackInuse>>10, m.GCSys>>10, m.OtherSys>>10, runtime.NumGoroutine())
	}
}
