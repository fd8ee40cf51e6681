package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/duplexws/duplex"
)

// channelRequest is a client's subscribe, unsubscribe or publish message
// (docs/protocol.md).
type channelRequest struct {
	Type    string          `json:"type"`
	Channel string          `json:"channel"`
	Since   *uint64         `json:"since"`
	Data    json.RawMessage `json:"data"`
}

// errorReply is {"type":"error","error":E,"channel":C}.
type errorReply struct {
	Type    string `json:"type"`
	Error   string `json:"error"`
	Channel string `json:"channel,omitempty"`
}

// publishTimeout bounds a publish to the broker.
const publishTimeout = 5 * time.Second

// Errors reported to clients for channel requests.
var (
	errInvalidChannel = errors.New("invalid channel name")
	errForbidden      = errors.New("forbidden")
	errMissingData    = errors.New("publish needs data")
)

// onChannelMessage handles a subscribe, unsubscribe or publish message on
// /ws. Replies and errors go to s; a publish that succeeds has no reply of
// its own (subscribers, the publisher among them, get the message).
func (g *Gateway) onChannelMessage(s *session, p []byte) {
	var req channelRequest
	if err := json.Unmarshal(p, &req); err != nil {
		g.replyError(s, "", errors.New("bad request: "+jsonProblem(err)))
		return
	}
	if !validChannel(req.Channel) {
		g.replyError(s, "", errInvalidChannel)
		return
	}
	var err error
	switch req.Type {
	case "subscribe":
		if !s.identity().ChannelAllowed(req.Channel, false) {
			err = errForbidden
			break
		}
		err = g.clientSubscribe(s, req.Channel, req.Since) // hook, join rate, presence (presence_messages.go)
	case "unsubscribe":
		err = g.clientUnsubscribe(s, req.Channel)
	case "publish":
		if !s.identity().ChannelAllowed(req.Channel, true) {
			err = errForbidden
			break
		}
		if !g.channels.limiter.allow(s, len(req.Data), time.Now()) {
			g.channels.m.limited.WithLabelValues("publish_rate").Inc()
			err = errPublishRate
			break
		}
		if req.Data, err = g.hooks.checkPublish(s, req.Channel, req.Data); err != nil {
			break
		}
		err = g.publish(s.context(), "ws", req.Channel, req.Data)
	}
	if err != nil {
		g.replyError(s, req.Channel, err)
	}
}

// publish validates data and hands it to the broker. Its errors are
// errMissingData, errChannelLimit or errBrokerUnavailable, all fit for
// clients.
func (g *Gateway) publish(ctx context.Context, source, channel string, data json.RawMessage) error {
	_, err := g.publishOffset(ctx, source, channel, data)
	return err
}

func (g *Gateway) publishOffset(ctx context.Context, source, channel string, data json.RawMessage) (uint64, error) {
	if len(data) == 0 {
		return 0, errMissingData
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	off, err := g.channels.broker.Publish(ctx, channel, data)
	if errors.Is(err, ErrTooManyChannels) {
		g.channels.m.limited.WithLabelValues("channels").Inc()
		return 0, errChannelLimit
	}
	if err != nil {
		g.channels.m.publishFailures.Inc()
		g.log.Warn("publish failed", "channel", channel, "source", source, "error", err)
		return 0, errBrokerUnavailable
	}
	g.channels.m.published.WithLabelValues(source).Inc()
	return off, nil
}

func (g *Gateway) replyError(s *session, channel string, err error) {
	b, _ := json.Marshal(errorReply{Type: "error", Error: err.Error(), Channel: channel})
	s.send(duplex.MessageText, b)
}

// jsonProblem describes a JSON error without repeating the client's input
// at length.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field + ": want " + te.Type.String()
	}
	return "malformed JSON"
}
