package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func writeResult(t *testing.T, dir, scenario, server, rep, body string) {
	t.Helper()
	d := filepath.Join(dir, scenario, server)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, rep+".json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWrite checks the table: medians over the runs, the ratio to the
// first server, and a failed run counted as an error.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	res := func(cpu, p50 string, errs int) string {
		return `{"conns":5000,"target_conns":5000,"channels":1,"publish_rate":10,"size":256,"errors":` +
			strconv.Itoa(errs) + `,"first_error":"boom","latency_us":{"p50":` + p50 +
			`,"p99":900},"server":{"cpu_us_per_msg":` + cpu + `}}`
	}
	writeResult(t, dir, "fanout", "duplex", "1", res("8", "100", 0))
	writeResult(t, dir, "fanout", "duplex", "2", res("2", "300", 0))
	writeResult(t, dir, "fanout", "duplex", "3", res("4", "200", 0))
	writeResult(t, dir, "fanout", "centrifugo", "1", res("12", "150", 0))
	writeResult(t, dir, "fanout", "centrifugo", "2", "not json")
	var b strings.Builder
	write(&b, dir, []string{"fanout"}, []string{"duplex", "centrifugo"})
	out := b.String()
	for _, want := range []string{
		"**fanout: 5,000 subscribers, one channel, 10 publishes/s of 256 bytes through the HTTP API**",
		"| figure | duplex | centrifugo | centrifugo / duplex |",
		"| server CPU per delivery (µs) | 4.00 | 12.0 | 3.00× |",
		"| latency p50 (µs) | 200 | 150 | 0.75× |",
		"| runs (errors) | 3 (0) | 2 (1) ⚠ |",
		"⚠ fanout, centrifugo: 1 errors",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
