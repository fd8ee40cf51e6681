package gateway

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/duplexws/duplex"
)

// channels is the gateway's side of publish/subscribe: the sessions
// subscribed to each channel, fed by the broker (docs/protocol.md).
//
// A channel's messages reach this gateway once, from the broker, in offset
// order. Each is encoded once, and the same bytes are queued to every
// subscriber (session.send never copies nor blocks: a subscriber whose
// queue is full is closed with 1013 and slows nobody).
//
// Each subscriber remembers the offset of the last message it was sent.
// A message whose Prev is not that offset means something was missed (a
// subscriber catching up from history, or a broker that started or resumed
// its stream late): the subscriber then holds live messages back, reads
// the gap from the broker's history, sends it, and goes on. Offsets it has
// already been sent are dropped. So every subscriber gets every message
// after its starting point exactly once and in order, or is told with
// {"type":"subscribed","recovered":false} that it cannot.
//
// Lock order: channels.mu, then the broker's locks, then a channel's mu,
// then eventSession.mu. The broker calls deliver with its locks held, so
// nothing may call the broker while holding a channel's mu.
type channels struct {
	g       *Gateway
	broker  Broker
	m       *channelMetrics
	limiter *publishLimiter

	mu     sync.Mutex
	byName map[string]*channel // guarded by mu; channels with subscribers here
	total  int                 // guarded by mu; subscriptions of all sessions

	// mem is set when the broker is this process's memory broker: it
	// then gives this gateway every message (routed) and the gateway finds
	// the channel's subscribers itself, so that a subscription costs the
	// broker nothing. unroute ends that at shutdown. Nothing may hold mu
	// while it calls mem: mem calls has and routed under its own locks.
	mem     *memoryBroker
	unroute func()

	// A session's own channels are in session.subs, guarded by mu.
}

// channel is one channel that sessions of this gateway subscribe to.
type channel struct {
	cs   *channels
	name string
	stop func() // ends the broker's deliveries; called under channels.mu

	mu   sync.Mutex
	subs subSet // guarded by mu
}

// subscriber is one session's subscription to one channel. Its fields are
// guarded by the channel's mu.
type subscriber struct {
	s *session

	// last is the offset of the last message queued to s, or the latest
	// offset of the channel when s started from there.
	last uint64

	// filling is set while history is read for s: live messages wait in
	// held meanwhile, and are sent after it.
	filling bool
	held    *[]Message // made when the first message is held
}

const (
	// historyTimeout bounds one read of a broker's history.
	historyTimeout = 5 * time.Second
)

// Errors sent to clients in {"type":"error"} messages.
var (
	errAlreadySubscribed = errors.New("already subscribed")
	errNotSubscribed     = errors.New("not subscribed")
	errTooManyChannels   = errors.New("too many subscriptions")
	errBrokerUnavailable = errors.New("broker unavailable")
	errConnectionEnding  = errors.New("connection closing")
)

func newChannels(g *Gateway, b Broker) *channels {
	cs := &channels{
		g:       g,
		broker:  b,
		m:       newChannelMetrics(g.metrics.reg),
		limiter: newPublishLimiter(&g.opts),
		byName:  make(map[string]*channel),
	}
	if mb, ok := b.(*memoryBroker); ok {
		registerMemoryBroker(g.metrics.reg, mb)
		cs.mem = mb
		cs.unroute = mb.route(cs.routed, cs.has)
	}
	return cs
}

