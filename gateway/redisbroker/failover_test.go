package redisbroker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
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

// TestClusterSlotMigration: the slot of a channel moves to another master
// (resharding) in the middle of a stream of publishes. Redis ends the
// node's sharded subscription; the node subscribes on the new master and
// reads what it missed from the stream, so the subscriber gets every
// acknowledged message once, in order.
func TestClusterSlotMigration(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	c := sharedCluster(t)
	var id [6]byte
	rand.Read(id[:])
	prefix := "mig" + hex.EncodeToString(id[:]) + ":"
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
	col := subscribeWarm(t, a, b, "mig")

	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{c.nodes[0].addr()}})
	defer cc.Close()
	key := prefix + "{mig}:live"
	slot, err := cc.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	src, err := cc.MasterForKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var dst *redis.Client
	var masters []*redis.Client
	cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return nil }) // load the state
	for _, p := range c.nodes {
		rc := redis.NewClient(&redis.Options{Addr: p.addr()})
		defer rc.Close()
		info, err := rc.Info(ctx, "replication").Result()
		if err != nil || !strings.Contains(info, "role:master") {
			continue
		}
		masters = append(masters, rc)
		if dst == nil && p.addr() != src.Options().Addr {
			dst = rc
		}
	}
	srcID, err1 := src.ClusterMyID(ctx).Result()
	dstID, err2 := dst.ClusterMyID(ctx).Result()
	if err := errors.Join(err1, err2); err != nil || dst == nil {
		t.Fatalf("cluster IDs: %v", err)
	}
	dstHost, dstPort, _ := strings.Cut(dst.Options().Addr, ":")

	// migrate moves the slot from src to dst as redis-cli --cluster
	// reshard does, key by key.
	migrate := func() error {
		if err := dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err(); err != nil {
			return err
		}
		if err := src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err(); err != nil {
			return err
		}
		for {
			keys, err := src.ClusterGetKeysInSlot(ctx, int(slot), 100).Result()
			if err != nil {
				return err
			}
			if len(keys) == 0 {
				break
			}
			args := []any{"MIGRATE", dstHost, dstPort, "", 0, 5000, "KEYS"}
			for _, k := range keys {
				args = append(args, k)
			}
			if err := src.Do(ctx, args...).Err(); err != nil {
				return err
			}
		}
		for _, m := range append([]*redis.Client{dst, src}, masters...) {
			if err := m.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err(); err != nil {
				return err
			}
		}
		return nil
	}

	var acked []struct {
		off  uint64
		data string
	}
	migrated := false
	failures := 0
	deadline := time.Now().Add(60 * time.Second)
	for k := 0; len(acked) < 300; k++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d publishes acknowledged within 60 s; want 300 (%d failed)", len(acked), failures)
		}
		if len(acked) == 100 && !migrated {
			if err := migrate(); err != nil {
				t.Fatalf("migrating slot %d: %v", slot, err)
			}
			migrated = true
		}
		data := strconv.Itoa(k)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		off, err := b.Publish(ctx, "mig", json.RawMessage(data))
		cancel()
		if err != nil {
			failures++
			time.Sleep(20 * time.Millisecond)
			continue
		}
		acked = append(acked, struct {
			off  uint64
			data string
		}{off, data})
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, 10*time.Second, "the cluster's state to show the slot on its new master", func() bool {
		cc.ReloadState(ctx)
		now, err := cc.MasterForKey(ctx, key)
		return err == nil && now.Options().Addr == dst.Options().Addr
	})
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
	if failures > 0 {
		t.Logf("%d publishes failed during the migration", failures)
	}
}
