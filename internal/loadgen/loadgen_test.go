package loadgen

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/wire"
)

// echoServer starts a duplex echo server that passes every message
// through alter before echoing it.
func echoServer(t *testing.T, alter func(p []byte) []byte) string {
	return echoServerWith(t, nil, alter)
}

func echoServerWith(t *testing.T, opts *duplex.AcceptOptions, alter func(p []byte) []byte) string {
	t.Helper()
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Add before the upgrade: srv.Close waits for handlers until they
		// hijack, so it cannot return between this Add and wg.Wait.
		wg.Add(1)
		defer wg.Done()
		c, err := duplex.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if alter != nil {
				p = alter(p)
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		wg.Wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/echo"
}

func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run(%+v): %v", cfg, err)
	}
	return res
}

func TestEchoVerifies(t *testing.T) {
	url := echoServer(t, nil)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"binary 1KiB", Config{Conns: 4, Size: 1024, Pipeline: 1}},
		{"text pipelined", Config{Conns: 3, Size: 300, Pipeline: 8, Text: true}},
		{"64KiB", Config{Conns: 2, Size: 64 << 10, Pipeline: 2}},
		{"too small to stamp", Config{Conns: 1, Size: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.URL = url
			cfg.Duration = 150 * time.Millisecond
			res := run(t, cfg)
			if res.Errors != 0 || res.Msgs == 0 {
				t.Fatalf("msgs %d, errors %d (%s); want some messages and no error", res.Msgs, res.Errors, res.FirstError)
			}
			if res.Conns != cfg.Conns {
				t.Errorf("conns = %d; want %d", res.Conns, cfg.Conns)
			}
			if res.Latency.P50 <= 0 || res.Latency.P99 < res.Latency.P50 || res.Latency.Max < res.Latency.P999 {
				t.Errorf("latency %+v; want 0 < p50 <= p99 <= max", res.Latency)
			}
			if res.MsgsPerSec <= 0 || res.ClientCPU <= 0 {
				t.Errorf("msgs/s %v, client CPU %v; want both > 0", res.MsgsPerSec, res.ClientCPU)
			}
		})
	}
}

func TestEchoDetectsCorruption(t *testing.T) {
	tests := []struct {
		name  string
		alter func(p []byte) []byte
	}{
		{"flipped bit", func(p []byte) []byte { p[len(p)/2] ^= 1; return p }},
		{"truncated", func(p []byte) []byte { return p[:len(p)-1] }},
		{"stale message", staleEcho()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := echoServer(t, tt.alter)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// A server that corrupts the first message stops the run
			// (ErrNotEcho); one that goes wrong later is counted.
			res, err := Run(ctx, Config{URL: url, Conns: 2, Size: 512, Duration: 100 * time.Millisecond})
			var firstErr string
			switch {
			case err != nil && !errors.Is(err, ErrNotEcho):
				t.Fatalf("Run: %v; want ErrNotEcho or a result", err)
			case err != nil:
				firstErr = err.Error()
			case res.Errors == 0:
				t.Fatalf("errors = 0 with a corrupting server (msgs %d); want > 0", res.Msgs)
			default:
				firstErr = res.FirstError
			}
			if !strings.Contains(firstErr, "differs") && !strings.Contains(firstErr, "stamp") && !strings.Contains(firstErr, "bytes") {
				t.Errorf("first error %q; want a mismatch", firstErr)
			}
		})
	}
}

// staleEcho returns an alter function that echoes, on every connection,
// the first message the server ever saw: right bytes, wrong message.
func staleEcho() func(p []byte) []byte {
	var mu sync.Mutex
	var first []byte
	return func(p []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = append([]byte(nil), p...)
		}
		return first
	}
}

func TestIdle(t *testing.T) {
	url := echoServer(t, nil)
	cfg := Config{URL: url, Idle: 50, Duration: 50 * time.Millisecond}
	if runtime.GOOS == "linux" {
		cfg.ServerPID = os.Getpid()
		cfg.SourceAddrs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2)}
	}
	res := run(t, cfg)
	if res.Conns != 50 || res.Msgs != 50 || res.Errors != 0 {
		t.Fatalf("conns %d, pongs %d, errors %d (%s); want 50, 50, 0", res.Conns, res.Msgs, res.Errors, res.FirstError)
	}
	if res.Latency.P50 <= 0 {
		t.Errorf("ping p50 = %v; want > 0", res.Latency.P50)
	}
	if runtime.GOOS == "linux" && (res.Server == nil || res.Server.RSSAfter == 0) {
		t.Errorf("server stats %+v; want RSS sampled", res.Server)
	}
}

// rawServer serves handshakes by hand and passes each client frame,
// unmasked, to handle, which writes the echo. It can do what duplex's
// server would not: echo compressed frames verbatim, or fragment.
func rawServer(t *testing.T, respond func(key string) string, handle func(w *bufio.Writer, h wire.Header, p []byte)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if _, err := nc.Write([]byte(respond(req.Header.Get("Sec-WebSocket-Key")))); err != nil {
					return
				}
				fr := &frameReader{nc: readerConn{nc, br}, buf: make([]byte, 4096)}
				bw := bufio.NewWriter(nc)
				for {
					h, p, err := fr.nextMasked()
					if err != nil {
						return
					}
					handle(bw, h, p)
					if bw.Flush() != nil {
						return
					}
				}
			})
		}
	})
	return "ws://" + ln.Addr().String() + "/"
}

