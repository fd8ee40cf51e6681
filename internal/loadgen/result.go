package loadgen

import (
	"fmt"
	"time"
)

// Result is what a run measured. Its JSON form is the machine output of
// duplex bench; the field names are a contract with bench/run.sh and other
// scripts, so keep them stable.
type Result struct {
	Mode     string `json:"mode"` // "echo", "idle" or "pubsub"
	URL      string `json:"url"`
	Conns    int    `json:"conns"` // connections established
	Target   int    `json:"target_conns"`
	Size     int    `json:"size"`
	Pipeline int    `json:"pipeline"`
	Compress bool   `json:"compress"`
	Text     bool   `json:"text"`

	// Seconds is the measured window: echo mode from the first send to
	// the last echo, idle mode the whole run.
	Seconds float64 `json:"seconds"`

	// Hold is how long idle mode held the connections, in seconds.
	Hold float64 `json:"hold_seconds,omitempty"`

	// Pub/sub mode: the channels the subscribers (Conns) are spread
	// over, how publishes were sent ("api" or "ws") and at what rate a
	// second, how many succeeded, and the deliveries they called for.
	// Msgs counts the deliveries, MsgsPerSec their rate, Latency the time
	// from publish to delivery, and Server.CPUPerMsg the server's CPU per
	// delivery. Missing deliveries count as errors.
	Channels   int     `json:"channels,omitempty"`
	PublishVia string  `json:"publish_via,omitempty"`
	Rate       float64 `json:"publish_rate,omitempty"`
	Publishes  int64   `json:"publishes,omitempty"`
	Expected   int64   `json:"expected_deliveries,omitempty"`

	// Msgs counts verified echoes (idle mode: verified pongs).
	Msgs       int64   `json:"msgs"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	// MBPerSec is echoed payload in 10^6 bytes per second, one direction,
	// before compression.
	MBPerSec float64 `json:"mb_per_sec"`

	// Errors counts echoes that differed from what was sent, connections
	// that failed to open or broke, and echoes that never came.
	Errors     int64  `json:"errors"`
	FirstError string `json:"first_error,omitempty"`

	// Latency is the round trip of each message, from the write of its
	// frame to the verification of its echo; in idle mode, of each ping.
	Latency Latency `json:"latency_us"`

	// ClientCPU is the load generator's own user+system CPU time over the
	// window, and ClientCPUPerMsg that divided by Msgs, in microseconds.
	ClientCPU       float64 `json:"client_cpu_seconds"`
	ClientCPUPerMsg float64 `json:"client_cpu_us_per_msg"`

	// Timeline is the echo rate over the run, one point per StepSeconds.
	Timeline *Timeline `json:"timeline,omitempty"`

	// Server is set when a server PID was given.
	Server *ServerStats `json:"server,omitempty"`

	// Interrupted is set when the run was cancelled before its end.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Timeline is a series of rates sampled at a fixed step.
type Timeline struct {
	StepSeconds float64   `json:"step_seconds"`
	MsgsPerSec  []float64 `json:"msgs_per_sec"`
}

// Latency holds round-trip percentiles in microseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// ServerStats is what /proc says about the server process.
type ServerStats struct {
	PID int `json:"pid"`
	// CPU is user+system time over the window; CPUPerMsg divides it by
	// the verified echoes, in microseconds (echo mode only), and Util by
	// the window: 1.0 is one core kept busy.
	CPU       float64 `json:"cpu_seconds"`
	CPUPerMsg float64 `json:"cpu_us_per_msg,omitempty"`
	Util      float64 `json:"cpu_util"`
	// RSSBefore is resident memory before the first connection and
	// RSSAfter after the run (idle mode: after every pong arrived).
	RSSBefore int64 `json:"rss_before_bytes"`
	RSSAfter  int64 `json:"rss_after_bytes"`
	// AnonBefore and AnonAfter are the anonymous part of the resident
	// memory (heap, stacks; RssAnon): RSS without the pages of the
	// program's own file, which grow as code runs for the first time
	// whatever the number of connections.
	AnonBefore int64 `json:"anon_before_bytes,omitempty"`
	AnonAfter  int64 `json:"anon_after_bytes,omitempty"`
	// MemPerConn is (AnonAfter - AnonBefore) / connections, idle mode
	// only; MemPerConnRSS the same from the whole RSS.
	MemPerConn    float64 `json:"mem_bytes_per_conn,omitempty"`
	MemPerConnRSS float64 `json:"rss_bytes_per_conn,omitempty"`
	// MarginalPerConn is the anonymous memory (RSS if unknown) added by
	// the second half of the connections, per connection: the cost of one
	// more, without what the first connections cost once.
	MarginalPerConn float64 `json:"marginal_bytes_per_conn,omitempty"`
}

func latencyOf(h *Histogram) Latency {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return Latency{
		P50:  us(h.Quantile(0.50)),
		P90:  us(h.Quantile(0.90)),
		P99:  us(h.Quantile(0.99)),
		P999: us(h.Quantile(0.999)),
		Max:  us(h.Max()),
		Mean: us(h.Mean()),
	}
}

// serverProbe samples the server's CPU and memory; with no PID it does
// nothing.
type serverProbe struct {
	pid   int
	cpu0  time.Duration
	stats *ServerStats
	err   error
}

func newServerProbe(pid int) (*serverProbe, error) {
	p := &serverProbe{pid: pid}
	if pid == 0 {
		return p, nil
	}
	p.stats = &ServerStats{PID: pid}
	rss, anon, err := procMem(pid)
	if err != nil {
		return nil, fmt.Errorf("loadgen: server PID %d: %w", pid, err)
	}
	p.stats.RSSBefore, p.stats.AnonBefore = rss, anon
	return p, nil
}

func (p *serverProbe) startCPU() {
	if p.stats == nil || p.err != nil {
		return
	}
	p.cpu0, p.err = procCPU(p.pid)
}

func (p *serverProbe) sampleRSS() {
	if p.stats == nil || p.err != nil {
		return
	}
	p.stats.RSSAfter, p.stats.AnonAfter, p.err = procMem(p.pid)
}

func (p *serverProbe) endCPU(window time.Duration, msgs int64) {
	if p.stats == nil || p.err != nil {
		return
	}
	cpu, err := procCPU(p.pid)
	if err != nil {
		p.err = err
		return
	}
	d := cpu - p.cpu0
	p.stats.CPU = d.Seconds()
	if window > 0 {
		p.stats.Util = d.Seconds() / window.Seconds()
	}
	if msgs > 0 {
		p.stats.CPUPerMsg = float64(d) / float64(time.Microsecond) / float64(msgs)
	}
}

// finish fills in the common fields of res.
func finish(res *Result, window time.Duration, clientCPU time.Duration, h *Histogram, probe *serverProbe) {
	res.Seconds = window.Seconds()
	if window > 0 {
		res.MsgsPerSec = float64(res.Msgs) / window.Seconds()
		res.MBPerSec = float64(res.Msgs) * float64(res.Size) / window.Seconds() / 1e6
	}
	res.Latency = latencyOf(h)
	res.ClientCPU = clientCPU.Seconds()
	if res.Msgs > 0 {
		res.ClientCPUPerMsg = float64(clientCPU) / float64(time.Microsecond) / float64(res.Msgs)
	}
	res.Server = probe.stats
	if probe.err != nil {
		res.Errors++
		if res.FirstError == "" {
			res.FirstError = "server stats: " + probe.err.Error()
		}
	}
}
