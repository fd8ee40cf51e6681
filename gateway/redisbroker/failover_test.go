package redisbroker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/duplexws/duplex/gateway/redisbroker"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/redis/go-redis/v9"
)

// TestClusterFailover: the master of a channel's slot dies (SIGKILL) in
// the middle of a stream of publishes; its replica takes over, and a
// subscriber on another node gets every message that was acknowledged,
// once each, in order, with no gap.
func TestClusterFailover(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	c := sharedCluster(t)
	var id [6]byte
	rand.Read(id[:])
	prefix := "fo" + hex.EncodeToString(id[:]) + ":"
	newB := func() *redisbroker.Broker {
		b, err := redisbroker.New(c.url, &redisbroker.Options{HistorySize: 10000, KeyPrefix: prefix, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		waitFor(t, 10*time.Second, "the broker to reach the cluster", func() bool { return b.Healthy() == nil })
		return b
	}
	a, b := newB(), newB()
	col := subscribeWarm(t, a, b, "fo")

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{c.nodes[0].addr()}})
	defer cc.Close()
	master, err := cc.MasterForKey(context.Background(), prefix+"{fo}:live")
	if err != nil {
		t.Fatal(err)
	}
	addr := master.Options().Addr
	victim := c.node(addr)
	if victim == nil {
		t.Fatalf("no node at %s", addr)
	}
	t.Cleanup(func() {
		// Bring the node back (it rejoins as a replica), so the cluster is
		// whole for the next test.
		if victim.cmd == nil {
			if err := victim.start(); err != nil {
				t.Errorf("restarting %s: %v", addr, err)
				return
			}
		}
		if err := c.waitHealthy(time.Minute); err != nil {
			t.Errorf("after the failover: %v", err)
		}
	})

	type ack struct {
		off  uint64
		data string
	}
	var acked []ack
	var killedAt time.Time
	failures := 0
	deadline := time.Now().Add(90 * time.Second)
	for k, after := 0, 0; after < 200; k++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d publishes acknowledged after the kill within 90 s; want 200 (%d failed)", after, failures)
		}
		if len(acked) == 100 && killedAt.IsZero() {
			// Replication is asynchronous: a message the master
			// acknowledged but its replica never got is lost in a
			// failover (see the package doc). Wait until the replica
			// has everything, then kill the master.
			if err := c.replicaSynced(addr, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			victim.kill()
			killedAt = time.Now()
		}
		data := strconv.Itoa(k)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		off, err := b.Publish(ctx, "fo", json.RawMessage(data))
		cancel()
		if err != nil {
			failures++
			time.Sleep(20 * time.Millisecond)
			continue
		}
		acked = append(acked, ack{off, data})
		if !killedAt.IsZero() {
			after++
			if after == 1 {
				t.Logf("publishing again %v after the kill (%d publishes failed meanwhile)", time.Since(killedAt).Round(time.Millisecond), failures)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	last := acked[len(acked)-1].off
	waitFor(t, 30*time.Second, "the last acknowledged message", func() bool { return col.has(last) })
	all := col.checkChain(t)
	got := make(map[uint64]string, len(all))
	for _, m := range all {
		got[m.Offset] = string(m.Data)
	}
	for _, a := range acked {
		if d, ok := got[a.off]; !ok || d != a.data {
			t.Fatalf("acknowledged message %s at offset %d: delivered %q (present %v)", a.data, a.off, d, ok)
		}
	}
	waitFor(t, 30*time.Second, "both brokers healthy on the promoted replica", func() bool {
		return errors.Join(a.Healthy(), b.Healthy()) == nil
	})
}
