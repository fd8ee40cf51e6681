package redial

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/duplexws/duplex"
)

// Channels keeps channel subscriptions of the duplex gateway alive across
// reconnects (docs/protocol.md). It tracks the offset of the last message
// of each channel and, on every connect, subscribes again with "since"
// set to it, so the server replays what was missed, exactly once and in
// order, or answers recovered:false when its history no longer reaches
// back that far.
//
//	ch := redial.NewChannels(&redial.ChannelOptions{
//		OnMessage: func(m redial.ChannelMessage) { fmt.Printf("%s %d %s\n", m.Channel, m.Offset, m.Data) },
//	})
//	ch.Subscribe("news")
//	c := redial.New(url, &redial.Options{
//		URLs:      []string{url2, url3},
//		OnConnect: ch.OnConnect,
//		OnMessage: func(typ duplex.MessageType, p []byte) { ch.Handle(typ, p) },
//	})
//
// Its methods are safe from any goroutine.
type Channels struct {
	opts ChannelOptions

	mu   sync.Mutex
	subs map[string]*channelState // guarded by mu

	// Issue 16 (presence.go): server-side subscriptions of this
	// connection and of the one before, and requests waiting for answers.
	server       map[string]*channelState         // guarded by mu
	prevServer   map[string]*channelState         // guarded by mu
	presenceWait map[string][]chan presenceResult // guarded by mu
	rpcWait      map[uint64]chan rpcResult        // guarded by mu
	rpcID        uint64                           // guarded by mu
	unanswered   map[string]bool                  // guarded by mu; unsubscribed before the subscribe's answer
}

// ChannelOptions configures Channels. A nil *ChannelOptions means no
// callbacks.
type ChannelOptions struct {
	// OnMessage receives every {"type":"message"} of a subscribed channel,
	// from Handle's goroutine.
	OnMessage func(ChannelMessage)

	// OnSubscribed receives every {"type":"subscribed"}: the server's
	// latest offset of the channel, and whether every message after the
	// offset sent as since follows. recovered false means messages were
	// lost (or no since was sent): reload the channel's state from its
	// source. The server may also send it unasked, when a subscription
	// could not be kept whole.
	OnSubscribed func(channel string, offset uint64, recovered bool)

	// OnError receives every {"type":"error"}; channel is empty when the
	// error is not about one.
	OnError func(channel, err string)

	// OnJoin and OnLeave receive the {"type":"join"} and
	// {"type":"leave"} events of channels with join/leave events
	// (--join-leave): another client subscribed or left.
	OnJoin  func(PresenceEvent)
	OnLeave func(PresenceEvent)

	// OnUnsubscribed receives the channel of a {"type":"unsubscribed"}:
	// the server (its /api/unsubscribe) ended a subscription. Channels
	// forgets the channel.
	OnUnsubscribed func(channel string)
}

// ChannelMessage is a message of a channel.
type ChannelMessage struct {
	Channel string
	Offset  uint64
	Data    json.RawMessage // the published JSON value
}

type channelState struct {
	known  bool   // offset is set: resume after it
	offset uint64 // offset of the last message, or the server's latest
}

// NewChannels returns a Channels with no subscriptions.
func NewChannels(opts *ChannelOptions) *Channels {
	cs := &Channels{
		subs:         make(map[string]*channelState),
		server:       make(map[string]*channelState),
		presenceWait: make(map[string][]chan presenceResult),
		rpcWait:      make(map[uint64]chan rpcResult),
		unanswered:   make(map[string]bool),
	}
	if opts != nil {
		cs.opts = *opts
	}
	return cs
}

// Subscribe adds channel to the subscriptions OnConnect sends, from the
// next connect on. To subscribe on the current connection as well, send
// {"type":"subscribe","channel":C} with Client.Send.
func (cs *Channels) Subscribe(channel string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.subs[channel] == nil {
		cs.subs[channel] = &channelState{}
	}
}

// Unsubscribe removes channel from the subscriptions, from the next
// connect on, and forgets its offset.
func (cs *Channels) Unsubscribe(channel string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if st := cs.subs[channel]; st != nil && !st.known {
		// The answer to its subscribe may still come: it is not a
		// server-side subscription (presence.go).
		cs.unanswered[channel] = true
	}
	delete(cs.subs, channel)
	delete(cs.server, channel)
	delete(cs.prevServer, channel)
}

