package gateway

import (
	"context"
	"sync"
	"time"
)

// memPresence is the memory broker's PresenceStore and ControlBus, for
// the gateways that share one broker in one process (tests, or an
// application that mounts several). It is a field of memoryBroker.
//
// Lock order: its mu is a leaf. Control messages are delivered outside
// it, under busMu, so that a deliver may call the store.
type memPresence struct {
	mu      sync.Mutex
	members map[string]*smallMap[string, Member] // guarded by mu; channel → client → member
	nodes   map[string]time.Time                 // guarded by mu; node → when it stops being live

	busMu  sync.RWMutex
	subs   map[*memControlSub]struct{} // guarded by busMu
	busSeq sync.Mutex                  // orders deliveries: one message at a time
}

type memControlSub struct{ deliver func([]byte) }

func (p *memPresence) init() {
	if p.members == nil {
		p.members = make(map[string]*smallMap[string, Member])
		p.nodes = make(map[string]time.Time)
	}
}

// live reports whether node is live at now. Its caller holds p.mu.
func (p *memPresence) live(node string, now time.Time) bool {
	until, ok := p.nodes[node]
	return ok && now.Before(until)
}

// AddMember implements PresenceStore.
func (b *memoryBroker) AddMember(_ context.Context, channel string, m Member) error {
	p := &b.pres
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	ms := p.members[channel]
	if ms == nil {
		ms = &smallMap[string, Member]{}
		p.members[channel] = ms
	}
	ms.set(m.Client, m)
	return nil
}

// RemoveMember implements PresenceStore.
func (b *memoryBroker) RemoveMember(_ context.Context, channel string, m Member) error {
	p := &b.pres
	p.mu.Lock()
	defer p.mu.Unlock()
	if ms := p.members[channel]; ms != nil {
		ms.del(m.Client)
		if ms.len() == 0 {
			delete(p.members, channel)
		}
	}
	return nil
}

// Members implements PresenceStore. The members of dead nodes are left
// for ReapDead.
func (b *memoryBroker) Members(_ context.Context, channel string) ([]Member, error) {
	p := &b.pres
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var out []Member
	if ms := p.members[channel]; ms != nil {
		for _, m := range ms.all {
			if p.live(m.Node, now) {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// ChannelCounts implements PresenceStore.
func (b *memoryBroker) ChannelCounts(_ context.Context) (map[string]int, error) {
	p := &b.pres
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	out := make(map[string]int)
	for ch, ms := range p.members {
		for _, m := range ms.all {
			if p.live(m.Node, now) {
				out[ch]++
			}
		}
	}
	return out, nil
}

// KeepNode implements PresenceStore.
func (b *memoryBroker) KeepNode(_ context.Context, node string, ttl time.Duration) (bool, error) {
	p := &b.pres
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	now := time.Now()
	renewed := p.live(node, now)
	p.nodes[node] = now.Add(ttl)
	return renewed, nil
}

// ReapDead implements PresenceStore: a process whose gateways come and go
// keeps nothing of the gone ones. A member whose node is not known at all
// (it was dropped, or never kept) is reaped too.
func (b *memoryBroker) ReapDead(_ context.Context) ([]ChannelMember, error) {
	p := &b.pres
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var out []ChannelMember
	for ch, ms := range p.members {
		first := len(out)
		for _, m := range ms.all {
			if !p.live(m.Node, now) {
				out = append(out, ChannelMember{Channel: ch, Member: m})
			}
		}
		for _, cm := range out[first:] {
			ms.del(cm.Client)
		}
		if ms.len() == 0 {
			delete(p.members, ch)
		}
	}
	for n := range p.nodes {
		if !p.live(n, now) {
			delete(p.nodes, n)
		}
	}
	return out, nil
}

// DropNode implements PresenceStore.
func (b *memoryBroker) DropNode(_ context.Context, node string) error {
	p := &b.pres
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropLocked(node)
	return nil
}

func (p *memPresence) dropLocked(node string) {
	delete(p.nodes, node)
	var gone []string
	for ch, ms := range p.members {
		gone = gone[:0]
		for id, m := range ms.all {
			if m.Node == node {
				gone = append(gone, id)
			}
		}
		for _, id := range gone {
			ms.del(id)
		}
		if ms.len() == 0 {
			delete(p.members, ch)
		}
	}
}

// PublishControl implements ControlBus: msg reaches every subscriber
// before it returns.
func (b *memoryBroker) PublishControl(_ context.Context, msg []byte) error {
	p := &b.pres
	p.busSeq.Lock()
	defer p.busSeq.Unlock()
	p.busMu.RLock()
	defer p.busMu.RUnlock()
	for s := range p.subs {
		s.deliver(msg)
	}
	return nil
}

// SubscribeControl implements ControlBus.
func (b *memoryBroker) SubscribeControl(deliver func([]byte)) (stop func()) {
	p := &b.pres
	s := &memControlSub{deliver: deliver}
	p.busMu.Lock()
	if p.subs == nil {
		p.subs = make(map[*memControlSub]struct{})
	}
	p.subs[s] = struct{}{}
	p.busMu.Unlock()
	return func() {
		p.busMu.Lock()
		delete(p.subs, s)
		p.busMu.Unlock()
	}
}