// subscribe subscribes s to name, starting after offset *since, or at the
// channel's latest offset when since is nil. It sends s the "subscribed"
// reply and, when it can recover, the messages after since, then live
// ones. It returns an error to report to the client.
func (cs *channels) subscribe(s *session, name string, since *uint64) error {
	ch, sub, err := cs.join(s, name)
	if err != nil {
		return err
	}
	from := uint64(math.MaxUint64) // latest only
	if since != nil {
		from = *since
	}
	ctx, cancel := context.WithTimeout(s.context(), historyTimeout)
	msgs, recovered, latest, err := cs.broker.History(ctx, name, from)
	cancel()
	if err != nil {
		cs.leave(s, name)
		if s.ending() {
			return errConnectionEnding
		}
		cs.g.log.Warn("broker history failed", "channel", name, "conn", s.id, "error", err)
		return errBrokerUnavailable
	}
	if since == nil {
		recovered = false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.subs.get(s) != sub {
		return nil // unsubscribed meanwhile
	}
	s.send(duplex.MessageText, encodeSubscribed(name, latest, recovered))
	if recovered {
		sub.last = *since
		ch.sendHistory(sub, msgs)
	}
	sub.last = latest
	ch.release(sub, false)
	return nil
}

// join registers s as a subscriber of name that is filling: live messages
// are held until subscribe has sent the history.
func (cs *channels) join(s *session, name string) (*channel, *subscriber, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	// A session that has started to end is left by leaveAll, which runs
	// after it has (session.ended), under cs.mu: either it sees this
	// subscription or this sees the session ending.
	switch {
	case s.subsEnded || s.ending():
		return nil, nil, errConnectionEnding
	case s.subscribed(name) >= 0:
		return nil, nil, errAlreadySubscribed
	case s.subs.len() >= cs.g.opts.MaxConnectionSubscriptions:
		return nil, nil, errTooManyChannels
	case cs.g.opts.MaxSubscriptions > 0 && cs.total >= cs.g.opts.MaxSubscriptions:
		cs.m.limited.WithLabelValues("subscriptions").Inc()
		return nil, nil, errSubscriptionLimit
	}
	ch := cs.byName[name]
	if ch == nil {
		ch = &channel{cs: cs, name: name}
		if cs.mem == nil {
			ch.stop = cs.broker.Subscribe(name, ch.deliver)
		}
		cs.byName[name] = ch
		cs.m.channels.Inc()
	}
	sub := &subscriber{s: s, filling: true}
	ch.mu.Lock()
	ch.subs.add(sub)
	ch.mu.Unlock()
	s.subs.add(ch)
	cs.total++
	cs.m.subscriptions.Inc()
	return ch, sub, nil
}

// unsubscribe ends s's subscription to name.
func (cs *channels) unsubscribe(s *session, name string) error {
	if !cs.leave(s, name) {
		return errNotSubscribed
	}
	return nil
}

// leave removes s from name and reports whether it was subscribed.
func (cs *channels) leave(s *session, name string) bool {
	cs.mu.Lock()
	i := s.subscribed(name)
	if i < 0 {
		cs.mu.Unlock()
		return false
	}
	emptied := cs.drop(s, s.subs.at(i))
	s.subs.removeAt(i)
	cs.mu.Unlock()
	if emptied {
		cs.mem.unrouted(name)
	}
	return true
}

// routed takes a message from the memory broker (channels.mem) and hands
// it to the channel's subscribers here, if it has any.
func (cs *channels) routed(m Message) {
	cs.mu.Lock()
	ch := cs.byName[m.Channel]
	cs.mu.Unlock()
	if ch != nil {
		ch.deliver(m)
	}
}

// has reports whether the channel has subscribers here.
func (cs *channels) has(name string) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.byName[name] != nil
}

// stopRouting ends the memory broker's deliveries to this gateway.
func (cs *channels) stopRouting() {
	if cs.unroute != nil {
		cs.unroute()
	}
}

// subscribed returns the index of name in s.subs, or -1. Its caller holds
// cs.mu.
func (s *session) subscribed(name string) int {
	for i := range s.subs.len() {
		if s.subs.at(i).name == name {
			return i
		}
	}
	return -1
}

// leaveAll ends every subscription of s, once s has ended.
func (cs *channels) leaveAll(s *session) {
	var emptied []string
	cs.mu.Lock()
	s.subsEnded = true
	for i := range s.subs.len() {
		if ch := s.subs.at(i); cs.drop(s, ch) {
			emptied = append(emptied, ch.name)
		}
	}
	s.subs = chanList{}
	cs.mu.Unlock()
	for _, name := range emptied {
		cs.mem.unrouted(name)
	}
}

// drop removes s from ch, and ch from the gateway and the broker if s was
// its last subscriber. Its caller holds cs.mu. It reports whether the
// memory broker must be told (unrouted), once cs.mu is let go.
func (cs *channels) drop(s *session, ch *channel) (unrouted bool) {
	ch.mu.Lock()
	ch.subs.remove(s)
	empty := ch.subs.len() == 0
	ch.mu.Unlock()
	cs.total--
	cs.m.subscriptions.Dec()
	if !empty {
		return false
	}
	delete(cs.byName, ch.name)
	cs.m.channels.Dec()
	if ch.stop != nil {
		ch.stop()
	}
	return cs.mem != nil
}

// deliver takes a message from the broker and queues it to every
// subscriber: the same encoded bytes to all.
func (ch *channel) deliver(m Message) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var frame []byte
	var prep *duplex.PreparedMessage
	sent := 0
	ch.subs.each(func(sub *subscriber) {
		switch {
		case sub.filling:
			ch.hold(sub, m)
		case m.Offset <= sub.last:
			// Sent already, from history.
		case m.Prev == sub.last:
			if frame == nil {
				frame = encodeMessage(m)
				prep = duplex.NewPreparedMessage(duplex.MessageText, frame)
			}
			if sub.s.sendPrepared(duplex.MessageText, frame, prep) {
				sent++
			}
			sub.last = m.Offset
		default:
			// A gap: read it from history, hold live messages meanwhile.
			sub.filling = true
			ch.hold(sub, m)
			go ch.fill(sub)
		}
	})
	ch.cs.m.deliveries.Add(float64(sent))
}

