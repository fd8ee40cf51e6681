package redisbroker

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"time"

	"github.com/duplexws/duplex/gateway"
	"github.com/redis/go-redis/v9"
)

const (
	// dialTimeout and commandTimeout bound a connection attempt and one
	// command, so that a frozen Redis makes commands fail in seconds.
	dialTimeout    = 2 * time.Second
	commandTimeout = 2 * time.Second

	// idlePing is how long a PUB/SUB connection may stay silent before
	// the node PINGs it; one silent for pongTimeout is taken as dead
	// (a network that dropped it without a word).
	idlePing    = time.Second
	pongTimeout = 5 * time.Second

	// subscribeBatch bounds the channels of one SUBSCRIBE command.
	subscribeBatch = 1000

	// Backoff between attempts while Redis is unreachable: full jitter,
	// from minBackoff doubling to maxBackoff.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// shard is one PUB/SUB connection: to the one server, or to one master of
// a cluster, for the live channels whose slots that master serves. Its
// goroutine reads live messages and subscription confirmations; a second
// one sends the subscribe and unsubscribe commands that ops queues.
type shard struct {
	b      *Broker
	addr   string
	client *redis.Client
	kick   chan struct{} // one slot: ops has work

	ops []op // guarded by b.mu; commands to send, in order
}

// op is a subscribe (sub) or unsubscribe of a channel's live channel.
type op struct {
	channel string
	sub     bool
}

func (b *Broker) newShard(addr string, c *redis.Client) *shard {
	return &shard{b: b, addr: addr, client: c, kick: make(chan struct{}, 1)}
}

// route gives w a shard, which subscribes to its live channel. Its caller
// holds b.mu.
func (b *Broker) route(channel string, w *watch) {
	if b.cluster == nil {
		w.shard = b.shards[""]
		w.shard.push(channel, true)
		return
	}
	w.shard = nil
	b.unrouted[channel] = true
	kick(b.routeKick)
}

// push queues a command for s. Its caller holds b.mu.
func (s *shard) push(channel string, sub bool) {
	s.ops = append(s.ops, op{channel, sub})
	kick(s.kick)
}

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run keeps a PUB/SUB connection for the shard until Close. On one server
// it reconnects after a failure; a cluster shard gives its channels back
// to the router instead, which finds their master anew (a failover, or
// slots that moved).
func (s *shard) run() {
	b := s.b
	for b.ctx.Err() == nil {
		err := s.serve()
		if b.ctx.Err() != nil {
			return
		}
		b.failed(err)
		if !b.sleep(backoff(int(b.failures.Load()))) {
			return
		}
		if b.cluster != nil {
			s.retire()
			return
		}
	}
}

// serve subscribes to the live channels of every channel routed to s, then
// reads until the connection fails.
func (s *shard) serve() error {
	b := s.b
	var ps *redis.PubSub
	if b.cluster != nil {
		ps = s.client.SSubscribe(b.ctx)
	} else {
		ps = s.client.Subscribe(b.ctx)
	}
	defer ps.Close()
	stopClose := context.AfterFunc(b.ctx, func() { ps.Close() })
	defer stopClose()

	// A new connection subscribes to every channel routed here: replace
	// whatever was queued for the last one.
	b.mu.Lock()
	s.ops = s.ops[:0]
	for name, w := range b.watches {
		if w.shard == s {
			s.ops = append(s.ops, op{name, true})
		}
	}
	b.mu.Unlock()
	kick(s.kick)

	done := make(chan struct{})
	defer close(done)
	b.wg.Go(func() { s.write(ps, done) })

	silentSince := time.Now()
	for {
		msg, err := ps.ReceiveTimeout(b.ctx, idlePing)
		if b.ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				var re redis.Error
				if errors.As(err, &re) && b.cluster != nil {
					// A MOVED or CROSSSLOT answer to a subscribe: the
					// slots moved. Route this shard's channels again.
					b.log.Warn("redisbroker: subscribe refused; finding the channels' masters again", "addr", s.addr, "error", err)
					// Give the cluster's state time to reload, or the
					// channels come straight back here.
					if !b.sleep(backoff(2)) {
						return nil
					}
					s.reroute(nil)
					continue
				}
				return err
			}
			if time.Since(silentSince) > pongTimeout {
				return errors.New("redisbroker: no answer to PING on the PUB/SUB connection")
			}
			if err := ps.Ping(b.ctx); err != nil {
				return err
			}
			continue
		}
		silentSince = time.Now()
		switch m := msg.(type) {
		case *redis.Message:
			b.live(m.Channel, m.Payload)
		case *redis.Subscription:
			switch m.Kind {
			case "subscribe", "ssubscribe":
				b.failures.Store(0)
				b.confirmed(s, m.Channel)
			case "sunsubscribe":
				// Also sent unasked when the channel's slot moved to
				// another master.
				if name, ok := b.channelOf(m.Channel); ok {
					s.reroute(&name)
				}
			}
		}
	}
}

