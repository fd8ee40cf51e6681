package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/loadgen"
)

// echoURL starts an in-process duplex echo server.
func echoURL(t *testing.T) string {
	t.Helper()
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1) // before the upgrade: srv.Close waits until handlers hijack
		defer wg.Done()
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, p, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if c.Write(r.Context(), typ, p) != nil {
				return
			}
		}
	}))
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
}

func bench(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code = benchCommand.Run(ctx, args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestBenchJSON(t *testing.T) {
	url := echoURL(t)
	code, out, errs := bench(t, "--json", "-c", "3", "-s", "2KiB", "-p", "2", "-d", "300ms", "--server-pid", itoa(os.Getpid()), url)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errs)
	}
	var res loadgen.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if res.Mode != "echo" || res.Conns != 3 || res.Size != 2048 || res.Pipeline != 2 {
		t.Errorf("mode %q, conns %d, size %d, pipeline %d; want echo, 3, 2048, 2", res.Mode, res.Conns, res.Size, res.Pipeline)
	}
	if res.Msgs == 0 || res.Errors != 0 || res.MsgsPerSec <= 0 || res.Latency.P99 <= 0 {
		t.Errorf("msgs %d, errors %d, msgs/s %v, p99 %v; want traffic and no error", res.Msgs, res.Errors, res.MsgsPerSec, res.Latency.P99)
	}
	if res.Server == nil || res.Server.PID != os.Getpid() {
		t.Errorf("server stats %+v; want them for PID %d", res.Server, os.Getpid())
	}
	// For a JSON reader the keys are the contract; check a few by name.
	for _, key := range []string{`"msgs_per_sec"`, `"latency_us"`, `"p999"`, `"client_cpu_us_per_msg"`, `"cpu_us_per_msg"`} {
		if !strings.Contains(out, key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	// stderr is no terminal here: progress comes as plain lines.
	if strings.Contains(errs, "\x1b[") {
		t.Errorf("progress to a non-terminal has escape codes: %q", errs)
	}
}

func TestBenchTextAndHTML(t *testing.T) {
	url := echoURL(t)
	html := filepath.Join(t.TempDir(), "report.html")
	code, out, errs := bench(t, url, "-c", "2", "-d", "1200ms", "--text", "--html", html)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errs)
	}
	for _, want := range []string{"msgs/s", "round trip p99", "errors", "load gen CPU/msg"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "bench: run ") && !strings.Contains(errs, "bench: drain ") {
		t.Errorf("no progress line on stderr after a 1.2s run: %q", errs)
	}
	b, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{"<svg", "<rect", "p99.9", "Throughput over time"} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "http://") && !strings.Contains(page, "http://www.w3.org/2000/svg") {
		t.Error("HTML report is not self-contained")
	}
}

func TestBenchIdle(t *testing.T) {
	url := echoURL(t)
	code, out, errs := bench(t, "-n", "20", "-d", "50ms", "--source-addrs", "127.0.0.1", "--json", url)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errs)
	}
	var res loadgen.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Mode != "idle" || res.Conns != 20 || res.Msgs != 20 {
		t.Errorf("mode %q, conns %d, pongs %d; want idle, 20, 20", res.Mode, res.Conns, res.Msgs)
	}
}

func TestBenchUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "want one URL"},
		{[]string{"ws://a/", "ws://b/"}, "want one URL"},
		{[]string{"-c", "0", "ws://a/"}, "-c must be positive"},
		{[]string{"-c", "5", "-n", "5", "ws://a/"}, "exclusive"},
		{[]string{"-s", "12parsecs", "ws://a/"}, "bad size"},
		{[]string{"--source-addrs", "localhost", "ws://a/"}, "not an IP"},
		{[]string{"-no-such-flag", "ws://a/"}, "not defined"},
	}
	for _, tt := range tests {
		code, _, errs := bench(t, tt.args...)
		if code != 2 || !strings.Contains(errs, tt.want) {
			t.Errorf("bench %q: exit %d, stderr %q; want 2 and %q", tt.args, code, errs, tt.want)
		}
	}
	if code, _, _ := bench(t, "-h"); code != 0 {
		t.Errorf("bench -h: exit %d; want 0", code)
	}
}

func TestBenchUnreachable(t *testing.T) {
	code, _, errs := bench(t, "-c", "1", "-d", "100ms", "ws://127.0.0.1:1/")
	if code != 1 || !strings.Contains(errs, "no connection") {
		t.Errorf("exit %d, stderr %q; want 1 and a dial error", code, errs)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int{"1024": 1024, "1k": 1024, "1KiB": 1024, "64KiB": 65536, "2MiB": 2 << 20, "3m": 3 << 20, "16B": 16} {
		var b byteSize
		if err := b.Set(in); err != nil || int(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "k", "1x", "-1", "1GiB"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) = %d; want an error", in, b)
		}
	}
}

func TestCommas(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q; want %q", n, got, want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
