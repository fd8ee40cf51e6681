package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// --metrics-addr moves /metrics (and /healthz with details) to an
// internal address: the public one answers 404 for /metrics.
func TestServeMetricsAddr(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, stderr, done := startServe(t, ctx, "--addr", "127.0.0.1:0", "--no-auth", "--metrics-addr", "127.0.0.1:0")
	stderr.waitFor(t, "/metrics\n", 1)
	m := regexp.MustCompile(`duplex: metrics on (http://[^ \n]+/metrics)\n`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no metrics line in:\n%s", stderr.String())
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(m[1]); code != 200 || !strings.Contains(body, "duplex_connections") {
		t.Errorf("GET %s = %d; want 200 and the metrics", m[1], code)
	}
	if code, _ := get(base + "/metrics"); code != 404 {
		t.Errorf("GET /metrics on the public address = %d; want 404", code)
	}
	if code, _ := get(base + "/healthz"); code != 200 {
		t.Errorf("GET /healthz on the public address = %d; want 200", code)
	}
	cancel()
	<-done
}
