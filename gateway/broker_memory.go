package gateway

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// memoryBroker is the default Broker: channels live in the memory of this
// process. Each channel keeps its last size messages, each for at most
// ttl; a channel with no message left and no subscriber is forgotten.
//
// All channels together keep at most memory bytes of history (issue 15):
// beyond it the oldest messages of the whole broker go first, whatever
// their channel, and a client that asks for them later is told it cannot
// recover. The cost of a message is its data plus a fixed overhead for
// its bookkeeping; a channel costs a fixed overhead plus its name, so that
// many tiny channels are bounded too.
//
// At most maxChannels channels exist at once. A publish that would create
// one more first forgets, with its history, the channel with no
// subscriber that was published to least recently (idle); if every
// channel has a subscriber, it fails with ErrTooManyChannels. Subscribe is
// never refused: the gateway bounds subscriptions.
//
// Lock order: mu, then a channel's mu, then qmu. A channel's subscribers
// are called under its mu, which keeps deliveries in offset order.
type memoryBroker struct {
	cfg memoryConfig

	mu     sync.Mutex
	chans  map[string]*memChannel // guarded by mu
	floor  uint64                 // guarded by mu; highest offset of any forgotten channel
	sweep  *time.Timer            // guarded by mu; nil until the first publish
	closed bool                   // guarded by mu

	// idle lists the channels with no subscriber, least recently
	// published to first. It is a hint, kept under mu: whether a
	// channel has subscribers is decided under its own mu.
	idleHead, idleTail *memChannel // guarded by mu

	qmu     sync.Mutex
	order   []memRecord // guarded by qmu; every entry held, oldest first, with stale ones (see compact)
	head    int         // guarded by qmu; index of the oldest record in order
	bytes   int64       // guarded by qmu; cost of the entries and channels held
	held    int         // guarded by qmu; entries held in all channels
	evicted atomic.Uint64

	pres memPresence // presence and control bus (broker_memory_presence.go)

	// routes are the gateways in this process that take every channel's
	// messages and find their subscribers themselves (route), so that a
	// channel that only has subscribers costs the broker nothing: a
	// memChannel is made by the first publish. Copied on write under mu.
	routes atomic.Pointer[[]*memRoute]
}

// memRoute is one gateway's route: deliver gets every message, has says
// whether the gateway has subscribers to a channel. has takes the
// gateway's channels lock, which is never held while the broker is
// called: lock order the broker's mu, a channel's mu, then has.
type memRoute struct {
	deliver func(Message)
	has     func(channel string) bool
}

// route sends every message published from now on to deliver, and keeps
// a channel that has (its history, its offsets) while has says it has
// subscribers. The gateway calls unrouted when a channel loses its last
// subscriber, and stop when it shuts down.
func (b *memoryBroker) route(deliver func(Message), has func(string) bool) (stop func()) {
	r := &memRoute{deliver: deliver, has: has}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.setRoutes(func(rs []*memRoute) []*memRoute { return append(rs, r) })
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.setRoutes(func(rs []*memRoute) []*memRoute {
			return slices.DeleteFunc(rs, func(x *memRoute) bool { return x == r })
		})
	}
}

// setRoutes replaces the routes with what change makes of a copy of them.
// Its caller holds mu.
func (b *memoryBroker) setRoutes(change func([]*memRoute) []*memRoute) {
	var rs []*memRoute
	if old := b.routes.Load(); old != nil {
		rs = append(rs, *old...)
	}
	rs = change(rs)
	b.routes.Store(&rs)
}

// routedHas reports whether a gateway routed here has subscribers to name.
func (b *memoryBroker) routedHas(name string) bool {
	if rs := b.routes.Load(); rs != nil {
		for _, r := range *rs {
			if r.has(name) {
				return true
			}
		}
	}
	return false
}

// subscribed reports whether c has a subscriber, of its own or through a
// route. Its caller holds c.mu.
func (b *memoryBroker) subscribed(c *memChannel) bool {
	return c.subs != nil || b.routedHas(c.name)
}

// unrouted is the hint that a routed gateway's last subscriber to name
// left: a channel that holds nothing more is forgotten, one with history
// goes to the idle list.
func (b *memoryBroker) unrouted(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.chans[name]
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.dead || b.subscribed(c):
	case c.held() == 0:
		b.forget(c)
	default:
		b.linkIdle(c)
	}
}

// memoryConfig sets the bounds of a memoryBroker. Zero means none, except
// for size, where zero means no history at all.
type memoryConfig struct {
	size        int           // messages kept per channel
	ttl         time.Duration // age beyond which a message goes
	memory      int64         // cost of everything held, all channels together
	maxChannels int           // channels at once
}

const (
	// entryOverhead approximates what holding one message costs besides
	// its data: its ring slot (with the ring's spare room) and its record
	// in the broker's order.
	entryOverhead = 96

	// channelOverhead approximates what a channel costs besides its name
	// and its entries: the memChannel and its map entry. (Measured: 100000
	// channels of one 7-byte message took 276 bytes each of live heap.)
	channelOverhead = 192
)

