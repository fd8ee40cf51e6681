package gateway

import (
	"log/slog"
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
