package duplex

import (
	"errors"
	"net/http"
	"time"
)

// EventHandler receives the events of connections handed to the event
// loop with Detach. The functions run on the loop's worker goroutines:
// OnMessage and OnPong are never called concurrently for one connection,
// and p is valid only until they return. Any of them may be nil. One
// handler may serve any number of connections; it must not change once
// in use.
type EventHandler struct {
	// OnOpen is called for each connection that ServeEvents accepts,
	// before its first message. (Detach returns its EventConn instead.)
	OnOpen    func(c *EventConn)
	OnMessage func(c *EventConn, typ MessageType, p []byte)
	OnPong    func(c *EventConn, p []byte)
	// OnClose is called once, on a goroutine of its own, when the
	// connection has ended, with its *CloseError. After a protocol
	// failure, or for a client after the close handshake, the socket may
	// stay open a little longer, until the peer closes it (at most the
	// close timeout; see the package doc).
	OnClose func(c *EventConn, err error)

	srv *eventServer // set in ServeEvents' copy
}

// ErrDetached is the Err of the CloseError that a Conn returns once it has
// been handed to the event loop.
var ErrDetached = errors.New("duplex: connection detached to the event loop")

// EventServerOptions configures ServeEvents. A nil *EventServerOptions
// means the defaults each field documents.
type EventServerOptions struct {
	// AcceptOptions apply to every handshake, as they do for Accept.
	AcceptOptions

	// Check, when set, sees every valid handshake request before it is
	// accepted, to authenticate it. It returns status 0 to accept, with a
	// value to keep with the connection (the user it authenticated, say:
	// EventConn.Value returns it), or an HTTP status (401, 403, ...) and a
	// short reason to refuse. It runs on an event-loop goroutine, so it
	// should not block long. It costs an http.Request per handshake, which
	// the loop otherwise does without.
	Check func(r *http.Request) (value any, status int, reason string)

	// HandshakeTimeout bounds the time from the TCP accept to the end of
	// the request. Default: 10s.
	HandshakeTimeout time.Duration
}
