package gateway

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/testkit"
)

// TestRefusalLogBounded is issue 15 item 7: refused requests with a 60 KB
// User-Agent and a long URL used to write every byte of both to the log
// (412 MB in 5 s). Now each line stays short, at most LogRefusalRate
// lines a second are written, and the rest are counted: lines written
// plus lines counted make every refusal.
func TestRefusalLogBounded(t *testing.T) {
	const (
		rate = 5
		n    = 150
	)
	ts := startGateway(t, Options{LogRefusalRate: rate, AuthFailureLimit: -1})
	ua := strings.Repeat("A", 60<<10)
	path := "/ws?token=wrong&pad=" + strings.Repeat("p", 4<<10)
	start := time.Now()
	for i := 0; i < n; i++ {
		status, _, _ := testkit.RawRequest(t, ts.addr, handshake("GET", path, ts.addr, "User-Agent: "+ua))
		if status != 401 {
			t.Fatalf("request %d: status %d; want 401", i, status)
		}
	}
	elapsed := time.Since(start)

	logged := regexp.MustCompile(`msg="auth failed"`)
	report := regexp.MustCompile(`msg="log lines suppressed" message="auth failed" suppressed=(\d+)`)
	counted := func() (lines, suppressed int) {
		s := ts.logs.String()
		for _, m := range report.FindAllStringSubmatch(s, -1) {
			k, _ := strconv.Atoi(m[1])
			suppressed += k
		}
		return len(logged.FindAllString(s, -1)), suppressed
	}
	waitFor(t, 5*time.Second, "the count of suppressed lines", func() bool {
		lines, suppressed := counted()
		return lines+suppressed >= n
	})
	lines, suppressed := counted()
	if lines+suppressed != n {
		t.Errorf("%d lines logged + %d counted = %d; want the %d refusals", lines, suppressed, lines+suppressed, n)
	}
	// Windows start at the first line of a second: at most one more than
	// the whole seconds that passed.
	if max := rate * (int(elapsed/time.Second) + 2); lines > max {
		t.Errorf("%d auth failures logged in %v; want at most %d at %d a second", lines, elapsed, max, rate)
	}
	for _, line := range strings.Split(ts.logs.String(), "\n") {
		if len(line) > 2048 {
			t.Fatalf("a log line of %d bytes; want at most 2 KiB: %.300s...", len(line), line)
		}
	}
	if !strings.Contains(ts.logs.String(), "more bytes)") {
		t.Errorf("no clipped field in the log; want the User-Agent clipped with its length")
	}
}

func TestLogLimiterNoLimit(t *testing.T) {
	logs := &logBuffer{}
	l := newLogLimiter(slog.New(slog.NewTextHandler(logs, nil)), -1)
	for i := 0; i < 100; i++ {
		l.warn("x")
	}
	l.stop()
	if got := strings.Count(logs.String(), `msg=x`); got != 100 {
		t.Errorf("%d lines with no limit; want 100", got)
	}
}

// TestLogLimiterStop: Shutdown reports what is held back at once rather
// than leaving a timer behind.
func TestLogLimiterStop(t *testing.T) {
	logs := &logBuffer{}
	l := newLogLimiter(slog.New(slog.NewTextHandler(logs, nil)), 2)
	for i := 0; i < 10; i++ {
		l.info("refused")
	}
	l.stop()
	if !strings.Contains(logs.String(), `msg="log lines suppressed" message=refused suppressed=8`) {
		t.Errorf("after stop, logs are:\n%s\nwant the 8 held back reported", logs)
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	got := clip(long)
	if !strings.HasPrefix(got, strings.Repeat("é", 128)+"…(144 more bytes)") || len(got) > maxLogField+32 {
		t.Errorf("clip(400 bytes of é) = %q", got)
	}
	if got := clip("short"); got != "short" {
		t.Errorf("clip(short) = %q", got)
	}
}

// TestServerErrorLogBounded: http.Server's own error lines ("http: TLS
// handshake error from ...", one per bad client) go through the same
// bound as refusals.
func TestServerErrorLogBounded(t *testing.T) {
	const n = 40
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	opts := Options{LogRefusalRate: 3}
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config = opts.HTTPServer(srv.Config.Handler, logger)
	srv.StartTLS()
	defer srv.Close()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// Not a TLS client hello: the server logs a handshake error.
		c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		io.Copy(io.Discard, c)
		c.Close()
	}
	report := regexp.MustCompile(`msg="log lines suppressed" message="http server error" suppressed=(\d+)`)
	count := func() (lines, suppressed int) {
		s := logs.String()
		for _, m := range report.FindAllStringSubmatch(s, -1) {
			k, _ := strconv.Atoi(m[1])
			suppressed += k
		}
		return strings.Count(s, "TLS handshake error"), suppressed
	}
	waitFor(t, 5*time.Second, "the count of suppressed lines", func() bool {
		lines, suppressed := count()
		return lines+suppressed >= n
	})
	if lines, suppressed := count(); lines+suppressed != n || suppressed == 0 {
		t.Errorf("%d handshake errors logged + %d counted; want %d with some counted:\n%s", lines, suppressed, n, logs)
	}
}