// write sends the commands queued in s.ops until done.
func (s *shard) write(ps *redis.PubSub, done chan struct{}) {
	b := s.b
	for {
		select {
		case <-done:
			return
		case <-s.kick:
		}
		b.mu.Lock()
		ops := s.ops
		s.ops = nil
		b.mu.Unlock()
		for len(ops) > 0 {
			n := 1
			for n < len(ops) && n < subscribeBatch && ops[n].sub == ops[0].sub && b.cluster == nil {
				n++
			}
			names := make([]string, n)
			for i, o := range ops[:n] {
				names[i] = b.liveKey(o.channel)
			}
			var err error
			switch {
			case b.cluster != nil && ops[0].sub:
				err = ps.SSubscribe(b.ctx, names...)
			case b.cluster != nil:
				err = ps.SUnsubscribe(b.ctx, names...)
			case ops[0].sub:
				err = ps.Subscribe(b.ctx, names...)
			default:
				err = ps.Unsubscribe(b.ctx, names...)
			}
			if err != nil {
				// The reader sees the connection fail too, and the next
				// one subscribes to everything again.
				ps.Close()
				return
			}
			ops = ops[n:]
		}
	}
}

// reroute hands the channel (every channel of s if nil) back to the router.
func (s *shard) reroute(channel *string) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if channel != nil {
		if w := b.watches[*channel]; w != nil && w.shard == s {
			b.route(*channel, w)
		}
	} else {
		for name, w := range b.watches {
			if w.shard == s {
				b.route(name, w)
			}
		}
	}
	if b.cluster != nil {
		b.cluster.ReloadState(b.ctx)
	}
}

// retire ends a cluster shard that failed: its channels go back to the
// router.
func (s *shard) retire() {
	b := s.b
	b.mu.Lock()
	if b.shards[s.addr] == s {
		delete(b.shards, s.addr)
	}
	b.mu.Unlock()
	s.reroute(nil)
}

// routeLoop finds the master of each unrouted channel and hands the
// channel to the shard of that master, starting it if needed (cluster).
func (b *Broker) routeLoop() {
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.routeKick:
		}
		b.mu.Lock()
		names := make([]string, 0, len(b.unrouted))
		for name := range b.unrouted {
			names = append(names, name)
		}
		b.mu.Unlock()
		masters := make(map[string]*redis.Client, len(names))
		var failed error
		for _, name := range names {
			c, err := b.cluster.MasterForKey(b.ctx, b.liveKey(name))
			if err != nil {
				failed = err
				continue
			}
			masters[name] = c
		}
		b.mu.Lock()
		for name, c := range masters {
			w := b.watches[name]
			if w == nil || !b.unrouted[name] {
				continue
			}
			addr := c.Options().Addr
			s := b.shards[addr]
			if s == nil {
				s = b.newShard(addr, c)
				b.shards[addr] = s
				if !b.closed {
					b.wg.Go(s.run)
				}
			}
			delete(b.unrouted, name)
			w.shard = s
			s.push(name, true)
		}
		b.mu.Unlock()
		if failed != nil {
			b.failed(failed)
			b.cluster.ReloadState(b.ctx)
			if !b.sleep(backoff(int(b.failures.Load()))) {
				return
			}
			kick(b.routeKick)
		}
	}
}

// confirmed starts a sync of the channel whose live channel Redis just
// confirmed s subscribes to: its start, or what it missed meanwhile.
func (b *Broker) confirmed(s *shard, live string) {
	name, ok := b.channelOf(live)
	if !ok {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if w := b.watches[name]; w != nil && w.shard == s {
		b.queueSync(name, w)
	}
}

// live delivers a message received on a live channel, or holds it while
// the channel syncs.
func (b *Broker) live(channel, payload string) {
	name, ok := b.channelOf(channel)
	if !ok {
		return
	}
	m, err := parseLive(name, payload)
	if err != nil {
		b.log.Warn("redisbroker: skipping a malformed live message", "channel", name, "error", err)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.watches[name]
	switch {
	case w == nil:
	case w.syncing():
		b.hold(name, w, m)
	case m.Offset <= w.last:
		// Delivered already (from the stream, or twice from two shards
		// while a channel moved).
	case m.Prev == w.last:
		b.deliver(w, m)
	default:
		// A gap: PUB/SUB dropped something. Read it from the stream.
		b.hold(name, w, m)
		b.queueSync(name, w)
	}
}

// maxHeld bounds the live messages held for one channel while it syncs.
// Beyond it they are dropped and read from the stream by another sync.
const maxHeld = 10000

// hold keeps m until w's sync is done. Its caller holds b.mu.
func (b *Broker) hold(name string, w *watch, m gateway.Message) {
	if len(w.held) >= maxHeld {
		w.held = nil
		if w.started {
			b.queueSync(name, w)
		}
	}
	w.held = append(w.held, m)
}

// deliver hands m to w's subscriptions. Its caller holds b.mu.
func (b *Broker) deliver(w *watch, m gateway.Message) {
	for _, s := range w.subs {
		s.deliver(m)
	}
	w.last = m.Offset
}

// failed records that Redis could not be reached.
func (b *Broker) failed(err error) {
	if b.ctx.Err() != nil || err == nil {
		return
	}
	if b.failures.Add(1) == 1 {
		b.log.Warn("redis unavailable; retrying", "error", err)
	}
	b.setHealth(err)
}

// backoff returns the wait after failures attempts in a row.
func backoff(failures int) time.Duration {
	ceil := maxBackoff
	if failures < 16 {
		ceil = min(maxBackoff, minBackoff<<max(failures-1, 0))
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
