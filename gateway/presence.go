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
	sessions map[*session]*member          // guarded by mu
	byChan   map[string]map[*session]int64 // guarded by mu; when each subscribed, Unix µs

	ctrl    chan []byte   // control messages for run
	done    chan struct{} // closed by stop
	stopBus func()
	wg      sync.WaitGroup

	dropped prometheus.Counter
}

// member is one session's subscriptions, as presence knows them.
type member struct {
	mu    sync.Mutex      // held while the session's store writes are made
	chans map[string]bool // guarded by presence.mu; channel → announced (in the store)
	ended bool            // guarded by presence.mu
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

func newPresence(g *Gateway, b Broker) *presence {
	var id [4]byte
	rand.Read(id[:])
	p := &presence{
		g:        g,
		node:     hex.EncodeToString(id[:]),
		sessions: make(map[*session]*member),
		byChan:   make(map[string]map[*session]int64),
		ctrl:     make(chan []byte, controlQueue),
		done:     make(chan struct{}),
		dropped: newCounter("duplex_control_dropped_total",
			"Control messages (join/leave events, API commands) dropped because this node's queue was full."),
	}
	g.metrics.reg.MustRegister(p.dropped)
	p.store, _ = b.(PresenceStore)
	p.bus, _ = b.(ControlBus)
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
		chans := make([]string, 0, len(m.chans))
		for ch, announced := range m.chans {
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

// reserve records s as a subscriber of channel since at (Unix µs), not
// announced yet. It returns false if s is ending or recorded already.
func (p *presence) reserve(s *session, channel string, at int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	// leftAll runs once s has ended, after s.ending turned true.
	if s.ending() {
		return false
	}
	m := p.sessions[s]
	if m == nil {
		m = &member{chans: make(map[string]bool)}
		p.sessions[s] = m
	}
	if _, dup := m.chans[channel]; m.ended || dup {
		return false
	}
	m.chans[channel] = false
	subs := p.byChan[channel]
	if subs == nil {
		subs = make(map[*session]int64)
		p.byChan[channel] = subs
	}
	subs[s] = at
	return true
}

// unreserve forgets a reservation whose subscribe failed.
func (p *presence) unreserve(s *session, channel string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m := p.sessions[s]; m != nil {
		if announced, ok := m.chans[channel]; ok && !announced {
			delete(m.chans, channel)
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
	announced, ok := m.chans[channel]
	if !ok || announced || m.ended {
		p.mu.Unlock()
		return
	}
	m.chans[channel] = true
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
	announced, ok := m.chans[channel]
	if ok {
		delete(m.chans, channel)
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
	m.chans = nil
	for ch := range chans {
		p.dropLocked(s, ch)
	}
	p.mu.Unlock()
	who, at := p.memberOf(s), time.Now().UnixMicro()
	for ch, announced := range chans {
		if announced {
			p.changed("leave", ch, who, at)
		}
	}
}

// dropLocked removes s from byChan[channel]. Its caller holds p.mu.
func (p *presence) dropLocked(s *session, channel string) {
	if subs := p.byChan[channel]; subs != nil {
		delete(subs, s)
		if len(subs) == 0 {
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
	_, ok := p.byChan[channel][s]
	return ok
}

// members lists the members of channel on every node (this one alone
// without a store).
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
		p.mu.Lock()
		for s := range p.byChan[channel] {
			out = append(out, p.memberOf(s))
		}
		p.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Client < out[j].Client })
	return out, nil
}

// channelCounts returns the channels with subscribers on every node (this
// one alone without a store), with how many.
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
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.byChan))
	for ch, subs := range p.byChan {
		out[ch] = len(subs)
	}
	return out, nil
}
