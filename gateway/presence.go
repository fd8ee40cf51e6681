package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// presence keeps who is subscribed to what on this node, shares it with
// the other nodes through the broker's PresenceStore, and carries
// join/leave events and the server API's commands over its ControlBus
// (broker_presence.go; issue 16). With a broker that has neither, it
// serves this node alone.
//
// It learns of subscriptions from the gateway's message handlers
// (subscribe, left), not from the channels' own bookkeeping, and of a
// session's end from session.ended (leftAll), so channels.go stays as it
// is and sessions need no context.
//
// Lock order: a member's mu, then presence.mu, then (delivering) a
// session's send. The store is called under a member's mu only, so the
// store writes of one session happen in the order they were decided.
type presence struct {
	g     *Gateway
	node  string
	store PresenceStore // nil: this node only
	bus   ControlBus    // nil: this node only

	mu       sync.Mutex
	sessions map[*session]*member                  // guarded by mu
	byChan   map[string]*smallMap[*session, int64] // guarded by mu; when each subscribed, Unix µs

	ctrl    chan []byte   // control messages for run
	done    chan struct{} // closed by stop
	stopBus func()
	wg      sync.WaitGroup

	dropped prometheus.Counter
}

// member is one session's subscriptions, as presence knows them.
type member struct {
	mu    sync.Mutex             // held while the session's store writes are made
	chans smallMap[string, bool] // guarded by presence.mu; channel → announced (in the store)
	ended bool                   // guarded by presence.mu
}

const (
	// controlQueue bounds the control messages waiting for this node;
	// beyond, they are dropped and counted.
	controlQueue = 4096

	// storeTimeout bounds one call of the presence store.
	storeTimeout = 5 * time.Second

	// keepNodeTimeout bounds a node's renewal, the first one in New
	// included: a broker that is down must not hold the start for long.
	keepNodeTimeout = 2 * time.Second
)

// newPresence serves presence for g on b. shared says whether other
// gateways may use b: a memory broker the gateway made for itself is
// not, and then its PresenceStore and ControlBus would only keep a second
// copy of what this node knows (see tracks).
func newPresence(g *Gateway, b Broker, shared bool) *presence {
	var id [4]byte
	rand.Read(id[:])
	p := &presence{
		g:        g,
		node:     hex.EncodeToString(id[:]),
		sessions: make(map[*session]*member),
		byChan:   make(map[string]*smallMap[*session, int64]),
		ctrl:     make(chan []byte, controlQueue),
		done:     make(chan struct{}),
		dropped: newCounter("duplex_control_dropped_total",
			"Control messages (join/leave events, API commands) dropped because this node's queue was full."),
	}
	g.metrics.reg.MustRegister(p.dropped)
	if shared {
		p.store, _ = b.(PresenceStore)
		p.bus, _ = b.(ControlBus)
	}
	if p.bus != nil {
		p.stopBus = p.bus.SubscribeControl(p.enqueue)
	}
	if p.store != nil {
		// Live before any session can subscribe: a reader of the store
		// deletes the members of nodes that are not. (If the broker is
		// down, members written meanwhile are restored once it is back.)
		p.keepNode()
	}
	p.wg.Go(p.run)
	return p
}

// clientID names s across nodes: the node's ID and s's number.
func (g *Gateway) clientID(s *session) string {
	return g.presence.node + "." + strconv.FormatUint(s.id, 10)
}

func (p *presence) memberOf(s *session) Member {
	return Member{Client: p.g.clientID(s), User: s.user(), Node: p.node}
}

// run keeps this node live in the store and handles control messages,
// until stop.
func (p *presence) run() {
	var tick <-chan time.Time
	if p.store != nil {
		t := time.NewTicker(p.g.opts.PresenceTTL / 3)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-p.done:
			return
		case <-tick:
			p.keepNode()
			p.reap()
		case msg := <-p.ctrl:
			p.handleControl(msg)
		}
	}
}

func (p *presence) keepNode() {
	ctx, cancel := context.WithTimeout(context.Background(), keepNodeTimeout)
	defer cancel()
	renewed, err := p.store.KeepNode(ctx, p.node, p.g.opts.PresenceTTL)
	if err != nil {
		p.g.logs.warn("presence keep-alive failed", "node", p.node, "error", err)
		return
	}
	if !renewed {
		p.restore(ctx)
	}
}