// Offset returns the offset Channels would resume channel after, and
// whether it has one.
func (cs *Channels) Offset(channel string) (uint64, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if st := cs.subs[channel]; st != nil && st.known {
		return st.offset, true
	}
	return 0, false
}

// OnConnect subscribes to every channel, with since where an offset is
// known. Use it as Options.OnConnect, or call it from yours.
func (cs *Channels) OnConnect(ctx context.Context, conn *duplex.Conn) error {
	cs.mu.Lock()
	// The server subscribes again on its own, and says so: keep the
	// offsets of the last connection's until it has (Query).
	if len(cs.server) > 0 {
		cs.prevServer = cs.server
	}
	cs.server = make(map[string]*channelState)
	msgs := make([][]byte, 0, len(cs.subs))
	for name, st := range cs.subs {
		msgs = append(msgs, subscribeMessage(name, st.offset, st.known))
	}
	cs.mu.Unlock()
	for _, m := range msgs {
		if err := conn.Write(ctx, duplex.MessageText, m); err != nil {
			return fmt.Errorf("redial: subscribe: %w", err)
		}
	}
	return nil
}

// subscribeMessage returns {"type":"subscribe","channel":channel}, with
// "since":since when withSince is set.
func subscribeMessage(channel string, since uint64, withSince bool) []byte {
	m := struct {
		Type    string  `json:"type"`
		Channel string  `json:"channel"`
		Since   *uint64 `json:"since,omitempty"`
	}{Type: "subscribe", Channel: channel}
	if withSince {
		m.Since = &since
	}
	b, _ := json.Marshal(m)
	return b
}

// Handle reads one message from the server. It tracks offsets from
// "message" and "subscribed" messages of subscribed channels, calls the
// callbacks, and reports whether p was a channel message of any kind
// (message, subscribed, error); anything else is the caller's.
func (cs *Channels) Handle(typ duplex.MessageType, p []byte) bool {
	if typ != duplex.MessageText || len(p) == 0 || p[0] != '{' {
		return false
	}
	var m struct {
		Type      string          `json:"type"`
		Channel   string          `json:"channel"`
		Offset    uint64          `json:"offset"`
		Data      json.RawMessage `json:"data"`
		Recovered bool            `json:"recovered"`
		Error     json.RawMessage `json:"error"` // a string, except in some rpc answers
	}
	if json.Unmarshal(p, &m) != nil {
		return false
	}
	switch m.Type {
	case "message":
		cs.mu.Lock()
		st := cs.subs[m.Channel]
		if st == nil {
			st = cs.server[m.Channel]
		}
		if st != nil && (!st.known || m.Offset > st.offset) {
			st.offset, st.known = m.Offset, true
		}
		cs.mu.Unlock()
		if cs.opts.OnMessage != nil {
			cs.opts.OnMessage(ChannelMessage{Channel: m.Channel, Offset: m.Offset, Data: m.Data})
		}
	case "subscribed":
		cs.mu.Lock()
		st := cs.subs[m.Channel]
		if st == nil && cs.unanswered[m.Channel] {
			delete(cs.unanswered, m.Channel)
			st = &channelState{} // a subscribe taken back: tracked by nobody
		} else if st == nil {
			// Not asked for: a server-side subscription (presence.go).
			if st = cs.server[m.Channel]; st == nil {
				st = &channelState{}
				if prev := cs.prevServer[m.Channel]; prev != nil {
					*st = *prev
				}
				cs.server[m.Channel] = st
			}
		}
		// When recovered, the replay that follows moves the offset on.
		// When not, the client starts over at the server's latest offset,
		// which may be lower than ours if the channel was reset.
		if !st.known || !m.Recovered {
			st.offset, st.known = m.Offset, true
		}
		cs.mu.Unlock()
		if cs.opts.OnSubscribed != nil {
			cs.opts.OnSubscribed(m.Channel, m.Offset, m.Recovered)
		}
	case "error":
		var msg string
		json.Unmarshal(m.Error, &msg)
		cs.presenceRefused(m.Channel, msg)
		if cs.opts.OnError != nil {
			cs.opts.OnError(m.Channel, msg)
		}
	default:
		return cs.handleExtra(m.Type, m.Channel, p)
	}
	return true
}