// memChannel is one channel. Once dead (forgotten) it is out of the map,
// and whoever finds it dead looks the channel up again.
type memChannel struct {
	name string

	idlePrev, idleNext *memChannel // guarded by the broker's mu

	// front is the offset of the oldest entry held, MaxUint64 when none
	// is (or the channel is dead): a record in the broker's order below it
	// is stale. Written under mu, read without it by compact.
	front atomic.Uint64

	mu     sync.Mutex
	dead   bool     // guarded by mu
	inIdle bool     // guarded by the broker's mu
	base   uint64   // guarded by mu; 0 until the first publish
	last   uint64   // guarded by mu; offset of the newest message, 0 if none
	hist   *memRing // guarded by mu; nil while nothing is held
	subs   *memSub  // guarded by mu; a list, most often of one
}

// memRing is a channel's history (broker_memory_ring.go): made on its
// first message, so that a channel that only has subscribers costs no
// more than its memChannel.
type memRing struct {
	ring []memEntry // circular, its len grows up to the history size
	head int        // index of the oldest entry in ring
	n    int        // entries held
}

type memEntry struct {
	offset uint64
	data   json.RawMessage
	at     time.Time
}

// memRecord names one entry held, in the broker's publish order.
type memRecord struct {
	c      *memChannel
	offset uint64
}

// tally is what changes to channels did to the broker's totals, settled
// under qmu once the changes are made.
type tally struct {
	bytes int64
	held  int
}

// memSub is one subscriber of a channel, in the channel's list.
type memSub struct {
	deliver func(Message)
	next    *memSub // guarded by the channel's mu
}

func newMemoryBroker(size int, ttl time.Duration) *memoryBroker {
	return newMemoryBrokerConfig(memoryConfig{size: size, ttl: ttl})
}

func newMemoryBrokerConfig(cfg memoryConfig) *memoryBroker {
	cfg.size = max(cfg.size, 0)
	return &memoryBroker{cfg: cfg, chans: make(map[string]*memChannel)}
}

func entryCost(data []byte) int64 { return int64(cap(data)) + entryOverhead }

func channelCost(name string) int64 { return int64(len(name)) + channelOverhead }

// What lookup is for.
const (
	forHistory   = iota // find the channel only
	forPublish          // create it within maxChannels; it was just published to
	forSubscribe        // create it whatever maxChannels; it has a subscriber
)

// lookup returns the channel named name, creating it for a publish or a
// subscribe (nil otherwise), and the floor its first offset must exceed.
func (b *memoryBroker) lookup(name string, op int) (*memChannel, uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, 0, ErrBrokerClosed
	}
	c := b.chans[name]
	if c == nil && op != forHistory {
		if op == forPublish && !b.makeRoom() {
			return nil, 0, ErrTooManyChannels
		}
		c = &memChannel{name: name}
		c.front.Store(math.MaxUint64)
		b.chans[name] = c
		b.settle(tally{bytes: channelCost(name)})
		if op == forPublish {
			b.linkIdle(c)
		}
		return c, b.floor, nil
	}
	switch {
	case c == nil:
	case op == forPublish && c.inIdle:
		b.linkIdle(c) // to the back: published to now
	case op == forSubscribe && c.inIdle:
		b.unlinkIdle(c)
	}
	return c, b.floor, nil
}

// makeRoom forgets idle channels, least recently published to first,
// until there is room for one more, and reports whether there is. Its
// caller holds b.mu.
func (b *memoryBroker) makeRoom() bool {
	for b.cfg.maxChannels > 0 && len(b.chans) >= b.cfg.maxChannels {
		c := b.idleHead
		if c == nil {
			return false
		}
		b.unlinkIdle(c)
		c.mu.Lock()
		if !c.dead && !b.subscribed(c) {
			var t tally
			c.dropThrough(math.MaxUint64, &t)
			b.settle(t)
			b.evicted.Add(uint64(-t.held))
			b.forget(c)
		}
		c.mu.Unlock()
	}
	return true
}

// linkIdle puts c at the back of the idle list.
func (b *memoryBroker) linkIdle(c *memChannel) {
	b.unlinkIdle(c)
	c.inIdle, c.idlePrev, c.idleNext = true, b.idleTail, nil
	if b.idleTail != nil {
		b.idleTail.idleNext = c
	} else {
		b.idleHead = c
	}
	b.idleTail = c
}

func (b *memoryBroker) unlinkIdle(c *memChannel) {
	if !c.inIdle {
		return
	}
	if c.idlePrev != nil {
		c.idlePrev.idleNext = c.idleNext
	} else {
		b.idleHead = c.idleNext
	}
	if c.idleNext != nil {
		c.idleNext.idlePrev = c.idlePrev
	} else {
		b.idleTail = c.idlePrev
	}
	c.inIdle, c.idlePrev, c.idleNext = false, nil, nil
}