// restore adds every member of this node to the store again, after the
// store took the node for dead (it could not renew it in time: the
// broker was unreachable longer than PresenceTTL). Each session's writes
// are made under its member's mu, so a leave cannot be overtaken.
func (p *presence) restore(ctx context.Context) {
	p.mu.Lock()
	sessions := make(map[*session]*member, len(p.sessions))
	for s, m := range p.sessions {
		sessions[s] = m
	}
	p.mu.Unlock()
	for s, m := range sessions {
		m.mu.Lock()
		p.mu.Lock()
		chans := make([]string, 0, m.chans.len())
		for ch, announced := range m.chans.all {
			if announced {
				chans = append(chans, ch)
			}
		}
		p.mu.Unlock()
		for _, ch := range chans {
			who := p.memberOf(s)
			if err := p.store.AddMember(ctx, ch, who); err != nil {
				m.mu.Unlock()
				p.g.logs.warn("presence store failed", "op", "restore", "error", err)
				return
			}
			// Another node may have reaped it meanwhile, and announced
			// its leave: it is back.
			if matchAny(p.g.opts.JoinLeave, ch) {
				p.command(controlMsg{Op: "join", Channel: ch, Client: who.Client, User: who.User, Node: who.Node})
			}
		}
		m.mu.Unlock()
	}
}

// reap takes the members of dead nodes out of the store and announces
// their leaves: the clients of a node that died leave their channels'
// lists, and their subscribers hear of it, within PresenceTTL plus a
// third of it (the period of this node's ticks).
func (p *presence) reap() {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	dead, err := p.store.ReapDead(ctx)
	if err != nil {
		p.g.logs.warn("presence reap failed", "error", err)
		return
	}
	for _, cm := range dead {
		if matchAny(p.g.opts.JoinLeave, cm.Channel) {
			p.command(controlMsg{Op: "leave", Channel: cm.Channel, Client: cm.Client, User: cm.User, Node: cm.Node})
		}
	}
}

// stop ends run and the bus subscription, and takes this node's members
// out of the store. Shutdown calls it once the sessions are gone.
func (p *presence) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	if p.stopBus != nil {
		p.stopBus()
	}
	p.wg.Wait()
	if p.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		p.store.DropNode(ctx, p.node)
	}
}

// enqueue takes a control message for run without blocking: it is the
// bus's deliver.
func (p *presence) enqueue(msg []byte) {
	select {
	case p.ctrl <- msg:
	default:
		p.dropped.Inc()
		p.g.logs.warn("control queue full, message dropped", "node", p.node)
	}
}

// subscribe subscribes s to channel (channels.subscribe) and records it.
// The session is counted a subscriber of the channel from before its
// "subscribed" reply goes out, so that it misses no join or leave
// announced after that reply; the store write and the session's own join
// event follow the subscription.
func (p *presence) subscribe(s *session, channel string, since *uint64) error {
	at := time.Now().UnixMicro()
	reserved := p.reserve(s, channel, at)
	err := p.g.channels.subscribe(s, channel, since)
	switch {
	case err != nil && reserved:
		p.unreserve(s, channel)
	case err == nil && reserved:
		p.announce(s, channel, at)
	}
	return err
}

// tracks reports whether presence records the subscribers of channel
// itself: every channel's when there is a store (each subscription is
// written to it), else only those of --presence and --join-leave
// channels, whose requests and events need them. This node's other
// subscribers are in the channels' own sets (localMembers), so an idle
// event session on an ordinary channel costs presence nothing.
func (p *presence) tracks(channel string) bool {
	return p.store != nil || matchAny(p.g.opts.JoinLeave, channel) || matchAny(p.g.opts.Presence, channel)
}

