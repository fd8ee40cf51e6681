package gateway

import (
	"math"
	"time"
)

// A channel's history is a ring of its latest entries, oldest first, with
// consecutive offsets: entries leave only from the front (size, TTL or the
// broker's memory budget) and arrive only at the back. Every change is
// written to a tally, and front follows the oldest offset held.

// at returns the i-th oldest entry held.
func (c *memChannel) at(i int) *memEntry { return &c.ring[(c.head+i)%len(c.ring)] }

// push appends e, dropping the oldest entry once size are held, and
// reports whether e is held (size 0 keeps nothing). The ring grows by
// doubling, so a channel with few messages takes little memory.
func (c *memChannel) push(e memEntry, size int, t *tally) bool {
	if size <= 0 {
		return false
	}
	if c.n == len(c.ring) {
		if c.n >= size {
			c.popFront(t)
		} else {
			c.resize(min(max(2*c.n, 1), size))
		}
	}
	*c.at(c.n) = e
	c.n++
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
	c.head = (c.head + 1) % len(c.ring)
	c.n--
}

// resize moves the entries held to a ring of n slots.
func (c *memChannel) resize(n int) {
	grown := make([]memEntry, n)
	for i := range c.n {
		grown[i] = *c.at(i)
	}
	c.ring, c.head = grown, 0
}

// shrink gives back a ring that has become mostly empty, so a channel
// that once held many messages does not keep their slots.
func (c *memChannel) shrink() {
	switch {
	case c.n == 0:
		c.ring, c.head = nil, 0
	case len(c.ring) > 8 && c.n <= len(c.ring)/4:
		c.resize(max(2*c.n, 8))
	}
}

// expire drops the entries published before cutoff.
func (c *memChannel) expire(cutoff time.Time, t *tally) {
	if c.n == 0 || !c.at(0).at.Before(cutoff) {
		return
	}
	for c.n > 0 && c.at(0).at.Before(cutoff) {
		c.popFront(t)
	}
	c.shrink()
	c.setFront()
}

// dropThrough drops the entries up to offset, for the memory budget.
func (c *memChannel) dropThrough(offset uint64, t *tally) {
	if c.n == 0 || c.at(0).offset > offset {
		return
	}
	for c.n > 0 && c.at(0).offset <= offset {
		c.popFront(t)
	}
	c.shrink()
	c.setFront()
}

func (c *memChannel) setFront() {
	if c.n == 0 {
		c.front.Store(math.MaxUint64)
		return
	}
	c.front.Store(c.at(0).offset)
}
