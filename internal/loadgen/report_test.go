package loadgen

import (
	"bytes"
	"strings"
	"testing"
)

func sampleResults() []*Result {
	echo := &Result{
		Mode: "echo", URL: "ws://127.0.0.1:9000/", Conns: 100, Target: 100, Size: 1024, Pipeline: 1,
		Seconds: 10, Msgs: 1234567, MsgsPerSec: 123456.7, MBPerSec: 126.4,
		Latency:         Latency{P50: 812, P90: 1200, P99: 2310, P999: 4050, Max: 9100, Mean: 850},
		ClientCPUPerMsg: 3.2,
		Timeline:        &Timeline{StepSeconds: 0.5, MsgsPerSec: []float64{120000, 125000, 0, 124000}},
		Server:          &ServerStats{PID: 42, CPUPerMsg: 12.9, Util: 0.98, RSSBefore: 10 << 20, RSSAfter: 12 << 20},
	}
	idle := &Result{
		Mode: "idle", URL: "ws://127.0.0.1:9000/", Conns: 19500, Target: 19500, Size: 8, Seconds: 3, Hold: 1,
		Msgs: 19500, Errors: 2, FirstError: "loadgen: read pong: EOF <script>",
		Latency: Latency{P50: 50, P99: 900},
		Server:  &ServerStats{PID: 42, MemPerConn: 10111.4, RSSBefore: 2 << 20, RSSAfter: 200 << 20},
	}
	return []*Result{echo, idle}
}

func TestWriteText(t *testing.T) {
	tests := []struct {
		r    *Result
		want []string
	}{
		{sampleResults()[0], []string{
			"echo: 100 connections × 1 KiB binary, pipeline 1, 10.0s",
			"msgs/s            123,457",
			"round trip p99    2.31 ms",
			"server CPU/msg    12.90 µs (98% of one core)",
		}},
		{sampleResults()[1], []string{
			"idle: 19,500 connections, one ping each, held 1s",
			"connections      19,500 of 19,500",
			"server mem/conn  10,111 B",
			"first error: loadgen: read pong: EOF",
		}},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := WriteText(&b, tt.r); err != nil {
			t.Fatal(err)
		}
		for _, want := range tt.want {
			if !strings.Contains(b.String(), want) {
				t.Errorf("WriteText(%s) lacks %q:\n%s", tt.r.Mode, want, b.String())
			}
		}
	}
}

func TestWriteHTML(t *testing.T) {
	for _, r := range sampleResults() {
		var b bytes.Buffer
		if err := WriteHTML(&b, r); err != nil {
			t.Fatal(err)
		}
		page := b.String()
		if n := strings.Count(page, "<svg"); n < 1 {
			t.Errorf("%s report has %d charts; want at least 1", r.Mode, n)
		}
		if strings.Contains(page, "<script") {
			t.Errorf("%s report: the error text was not escaped, or a script crept in", r.Mode)
		}
	}
	var b bytes.Buffer
	WriteHTML(&b, sampleResults()[0])
	// Latency, throughput over time and CPU: three charts, five latency
	// bars, four timeline bars (one of height 0), two CPU bars.
	if got := strings.Count(b.String(), "<svg"); got != 3 {
		t.Errorf("echo report has %d charts; want 3", got)
	}
	if got := strings.Count(b.String(), "<rect"); got != 11 {
		t.Errorf("echo report has %d bars; want 11", got)
	}
}

func TestGroup(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 12: "12", 1234: "1,234", -1234567: "-1,234,567"} {
		if got := group(n); got != want {
			t.Errorf("group(%d) = %q; want %q", n, got, want)
		}
	}
}
