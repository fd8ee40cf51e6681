// Package loadgen is the load generator behind duplex bench: an echo client
// that speaks raw frames, so that what it measures is the server.
//
// It does the opening handshake itself, sends masked frames built once with
// internal/wire into buffers it reuses, and reads echoes in place from a
// reused buffer, checking every byte of every echo: a mismatch counts as an
// error. Each connection is one goroutine; reusing buffers keeps the load
// generator's own CPU per message well below any server's, and it reports
// that cost so a reader can check.
//
// Echo mode keeps Pipeline messages in flight on each of Conns connections
// for Duration and records every round trip. Idle mode opens Idle
// connections, pings each once, measures the server's memory, then holds
// them. Given a server PID, both modes read the server's CPU time and
// resident memory from /proc.
package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config describes one run. Zero fields take the defaults noted.
type Config struct {
	// URL is the server's ws:// or wss:// URL.
	URL string

	// Header holds more request headers for every handshake, such as
	// Authorization. A Host header replaces the URL's host.
	Header http.Header

	// TLS configures wss:// connections. Default: the system's roots,
	// the URL's host as the server name.
	TLS *tls.Config

	// Conns is the number of echo connections. Default: 1.
	Conns int

	// Size is the payload of each message, in bytes. Default: 1024.
	Size int

	// Pipeline is the number of messages in flight on each connection: a
	// new one is sent as each echo arrives. Default: 1. Keep
	// Pipeline × Size within the socket buffers (a few MiB on loopback),
	// since one goroutine both writes and reads each connection.
	Pipeline int

	// Duration is how long echo mode sends, or idle mode holds.
	// Default: 10s.
	Duration time.Duration

	// Compress offers permessage-deflate without context takeover and
	// sends every message compressed (RSV1 set).
	Compress bool

	// Text sends text messages (valid UTF-8 words) instead of binary ones
	// (random bytes).
	Text bool

	// Idle selects idle mode with this many connections.
	Idle int

	// PubSub selects pub/sub mode, for the gateway's /ws endpoint: Conns
	// subscribers spread over Channels channels (bench/0, bench/1, …;
	// default 1, all on one), Rate publishes a second in all (0: none,
	// the subscribers stay idle for Duration) of Size bytes of data each,
	// sent through PublishVia: "api" (POST /api/publish with APIKey) or
	// "ws" (publish messages on connections of their own); default "api"
	// with an APIKey, else "ws". Publishers is the number of concurrent
	// publishers (default 4).
	PubSub     bool
	Channels   int
	Rate       float64
	PublishVia string
	APIKey     string
	Publishers int

	// SourceAddrs are local IP addresses that connections are spread
	// across, such as 127.0.0.1 and 127.0.0.2, so that tens of thousands of
	// connections to one server port do not run out of ephemeral ports.
	SourceAddrs []net.IP

	// ServerPID, when set, is the server's process ID on this machine;
	// its CPU time and resident memory are read from /proc.
	ServerPID int

	// Progress, when set, is called every ProgressInterval from a
	// goroutine of its own while the run lasts.
	Progress func(Progress)

	// ProgressInterval defaults to one second.
	ProgressInterval time.Duration
}

// Progress is a snapshot of a run in progress.
type Progress struct {
	Phase     string        // "connect", "run", "ping", "hold" or "drain"
	Elapsed   time.Duration // since the phase began
	Length    time.Duration // the phase's planned length, or 0 if open-ended
	Connected int           // connections established so far
	Target    int           // connections wanted
	Msgs      int64         // echoes (or pongs) verified so far
	Errors    int64
}

// defaultDialers bounds concurrent dials: more only overflows the server's
// accept queue.
const defaultDialers = 64

// drainTimeout is how long echoes in flight may take to arrive once
// sending stops; one that takes longer counts as an error.
const drainTimeout = 3 * time.Second

// dialTimeout bounds one connection's TCP and WebSocket handshakes.
const dialTimeout = 10 * time.Second

