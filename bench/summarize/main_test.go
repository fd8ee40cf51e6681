package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture writes a results directory: three servers in 1k, two in idle,
// with one failed run and some errors, and returns its path.
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	put := func(sc, sv string, rep int, body string) {
		t.Helper()
		d := filepath.Join(dir, sc, sv)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("%d.json", rep)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	echo := func(cpu float64, errors int) string {
		return fmt.Sprintf(`{"mode":"echo","target_conns":100,"size":1024,"msgs_per_sec":1000,"errors":%d,"latency_us":{"p99":50},"server":{"cpu_us_per_msg":%g,"cpu_util":0.9}}`, errors, cpu)
	}
	// duplex: median of 5, 6, 100 is 6; floor: median of 3 and 5 is 4.
	put("1k", "duplex", 1, echo(5, 0))
	put("1k", "duplex", 2, echo(100, 0))
	put("1k", "duplex", 3, echo(6, 0))
	put("1k", "floor", 1, echo(3, 0))
	put("1k", "floor", 2, echo(5, 0))
	put("1k", "gws", 1, echo(12, 2))
	put("1k", "gws", 2, "not json: the run failed")
	put("idle", "duplex", 1, `{"mode":"idle","target_conns":19500,"server":{"mem_bytes_per_conn":200}}`)
	put("idle", "floor", 1, `{"mode":"idle","target_conns":19500,"server":{"mem_bytes_per_conn":100}}`)
	return dir
}

func TestSummary(t *testing.T) {
	dir := fixture(t)
	var b strings.Builder
	load(dir, []string{"1k", "idle"}, []string{"duplex", "gws", "floor"}).write(&b, "duplex", "floor")
	out := b.String()
	for _, want := range []string{
		"| 100 conns × 1 KiB binary echo, server µs/msg | 6.00 | 12.00 ⚠ | 4.00 |",
		"| 19500 idle connections, bytes per connection | 200.0 | n/a | 100.0 |",
		"| duplex | 6.00 | 1.00 | 1.50 |",
		"| gws | 12.00 | 2.00 | 3.00 | 1000 | 50.00 | 90% | 0.00 | 1 (+1 failed) | 2 |",
		"| floor | 100.0 | 0.50 | 1.00 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// The one-connection echo compares the round trip's p99; the server's CPU
// per message moves to the column beside msgs/s.
func TestSummaryLatency(t *testing.T) {
	dir := t.TempDir()
	for sv, p99 := range map[string]int{"duplex": 140, "gws": 150} {
		d := filepath.Join(dir, "rtt", sv)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf(`{"mode":"echo","target_conns":1,"size":16,"msgs_per_sec":14000,"latency_us":{"p99":%d},"server":{"cpu_us_per_msg":33,"cpu_util":0.5}}`, p99)
		if err := os.WriteFile(filepath.Join(d, "1.json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	load(dir, []string{"rtt"}, []string{"duplex", "gws"}).write(&b, "duplex", "floor")
	out := b.String()
	for _, want := range []string{
		"| 1 conn × 16 B binary echo, round trip p99 µs | 140.0 | 150.0 |",
		"| server | round trip p99 µs | ÷ duplex | ÷ floor | msgs/s | server µs/msg |",
		"| gws | 150.0 | 1.07 | n/a | 14000 | 33.00 | 50% |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}
