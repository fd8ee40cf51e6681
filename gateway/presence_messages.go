package gateway

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/duplexws/duplex"
)

// The client messages of issue 16 that presence.go serves: subscribe and
// unsubscribe as they go through presence, and {"type":"presence"}.

// Errors sent to clients for presence requests.
var errPresenceOff = errors.New("presence not enabled for this channel")

// errJoinRate refuses a subscribe to a --join-leave channel beyond the
// connection's publish rate.
var errJoinRate = errors.New("subscribe rate exceeded")

// errPresenceRate refuses a presence request beyond the connection's
// publish rate.
var errPresenceRate = errors.New("presence rate exceeded")

// clientSubscribe handles a client's subscribe, once its channels claim
// allows it: the subscribe hook, the rate of joins, then the subscription.
// A subscribe to a channel with join/leave events announces the client to
// every subscriber, as a publish would: it counts as one for
// --publish-rate, so that subscribing and unsubscribing in a loop cannot
// flood the channel with events.
func (g *Gateway) clientSubscribe(s *session, channel string, since *uint64) error {
	if err := g.hooks.allowSubscribe(s, channel); err != nil {
		return err
	}
	if matchAny(g.opts.JoinLeave, channel) && !g.presence.subscribed(s, channel) &&
		!g.channels.limiter.allow(s, 0, time.Now()) {
		g.channels.m.limited.WithLabelValues("publish_rate").Inc()
		return errJoinRate
	}
	return g.presence.subscribe(s, channel, since)
}

// clientUnsubscribe handles a client's unsubscribe.
func (g *Gateway) clientUnsubscribe(s *session, channel string) error {
	if err := g.channels.unsubscribe(s, channel); err != nil {
		return err
	}
	g.presence.left(s, channel)
	return nil
}

// presenceRequest is {"type":"presence","channel":C}.
type presenceRequest struct {
	Channel string `json:"channel"`
}

// presenceClient is one entry of a presence reply.
type presenceClient struct {
	Client string `json:"client"`
	User   string `json:"user"`
}

// onPresence answers {"type":"presence","channel":C} with
// {"type":"presence","channel":C,"clients":[{"client":ID,"user":U},...]}.
// The channel must match --presence and s must be subscribed to it.
func (g *Gateway) onPresence(s *session, p []byte) {
	var req presenceRequest
	if err := json.Unmarshal(p, &req); err != nil {
		g.replyError(s, "", errors.New("bad request: "+jsonProblem(err)))
		return
	}
	switch {
	case !validChannel(req.Channel):
		g.replyError(s, "", errInvalidChannel)
		return
	case !matchAny(g.opts.Presence, req.Channel):
		g.replyError(s, req.Channel, errPresenceOff)
		return
	case !g.presence.subscribed(s, req.Channel):
		g.replyError(s, req.Channel, errNotSubscribed)
		return
	case !g.channels.limiter.allow(s, 0, time.Now()):
		// A list costs the broker a read of the whole channel: it
		// counts as a publish for --publish-rate.
		g.channels.m.limited.WithLabelValues("publish_rate").Inc()
		g.replyError(s, req.Channel, errPresenceRate)
		return
	}
	ms, err := g.presence.members(s.context(), req.Channel)
	if err != nil {
		g.replyError(s, req.Channel, err)
		return
	}
	clients := make([]presenceClient, len(ms))
	for i, m := range ms {
		clients[i] = presenceClient{Client: m.Client, User: m.User}
	}
	b, _ := json.Marshal(struct {
		Type    string           `json:"type"`
		Channel string           `json:"channel"`
		Clients []presenceClient `json:"clients"`
	}{"presence", req.Channel, clients})
	s.send(duplex.MessageText, b)
}
