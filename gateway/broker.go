package gateway

import (
	"context"
	"encoding/json"
	"errors"
)

// Broker stores the messages of channels and carries them to the gateways
// that have subscribers for them. The Gateway keeps its own subscribers; a
// broker sees one subscription per channel and gateway, and never a
// WebSocket.
//
// The default broker keeps everything in the memory of one process. The
// package github.com/duplexws/duplex/gateway/redisbroker shares channels
// between processes through Redis.
//
// Offsets: every message of a channel gets an offset, an integer that grows
// by one with each message. The offsets of a channel start after a base
// taken from the clock (Unix microseconds) when its first message is
// published, so that a channel that is forgotten (its history expired, or
// the broker lost its data) and published to again gets offsets above all
// the ones it had before, and a client holding an old offset is told that
// it cannot recover (Window.Covers) instead of being handed the new
// messages as if they followed its own.
type Broker interface {
	// Publish appends data, a JSON value, to channel and returns its
	// offset. The message then reaches every subscription to channel,
	// through any gateway.
	Publish(ctx context.Context, channel string, data json.RawMessage) (offset uint64, err error)

	// History returns the messages of channel after offset since that the
	// broker still holds, oldest first. recovered reports whether they are
	// all the messages published after since (see Window.Covers). latest is
	// the offset of the channel's newest message, 0 if it has none. A
	// since of math.MaxUint64 asks for latest alone.
	History(ctx context.Context, channel string, since uint64) (msgs []Message, recovered bool, latest uint64, err error)

	// Subscribe calls deliver with the messages published to channel from
	// about now on, by any gateway, in offset order and one call at a time,
	// until stop is called; no call starts after stop returns. deliver must
	// not block: it runs on the broker's own goroutine, and may run while
	// the broker holds a lock that stop takes, so stop must not be called
	// from deliver.
	//
	// Where the stream starts is approximate, and a broker that falls too
	// far behind may skip messages: Message.Prev shows the caller both, so
	// it can fetch what it missed with History.
	Subscribe(channel string, deliver func(Message)) (stop func())

	// Healthy returns nil while the broker can store and deliver messages,
	// else why not. The gateway's /healthz answers 503, and /api/health
	// shows the error to holders of the API key.
	Healthy() error

	// Close releases the broker's resources. Publish and History fail
	// afterwards.
	Close() error
}

// Message is one message of a channel.
type Message struct {
	Channel string
	Offset  uint64

	// Prev is the offset of the channel's message before this one, or 0
	// if this is the channel's first (see Broker). A subscriber whose last
	// message is not Prev has missed messages.
	Prev uint64

	// Data is the JSON value published. It is shared by every subscriber
	// and must not be modified.
	Data json.RawMessage
}

// Window is what a broker knows of a channel, from which History decides
// whether a client can recover.
type Window struct {
	// Base is the offset before the channel's first message, 0 if the
	// channel does not exist (it has no message, or was forgotten).
	Base uint64

	// Oldest is the offset of the oldest message still held, 0 if none is.
	Oldest uint64

	// Latest is the offset of the newest message, 0 if there is none.
	Latest uint64
}

// Covers reports whether the messages held after since are every message
// published after since: since is the latest offset, or the held messages
// reach back to the one after since. A since of 0 means "from the start":
// it is covered while the channel's first message is held. An offset that
// is not of the channel's current life (below Base, or above Latest,
// because the channel was forgotten since) is never covered.
func (w Window) Covers(since uint64) bool {
	if since == 0 {
		since = w.Base
	}
	switch {
	case since == w.Latest:
		return true
	case since < w.Base || since > w.Latest:
		return false
	default:
		return w.Oldest != 0 && w.Oldest <= since+1
	}
}

// Errors of brokers.
var (
	// ErrBrokerClosed is returned by a broker's Publish and History after
	// Close.
	ErrBrokerClosed = errors.New("duplex: broker closed")

	// ErrTooManyChannels is returned by a broker's Publish when the
	// channel does not exist and the broker holds as many channels as it
	// may (the memory broker's --max-channels).
	ErrTooManyChannels = errors.New("duplex: broker channel limit reached")
)