// hold keeps m for a filling subscriber. Holding as many messages as the
// send queue takes means the client could not have kept up anyway: it is
// closed with 1013, as a slow consumer.
func (ch *channel) hold(sub *subscriber, m Message) {
	if sub.held == nil {
		sub.held = new([]Message)
	}
	if len(*sub.held) >= ch.cs.g.opts.SendQueue {
		sub.held = nil
		sub.s.overflow()
		return
	}
	*sub.held = append(*sub.held, m)
}

// fill reads the messages sub missed after sub.last and sends them, then
// the held ones. A broker that cannot be reached is retried until the
// session ends.
func (ch *channel) fill(sub *subscriber) {
	s := sub.s
	ch.mu.Lock()
	since := sub.last
	ch.mu.Unlock()
	var (
		msgs      []Message
		recovered bool
		latest    uint64
	)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		ctx, cancel := context.WithTimeout(s.context(), historyTimeout)
		var err error
		msgs, recovered, latest, err = ch.cs.broker.History(ctx, ch.name, since)
		cancel()
		if err == nil {
			break
		}
		ch.cs.g.log.Warn("broker history failed", "channel", ch.name, "conn", s.id, "error", err)
		if s.ending() {
			return
		}
		select {
		case <-s.context().Done():
			return
		case <-time.After(wait):
		}
		if s.ending() {
			return
		}
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.subs.get(s) != sub || !sub.filling {
		return
	}
	if recovered {
		ch.sendHistory(sub, msgs)
	} else {
		ch.lost(sub, latest)
	}
	ch.release(sub, true)
}

// sendHistory sends the messages after sub.last, which continue it. It
// stops at the first that does not fit the send queue: the session is
// closing then, and encoding the rest of a long history for it would
// only make garbage (issue 15).
func (ch *channel) sendHistory(sub *subscriber, msgs []Message) {
	for _, m := range msgs {
		if m.Offset <= sub.last {
			continue
		}
		if !sub.s.send(duplex.MessageText, encodeMessage(m)) {
			return
		}
		sub.last = m.Offset
	}
}

// lost tells sub that messages it should have had are gone, and that it
// goes on after offset: {"type":"subscribed","recovered":false}, as when a
// recovery fails at subscribe time.
func (ch *channel) lost(sub *subscriber, offset uint64) {
	ch.cs.m.recoveryFailures.Inc()
	sub.s.send(duplex.MessageText, encodeSubscribed(ch.name, offset, false))
	sub.last = offset
}

// release sends the held messages that follow sub.last and ends filling.
// At a gap it starts a fill, unless this was one (afterFill): then the
// gap is not in the history either, and the subscriber is told so.
func (ch *channel) release(sub *subscriber, afterFill bool) {
	var held []Message
	if sub.held != nil {
		held = *sub.held
	}
	for i, m := range held {
		switch {
		case m.Offset <= sub.last:
			continue
		case m.Prev == sub.last:
		case !afterFill:
			*sub.held = held[i:]
			go ch.fill(sub)
			return
		default:
			ch.lost(sub, m.Prev)
		}
		sub.s.send(duplex.MessageText, encodeMessage(m))
		sub.last = m.Offset
	}
	sub.held = nil
	sub.filling = false
}

// encodeMessage returns {"type":"message","channel":C,"offset":N,"data":D}.
// Channel names need no escaping (validChannel) and Data is JSON, so the
// frame is put together without encoding/json.
func encodeMessage(m Message) []byte {
	b := make([]byte, 0, len(`{"type":"message","channel":"","offset":,"data":}`)+len(m.Channel)+20+len(m.Data))
	b = append(b, `{"type":"message","channel":"`...)
	b = append(b, m.Channel...)
	b = append(b, `","offset":`...)
	b = strconv.AppendUint(b, m.Offset, 10)
	b = append(b, `,"data":`...)
	b = append(b, m.Data...)
	return append(b, '}')
}

// encodeSubscribed returns
// {"type":"subscribed","channel":C,"offset":N,"recovered":B}.
func encodeSubscribed(name string, offset uint64, recovered bool) []byte {
	b := make([]byte, 0, 80+len(name))
	b = append(b, `{"type":"subscribed","channel":"`...)
	b = append(b, name...)
	b = append(b, `","offset":`...)
	b = strconv.AppendUint(b, offset, 10)
	b = append(b, `,"recovered":`...)
	b = strconv.AppendBool(b, recovered)
	return append(b, '}')
}

// maxChannelName bounds a channel name, in bytes.
const maxChannelName = 128

// validChannel reports whether name is a channel name: 1 to 128 of
// A-Z a-z 0-9 and _ - . : @ /. These need no escaping in JSON, URLs' paths
// or Redis keys, and none is special to path.Match, so JWT patterns match
// names literally.
func validChannel(name string) bool {
	if len(name) == 0 || len(name) > maxChannelName {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_' || c == '-' || c == '.' || c == ':' || c == '@' || c == '/':
		default:
			return false
		}
	}
	return true
}
