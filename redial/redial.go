// Package redial keeps a WebSocket client connection up: it reconnects with
// exponential backoff, runs a hook on every connect, detects a dead peer
// with pings, and queues outgoing messages while it is disconnected.
//
//	c := redial.New("wss://example.com/ws", &redial.Options{
//		OnConnect: func(ctx context.Context, conn *duplex.Conn) error {
//			return conn.Write(ctx, duplex.MessageText, []byte(`{"subscribe":"news"}`))
//		},
//		OnMessage: func(typ duplex.MessageType, p []byte) { fmt.Printf("%s\n", p) },
//	})
//	c.Send(ctx, duplex.MessageText, []byte("hello")) // queued until connected
//	err := c.Run(ctx) // until ctx ends, Close, or a 401/403
//
// # Delivery
//
// Messages given to Send are written in order, one connection at a time, and
// a message leaves the queue only once Conn.Write has returned nil for it: a
// message whose Write failed (so the peer cannot have read it whole) is
// written again on the next connection, and one whose Write succeeded is
// never written again. A successful Write only means the bytes reached
// the operating system, though: if the connection dies right after, the peer
// may never read them, and the client cannot know. Transport-level delivery
// is therefore at most once per message. When every message must arrive,
// have the peer acknowledge them and resend the unacknowledged ones from
// OnConnect, deduplicating by an ID at the application layer.
package redial

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex"
)

// Errors returned by Client.
var (
	// ErrQueueFull is returned by Send when the queue stayed full until its
	// context ended.
	ErrQueueFull = errors.New("redial: send queue full")

	// ErrClosed is returned by Send and Flush once Close was called or Run
	// has returned, and by Run when Close was called before it.
	ErrClosed = errors.New("redial: client closed")
)

// Options configures a Client. A nil *Options means the defaults each field
// documents.
type Options struct {
	// Dial is passed to duplex.Dial on every attempt. Default: nil.
	Dial *duplex.DialOptions

	// HandshakeTimeout bounds each dial, TCP to the end of the WebSocket
	// handshake. Default: 10s.
	HandshakeTimeout time.Duration

	// MinDelay is the base of the backoff: after the n-th failure in a row
	// (counting from 0) the client waits a uniformly random time in
	// [0, min(MaxDelay, MinDelay·2ⁿ)) ("full jitter"), so clients cut off
	// together do not come back together. Default: 500ms.
	MinDelay time.Duration

	// MaxDelay caps the backoff. It also decides when the backoff starts
	// over: after a connection that stayed up at least this long.
	// Default: 30s.
	MaxDelay time.Duration

	// OnConnect runs on every connect and reconnect, after the handshake
	// and before the client reads or sends queued messages, so it can
	// re-authenticate or resubscribe, and may Read the connection to wait
	// for a reply. An error closes the connection and counts as a failed
	// attempt. ctx ends when Run's context does or Close is called.
	OnConnect func(ctx context.Context, c *duplex.Conn) error

	// PingInterval is how often the heartbeat pings the peer; a pong
	// missing for PingTimeout means the peer is gone, and the client
	// reconnects. Zero means the default, 25s; negative turns the
	// heartbeat off.
	PingInterval time.Duration

	// PingTimeout is how long to wait for a pong. Default: 10s.
	PingTimeout time.Duration

	// QueueSize bounds the messages Send may queue. Default: 1024.
	QueueSize int

	// OnMessage receives every message read, from one goroutine at a time.
	// While it runs nothing is read, pings included: hand long work off.
	OnMessage func(typ duplex.MessageType, p []byte)

	// OnState reports every change of state with its cause: for
	// StateDisconnected the error that ended the connection or the dial,
	// for StateStopped what Run returns.
	OnState func(s State, err error)

	// URLs are more servers of the same service, such as the nodes of a
	// gateway cluster. The client starts with the url given to New and,
	// after every failed dial or lost connection, moves to the next URL
	// of url, URLs[0], URLs[1], …, round and round. Default: none.
	URLs []string

	// Token, when set, supplies the bearer token of a duplex gateway
	// session that expires with its JWT (docs/protocol.md, "Token
	// lifetime"), and so keeps the session up. It is called
	//
	//   - before the first dial, and before any dial after the server
	//     closed with 4401 (token expired, or refresh refused) or when the
	//     token held is within RefreshBefore of its exp: the token goes in
	//     the URL's "token" query parameter if the URL has one, else in an
	//     "Authorization: Bearer" header;
	//   - RefreshBefore before the exp of the token in use, while
	//     connected: its token is sent as {"type":"refresh","token":T}.
	//
	// exp is read from the JWT without checking it: only the server
	// decides. The server's {"type":"refreshed"} answers are not passed
	// to OnMessage. A dial refused with 401 or 403 stops Run only when
	// its token came from Token for that dial: a token kept from an
	// earlier connection is replaced and the dial tried again. An error fails the dial (retried with backoff) or,
	// while connected, is retried every 5s until the server closes with
	// 4401. Calls come from one goroutine at a time.
	Token func(ctx context.Context) (string, error)

	// RefreshBefore is how long before its exp a token is replaced.
	// Default: 1m.
	RefreshBefore time.Duration

	// Query, when set, is called before every dial; its parameters are
	// added to the URL's query. Channels.Query gives the "since"
	// parameters that resume server-side subscriptions.
	Query func() url.Values
}

// State is where a Client stands.
type State int

