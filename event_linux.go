//go:build linux

package duplex

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/duplexws/duplex/internal/deflate"
	"github.com/duplexws/duplex/internal/wire"
)

// EventConn is a WebSocket connection served by the event loop (epoll on
// Linux) instead of a goroutine: see Conn.Detach and ServeEvents. While
// idle it holds a few dozen bytes: no goroutine, no buffer and no Go
// network descriptor, only its socket's file descriptor. Its messages
// arrive in EventHandler.OnMessage, checked by the same engine as Read,
// with the same close codes, at the same byte. A compressed message is
// inflated as its bytes arrive, as Read does, so corrupt data (1007) or
// an inflated size past the read limit (1009) ends the connection at the
// byte that shows it; a message longer on the wire than the read limit
// plus deflate's worst expansion (limit/64 + 1 KiB) is refused with 1009
// at its header. The message is delivered whole, inflated, when its last
// frame has arrived; until then, as for a Conn, it holds an inflater
// from a pool (about 45 KB) besides the bytes inflated so far.
//
// Write, Ping and Close may be called from any goroutine, including from
// inside the handler's functions; messages never interleave. TryWrite,
// TryPing and TryWritePreparedBatch never wait: when the socket is full
// they return ErrWouldBlock, for a program that keeps its own queue and
// writes from a few goroutines of its own.
type EventConn struct {
	fd    int32
	flags uint32       // evClient, evDeflate; set before the loop sees c
	state atomic.Int64 // users, and the st* bits
	limit atomic.Int64
	h     *EventHandler
	wmu   sync.Mutex // held while a frame goes out
	end   atomic.Pointer[CloseError]
	x     atomic.Pointer[eventExtra] // nil for a connection with nothing extra; never changed in place
	rs    *eventRead                 // owned by the worker with stReading; nil between messages
	v     atomic.Pointer[any]        // SetValue's; nil until it is called
	rest  *[]byte                    // guarded by wmu: the unwritten end of a frame a Try call began; nil when none
}

// eventExtra is what only some connections need, set before the loop sees
// the connection and never changed in place.
type eventExtra struct {
	subprotocol  string
	extensions   string
	closeTimeout time.Duration
	comp         *deflate.Compressor   // guarded by wmu
	decomp       *deflate.Decompressor // used by the reading worker
	threshold    int
}

// shareExtra returns a shared eventExtra equal to x when x holds no state
// of its own connection: connections with the same subprotocol, close
// timeout and negotiation, compressed without context takeover (whose
// compressor and decompressor are shared, see newDecompressor) or not at
// all, then keep one between them. At most sharedExtraMax values are
// kept; beyond, x is used as it is.
func shareExtra(x *eventExtra) *eventExtra {
	if x.comp != nil && !x.comp.Stateless() || x.decomp != nil && !x.decomp.Shared() {
		return x
	}
	if s, ok := sharedExtras.Load(*x); ok {
		return s.(*eventExtra)
	}
	if sharedExtraCount.Load() >= sharedExtraMax {
		return x
	}
	s, loaded := sharedExtras.LoadOrStore(*x, x)
	if !loaded {
		sharedExtraCount.Add(1)
	}
	return s.(*eventExtra)
}

var (
	sharedExtras     sync.Map // eventExtra -> *eventExtra
	sharedExtraCount atomic.Int32
)

const sharedExtraMax = 256

const (
	evClient = 1 << iota
	evDeflate
	evListener // a listening socket of ServeEvents
)

// Detach hands c to a shared event loop (epoll on Linux) and returns the
// EventConn that replaces it, so the calling goroutine, typically an HTTP
// handler, can return. From then on the connection costs no goroutine and
// no buffer while idle; when bytes arrive a worker reads the messages that
// are there, with the same checks as Read, and calls h.OnMessage.
//
// c must be idle: no Read, Reader or Writer in progress. Afterwards c's
// methods return a CloseError wrapping ErrDetached; use the EventConn.
// Detach works for plain TCP connections, from Accept or Dial, on Linux;
// for TLS, HTTP/2 or other platforms it returns an error and c is
// unchanged.
func (c *Conn) Detach(h *EventHandler) (*EventConn, error) {
	return c.detach(h, nil)
}