// Publish appends data to channel and delivers it to the channel's
// subscribers before it returns.
func (b *memoryBroker) Publish(ctx context.Context, channel string, data json.RawMessage) (uint64, error) {
	for {
		c, floor, err := b.lookup(channel, forPublish)
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
		var t tally
		c.expire(now.Add(-b.cfg.ttl), &t)
		stored := c.push(memEntry{offset: m.Offset, data: data, at: now}, b.cfg.size, &t)
		for s := c.subs; s != nil; s = s.next {
			s.deliver(m)
		}
		if rs := b.routes.Load(); rs != nil {
			for _, r := range *rs {
				r.deliver(m)
			}
		}
		over := b.settleRecord(t, c, m.Offset, stored)
		idle := c.held() == 0 && !b.subscribed(c)
		c.mu.Unlock()
		if over {
			b.evict()
		}
		if idle {
			// Nothing held (no history) and nobody listening.
			b.forgetIdle(c)
		}
		b.startSweeping()
		return m.Offset, nil
	}
}

// History returns the messages after since, as Broker documents.
func (b *memoryBroker) History(ctx context.Context, channel string, since uint64) ([]Message, bool, uint64, error) {
	return b.HistoryLimit(ctx, channel, since, -1)
}

// HistoryLimit is History returning at most limit messages (all of them
// for a negative limit): the oldest after since (see historyLimiter).
func (b *memoryBroker) HistoryLimit(ctx context.Context, channel string, since uint64, limit int) ([]Message, bool, uint64, error) {
	for {
		c, _, err := b.lookup(channel, forHistory)
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
		var t tally
		c.expire(time.Now().Add(-b.cfg.ttl), &t)
		b.settle(t)
		w := Window{Base: c.base}
		if c.base != 0 {
			w.Latest = c.last
		}
		held := c.held()
		if held > 0 {
			w.Oldest = c.at(0).offset
		}
		// The entries held have consecutive offsets: skip to since+1.
		first := 0
		if held > 0 && since >= w.Oldest {
			first = int(min(since-w.Oldest+1, uint64(held)))
		}
		n := held - first
		if limit >= 0 {
			n = min(n, limit)
		}
		var msgs []Message
		if n > 0 {
			msgs = make([]Message, n)
		}
		for i := range msgs {
			e := c.at(first + i)
			msgs[i] = Message{Channel: channel, Offset: e.offset, Prev: e.offset - 1, Data: e.data}
		}
		c.mu.Unlock()
		if len(msgs) > 0 && msgs[0].Offset == w.Base+1 {
			msgs[0].Prev = 0
		}
		return msgs, w.Covers(since), w.Latest, nil
	}
}

// Subscribe registers deliver with the channel; Publish calls it. It is
// never refused for maxChannels: the gateway bounds subscriptions.
func (b *memoryBroker) Subscribe(channel string, deliver func(Message)) (stop func()) {
	s := &memSub{deliver: deliver}
	for {
		c, _, err := b.lookup(channel, forSubscribe)
		if err != nil {
			return func() {} // closed: nothing will be published
		}
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			continue
		}
		s.next, c.subs = c.subs, s
		c.mu.Unlock()
		// Unsubscribing twice finds s gone the second time: no sync.Once.
		return func() { b.unsubscribe(c, s) }
	}
}

func (b *memoryBroker) unsubscribe(c *memChannel, s *memSub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := &c.subs; *p != nil; p = &(*p).next {
		if *p == s {
			*p = s.next
			s.next = nil
			break
		}
	}
	switch {
	case c.dead || b.subscribed(c):
	case c.held() == 0:
		b.forget(c)
	default:
		b.linkIdle(c)
	}
}

// forgetIdle forgets c if it holds nothing and has no subscriber.
func (b *memoryBroker) forgetIdle(c *memChannel) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dead && c.held() == 0 && !b.subscribed(c) {
		b.forget(c)
	}
}

// forget drops an idle channel. Its caller holds b.mu and c.mu.
func (b *memoryBroker) forget(c *memChannel) {
	c.dead = true
	b.unlinkIdle(c)
	c.hist = nil
	c.front.Store(math.MaxUint64)
	b.floor = max(b.floor, c.last)
	delete(b.chans, c.name)
	b.settle(tally{bytes: -channelCost(c.name)})
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
	return min(max(b.cfg.ttl/2, time.Second), time.Minute)
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
	cutoff := time.Now().Add(-b.cfg.ttl)
	for _, c := range b.chans {
		c.mu.Lock()
		var t tally
		c.expire(cutoff, &t)
		b.settle(t)
		if c.held() == 0 && !b.subscribed(c) {
			b.forget(c)
		}
		c.mu.Unlock()
	}
	b.sweep.Reset(b.sweepInterval())
}
