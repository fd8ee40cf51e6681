package gateway

import (
	"math"
	"time"
)

// A channel's history is a ring of its latest entries, oldest first, with
// consecutive offsets: entries leave only from the front (size, TTL or the
// broker's memory budget) and arrive only at the back. Every change is
// written to a tally, and front follows the oldest offset held.

// held returns how many entries c holds.
func (c *memChannel) held() int {
	if c.hist == nil {
		return 0
	}
	return c.hist.n
}

// at returns the i-th oldest entry held.
func (c *memChannel) at(i int) *memEntry {
	h := c.hist
	return &h.ring[(h.head+i)%len(h.ring)]
}

// push appends e, dropping the oldest entry once size are held, and
// reports whether e is held (size 0 keeps nothing). The ring grows by
// doubling, so a channel with few messages takes little memory.
func (c *memChannel) push(e memEntry, size int, t *tally) bool {
	if size <= 0 {
		return false
	}
	if c.hist == nil {
		c.hist = &memRing{}
	}
	h := c.hist
	if h.n == len(h.ring) {
		if h.n >= size {
			c.popFront(t)
		} else {
			c.resize(min(max(2*h.n, 1), size))
		}
	}
	*c.at(h.n) = e
	h.n++
	t.bytes += entryCost(e.data)
	t.held++
	c.setFront()
	return true
}

// popFront drops the oldest entry.
func (c *memChannel) popFront(t *tally) {
	e := c.at(0)
	t.bytes -= entryCost(e.data)
	t.held--
	*e = memEntry{}
	h := c.hist
	h.head = (h.head + 1) % len(h.ring)
	h.n--
}

// resize moves the entries held to a ring of n slots.
func (c *memChannel) resize(n int) {
	grown := make([]memEntry, n)
	for i := range c.hist.n {
		grown[i] = *c.at(i)
	}
	c.hist.ring, c.hist.head = grown, 0
}

// shrink gives back a ring that has become mostly empty, so a channel
// that once held many messages does not keep their slots.
func (c *memChannel) shrink() {
	switch n := c.held(); {
	case n == 0:
		c.hist = nil
	case len(c.hist.ring) > 8 && n <= len(c.hist.ring)/4:
		c.resize(max(2*n, 8))
	}
}

// expire drops the entries published before cutoff.
func (c *memChannel) expire(cutoff time.Time, t *tally) {
	if c.held() == 0 || !c.at(0).at.Before(cutoff) {
		return
	}
	for c.held() > 0 && c.at(0).at.Before(cutoff) {
		c.popFront(t)
	}
	c.shrink()
	c.setFront()
}

// dropThrough drops the entries up to offset, for the memory budget.
func (c *memChannel) dropThrough(offset uint64, t *tally) {
	if c.held() == 0 || c.at(0).offset > offset {
		return
	}
	for c.held() > 0 && c.at(0).offset <= offset {
		c.popFront(t)
	}
	c.shrink()
	c.setFront()
}

func (c *memChannel) setFront() {
	if c.held() == 0 {
		c.front.Store(math.MaxUint64)
		return
	}
	c.front.Store(c.at(0).offset)
}
