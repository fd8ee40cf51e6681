package gateway

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/gwtest"
)

const gwToken = "tok-7f3c9a1e5b2d4c6f"

// logBuffer collects log output from several goroutines.
type logBuffer = gwtest.SyncBuffer

// testServer is a Gateway behind an httptest.Server.
type testServer struct {
	g    *Gateway
	srv  *httptest.Server
	logs *logBuffer
	addr string // host:port
	ws   string // ws://host:port
}

// startGateway serves a Gateway for opts (with gwToken added unless the
// test configures auth itself) and shuts it down when the test ends.
func startGateway(t *testing.T, opts Options) *testServer {
	t.Helper()
	if opts.NeedsGeneratedToken() {
		opts.Tokens = []string{gwToken}
	}
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := New(opts, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewUnstartedServer(g)
	srv.Config.ReadHeaderTimeout = g.opts.HandshakeTimeout
	srv.Start()
	ts := &testServer{g: g, srv: srv, logs: logs, addr: srv.Listener.Addr().String()}
	ts.ws = "ws://" + ts.addr
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})
	return ts
}

// get fetches path (with query) from the server.
func (ts *testServer) get(t *testing.T, path string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", ts.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := ts.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// metric scrapes /metrics and returns the value of the series written
// exactly as series (`name{label="v"}`), or -1 if it is absent.
func (ts *testServer) metric(t *testing.T, series string) float64 {
	t.Helper()
	_, body := ts.get(t, "/metrics", nil)
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if name, value := line[:max(i, 0)], line[i+1:]; name == series {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return v
		}
	}
	return -1
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sessionKindCase is one of the two kinds of session a test runs against:
// event sessions (the default for plain TCP) or goroutine sessions (TLS
// served by the gateway, HTTP/2, Options.NoEventLoop).
type sessionKindCase struct {
	name        string // as the "connected" log line's session attribute
	noEventLoop bool
}

// forEachKind runs body against event sessions and against goroutine
// sessions: every gateway feature must work the same in both.
func forEachKind(t *testing.T, body func(t *testing.T, k sessionKindCase)) {
	for _, k := range []sessionKindCase{{"event", false}, {"goroutine", true}} {
		t.Run(k.name, func(t *testing.T) { body(t, k) })
	}
}

// start is startGateway with sessions of kind k. It checks, when the test
// ends, that every connection did run as k.
func (k sessionKindCase) start(t *testing.T, opts Options) *testServer {
	t.Helper()
	opts.NoEventLoop = k.noEventLoop
	ts := startGateway(t, opts)
	t.Cleanup(func() {
		for _, line := range strings.Split(ts.logs.String(), "\n") {
			if strings.Contains(line, "msg=connected") && !strings.Contains(line, "session="+k.name) {
				t.Errorf("a connection ran as another kind of session than %s:\n%s", k.name, line)
				return
			}
		}
	})
	return ts
}
