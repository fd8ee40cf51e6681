package gateway

// The memory budget of the memory broker (issue 15): the broker keeps one
// record per message held, in publish order across all channels, and
// while the cost of what it holds is over the budget it drops the message
// of the oldest record, from whatever channel it is in.
//
// Records are not removed when their message leaves some other way (the
// history size, the TTL): they go stale, are skipped when reached, and
// are swept out by compact once they outnumber the live ones, so the
// order stays within a constant factor of the messages held.

// settle adds t to the broker's totals.
func (b *memoryBroker) settle(t tally) {
	if t == (tally{}) {
		return
	}
	b.qmu.Lock()
	b.bytes += t.bytes
	b.held += t.held
	b.qmu.Unlock()
}

// settleRecord adds t to the totals and, if stored, records the message
// of c at offset. Its caller holds c.mu, so each channel's records are in
// offset order. It reports whether the broker is over its budget.
func (b *memoryBroker) settleRecord(t tally, c *memChannel, offset uint64, stored bool) bool {
	b.qmu.Lock()
	defer b.qmu.Unlock()
	b.bytes += t.bytes
	b.held += t.held
	if stored && b.cfg.memory > 0 {
		b.order = append(b.order, memRecord{c, offset})
		if live, all := b.held, len(b.order)-b.head; all-live > live+1024 {
			b.compact()
		}
	}
	return b.cfg.memory > 0 && b.bytes > b.cfg.memory
}

// evict drops the oldest messages until the broker is within its budget.
func (b *memoryBroker) evict() { b.evictWhile(b.overBudget) }

func (b *memoryBroker) overBudget() bool {
	b.qmu.Lock()
	defer b.qmu.Unlock()
	return b.cfg.memory > 0 && b.bytes > b.cfg.memory
}

// evictWhile drops the oldest messages, one at a time, while cond holds
// and there is one to drop. Channels it leaves with nothing and no
// subscriber are forgotten. It takes no lock on entry.
func (b *memoryBroker) evictWhile(cond func() bool) {
	for cond() {
		b.qmu.Lock()
		if b.head == len(b.order) {
			b.qmu.Unlock()
			return
		}
		r := b.order[b.head]
		b.order[b.head] = memRecord{}
		b.head++
		if b.head == len(b.order) {
			b.order, b.head = b.order[:0], 0
		} else if b.head >= 1024 && 2*b.head >= len(b.order) {
			n := copy(b.order, b.order[b.head:])
			clear(b.order[n:])
			b.order, b.head = b.order[:n], 0
		}
		b.qmu.Unlock()

		c := r.c
		c.mu.Lock()
		var t tally
		idle := false
		if !c.dead {
			c.dropThrough(r.offset, &t)
			idle = c.held() == 0 && !b.subscribed(c)
		}
		b.settle(t)
		c.mu.Unlock()
		if t.held < 0 {
			b.evicted.Add(uint64(-t.held))
		}
		if idle {
			b.forgetIdle(c)
		}
	}
}

// compact drops the stale records. Its caller holds qmu. A channel's front
// only grows while it lives, so a record below it is stale for good.
func (b *memoryBroker) compact() {
	kept := b.order[:0]
	for _, r := range b.order[b.head:] {
		if r.offset >= r.c.front.Load() {
			kept = append(kept, r)
		}
	}
	clear(b.order[len(kept):])
	b.order, b.head = kept, 0
}

// memoryStats are the broker's totals, for the gateway's metrics.
type memoryStats struct {
	Bytes    int64  // cost of what is held
	Messages int    // messages held
	Channels int    // channels that exist
	Evicted  uint64 // messages dropped for the memory budget, ever
}

func (b *memoryBroker) stats() memoryStats {
	b.mu.Lock()
	n := len(b.chans)
	b.mu.Unlock()
	b.qmu.Lock()
	defer b.qmu.Unlock()
	return memoryStats{Bytes: b.bytes, Messages: b.held, Channels: n, Evicted: b.evicted.Load()}
}
