package redisbroker

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// readBlock bounds one XREAD BLOCK. The wake stream ends it early when
	// the channels change, so it only bounds how stale a silent failure
	// can be.
	readBlock = 5 * time.Second

	// readCount bounds the entries one XREAD returns per stream.
	readCount = 1000

	// Backoff between attempts while Redis is unreachable: full jitter,
	// from minBackoff doubling to maxBackoff.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second

	// wakeTTL lets the wake stream of a node that is gone expire.
	wakeTTL = time.Minute
)

// readLoop is the reader: it follows the streams of every watched channel
// and the wake stream, and delivers what it reads, until Close.
func (b *Broker) readLoop() {
	wakeID := "0-0"
	failures := 0
	for b.ctx.Err() == nil {
		if b.Healthy() != nil {
			// Redis was unreachable, or not reached yet: wait, then let a
			// PING say whether it is there, so health recovers without
			// waiting for an XREAD BLOCK to return.
			if failures > 0 && !b.sleep(backoff(failures)) {
				return
			}
			if err := b.rdb.Ping(b.ctx).Err(); err != nil {
				b.failed(err, &failures)
				continue
			}
			b.recovered(&failures)
		}
		if err := b.startWatches(); err != nil {
			b.failed(err, &failures)
			continue
		}
		streams := b.streams(wakeID)
		res, err := b.rdb.XRead(b.ctx, &redis.XReadArgs{Streams: streams, Count: readCount, Block: readBlock}).Result()
		switch {
		case b.ctx.Err() != nil:
			return
		case errors.Is(err, redis.Nil): // nothing new within readBlock
		case err != nil:
			b.failed(err, &failures)
			continue
		}
		b.recovered(&failures)
		for _, st := range res {
			if st.Stream == b.wakeKey {
				if n := len(st.Messages); n > 0 {
					wakeID = st.Messages[n-1].ID
				}
				continue
			}
			if channel, ok := b.channelOf(st.Stream); ok {
				b.deliver(channel, st.Messages)
			}
		}
	}
}

// startWatches sets where the reader starts for channels new to it: after
// the channel's latest offset, as the meta hash has it now.
func (b *Broker) startWatches() error {
	b.mu.Lock()
	var pending []string
	for name, w := range b.watches {
		if !w.started {
			pending = append(pending, name)
		}
	}
	b.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	pipe := b.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(pending))
	for i, name := range pending {
		cmds[i] = pipe.HGet(b.ctx, b.metaKey(name), "last")
	}
	if _, err := pipe.Exec(b.ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, name := range pending {
		w := b.watches[name]
		if w == nil || w.started {
			continue
		}
		var last uint64
		if v, err := cmds[i].Result(); err == nil {
			last, _ = strconv.ParseUint(v, 10, 64)
		}
		w.last, w.started = last, true
	}
	return nil
}

// streams returns the XREAD STREAMS arguments: the wake stream and the log
// of every started channel, then the IDs to read after.
func (b *Broker) streams(wakeID string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	keys := make([]string, 1, 1+len(b.watches))
	ids := make([]string, 1, 1+len(b.watches))
	keys[0], ids[0] = b.wakeKey, wakeID
	for name, w := range b.watches {
		if w.started {
			keys = append(keys, b.logKey(name))
			ids = append(ids, strconv.FormatUint(w.last, 10)+"-0")
		}
	}
	return append(keys, ids...)
}

// deliver hands the entries read from channel's stream to its
// subscriptions, skipping any at or before the offset delivered last.
func (b *Broker) deliver(channel string, entries []redis.XMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.watches[channel]
	if w == nil || !w.started {
		return // unsubscribed meanwhile
	}
	for _, e := range entries {
		m, err := message(channel, e.ID, e.Values)
		if err != nil {
			b.log.Warn("redisbroker: skipping a malformed stream entry", "channel", channel, "error", err)
			continue
		}
		if m.Offset <= w.last {
			continue
		}
		for _, s := range w.subs {
			s.deliver(m)
		}
		w.last = m.Offset
	}
}

// failed records that Redis could not be reached.
func (b *Broker) failed(err error, failures *int) {
	if b.ctx.Err() != nil {
		return
	}
	if *failures == 0 {
		b.log.Warn("redis unavailable; retrying", "error", err)
	}
	*failures++
	b.setHealth(err)
}

// recovered records that Redis answered.
func (b *Broker) recovered(failures *int) {
	if *failures > 0 {
		b.log.Info("redis available again", "after_attempts", *failures)
	}
	*failures = 0
	b.setHealth(nil)
}

// backoff returns the wait after failures attempts in a row.
func backoff(failures int) time.Duration {
	ceil := maxBackoff
	if failures < 16 {
		ceil = min(maxBackoff, minBackoff<<(failures-1))
	}
	return rand.N(ceil) + time.Millisecond
}

// sleep waits d, and reports false if Close came first.
func (b *Broker) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.ctx.Done():
		return false
	}
}

// wake tells the reader that the channels changed, without blocking.
func (b *Broker) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// wakeLoop turns wake calls into entries of the wake stream, which end the
// reader's XREAD BLOCK. If Redis is down the entry is lost, and does not
// matter: the reader restarts its XREAD after the failure anyway.
func (b *Broker) wakeLoop() {
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.kick:
		}
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		pipe := b.rdb.Pipeline()
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: b.wakeKey, MaxLen: 1, Values: []string{"k", "1"}})
		pipe.PExpire(ctx, b.wakeKey, wakeTTL)
		pipe.Exec(ctx)
		cancel()
	}
}