// The states a Client goes through. It starts in StateConnecting, and
// moves between StateConnected and StateDisconnected until StateStopped.
const (
	StateConnecting   State = iota // dialing
	StateConnected                 // handshake done and OnConnect succeeded
	StateDisconnected              // a dial or connection failed; waiting to retry
	StateStopped                   // Run is returning
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	case StateStopped:
		return "stopped"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Client is a connection that reconnects. Send, Flush and Close are safe
// from any goroutine; Run is called once.
type Client struct {
	url  string
	opts Options

	ran     atomic.Bool
	stopCtx context.Context // ends when Close is called
	stop    context.CancelFunc
	done    chan struct{} // closed when Run returns

	mu      sync.Mutex
	queue   []message     // guarded by mu; the head is the next to write
	queued  uint64        // guarded by mu; messages ever queued
	written uint64        // guarded by mu; messages ever written
	changed chan struct{} // guarded by mu; closed and replaced when the queue shrinks
	ready   chan struct{} // one slot: the queue has grown

	tokenMu   sync.Mutex
	token     string    // guarded by tokenMu; the last one Token returned
	tokenExp  time.Time // guarded by tokenMu; its exp, zero if none
	needToken bool      // guarded by tokenMu; the server refused token

	dialedFresh bool // used by Run only; the last dial's token came from Token just then
}

type message struct {
	typ duplex.MessageType
	p   []byte
}

// New returns a client for url (ws, wss, http or https), and for
// Options.URLs. Nothing happens until Run.
func New(url string, opts *Options) *Client {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.MinDelay <= 0 {
		o.MinDelay = 500 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 30 * time.Second
	}
	if o.MaxDelay < o.MinDelay {
		o.MaxDelay = o.MinDelay
	}
	if o.PingInterval == 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 10 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	if o.RefreshBefore <= 0 {
		o.RefreshBefore = time.Minute
	}
	o.URLs = append([]string(nil), o.URLs...)
	c := &Client{
		url:     url,
		opts:    o,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
		ready:   make(chan struct{}, 1),
	}
	c.stopCtx, c.stop = context.WithCancel(context.Background())
	return c
}

// Send queues a copy of p to be written as one message of type typ, in
// order, on the current connection or the next one. It does not wait for
// the write. When the queue is full it waits for room until ctx ends and
// then returns an error that matches both ErrQueueFull and ctx.Err(); pass
// a context that is already done to never wait.
func (c *Client) Send(ctx context.Context, typ duplex.MessageType, p []byte) error {
	if typ != duplex.MessageText && typ != duplex.MessageBinary {
		return fmt.Errorf("redial: invalid message type %d", typ)
	}
	m := message{typ: typ, p: append([]byte(nil), p...)}
	for {
		if c.stopped() {
			return ErrClosed
		}
		c.mu.Lock()
		if len(c.queue) < c.opts.QueueSize {
			c.queue = append(c.queue, m)
			c.queued++
			c.mu.Unlock()
			select {
			case c.ready <- struct{}{}:
			default:
			}
			return nil
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrQueueFull, ctx.Err())
		case <-c.stopCtx.Done():
		case <-c.done:
		}
	}
}

// Flush waits until every message queued before the call has been
// written. It returns ctx.Err() if ctx ends first and ErrClosed if the
// client stops first.
func (c *Client) Flush(ctx context.Context) error {
	c.mu.Lock()
	target := c.queued
	c.mu.Unlock()
	for {
		c.mu.Lock()
		written, changed := c.written, c.changed
		c.mu.Unlock()
		if written >= target {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.stopCtx.Done():
			return ErrClosed
		case <-c.done:
			return ErrClosed
		}
	}
}

// Close stops the client: Send returns ErrClosed from now on, the current
// connection, if any, is closed with StatusNormalClosure, and Run returns
// nil once the close handshake is over. Messages that arrive during the
// handshake still reach OnMessage, except any that duplex.Conn.Close reads
// itself, which it discards: it does so when it finds no Read in progress,
// as happens while OnMessage runs. Messages still queued are dropped; call
// Flush first to send them. Close does not wait for Run to return.
func (c *Client) Close() { c.stop() }

func (c *Client) stopped() bool {
	select {
	case <-c.stopCtx.Done():
		return true
	case <-c.done:
		return true
	default:
		return false
	}
}

// peek returns the next message to write.
func (c *Client) peek() (message, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		return message{}, false
	}
	return c.queue[0], true
}

// pop removes the message peek returned, once it has been written.
func (c *Client) pop() {
	c.mu.Lock()
	c.queue[0] = message{}
	c.queue = c.queue[1:]
	c.written++
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *Client) setState(s State, err error) {
	if c.opts.OnState != nil {
		c.opts.OnState(s, err)
	}
}

// permanent reports whether retrying cannot fix err: the server refused
// our credentials (401) or our access (403).
func permanent(err error) bool {
	var he *duplex.HandshakeError
	return errors.As(err, &he) &&
		(he.StatusCode == http.StatusUnauthorized || he.StatusCode == http.StatusForbidden)
}

// disconnected reports whether the server ended the session for good,
// with its API's /api/disconnect (StatusDisconnected).
func disconnected(err error) bool {
	return duplex.CloseStatus(err) == StatusDisconnected
}

// checkURL rejects URLs no retry can make work.
func checkURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("redial: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "ws", "wss", "http", "https":
	default:
		return fmt.Errorf("redial: unsupported URL scheme %q (want ws, wss, http or https)", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("redial: URL %q has no host", rawURL)
	}
	return nil
}
