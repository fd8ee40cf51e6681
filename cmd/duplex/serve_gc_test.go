package main

import (
	"bytes"
	"context"
	"io"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/testkit"
)

// TestServeGCPercent: duplex serve sets the collector's GOGC to
// --gc-percent, to $DUPLEX_GC_PERCENT, or to its default of 50 unless a
// GOGC environment variable says otherwise, and refuses values Go would
// take for nonsense (0 collects all the time).
func TestServeGCPercent(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	// gcAfter starts duplex serve with env and args and returns the GOGC in
	// force once it serves.
	gcAfter := func(t *testing.T, env map[string]string, args ...string) int {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		debug.SetGCPercent(83)
		ctx, cancel := context.WithCancel(context.Background())
		_, _, done := startServe(t, ctx, append([]string{"--addr", "127.0.0.1:0", "--no-auth"}, args...)...)
		got := debug.SetGCPercent(83)
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("serve: %v", err)
			}
		case <-time.After(testkit.Wait(t, 0)):
			t.Fatal("serve did not stop")
		}
		return got
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"default", map[string]string{"GOGC": ""}, nil, defaultGCPercent},
		{"flag", nil, []string{"--gc-percent", "37"}, 37},
		{"flag off", nil, []string{"--gc-percent", "-1"}, -1},
		{"env", map[string]string{"DUPLEX_GC_PERCENT": "44"}, nil, 44},
		{"flag over env", map[string]string{"DUPLEX_GC_PERCENT": "44"}, []string{"--gc-percent", "61"}, 61},
		{"GOGC wins over the default", map[string]string{"GOGC": "83"}, nil, 83},
		{"the flag wins over GOGC", map[string]string{"GOGC": "83"}, []string{"--gc-percent", "29"}, 29},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := gcAfter(t, c.env, c.args...); got != c.want {
				t.Errorf("GOGC while serving = %d; want %d", got, c.want)
			}
		})
	}
	for _, bad := range []string{"0", "-2", "x"} {
		var stderr bytes.Buffer
		code := runServeCommand(context.Background(), []string{"--addr", "127.0.0.1:0", "--no-auth", "--gc-percent", bad}, strings.NewReader(""), io.Discard, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "gc-percent") {
			t.Errorf("--gc-percent %s: exit %d, stderr %q; want 2 and a message naming the flag", bad, code, stderr.String())
		}
	}
	t.Setenv("DUPLEX_GC_PERCENT", "lots")
	var stderr bytes.Buffer
	if code := runServeCommand(context.Background(), []string{"--addr", "127.0.0.1:0", "--no-auth"}, strings.NewReader(""), io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "DUPLEX_GC_PERCENT") {
		t.Errorf("DUPLEX_GC_PERCENT=lots: exit %d, stderr %q; want 2 and a message naming it", code, stderr.String())
	}
}