// DetachValue is Detach with v stored as the EventConn's Value before the
// loop can call a function of h for it, so a handler never finds the
// program's state missing.
func (c *Conn) DetachValue(h *EventHandler, v any) (*EventConn, error) {
	return c.detach(h, &v)
}

func (c *Conn) detach(h *EventHandler, v *any) (*EventConn, error) {
	tcp, ok := c.tr.(*net.TCPConn)
	if !ok {
		return nil, errors.New("duplex: Detach needs a plain TCP connection")
	}
	if h == nil {
		h = &EventHandler{}
	}
	p, err := sharedPoller()
	if err != nil {
		return nil, err
	}
	if err := c.acquireRead(); err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := c.lock(ctx, c.msgSem); err != nil {
		unlock(c.readSem)
		return nil, err
	}
	if err := c.lock(ctx, c.frameSem); err != nil {
		unlock(c.msgSem)
		unlock(c.readSem)
		return nil, err
	}
	fail := func(err error) (*EventConn, error) {
		unlock(c.frameSem)
		unlock(c.msgSem)
		unlock(c.readSem)
		return nil, err
	}
	if !c.msgDone || !c.ps.idle() {
		return fail(errors.New("duplex: Detach in the middle of a message"))
	}
	if err := c.writeAllowed(); err != nil {
		return fail(err)
	}
	if e := c.readClosed(); e != nil {
		return fail(e)
	}
	// The event loop gets a descriptor of its own for the socket, so the
	// net.TCPConn and everything behind it can go.
	fd, err := dupNonblock(tcp)
	if err != nil {
		return fail(err)
	}
	ec := &EventConn{fd: int32(fd), h: h}
	if v != nil && *v != nil {
		ec.v.Store(v)
	}
	ec.limit.Store(c.readLimit.Load())
	if c.client {
		ec.flags |= evClient
	}
	if c.decomp != nil {
		ec.flags |= evDeflate
	}
	if c.subprotocol != "" || c.extensions != "" || c.closeTimeout != defaultCloseTimeout || c.comp != nil || c.decomp != nil {
		ec.x.Store(shareExtra(&eventExtra{
			subprotocol: c.subprotocol, extensions: c.extensions, closeTimeout: c.closeTimeout,
			comp: c.comp, decomp: c.decomp, threshold: c.threshold,
		}))
	}
	// Bytes already read past the handshake or the last message.
	var leftover []byte
	if n := c.rd.buffered(); n > 0 {
		leftover = append([]byte(nil), c.rd.buf[c.rd.r:c.rd.w]...)
		c.rd.r = c.rd.w
	}
	c.rd.release()
	c.comp, c.decomp = nil, nil
	c.setErr(&CloseError{Code: StatusAbnormalClosure, Sent: true, Err: ErrDetached})
	c.readOver.Store(true)
	c.closeTransport() // closes our net.TCPConn, not the socket: fd still refers to it
	// The semaphores stay taken: c is done with.

	if leftover != nil {
		ec.rs = newEventRead()
		ec.rs.ps = ec.newParser()
		ec.rs.pending = append(ec.rs.pending, leftover...)
	}
	if err := p.Add(fd, ec); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	if leftover != nil {
		go ec.onReadable(false)
	}
	return ec, nil
}

// dupNonblock returns a non-blocking descriptor of its own for the socket
// of conn.
func dupNonblock(conn syscall.Conn) (int, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := raw.Control(func(f uintptr) {
		fd, err = syscall.Dup(int(f))
		if err == nil {
			syscall.CloseOnExec(fd)
			if err = syscall.SetNonblock(fd, true); err != nil {
				syscall.Close(fd)
			}
		}
	})
	if err == nil {
		err = cerr
	}
	return fd, err
}

// Subprotocol returns the subprotocol agreed in the handshake, or "".
func (c *EventConn) Subprotocol() string {
	if x := c.x.Load(); x != nil {
		return x.subprotocol
	}
	return ""
}

// Extensions returns the Sec-WebSocket-Extensions value agreed in the
// handshake, or "".
func (c *EventConn) Extensions() string {
	if x := c.x.Load(); x != nil {
		return x.extensions
	}
	return ""
}

// Value returns what SetValue stored, or nil.
func (c *EventConn) Value() any {
	if v := c.v.Load(); v != nil {
		return *v
	}
	return nil
}