// reserve records s as a subscriber of channel since at (Unix µs), not
// announced yet. It returns false if s is ending or recorded already, or
// if presence does not track channel.
func (p *presence) reserve(s *session, channel string, at int64) bool {
	if !p.tracks(channel) {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// leftAll runs once s has ended, after s.ending turned true.
	if s.ending() {
		return false
	}
	m := p.sessions[s]
	if m == nil {
		m = &member{}
		p.sessions[s] = m
	}
	if _, dup := m.chans.get(channel); m.ended || dup {
		return false
	}
	m.chans.set(channel, false)
	subs := p.byChan[channel]
	if subs == nil {
		subs = &smallMap[*session, int64]{}
		p.byChan[channel] = subs
	}
	subs.set(s, at)
	return true
}

// unreserve forgets a reservation whose subscribe failed.
func (p *presence) unreserve(s *session, channel string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m := p.sessions[s]; m != nil {
		if announced, ok := m.chans.get(channel); ok && !announced {
			m.chans.del(channel)
			p.dropLocked(s, channel)
		}
	}
}

// announce writes a reserved subscription to the store and announces its
// join, unless s left meanwhile.
func (p *presence) announce(s *session, channel string, at int64) {
	p.mu.Lock()
	m := p.sessions[s]
	p.mu.Unlock()
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p.mu.Lock()
	announced, ok := m.chans.get(channel)
	if !ok || announced || m.ended {
		p.mu.Unlock()
		return
	}
	m.chans.set(channel, true)
	p.mu.Unlock()
	p.changed("join", channel, p.memberOf(s), at)
}

// left records that s is no longer subscribed to channel.
func (p *presence) left(s *session, channel string) {
	p.mu.Lock()
	m := p.sessions[s]
	p.mu.Unlock()
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p.mu.Lock()
	announced, ok := m.chans.get(channel)
	if ok {
		m.chans.del(channel)
		p.dropLocked(s, channel)
	}
	p.mu.Unlock()
	if announced {
		p.changed("leave", channel, p.memberOf(s), time.Now().UnixMicro())
	}
}

// leftAll forgets every subscription of s, once s has ended
// (session.ended).
func (p *presence) leftAll(s *session) {
	p.mu.Lock()
	m := p.sessions[s]
	delete(p.sessions, s)
	p.mu.Unlock()
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p.mu.Lock()
	m.ended = true
	chans := m.chans
	m.chans = smallMap[string, bool]{}
	for ch := range chans.all {
		p.dropLocked(s, ch)
	}
	p.mu.Unlock()
	who, at := p.memberOf(s), time.Now().UnixMicro()
	for ch, announced := range chans.all {
		if announced {
			p.changed("leave", ch, who, at)
		}
	}
}

// dropLocked removes s from byChan[channel]. Its caller holds p.mu.
func (p *presence) dropLocked(s *session, channel string) {
	if subs := p.byChan[channel]; subs != nil {
		subs.del(s)
		if subs.len() == 0 {
			delete(p.byChan, channel)
		}
	}
}

// changed writes a join or leave, which happened at (Unix µs), to the
// store and announces it to the subscribers of channel on every node, if
// the channel has events.
func (p *presence) changed(op, channel string, m Member, at int64) {
	if p.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		var err error
		if op == "join" {
			err = p.store.AddMember(ctx, channel, m)
		} else {
			err = p.store.RemoveMember(ctx, channel, m)
		}
		cancel()
		if err != nil {
			p.g.logs.warn("presence store failed", "op", op, "channel", channel, "error", err)
		}
	}
	if matchAny(p.g.opts.JoinLeave, channel) {
		p.command(controlMsg{Op: op, Channel: channel, Client: m.Client, User: m.User, Node: m.Node, At: at})
	}
}

// subscribed reports whether s is subscribed to channel, as far as
// presence knows.
func (p *presence) subscribed(s *session, channel string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	subs := p.byChan[channel]
	if subs == nil {
		return false
	}
	_, ok := subs.get(s)
	return ok
}

// members lists the members of channel on every node (this one alone,
// from the channels' sets, without a store).
func (p *presence) members(ctx context.Context, channel string) ([]Member, error) {
	var out []Member
	if p.store != nil {
		ctx, cancel := context.WithTimeout(ctx, storeTimeout)
		defer cancel()
		var err error
		if out, err = p.store.Members(ctx, channel); err != nil {
			p.g.logs.warn("presence store failed", "op", "members", "channel", channel, "error", err)
			return nil, errBrokerUnavailable
		}
	} else {
		for _, s := range p.g.channels.subscribers(channel) {
			out = append(out, p.memberOf(s))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Client < out[j].Client })
	return out, nil
}

// channelCounts returns the channels with subscribers on every node (this
// one alone, from the channels' sets, without a store), with how many.
func (p *presence) channelCounts(ctx context.Context) (map[string]int, error) {
	if p.store != nil {
		ctx, cancel := context.WithTimeout(ctx, storeTimeout)
		defer cancel()
		out, err := p.store.ChannelCounts(ctx)
		if err != nil {
			p.g.logs.warn("presence store failed", "op", "channels", "error", err)
			return nil, errBrokerUnavailable
		}
		return out, nil
	}
	return p.g.channels.counts(), nil
}

// subscribers returns the sessions of this node subscribed to name.
func (cs *channels) subscribers(name string) []*session {
	cs.mu.Lock()
	ch := cs.byName[name]
	cs.mu.Unlock()
	if ch == nil {
		return nil
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	out := make([]*session, 0, ch.subs.len())
	ch.subs.each(func(sub *subscriber) { out = append(out, sub.s) })
	return out
}

// counts returns the channels with subscribers on this node, with how
// many.
func (cs *channels) counts() map[string]int {
	cs.mu.Lock()
	chans := make([]*channel, 0, len(cs.byName))
	for _, ch := range cs.byName {
		chans = append(chans, ch)
	}
	cs.mu.Unlock()
	out := make(map[string]int, len(chans))
	for _, ch := range chans {
		ch.mu.Lock()
		if n := ch.subs.len(); n > 0 {
			out[ch.name] = n
		}
		ch.mu.Unlock()
	}
	return out
}
