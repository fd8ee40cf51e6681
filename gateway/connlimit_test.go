package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// startServer serves a Gateway for opts the way "duplex serve" does: the
// http.Server from Options.HTTPServer on a listener bounded by
// LimitListener.
func startServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	if opts.NeedsGeneratedToken() {
		opts.Tokens = []string{gwToken}
	}
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	g, err := New(opts, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := opts.HTTPServer(g, logger)
	ln = g.LimitListener(ln, srv)
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	ts := &testServer{g: g, logs: logs, addr: ln.Addr().String()}
	ts.ws = "ws://" + ts.addr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case <-done:
		case <-ctx.Done():
			t.Errorf("Serve did not return after Close")
		}
	})
	return ts
}

// gatewayMetric returns the value of series (written as /metrics writes
// it) in g's metrics, or -1 if it is absent.
func gatewayMetric(t *testing.T, g *Gateway, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	g.metrics.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if name, value, ok := strings.Cut(line, " "); ok && name == series {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return v
		}
	}
	return -1
}

// keepAlive is a client connection that made one request and keeps the
// connection open.
type keepAlive struct {
	c  net.Conn
	br *bufio.Reader
}

// request sends GET path on k and reads the response, within d.
func (k *keepAlive) request(path string, d time.Duration) (int, error) {
	k.c.SetDeadline(time.Now().Add(d))
	defer k.c.SetDeadline(time.Time{})
	if _, err := io.WriteString(k.c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// closedByServer reports whether the server has closed k, waiting at most d.
func (k *keepAlive) closedByServer(d time.Duration) bool {
	k.c.SetReadDeadline(time.Now().Add(d))
	_, err := k.br.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func dialKeepAlive(t *testing.T, addr string) *keepAlive {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testkit.DefaultTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{c: c, br: bufio.NewReader(c)}
}

// TestHTTPConnectionLimit holds three times MaxHTTPConnections idle
// keep-alive connections (each after a GET /healthz, as in issue 15
// item 1) and checks that a real client still gets its page and its
// WebSocket, that the server closed the idlest connections first, and
// that the newest idle ones still work.
func TestHTTPConnectionLimit(t *testing.T) {
	const limit = 20
	ts := startServer(t, Options{MaxHTTPConnections: limit})
	held := make([]*keepAlive, 3*limit)
	for i := range held {
		held[i] = dialKeepAlive(t, ts.addr)
		if code, err := held[i].request("/healthz", testkit.DefaultTimeout); err != nil || code != 200 {
			t.Fatalf("idle connection %d: GET /healthz = %d, %v", i, code, err)
		}
		waitIdle(t, ts) // so that the order of idleness is the order here
	}

	real := dialKeepAlive(t, ts.addr)
	if code, err := real.request("/healthz", testkit.DefaultTimeout); err != nil || code != 200 {
		t.Fatalf("real client with %d idle connections held: GET /healthz = %d, %v; want 200", len(held), code, err)
	}
	waitIdle(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.DefaultTimeout)
	defer cancel()
	c, _, err := duplex.Dial(ctx, ts.ws+"/echo?token="+gwToken, nil)
	if err != nil {
		t.Fatalf("real client's WebSocket: %v", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, duplex.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "hi" {
		t.Fatalf("echo = %q, %v", p, err)
	}

	// Accepting held[limit+i] closed held[i]; the real client and the
	// WebSocket's handshake closed two more.
	for i := 0; i < 2*limit+2; i++ {
		if !held[i].closedByServer(testkit.DefaultTimeout) {
			t.Errorf("idle connection %d (of the oldest) is still open", i)
		}
	}
	for i := 2*limit + 2; i < len(held); i++ {
		if code, err := held[i].request("/healthz", testkit.DefaultTimeout); err != nil || code != 200 {
			t.Errorf("idle connection %d (of the newest): GET /healthz = %d, %v; want it kept", i, code, err)
		}
	}
	if got := gatewayMetric(t, ts.g, "duplex_http_connections_evicted_total"); got != 2*limit+2 {
		t.Errorf("duplex_http_connections_evicted_total = %v; want %d", got, 2*limit+2)
	}
}

// TestHTTPConnectionLimitBusy: connections in the middle of a request are
// never closed to make room; a new one is refused with 503 instead.
func TestHTTPConnectionLimitBusy(t *testing.T) {
	const limit = 3
	ts := startServer(t, Options{MaxHTTPConnections: limit, APIKey: "k"})
	for i := 0; i < limit; i++ {
		k := dialKeepAlive(t, ts.addr)
		// A publish whose body never comes keeps its handler reading.
		io.WriteString(k.c, "POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: 100\r\n\r\n{")
	}
	waitFor(t, testkit.DefaultTimeout, "the publishes to reach their handler", func() bool {
		return busyCount(ts) == limit
	})
	status, hdr, body := testkit.RawRequest(t, ts.addr, "GET /healthz HTTP/1.1\nHost: x\n\n")
	if status != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "too many connections") {
		t.Errorf("with every connection busy: %d %q; want 503 with Retry-After", status, body)
	}
}

// busyCount returns how many tracked connections of ts are in a request.
func busyCount(ts *testServer) int { return busy(ts.g) }

func busy(g *Gateway) int {
	t := g.conns
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns) - t.waiting.Len()
}

// waitIdle waits until no connection of ts is in a request.
func waitIdle(t *testing.T, ts *testServer) {
	t.Helper()
	waitFor(t, testkit.DefaultTimeout, "the server to finish its requests", func() bool { return busyCount(ts) == 0 })
}

// TestHTTPIdleTimeout: a keep-alive connection is closed after
// HTTPIdleTimeout, not after the two minutes it used to hold a file.
func TestHTTPIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	ts := startServer(t, Options{HTTPIdleTimeout: idle, MaxHTTPConnections: -1})
	k := dialKeepAlive(t, ts.addr)
	start := time.Now()
	if code, err := k.request("/healthz", testkit.DefaultTimeout); err != nil || code != 200 {
		t.Fatalf("GET /healthz = %d, %v", code, err)
	}
	if !k.closedByServer(idle + testkit.DefaultTimeout) {
		t.Fatalf("the idle connection is still open after %v", time.Since(start))
	}
	if d := time.Since(start); d < idle {
		t.Errorf("closed after %v; want at least the idle timeout %v", d, idle)
	}
}

func TestHTTPConnLimitDefault(t *testing.T) {
	for _, tt := range []struct {
		name           string
		maxHTTP, maxWS int
		nofile         int
		want           int
		wantWarning    bool
	}{
		{"explicit", 100, 10000, 20000, 100, false},
		{"no limit", -1, 10000, 20000, -1, false},
		{"from the file limit", 0, 10000, 20000, 20000 - (64 + 400) - 10000, false},
		{"test child", 0, 100, 512, 512 - (64 + 10) - 100, false},
		{"websockets take it all", 0, 10000, 4096, 1024, true},
		{"websockets unlimited", 0, -1, 4096, 1024, true},
		{"unknown file limit", 0, 10000, 0, 4096, false},
	} {
		got, warning := httpConnLimit(Options{MaxHTTPConnections: tt.maxHTTP, MaxConnections: tt.maxWS}, tt.nofile)
		if got != tt.want || (warning != "") != tt.wantWarning {
			t.Errorf("%s: httpConnLimit = %d, %q; want %d, warning %v", tt.name, got, warning, tt.want, tt.wantWarning)
		}
	}
}

// TestBodyTimeBounded: a client that sends headers and then trickles, or
// stops sending, a body is dropped after HandshakeTimeout, even where the
// handler never reads the body (a 405, a 401): such a connection is busy,
// so LimitListener would never close it to make room.
func TestBodyTimeBounded(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := startServer(t, Options{HandshakeTimeout: timeout, APIKey: "k"})
	for _, req := range []string{
		"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab",
		"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab",
		"POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"",
	} {
		k := dialKeepAlive(t, ts.addr)
		start := time.Now()
		io.WriteString(k.c, req)
		k.c.SetReadDeadline(time.Now().Add(timeout + testkit.DefaultTimeout))
		// Whatever the server answers, it must then close.
		_, err := io.Copy(io.Discard, k.br)
		if err != nil && !isReset(err) {
			t.Errorf("%.40q: %v after %v; want the server to close within about %v", req, err, time.Since(start), timeout)
		}
	}
	// A body that arrives in time is served, and the connection stays
	// usable after its request.
	k := dialKeepAlive(t, ts.addr)
	body := `{"channel":"c","data":1}`
	io.WriteString(k.c, "POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"+body)
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("publish in time: %v, %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	time.Sleep(2 * timeout) // past the body's deadline: it must be lifted
	if code, err := k.request("/healthz", testkit.DefaultTimeout); err != nil || code != 200 {
		t.Errorf("the next request on the connection: %d, %v; want 200", code, err)
	}
}

// TestHTTPConnectionLimitTLS: behind TLS, http.Server reports *tls.Conn
// states; the tracker must still find its connections, evict the idlest,
// and forget those that close.
func TestHTTPConnectionLimitTLS(t *testing.T) {
	const limit = 4
	opts := Options{MaxHTTPConnections: limit, Tokens: []string{gwToken}}
	g, err := New(opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g)
	srv.Config = opts.HTTPServer(g, nil)
	srv.Listener = g.LimitListener(srv.Listener, srv.Config)
	srv.StartTLS()
	defer srv.Close()
	cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig
	addr := srv.Listener.Addr().String()

	var held []*keepAlive
	for i := 0; i < 3*limit; i++ {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		k := &keepAlive{c: c, br: bufio.NewReader(c)}
		if code, err := k.request("/healthz", testkit.DefaultTimeout); err != nil || code != 200 {
			t.Fatalf("TLS connection %d: %d, %v", i, code, err)
		}
		held = append(held, k)
		waitFor(t, testkit.DefaultTimeout, "the request to end", func() bool { return busy(g) == 0 })
	}
	for i := 0; i < 2*limit; i++ {
		if !held[i].closedByServer(testkit.DefaultTimeout) {
			t.Errorf("TLS connection %d (of the oldest) is still open", i)
		}
	}
	for i := 2 * limit; i < len(held); i++ {
		if code, err := held[i].request("/healthz", testkit.DefaultTimeout); err != nil || code != 200 {
			t.Errorf("TLS connection %d (of the newest): %d, %v; want it kept", i, code, err)
		}
		held[i].c.Close()
	}
	waitFor(t, testkit.DefaultTimeout, "the closed connections to be forgotten", func() bool {
		g.conns.mu.Lock()
		defer g.conns.mu.Unlock()
		return len(g.conns.conns) == 0
	})
}

// TestHTTPConnectionLimitSlowHeaders: connections that never finish their
// headers (slowloris) wait for a request too, so they make room as well.
func TestHTTPConnectionLimitSlowHeaders(t *testing.T) {
	const limit = 10
	ts := startServer(t, Options{MaxHTTPConnections: limit})
	for i := 0; i < 3*limit; i++ {
		k := dialKeepAlive(t, ts.addr)
		io.WriteString(k.c, "GET /healthz HTTP/1.1\r\nHost: x\r\n") // no blank line: never ends
	}
	waitFor(t, testkit.DefaultTimeout, "the server to accept them", func() bool {
		return gatewayMetric(t, ts.g, "duplex_http_connections_evicted_total") >= 2*limit
	})
	real := dialKeepAlive(t, ts.addr)
	if code, err := real.request("/healthz", testkit.DefaultTimeout); err != nil || code != 200 {
		t.Fatalf("real client with %d unfinished requests held: GET /healthz = %d, %v; want 200", 3*limit, code, err)
	}
}