// SetValue stores v with the connection, for the program's own state
// (a session, a user id), so it needs no map from connections to it. It
// is safe to call from any goroutine; it costs the 16 bytes of v's box.
func (c *EventConn) SetValue(v any) {
	c.v.Store(&v)
}

// SetReadLimit is Conn.SetReadLimit.
func (c *EventConn) SetReadLimit(n int64) { c.limit.Store(n) }

// RemoteAddr returns the peer's address, or nil once the connection has
// ended. It asks the kernel: the connection does not keep it.
func (c *EventConn) RemoteAddr() net.Addr {
	if !c.acquire() {
		return nil
	}
	defer c.release()
	sa, err := syscall.Getpeername(int(c.fd))
	if err != nil {
		return nil
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: a.Addr[:], Port: a.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: a.Addr[:], Port: a.Port}
	}
	return nil
}

func (c *EventConn) closeTimeout() time.Duration {
	if x := c.x.Load(); x != nil {
		return x.closeTimeout
	}
	return defaultCloseTimeout
}

// Write sends p as one message of type typ, compressed when
// permessage-deflate was negotiated and p is at least the compression
// threshold. It returns once the message is in the socket's buffer. When
// that buffer is full it waits, until ctx ends: then the connection is
// dropped, as the message was cut.
func (c *EventConn) Write(ctx context.Context, typ MessageType, p []byte) error {
	x := c.x.Load()
	return c.write(ctx, typ, p, x != nil && wantCompress(x.comp, x.threshold, len(p)))
}

// WriteCompressed is Conn.WriteCompressed.
func (c *EventConn) WriteCompressed(ctx context.Context, typ MessageType, p []byte, compress bool) error {
	x := c.x.Load()
	return c.write(ctx, typ, p, compress && x != nil && x.comp != nil)
}

func (c *EventConn) write(ctx context.Context, typ MessageType, p []byte, compress bool) error {
	if err := checkType(typ); err != nil {
		return err
	}
	return c.transmit(ctx, wire.Opcode(typ), p, compress, nil, false)
}

// Ping sends a ping with payload (at most 125 bytes) and returns once it
// is sent; the answer reaches EventHandler.OnPong. (Conn.Ping, which has a
// goroutine to block, waits for the pong instead.)
func (c *EventConn) Ping(ctx context.Context, payload []byte) error {
	if len(payload) > wire.MaxControlPayload {
		return errors.New("duplex: ping payload longer than 125 bytes")
	}
	return c.transmit(ctx, wire.OpPing, payload, false, nil, false)
}

// Close sends a close frame with code and reason and returns. The
// connection ends when the peer answers, or after the close timeout;
// messages that arrive before the answer still reach OnMessage, and
// OnClose reports the end. Calling Close again does nothing.
func (c *EventConn) Close(code StatusCode, reason string) error {
	payload, err := closePayload(code, reason)
	if err != nil {
		return err
	}
	c.end.CompareAndSwap(nil, &CloseError{Code: code, Reason: reason, Sent: true, Err: net.ErrClosed})
	if c.sendClose(payload) {
		time.AfterFunc(c.closeTimeout(), func() {
			c.kill(&CloseError{Code: code, Reason: reason, Sent: true, Err: ErrCloseTimeout})
		})
	}
	return nil
}

// CloseNow drops the connection at once, without a close handshake.
func (c *EventConn) CloseNow() error {
	c.kill(&CloseError{Code: StatusAbnormalClosure, Sent: true, Err: net.ErrClosed})
	return nil
}

// sendClose sends our close frame once; it reports whether this call did.
func (c *EventConn) sendClose(p []byte) bool {
	ctx, cancel := context.WithTimeout(context.Background(), c.closeTimeout())
	defer cancel()
	return c.transmit(ctx, wire.OpClose, p, false, nil, true) == nil
}

// WritePrepared sends pm as one message, like Write; see PreparedMessage.
func (c *EventConn) WritePrepared(ctx context.Context, pm *PreparedMessage) error {
	var comp *deflate.Compressor
	threshold := 0
	if x := c.x.Load(); x != nil {
		comp, threshold = x.comp, x.threshold
	}
	frame, compress, err := pm.encodedFor(c.flags&evClient != 0, comp, threshold)
	if err != nil {
		return err
	}
	if frame == nil {
		return c.write(ctx, pm.typ, pm.data, compress)
	}
	return c.transmit(ctx, 0, nil, false, frame, false)
}
