package gateway

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/testkit"
)

// TestStalledSubscribersKeepWritersFree: more subscribers than there are
// pool writers stop reading until their sockets are full; a subscriber
// that reads still gets each message as it is published, and once the
// stalled ones read again each gets every message whole, once and in
// order (a message their socket took in part is finished first).
func TestStalledSubscribersKeepWritersFree(t *testing.T) {
	forEachKind(t, testStalledSubscribers)
}

func testStalledSubscribers(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	const n = 300
	payload := `"` + strings.Repeat("y", 32<<10) + `"`
	ts := k.start(t, Options{SendQueue: 2 * n, SendQueueBytes: 4 * n * int64(len(payload)), CloseTimeout: 20 * time.Second})
	stalled := make([]*chanClient, 2*runtime.GOMAXPROCS(0)+2)
	for i := range stalled {
		stalled[i] = ts.connect(t, gwToken)
		stalled[i].sendJSON(`{"type":"subscribe","channel":"wide"}`)
		stalled[i].expect("subscribed")
	}
	fast := ts.connect(t, gwToken)
	fast.sendJSON(`{"type":"subscribe","channel":"wide"}`)
	fast.expect("subscribed")
	waitFor(t, 5*time.Second, "every subscription", func() bool {
		return ts.metric(t, "duplex_subscriptions") == float64(len(stalled)+1)
	})
	var first uint64
	for i := range n {
		off, err := ts.g.channels.broker.Publish(context.Background(), "wide", json.RawMessage(payload))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = off
		}
		if m := fast.next(); m.Type != "message" || m.Offset != off || len(m.Data) != len(payload) {
			t.Fatalf("reading subscriber, message %d: %.80v", i, m)
		}
	}
	for j, c := range stalled {
		for i := range n {
			m := c.next()
			if m.Type != "message" || m.Offset != first+uint64(i) || string(m.Data) != payload {
				t.Fatalf("stalled subscriber %d, message %d: %.80v; want offset %d", j, i, m, first+uint64(i))
			}
		}
		c.expectNothing()
	}
	if got := ts.metric(t, "duplex_slow_consumer_closes_total"); got != 0 {
		t.Errorf("%v slow-consumer closes; want none (the queues were large enough)", got)
	}
}
