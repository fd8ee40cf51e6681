package gateway

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/duplexws/duplex"
)

// StatusDisconnected is the close code of a session ended by the server
// API's POST /api/disconnect (docs/protocol.md), with the reason
// "disconnected". Clients must not reconnect after it: duplex.js and
// redial stop, as after a 401 or 403.
const StatusDisconnected duplex.StatusCode = 4403

const reasonDisconnected = "disconnected"

// controlMsg is a message of the control bus (ControlBus): a join or
// leave event of a channel, or a command of the server API for the
// sessions of a user.
type controlMsg struct {
	Op      string `json:"op"` // join, leave, disconnect, subscribe, unsubscribe
	Channel string `json:"channel,omitempty"`
	Client  string `json:"client,omitempty"`
	User    string `json:"user,omitempty"`
	Node    string `json:"node,omitempty"`

	// At is when a join or leave happened, in Unix microseconds on its
	// node's clock: subscribers that joined later are not told of it
	// (they see it in presence already, or never saw the client).
	At int64 `json:"at,omitempty"`
}

// command sends m to every node: over the bus, or to this node alone
// without one.
func (p *presence) command(m controlMsg) error {
	b, _ := json.Marshal(m)
	if p.bus == nil {
		p.enqueue(b)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := p.bus.PublishControl(ctx, b); err != nil {
		p.g.logs.warn("control bus failed", "op", m.Op, "error", err)
		return errBrokerUnavailable
	}
	return nil
}

// handleControl acts on a control message on this node's sessions.
func (p *presence) handleControl(b []byte) {
	var m controlMsg
	if json.Unmarshal(b, &m) != nil {
		return
	}
	switch m.Op {
	case "join", "leave":
		p.deliverEvent(m)
	case "disconnect":
		for _, s := range p.userSessions(m.User, false) {
			s.closeAfter(StatusDisconnected, reasonDisconnected, func() {
				p.g.log.Info("disconnected by the API", "conn", s.id, "user", s.user())
			})
		}
	case "subscribe":
		for _, s := range p.userSessions(m.User, true) {
			p.g.serverSubscribe(s, m.Channel, nil)
		}
	case "unsubscribe":
		for _, s := range p.userSessions(m.User, true) {
			if p.g.channels.leave(s, m.Channel) {
				p.left(s, m.Channel)
				b, _ := json.Marshal(struct {
					Type    string `json:"type"`
					Channel string `json:"channel"`
				}{"unsubscribed", m.Channel})
				s.send(duplex.MessageText, b)
			}
		}
	}
}

// userSessions returns the sessions of user on this node; on /ws only if
// channelsOnly.
func (p *presence) userSessions(user string, channelsOnly bool) []*session {
	var out []*session
	for _, s := range p.g.hub.snapshot() {
		if s.user() == user && (!channelsOnly || s.onWS) {
			out = append(out, s)
		}
	}
	return out
}

// deliverEvent sends {"type":"join"} or {"type":"leave"} to the
// subscribers of the event's channel on this node, but not to the client
// it is about.
func (p *presence) deliverEvent(m controlMsg) {
	if !validChannel(m.Channel) {
		return
	}
	b, _ := json.Marshal(struct {
		Type    string `json:"type"`
		Channel string `json:"channel"`
		Client  string `json:"client"`
		User    string `json:"user"`
	}{m.Op, m.Channel, m.Client, m.User})
	p.mu.Lock()
	var targets []*session
	if subs := p.byChan[m.Channel]; subs != nil {
		targets = make([]*session, 0, subs.len())
		for s, since := range subs.all {
			if m.At == 0 || since <= m.At {
				targets = append(targets, s)
			}
		}
	}
	p.mu.Unlock()
	for _, s := range targets {
		if p.g.clientID(s) != m.Client {
			s.send(duplex.MessageText, b)
		}
	}
}

// serverSubscribe subscribes s to channel on the server's initiative (the
// subs claim, the connect hook, POST /api/subscribe), without asking the
// subscribe hook or checking the channels claim: the backend decided. The
// client gets "subscribed", or an error.
func (g *Gateway) serverSubscribe(s *session, channel string, since *uint64) {
	err := g.presence.subscribe(s, channel, since)
	switch {
	case err == nil:
	case errors.Is(err, errAlreadySubscribed), errors.Is(err, errConnectionEnding):
	default:
		g.replyError(s, channel, err)
	}
}

// startSession makes the server-side subscriptions of a /ws session, from
// its subs claim, before the session reads its first message. Each
// resumes after the offset the upgrade's since parameters (parseSince)
// give for it. The session's writer can run already: each subscription's
// replies are written out (drain) before the next, so a long list of
// them cannot overflow the send queue.
func (g *Gateway) startSession(s *session, since map[string]uint64) {
	if !s.onWS {
		return
	}
	for _, ch := range serverSubs(*s.identity()) {
		if s.ending() {
			return
		}
		var from *uint64
		if off, ok := since[ch]; ok {
			from = &off
		}
		g.serverSubscribe(s, ch, from)
		s.drain()
	}
}
