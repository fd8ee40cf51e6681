package redial

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"

	"github.com/duplexws/duplex"
)

// What a duplex gateway adds to channels in issue 16 (docs/protocol.md):
// presence, join/leave events, server-side subscriptions, RPC, and the
// close code of /api/disconnect.

// StatusDisconnected is the close code of a session the server ended
// with its API's /api/disconnect. Run returns the error at once, without
// reconnecting, as after a 401 or 403.
const StatusDisconnected duplex.StatusCode = 4403

// Sender sends a message on the current connection; *Client is one.
type Sender interface {
	Send(ctx context.Context, typ duplex.MessageType, p []byte) error
}

// PresenceClient is one client subscribed to a channel.
type PresenceClient struct {
	Client string `json:"client"`
	User   string `json:"user"`
}

// PresenceEvent is a join or leave of a channel, for ChannelOptions'
// OnJoin and OnLeave.
type PresenceEvent struct {
	Channel string
	Client  string
	User    string
}

// RPCError is the error of an RPC the server answered with
// {"type":"rpc","id":N,"error":E}: the backend's (or the gateway's, such
// as "hook timeout") message.
type RPCError struct {
	Message string
}

func (e *RPCError) Error() string { return "redial: rpc: " + e.Message }

// ErrPresence is returned by Presence when the server refused the request
// (presence is not enabled for the channel, or it is not subscribed); the
// error wraps it with the server's message.
var ErrPresence = errors.New("redial: presence refused")

// Query returns the "since" parameters that resume the server-side
// subscriptions after a reconnect: one CHANNEL:OFFSET for each channel
// the server subscribed this client to on its own (a JWT's subs, the
// connect hook) whose offset is known. Use it as Options.Query.
func (cs *Channels) Query() url.Values {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	q := url.Values{}
	names := make(map[string]uint64)
	for _, m := range []map[string]*channelState{cs.prevServer, cs.server} {
		for name, st := range m {
			if st.known {
				names[name] = st.offset
			}
		}
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		q.Add("since", k+":"+strconv.FormatUint(names[k], 10))
	}
	return q
}

// ServerChannels returns the channels the server subscribed this client
// to on its own, on the current connection.
func (cs *Channels) ServerChannels() []string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make([]string, 0, len(cs.server))
	for k := range cs.server {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Presence asks the server who is subscribed to channel, on every node,
// and waits for the answer until ctx ends. The client must be subscribed
// to channel, and the server must allow presence on it (--presence).
func (cs *Channels) Presence(ctx context.Context, s Sender, channel string) ([]PresenceClient, error) {
	w := make(chan presenceResult, 1)
	cs.mu.Lock()
	cs.presenceWait[channel] = append(cs.presenceWait[channel], w)
	cs.mu.Unlock()
	defer cs.dropPresenceWaiter(channel, w)
	req, _ := json.Marshal(map[string]string{"type": "presence", "channel": channel})
	if err := s.Send(ctx, duplex.MessageText, req); err != nil {
		return nil, err
	}
	select {
	case r := <-w:
		return r.clients, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type presenceResult struct {
	clients []PresenceClient
	err     error
}

func (cs *Channels) dropPresenceWaiter(channel string, w chan presenceResult) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	ws := cs.presenceWait[channel]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(cs.presenceWait, channel)
	} else {
		cs.presenceWait[channel] = ws
	}
}

// RPC sends {"type":"rpc","id":N,"method":method,"data":data} and waits,
// until ctx ends, for the answer: its data, or an *RPCError. data is
// marshalled with encoding/json; nil sends no data. An answer lost with
// the connection never comes: give ctx a deadline.
func (cs *Channels) RPC(ctx context.Context, s Sender, method string, data any) (json.RawMessage, error) {
	var raw json.RawMessage
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("redial: rpc data: %w", err)
		}
		raw = b
	}
	w := make(chan rpcResult, 1)
	cs.mu.Lock()
	cs.rpcID++
	id := cs.rpcID
	cs.rpcWait[id] = w
	cs.mu.Unlock()
	defer func() {
		cs.mu.Lock()
		delete(cs.rpcWait, id)
		cs.mu.Unlock()
	}()
	req, _ := json.Marshal(struct {
		Type   string          `json:"type"`
		ID     uint64          `json:"id"`
		Method string          `json:"method"`
		Data   json.RawMessage `json:"data,omitempty"`
	}{"rpc", id, method, raw})
	if err := s.Send(ctx, duplex.MessageText, req); err != nil {
		return nil, err
	}
	select {
	case r := <-w:
		return r.data, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type rpcResult struct {
	data json.RawMessage
	err  error
}

// handleExtra handles the messages of issue 16 for Handle, and reports
// whether p was one.
func (cs *Channels) handleExtra(typ, channel string, p []byte) bool {
	var m struct {
		Client  string           `json:"client"`
		User    string           `json:"user"`
		Clients []PresenceClient `json:"clients"`
		ID      uint64           `json:"id"`
		Data    json.RawMessage  `json:"data"`
		Error   json.RawMessage  `json:"error"`
	}
	if json.Unmarshal(p, &m) != nil {
		return false
	}
	switch typ {
	case "join", "leave":
		f := cs.opts.OnJoin
		if typ == "leave" {
			f = cs.opts.OnLeave
		}
		if f != nil {
			f(PresenceEvent{Channel: channel, Client: m.Client, User: m.User})
		}
	case "presence":
		cs.mu.Lock()
		ws := cs.presenceWait[channel]
		delete(cs.presenceWait, channel)
		cs.mu.Unlock()
		for _, w := range ws {
			w <- presenceResult{clients: m.Clients}
		}
	case "rpc":
		cs.mu.Lock()
		w := cs.rpcWait[m.ID]
		delete(cs.rpcWait, m.ID)
		cs.mu.Unlock()
		if w == nil {
			return true
		}
		if len(m.Error) > 0 && string(m.Error) != "null" {
			var msg string
			if json.Unmarshal(m.Error, &msg) != nil {
				msg = string(m.Error)
			}
			w <- rpcResult{err: &RPCError{Message: msg}}
		} else {
			w <- rpcResult{data: m.Data}
		}
	case "unsubscribed":
		cs.mu.Lock()
		delete(cs.server, channel)
		delete(cs.prevServer, channel)
		delete(cs.subs, channel)
		cs.mu.Unlock()
		if cs.opts.OnUnsubscribed != nil {
			cs.opts.OnUnsubscribed(channel)
		}
	default:
		return false
	}
	return true
}

// presenceRefused completes the presence requests waiting on channel with
// the server's error, when it is one a presence request gets.
func (cs *Channels) presenceRefused(channel, msg string) {
	if msg != "presence not enabled for this channel" && msg != "not subscribed" {
		return
	}
	cs.mu.Lock()
	ws := cs.presenceWait[channel]
	delete(cs.presenceWait, channel)
	cs.mu.Unlock()
	for _, w := range ws {
		w <- presenceResult{err: fmt.Errorf("%w: %s", ErrPresence, msg)}
	}
}

// withQuery adds q's parameters to u's query.
func withQuery(u string, q url.Values) string {
	if len(q) == 0 {
		return u
	}
	pu, err := url.Parse(u)
	if err != nil {
		return u
	}
	all := pu.Query()
	for k, vs := range q {
		for _, v := range vs {
			all.Add(k, v)
		}
	}
	pu.RawQuery = all.Encode()
	return pu.String()
}
