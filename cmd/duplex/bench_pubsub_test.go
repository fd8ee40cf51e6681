package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/loadgen"
)

// startGateway runs duplex serve with an API key and returns its /ws URL.
func startGateway(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	base, _, done := startServe(t, ctx, append([]string{"--addr", "127.0.0.1:0", "--token", "T", "--api-key", "K"}, args...)...)
	t.Cleanup(func() { cancel(); waitServe(t, done) })
	return "ws" + strings.TrimPrefix(base, "http") + "/ws"
}

// waitServe waits, boundedly, for runServe to return after its context
// ended.
func waitServe(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Error("duplex serve did not stop within 20s of its context ending")
	}
}

func benchJSON(t *testing.T, args ...string) *loadgen.Result {
	t.Helper()
	code, out, errs := bench(t, append([]string{"--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("bench %q: exit %d; stderr:\n%s\nstdout:\n%s", args, code, errs, out)
	}
	var res loadgen.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	return &res
}

func TestBenchPubSub(t *testing.T) {
	ws := startGateway(t)
	for _, tt := range []struct {
		name string
		args []string
		via  string
	}{
		{"api, shared channel", []string{"--api-key", "K", ws + "?token=T"}, "api"},
		{"socket, one channel each", []string{"--channels", "12", "-H", "Authorization: Bearer T", ws}, "ws"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--mode", "pubsub", "-c", "12", "--rate", "100", "-d", "500ms", "-s", "256",
				"--server-pid", itoa(os.Getpid())}, tt.args...)
			res := benchJSON(t, args...)
			if res.Mode != "pubsub" || res.Conns != 12 || res.PublishVia != tt.via {
				t.Errorf("mode %q, subscribers %d, via %q; want pubsub, 12, %s", res.Mode, res.Conns, res.PublishVia, tt.via)
			}
			// Every publish reaches every subscriber of its channel.
			perPublish := int64(12 / res.Channels)
			if res.Publishes < 10 || res.Expected != res.Publishes*perPublish || res.Msgs != res.Expected || res.Errors != 0 {
				t.Errorf("publishes %d, deliveries %d of %d, errors %d (%s); want every delivery of %d per publish",
					res.Publishes, res.Msgs, res.Expected, res.Errors, res.FirstError, perPublish)
			}
			if res.Latency.P50 <= 0 || res.Latency.P99 < res.Latency.P50 || res.MsgsPerSec <= 0 {
				t.Errorf("latency %+v, deliveries/s %v; want measured", res.Latency, res.MsgsPerSec)
			}
			// CPU comes from /proc in 10 ms ticks: a short run on a busy
			// machine can see none, so only its presence is checked.
			if s := res.Server; s == nil || s.PID != os.Getpid() || s.CPUPerMsg < 0 || s.MemPerConnRSS == 0 {
				t.Errorf("server stats %+v; want this process's CPU per delivery and memory per subscriber", s)
			}
		})
	}
}

// --rate 0: idle subscribed clients, for memory per connection; the PID
// of a local server is found without --server-pid.
func TestBenchPubSubIdle(t *testing.T) {
	ws := startGateway(t)
	code, out, errs := bench(t, "--mode", "pubsub", "-c", "40", "--channels", "40", "--rate", "0", "-d", "100ms", ws+"?token=T")
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errs)
	}
	if !strings.Contains(errs, "measuring the server process "+itoa(os.Getpid())) {
		t.Errorf("stderr = %q; want the local server's PID found", errs)
	}
	for _, want := range []string{"40 idle subscribers on 40 channels", "40 of 40, on 40 channels", "server mem/conn"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "p50") {
		t.Errorf("idle subscribers print latencies of nothing:\n%s", out)
	}
}

func TestBenchPubSubErrors(t *testing.T) {
	ws := startGateway(t)
	echo := strings.TrimSuffix(ws, "/ws") + "/echo?token=T"
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--publish", "api", ws}, exitUsage, "needs --api-key"},
		{[]string{"--channels", "0", ws}, exitUsage, "--channels"},
		{[]string{"-p", "4", ws}, exitUsage, "echo mode"},
		{[]string{"--publish", "carrier-pigeon", ws}, exitUsage, "api or ws"},
		{[]string{"--api-key", "wrong", ws + "?token=T"}, exitError, "401"},
		{[]string{"--api-key", "K", ws + "?token=bad"}, exitError, "401"},
		{[]string{echo}, exitError, "is this the gateway's /ws endpoint?"},
	} {
		args := append([]string{"--mode", "pubsub", "-c", "2", "-d", "300ms"}, tt.args...)
		code, out, errs := bench(t, args...)
		if code != tt.code || !strings.Contains(errs+out, tt.want) {
			t.Errorf("bench %q: exit %d, output %q; want %d and %q", args, code, errs+out, tt.code, tt.want)
		}
	}
	if code, _, errs := bench(t, "--rate", "5", ws); code != exitUsage {
		t.Errorf("--rate without --mode pubsub: exit %d; want 2 (stderr %q)", code, errs)
	}
}