func (cfg *Config) setDefaults() error {
	if cfg.Conns == 0 {
		cfg.Conns = 1
	}
	if cfg.Size == 0 {
		cfg.Size = 1024
	}
	if cfg.Pipeline == 0 {
		cfg.Pipeline = 1
	}
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Channels == 0 {
		cfg.Channels = 1
	}
	if cfg.Publishers == 0 {
		cfg.Publishers = 4
	}
	if cfg.PublishVia == "" {
		cfg.PublishVia = "ws"
		if cfg.APIKey != "" {
			cfg.PublishVia = "api"
		}
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = time.Second
	}
	switch {
	case cfg.Conns < 0, cfg.Idle < 0:
		return errors.New("loadgen: negative connection count")
	case cfg.Size < 0 || cfg.Size > maxFrame:
		return fmt.Errorf("loadgen: message size %d out of range [0, %d]", cfg.Size, maxFrame)
	case cfg.Pipeline < 0:
		return errors.New("loadgen: negative pipeline depth")
	case cfg.Duration < 0:
		return errors.New("loadgen: negative duration")
	case cfg.Channels < 0 || cfg.Publishers < 0 || cfg.Rate < 0:
		return errors.New("loadgen: negative channels, publishers or rate")
	case cfg.PubSub && cfg.Channels > cfg.Conns:
		return fmt.Errorf("loadgen: %d channels for %d subscribers: some would have none", cfg.Channels, cfg.Conns)
	case cfg.PubSub && cfg.PublishVia != "api" && cfg.PublishVia != "ws":
		return fmt.Errorf("loadgen: publish via %q: want api or ws", cfg.PublishVia)
	case cfg.PubSub && cfg.Rate > 0 && cfg.PublishVia == "api" && cfg.APIKey == "":
		return errors.New("loadgen: publishing through the HTTP API needs its key (the server's --api-key)")
	}
	return nil
}

// Run runs the load described by cfg. It returns an error only when the run
// could not start (a bad URL, or no connection could be made); failures
// during the run are counted in Result.Errors. Cancelling ctx ends the run
// early and still returns what was measured, with Interrupted set.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	t, err := parseTarget(cfg.URL)
	if err != nil {
		return nil, err
	}
	t.header = cfg.Header.Clone()
	if h := t.header.Get("Host"); h != "" {
		t.host = h
		t.header.Del("Host")
	}
	if cfg.PubSub {
		return runPubSub(ctx, &cfg, t)
	}
	if cfg.Idle > 0 {
		return runIdle(ctx, &cfg, t)
	}
	return runEcho(ctx, &cfg, t)
}

// dialer opens connections, spread round-robin over the source addresses.
type dialer struct {
	t       target
	tls     *tls.Config // for wss
	dialers []net.Dialer
	next    atomic.Uint64
}

func newDialer(t target, sources []net.IP, tlsConfig *tls.Config) *dialer {
	d := &dialer{t: t}
	if t.tls {
		d.tls = tlsConfig.Clone()
		if d.tls == nil {
			d.tls = &tls.Config{}
		}
		if d.tls.ServerName == "" {
			host, _, _ := net.SplitHostPort(t.addr)
			d.tls.ServerName = host
		}
		d.tls.NextProtos = []string{"http/1.1"} // the handshake is HTTP/1.1
		d.tls.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	}
	for _, ip := range sources {
		d.dialers = append(d.dialers, net.Dialer{
			Timeout:   dialTimeout,
			LocalAddr: &net.TCPAddr{IP: ip},
			Control:   bindNoPort,
		})
	}
	if len(d.dialers) == 0 {
		d.dialers = []net.Dialer{{Timeout: dialTimeout}}
	}
	return d
}

// dial connects and shakes hands; fr receives any bytes after the
// handshake response.
func (d *dialer) dial(ctx context.Context, fr *frameReader, compress bool) (net.Conn, bool, error) {
	nd := &d.dialers[d.next.Add(1)%uint64(len(d.dialers))]
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	nc, err := nd.DialContext(ctx, "tcp", d.t.addr)
	if err != nil {
		return nil, false, fmt.Errorf("loadgen: dial: %w", err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if d.tls != nil {
		tc := tls.Client(nc, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, false, fmt.Errorf("loadgen: TLS: %w", err)
		}
		nc = tc
	}
	fr.reset(nc)
	deflate, err := handshake(ctx, nc, fr, d.t, compress)
	if err != nil {
		nc.Close()
		return nil, false, err
	}
	return nc, deflate, nil
}

// connectAll calls connect(i) for i in [0, n) from up to defaultDialers
// goroutines and returns the number that succeeded and the first error.
func connectAll(ctx context.Context, n int, connected *atomic.Int64, connect func(i int) error) (int, error) {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range min(n, defaultDialers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := connect(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				connected.Add(1)
			}
		})
	}
	wg.Wait()
	return int(connected.Load()), first
}

// ticker calls cfg.Progress every interval with what snap returns, until
// the returned stop function is called.
func ticker(cfg *Config, snap func() Progress) (stop func()) {
	if cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(cfg.ProgressInterval)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				cfg.Progress(snap())
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// isTimeout reports whether err is a deadline expiring.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isPortExhaustion reports whether err says the system ran out of local
// ports, which source addresses fix.
func isPortExhaustion(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL)
}