// readerConn reads through br, which may hold bytes past the request.
type readerConn struct {
	net.Conn
	br *bufio.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// nextMasked reads a client frame and unmasks it.
func (fr *frameReader) nextMasked() (wire.Header, []byte, error) {
	if err := fr.fill(2); err != nil {
		return wire.Header{}, nil, err
	}
	if err := fr.fill(wire.HeaderSize(fr.buf[fr.r+1])); err != nil {
		return wire.Header{}, nil, err
	}
	h, n, err := wire.Parse(fr.buf[fr.r:fr.w])
	if err != nil {
		return h, nil, err
	}
	if err := fr.fill(n + int(h.Length)); err != nil {
		return h, nil, err
	}
	p := fr.buf[fr.r+n : fr.r+n+int(h.Length)]
	fr.r += n + int(h.Length)
	wire.Mask(h.Key, 0, p)
	return h, p, nil
}

func response(ext string) func(key string) string {
	return func(key string) string {
		s := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptKey(key) + "\r\n"
		if ext != "" {
			s += "Sec-WebSocket-Extensions: " + ext + "\r\n"
		}
		return s + "\r\n"
	}
}

func writeFrame(w *bufio.Writer, h wire.Header, p []byte) {
	h.Masked, h.Length = false, int64(len(p))
	var b [wire.MaxHeaderSize]byte
	w.Write(wire.Append(b[:0], h))
	w.Write(p)
}

func TestEchoCompressed(t *testing.T) {
	var mu sync.Mutex
	compressed := 0
	// Echoing the compressed frame as it came is a valid deflate echo:
	// the load generator must inflate it to verify it.
	url := rawServer(t, response("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
		func(w *bufio.Writer, h wire.Header, p []byte) {
			mu.Lock()
			if h.RSV&wire.RSV1 != 0 {
				compressed++
			}
			mu.Unlock()
			writeFrame(w, h, p)
		})
	res := run(t, Config{URL: url, Conns: 2, Size: 1024, Text: true, Compress: true, Duration: 100 * time.Millisecond})
	if res.Errors != 0 || res.Msgs == 0 {
		t.Fatalf("msgs %d, errors %d (%s); want some and none", res.Msgs, res.Errors, res.FirstError)
	}
	mu.Lock()
	defer mu.Unlock()
	if compressed == 0 {
		t.Error("the server saw no frame with RSV1 set")
	}
}

func TestEchoDeflateServer(t *testing.T) {
	url := echoServerWith(t, &duplex.AcceptOptions{
		Compression: &duplex.CompressionOptions{Level: 1, NoContextTakeover: true},
	}, nil)
	res := run(t, Config{URL: url, Conns: 2, Size: 1024, Text: true, Compress: true, Duration: 100 * time.Millisecond})
	if res.Errors != 0 || res.Msgs == 0 {
		t.Fatalf("msgs %d, errors %d (%s); want some and none", res.Msgs, res.Errors, res.FirstError)
	}
}

func TestEchoFragmented(t *testing.T) {
	// Each echo comes as a ping, a first fragment, a pong and the rest, as
	// RFC 6455 §5.4 allows.
	url := rawServer(t, response(""), func(w *bufio.Writer, h wire.Header, p []byte) {
		half := len(p) / 2
		writeFrame(w, wire.Header{Fin: true, Opcode: wire.OpPing}, []byte("hi"))
		writeFrame(w, wire.Header{Opcode: h.Opcode}, p[:half])
		writeFrame(w, wire.Header{Fin: true, Opcode: wire.OpPong}, nil)
		writeFrame(w, wire.Header{Fin: true, Opcode: wire.OpContinuation}, p[half:])
	})
	res := run(t, Config{URL: url, Conns: 2, Size: 2000, Pipeline: 3, Duration: 100 * time.Millisecond})
	if res.Errors != 0 || res.Msgs == 0 {
		t.Fatalf("msgs %d, errors %d (%s); want some and none", res.Msgs, res.Errors, res.FirstError)
	}
}

func TestHandshakeRejected(t *testing.T) {
	tests := []struct {
		name    string
		respond func(key string) string
		cfg     Config
		want    string
	}{
		{"not 101", func(string) string { return "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" }, Config{}, "404"},
		{"bad accept", func(string) string { return response("")("wrong key") }, Config{}, "Sec-WebSocket-Accept"},
		{"unoffered extension", response("permessage-deflate"), Config{}, "not offered"},
		{"deflate declined", response(""), Config{Compress: true}, "declined"},
		{"context takeover kept", response("permessage-deflate"), Config{Compress: true}, "server_no_context_takeover"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := rawServer(t, tt.respond, func(*bufio.Writer, wire.Header, []byte) {})
			cfg := tt.cfg
			cfg.URL, cfg.Duration = url, 50*time.Millisecond
			_, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: %v; want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "wss://example.com/"},
		{URL: "ftp://example.com/"},
		{URL: "ws://127.0.0.1:1/", Conns: -1},
		{URL: "ws://127.0.0.1:1/", Size: maxFrame + 1},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run(%+v) succeeded; want an error", cfg)
		}
	}
}

func TestInterrupted(t *testing.T) {
	url := echoServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	res, err := Run(ctx, Config{URL: url, Conns: 2, Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Msgs == 0 {
		t.Errorf("interrupted %v, msgs %d; want true and some", res.Interrupted, res.Msgs)
	}
}
