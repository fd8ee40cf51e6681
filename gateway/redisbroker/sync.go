package redisbroker

import (
	"context"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"
)

const (
	// syncBatch bounds the channels one pipeline of syncs reads.
	syncBatch = 500

	// syncCount bounds the entries one sync reads of a stream; a channel
	// further behind is synced again from where this one ended.
	syncCount = 1000
)

// queueSync marks w for a sync: the sync loop reads where it starts (its
// latest offset) or what it missed (the stream after w.last). Live
// messages are held meanwhile. Its caller holds b.mu.
func (b *Broker) queueSync(name string, w *watch) {
	if w.queued {
		return
	}
	w.queued = true
	b.syncQueue = append(b.syncQueue, name)
	kick(b.syncKick)
}

// pendingSync is one sync sent to Redis.
type pendingSync struct {
	name  string
	w     *watch
	start bool             // read the latest offset (else the stream)
	last  *redis.StringCmd // start
	log   *redis.XMessageSliceCmd
}

// syncLoop runs the syncs queued, a pipeline of up to syncBatch channels
// at a time, until Close.
func (b *Broker) syncLoop() {
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.syncKick:
		}
		for b.ctx.Err() == nil {
			batch := b.takeSyncs()
			if len(batch) == 0 {
				break
			}
			if err := b.runSyncs(batch); err != nil {
				b.failed(err)
				if !b.sleep(backoff(int(b.failures.Load()))) {
					return
				}
			}
		}
	}
}

// takeSyncs takes up to syncBatch channels off the queue.
func (b *Broker) takeSyncs() []*pendingSync {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.syncQueue), syncBatch)
	batch := make([]*pendingSync, 0, n)
	for _, name := range b.syncQueue[:n] {
		w := b.watches[name]
		if w == nil || !w.queued {
			continue
		}
		w.queued = false
		w.inflight++
		batch = append(batch, &pendingSync{name: name, w: w, start: !w.started})
	}
	b.syncQueue = append(b.syncQueue[:0], b.syncQueue[n:]...)
	return batch
}

// runSyncs reads what each sync of batch needs, in one pipeline, and
// applies it. The syncs that failed are queued again.
func (b *Broker) runSyncs(batch []*pendingSync) error {
	ctx, cancel := context.WithTimeout(b.ctx, 2*commandTimeout)
	defer cancel()
	pipe := b.rdb.Pipeline()
	b.mu.Lock()
	for _, p := range batch {
		if p.start {
			p.last = pipe.HGet(ctx, b.metaKey(p.name), "last")
		} else {
			from := strconv.FormatUint(p.w.last+1, 10) + "-0"
			p.log = pipe.XRangeN(ctx, b.logKey(p.name), from, "+", syncCount)
		}
	}
	b.mu.Unlock()
	_, err := pipe.Exec(ctx)
	if errors.Is(err, redis.Nil) {
		err = nil // a channel with no meta yet
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var failed error
	for _, p := range batch {
		p.w.inflight--
		if b.watches[p.name] != p.w {
			continue // unsubscribed meanwhile
		}
		if cmdErr := p.err(); cmdErr != nil {
			failed = cmdErr
			b.queueSync(p.name, p.w)
			continue
		}
		b.applySync(p)
	}
	if failed == nil {
		failed = err
	}
	return failed
}

func (p *pendingSync) err() error {
	var err error
	if p.start {
		err = p.last.Err()
	} else {
		err = p.log.Err()
	}
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}

// applySync delivers what a sync read, then the live messages held, unless
// another sync is due. Its caller holds b.mu.
func (b *Broker) applySync(p *pendingSync) {
	w := p.w
	if p.start {
		if !w.started {
			w.last, _ = strconv.ParseUint(p.last.Val(), 10, 64)
			w.started = true
		}
	} else {
		entries := p.log.Val()
		for _, e := range entries {
			m, err := message(p.name, e.ID, e.Values)
			if err != nil {
				b.log.Warn("redisbroker: skipping a malformed stream entry", "channel", p.name, "error", err)
				continue
			}
			if m.Offset > w.last {
				// Delivered whether or not Prev is w.last: what the
				// stream no longer holds is lost, and the gateway tells
				// its clients so.
				b.deliver(w, m)
			}
		}
		if len(entries) == syncCount {
			b.queueSync(p.name, w) // more to read
		}
	}
	if w.syncing() {
		return
	}
	// The live messages held came after the sync's subscription, so the
	// stream read covers everything before them: a gap left between is
	// lost, and they are delivered anyway.
	held := w.held
	w.held = nil
	for _, m := range held {
		if m.Offset > w.last {
			b.deliver(w, m)
		}
	}
}
