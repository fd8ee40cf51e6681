package gateway

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"
)

// memoryBroker is the default Broker: channels live in the memory of this
// process. Each channel keeps its last size messages, each for at most
// ttl; a channel with no message left and no subscriber is forgotten.
//
// Lock order: mu, then a channel's mu. A channel's subscribers are called
// under its mu, which keeps deliveries in offset order.
type memoryBroker struct {
	size int
	ttl  time.Duration

	mu     sync.Mutex
	chans  map[string]*memChannel // guarded by mu
	floor  uint64                 // guarded by mu; highest offset of any forgotten channel
	sweep  *time.Timer            // guarded by mu; nil until the first publish
	closed bool                   // guarded by mu
}

// memChannel is one channel. Once dead (forgotten) it is out of the map,
// and whoever finds it dead looks the channel up again.
type memChannel struct {
	mu   sync.Mutex
	dead bool       // guarded by mu
	base uint64     // guarded by mu; 0 until the first publish
	last uint64     // guarded by mu; offset of the newest message, 0 if none
	ring []memEntry // guarded by mu; circular, its len grows up to the history size
	head int        // guarded by mu; index of the oldest entry in ring
	n    int        // guarded by mu; entries held
	subs []*memSub  // guarded by mu
}

type memEntry struct {
	offset uint64
	data   json.RawMessage
	at     time.Time
}

type memSub struct{ deliver func(Message) }

func newMemoryBroker(size int, ttl time.Duration) *memoryBroker {
	return &memoryBroker{size: size, ttl: ttl, chans: make(map[string]*memChannel)}
}

// lookup returns the channel named name, creating it if create is set (nil
// otherwise), and the floor its first offset must exceed.
func (b *memoryBroker) lookup(name string, create bool) (*memChannel, uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, 0, ErrBrokerClosed
	}
	c := b.chans[name]
	if c == nil && create {
		c = &memChannel{}
		b.chans[name] = c
	}
	return c, b.floor, nil
}

// Publish appends data to channel and delivers it to the channel's
// subscribers before it returns.
func (b *memoryBroker) Publish(ctx context.Context, channel string, data json.RawMessage) (uint64, error) {
	for {
		c, floor, err := b.lookup(channel, true)
		if err != nil {
			return 0, err
		}
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			continue
		}
		now := time.Now()
		if c.base == 0 {
			// See Broker: offsets of a new channel start above every
			// offset it could have had before.
			c.base = max(uint64(now.UnixMicro()), floor)
			c.last = c.base
		}
		m := Message{Channel: channel, Offset: c.last + 1, Prev: c.last, Data: data}
		if c.last == c.base {
			m.Prev = 0
		}
		c.last = m.Offset
		c.expire(now.Add(-b.ttl))
		c.push(memEntry{offset: m.Offset, data: data, at: now}, b.size)
		for _, s := range c.subs {
			s.deliver(m)
		}
		c.mu.Unlock()
		b.startSweeping()
		return m.Offset, nil
	}
}

// History returns the messages after since, as Broker documents.
func (b *memoryBroker) History(ctx context.Context, channel string, since uint64) ([]Message, bool, uint64, error) {
	for {
		c, _, err := b.lookup(channel, false)
		if err != nil {
			return nil, false, 0, err
		}
		if c == nil {
			return nil, Window{}.Covers(since), 0, nil
		}
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			continue
		}
		c.expire(time.Now().Add(-b.ttl))
		w := Window{Base: c.base}
		if c.base != 0 {
			w.Latest = c.last
		}
		if c.n > 0 {
			w.Oldest = c.at(0).offset
		}
		var msgs []Message
		for i := range c.n {
			if e := c.at(i); e.offset > since {
				msgs = append(msgs, Message{Channel: channel, Offset: e.offset, Prev: e.offset - 1, Data: e.data})
			}
		}
		c.mu.Unlock()
		if len(msgs) > 0 && msgs[0].Offset == w.Base+1 {
			msgs[0].Prev = 0
		}
		return msgs, w.Covers(since), w.Latest, nil
	}
}

// Subscribe registers deliver with the channel; Publish calls it.
func (b *memoryBroker) Subscribe(channel string, deliver func(Message)) (stop func()) {
	s := &memSub{deliver: deliver}
	for {
		c, _, err := b.lookup(channel, true)
		if err != nil {
			return func() {} // closed: nothing will be published
		}
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			continue
		}
		c.subs = append(c.subs, s)
		c.mu.Unlock()
		var once sync.Once
		return func() { once.Do(func() { b.unsubscribe(channel, c, s) }) }
	}
}

func (b *memoryBroker) unsubscribe(name string, c *memChannel, s *memSub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs = slices.DeleteFunc(c.subs, func(x *memSub) bool { return x == s })
	if len(c.subs) == 0 && c.n == 0 && !c.dead {
		b.forget(name, c)
	}
}

// forget drops an idle channel. Its caller holds b.mu and c.mu.
func (b *memoryBroker) forget(name string, c *memChannel) {
	c.dead = true
	b.floor = max(b.floor, c.last)
	delete(b.chans, name)
}

// Healthy is always nil: memory does not go away.
func (b *memoryBroker) Healthy() error { return nil }

// Close stops the sweeper. Publish and History fail afterwards.
func (b *memoryBroker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.sweep != nil {
		b.sweep.Stop()
	}
	return nil
}

// sweepInterval is how often expired messages and idle channels are
// dropped: often enough that memory follows the TTL, rarely enough to cost
// nothing.
func (b *memoryBroker) sweepInterval() time.Duration {
	return min(max(b.ttl/2, time.Second), time.Minute)
}

// startSweeping arms the sweeper, once. It is a timer, not a goroutine, so
// an idle broker runs nothing.
func (b *memoryBroker) startSweeping() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sweep == nil && !b.closed {
		b.sweep = time.AfterFunc(b.sweepInterval(), b.sweepNow)
	}
}

// sweepNow expires old messages in every channel and forgets the channels
// left with no message and no subscriber.
func (b *memoryBroker) sweepNow() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	cutoff := time.Now().Add(-b.ttl)
	for name, c := range b.chans {
		c.mu.Lock()
		c.expire(cutoff)
		if c.n == 0 && len(c.subs) == 0 {
			b.forget(name, c)
		}
		c.mu.Unlock()
	}
	b.sweep.Reset(b.sweepInterval())
}

// at returns the i-th oldest entry held.
func (c *memChannel) at(i int) *memEntry { return &c.ring[(c.head+i)%len(c.ring)] }

// push appends e, dropping the oldest entry once size are held. The ring
// grows by doubling, so a channel with few messages takes little memory.
func (c *memChannel) push(e memEntry, size int) {
	if c.n == len(c.ring) {
		if c.n >= size {
			*c.at(0) = e
			c.head = (c.head + 1) % len(c.ring)
			return
		}
		grown := make([]memEntry, min(max(2*c.n, 8), size))
		for i := range c.n {
			grown[i] = *c.at(i)
		}
		c.ring, c.head = grown, 0
	}
	*c.at(c.n) = e
	c.n++
}

// expire drops the entries published before cutoff.
func (c *memChannel) expire(cutoff time.Time) {
	for c.n > 0 && c.at(0).at.Before(cutoff) {
		*c.at(0) = memEntry{}
		c.head = (c.head + 1) % len(c.ring)
		c.n--
	}
}
