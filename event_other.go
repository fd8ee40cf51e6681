//go:build !linux

package duplex

import (
	"context"
	"errors"
	"net"
)

// errNoEventLoop is what the event-driven API returns where there is no
// event loop: it is built on epoll, so Linux only.
var errNoEventLoop = errors.New("duplex: the event loop (Detach, ServeEvents) needs Linux")

// EventConn is a WebSocket connection served by the event loop; see
// Conn.Detach. On this platform there is none: Detach and ServeEvents
// return an error, so no EventConn exists.
type EventConn struct{}

// eventServer is the state ServeEvents shares between its connections.
type eventServer struct{}

// EventServer accepts WebSocket connections in the event loop; see
// ServeEvents.
type EventServer struct{}

// Detach hands c to the event loop. It needs Linux; here it returns an
// error and c is unchanged.
func (c *Conn) Detach(h *EventHandler) (*EventConn, error) { return nil, errNoEventLoop }

// DetachValue is Detach with a value; here it returns an error.
func (c *Conn) DetachValue(h *EventHandler, v any) (*EventConn, error) {
	return nil, errNoEventLoop
}

// ServeEvents serves connections entirely in the event loop. It needs
// Linux; here it returns an error.
func ServeEvents(ln net.Listener, h *EventHandler, opts *EventServerOptions) (*EventServer, error) {
	return nil, errNoEventLoop
}

// Close stops accepting.
func (s *EventServer) Close() error { return errNoEventLoop }

func (c *EventConn) Subprotocol() string  { return "" }
func (c *EventConn) Extensions() string   { return "" }
func (c *EventConn) Value() any           { return nil }
func (c *EventConn) SetValue(v any)       {}
func (c *EventConn) SetReadLimit(n int64) {}
func (c *EventConn) RemoteAddr() net.Addr { return nil }
func (c *EventConn) CloseNow() error      { return errNoEventLoop }
func (c *EventConn) Close(code StatusCode, reason string) error {
	return errNoEventLoop
}
func (c *EventConn) Write(ctx context.Context, typ MessageType, p []byte) error {
	return errNoEventLoop
}
func (c *EventConn) WriteCompressed(ctx context.Context, typ MessageType, p []byte, compress bool) error {
	return errNoEventLoop
}
func (c *EventConn) Ping(ctx context.Context, payload []byte) error { return errNoEventLoop }
func (c *EventConn) WritePrepared(ctx context.Context, pm *PreparedMessage) error {
	return errNoEventLoop
}
func (c *EventConn) TryWrite(typ MessageType, p []byte) (bool, error) {
	return false, errNoEventLoop
}
func (c *EventConn) TryPing(payload []byte) (bool, error) { return false, errNoEventLoop }
