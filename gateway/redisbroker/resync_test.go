package redisbroker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/gateway/redisbroker"
	"github.com/duplexws/duplex/internal/gwtest"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/redis/go-redis/v9"
)

// collector gathers the deliveries of one subscription.
type collector struct {
	mu   sync.Mutex
	msgs []gateway.Message
}

func (c *collector) deliver(m gateway.Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *collector) all() []gateway.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]gateway.Message(nil), c.msgs...)
}

// has reports whether a message with offset off was delivered.
func (c *collector) has(off uint64) bool {
	for _, m := range c.all() {
		if m.Offset == off {
			return true
		}
	}
	return false
}

// checkChain fails unless every delivery follows the one before (Prev),
// which rules out gaps and duplicates.
func (c *collector) checkChain(t *testing.T) []gateway.Message {
	t.Helper()
	all := c.all()
	for i := 1; i < len(all); i++ {
		if all[i].Prev != all[i-1].Offset {
			t.Fatalf("delivery %d: offset %d prev %d after offset %d: a gap or a duplicate", i, all[i].Offset, all[i].Prev, all[i-1].Offset)
		}
	}
	return all
}

// subscribeWarm subscribes to channel on sub and publishes through pub
// until a delivery shows the subscription is live.
func subscribeWarm(t *testing.T, sub, pub *redisbroker.Broker, channel string) *collector {
	t.Helper()
	c := &collector{}
	t.Cleanup(sub.Subscribe(channel, c.deliver))
	waitFor(t, 10*time.Second, "a first delivery", func() bool {
		if len(c.all()) > 0 {
			return true
		}
		pub.Publish(context.Background(), channel, json.RawMessage(`"warm"`))
		time.Sleep(20 * time.Millisecond)
		return len(c.all()) > 0
	})
	return c
}

// silentPublish stores a message in channel's stream as the publish script
// does, but without PUBLISH: what a node sees when PUB/SUB drops one.
var silentPublish = redis.NewScript(`
local n = redis.call('HINCRBY', KEYS[1], 'last', 1)
local now = redis.call('TIME')
redis.call('XADD', KEYS[2], string.format('%d-0', n), 'd', ARGV[1],
  't', string.format('%d', tonumber(now[1]) * 1000), 'p', string.format('%d', n - 1))
return n
`)

// TestGapFilledFromStream: a message that never came through PUB/SUB is
// read from the stream when the next one shows the gap, and delivered
// before it, once.
func TestGapFilledFromStream(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	rs := startRedis(t)
	a, b := newBroker(t, rs, nil), newBroker(t, rs, nil)
	c := subscribeWarm(t, a, b, "g")
	rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", rs.port)})
	defer rc.Close()
	lost, err := silentPublish.Run(context.Background(), rc, []string{"duplex:{g}:meta", "duplex:{g}:log"}, `"lost"`).Int64()
	if err != nil {
		t.Fatal(err)
	}
	next, err := b.Publish(context.Background(), "g", json.RawMessage(`"next"`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the message after the gap", func() bool { return c.has(next) })
	all := c.checkChain(t)
	n := len(all)
	if all[n-2].Offset != uint64(lost) || string(all[n-2].Data) != `"lost"` || string(all[n-1].Data) != `"next"` {
		t.Errorf("last deliveries %+v, %+v; want the lost message %d, then the next", all[n-2], all[n-1], lost)
	}
}

// TestPubSubReconnect: Redis drops the node's PUB/SUB connection; the
// messages published before the node resubscribed are read from the
// streams, so its subscribers miss none and get none twice.
func TestPubSubReconnect(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	rs := startRedis(t)
	// The history holds all 300: what PUB/SUB dropped is in the stream.
	a, b := newBroker(t, rs, &redisbroker.Options{HistorySize: 1000}), newBroker(t, rs, &redisbroker.Options{HistorySize: 1000})
	c1 := subscribeWarm(t, a, b, "r1")
	c2 := subscribeWarm(t, a, b, "r2")
	rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", rs.port)})
	defer rc.Close()
	var last1, last2 uint64
	for round := range 3 {
		if err := rc.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			last1, _ = b.Publish(context.Background(), "r1", json.RawMessage(strconv.Itoa(round*100+i)))
			last2, _ = b.Publish(context.Background(), "r2", json.RawMessage(strconv.Itoa(round*100+i)))
		}
	}
	waitFor(t, 20*time.Second, "every message", func() bool { return c1.has(last1) && c2.has(last2) })
	for _, c := range []*collector{c1, c2} {
		all := c.checkChain(t)
		var data []string
		for _, m := range all {
			if string(m.Data) != `"warm"` {
				data = append(data, string(m.Data))
			}
		}
		if len(data) != 300 || data[0] != "0" || data[299] != "299" {
			t.Errorf("got %d messages (%.40v…); want 300, 0 to 299", len(data), data)
		}
	}
}

// TestLibraryLogs: go-redis's own log lines reach the broker's slog
// logger (as JSON here), not stderr.
func TestLibraryLogs(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	logs := &gwtest.SyncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	b, err := redisbroker.New(fmt.Sprintf("redis://127.0.0.1:%d", freePort(t)), &redisbroker.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitFor(t, 10*time.Second, "a go-redis line in the log", func() bool { return strings.Contains(logs.String(), `"component":"go-redis"`) })
	for _, line := range bytes.Split([]byte(strings.TrimSpace(logs.String())), []byte("\n")) {
		var v map[string]any
		if err := json.Unmarshal(line, &v); err != nil {
			t.Errorf("log line is not JSON: %s", line)
		}
	}
}
