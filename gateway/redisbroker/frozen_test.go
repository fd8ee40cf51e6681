//go:build unix

package redisbroker_test

import (
	"context"
	"encoding/json"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/testkit"
)

// TestFrozenRedis: a Redis that stops answering (SIGSTOP) makes Healthy
// fail within a few seconds (issue 15 item 9), and once it runs again
// the subscribers get what was published, none missed.
func TestFrozenRedis(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	rs := startRedis(t)
	a, b := newBroker(t, rs, nil), newBroker(t, rs, nil)
	c := subscribeWarm(t, a, b, "f")
	pid := rs.cmd.Process.Pid
	syscall.Kill(pid, syscall.SIGSTOP)
	stopped := time.Now()
	resumed := false
	resume := func() {
		if !resumed {
			syscall.Kill(pid, syscall.SIGCONT)
			resumed = true
		}
	}
	t.Cleanup(resume) // before redis-server is stopped
	waitFor(t, 5*time.Second, "Healthy to fail", func() bool { return a.Healthy() != nil })
	t.Logf("a frozen Redis noticed after %v: %v", time.Since(stopped).Round(time.Millisecond), a.Healthy())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	if _, err := b.Publish(ctx, "f", json.RawMessage(`1`)); err == nil {
		t.Error("Publish to a frozen Redis succeeded")
	}
	cancel()
	resume()
	waitFor(t, 10*time.Second, "Healthy again", func() bool { return a.Healthy() == nil && b.Healthy() == nil })
	var last uint64
	for i := range 20 {
		var err error
		if last, err = b.Publish(context.Background(), "f", json.RawMessage(strconv.Itoa(100+i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the messages after the thaw", func() bool { return c.has(last) })
	c.checkChain(t)
}
