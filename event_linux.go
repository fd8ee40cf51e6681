//go:build linux

package duplex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/duplexws/duplex/internal/deflate"
	"github.com/duplexws/duplex/internal/netpoll"
	"github.com/duplexws/duplex/internal/utf8"
	"github.com/duplexws/duplex/internal/wire"
)

// EventConn is a WebSocket connection served by the event loop (epoll on
// Linux) instead of a goroutine: see Conn.Detach. While idle it holds a
// few dozen bytes: no goroutine, no buffer and no Go network descriptor,
// only its socket's file descriptor. Its messages arrive in
// EventHandler.OnMessage, with the same checks and close codes as Read,
// with two differences for compressed messages, which the loop inflates
// once they are whole, where Read inflates as bytes arrive: corrupt data
// or an inflated size past the read limit is found at the message's end
// (if the peer stops before it, the ending is that, not 1007 or 1009),
// and a message longer on the wire than the read limit plus deflate's
// worst expansion (limit/64 + 1 KiB) is refused with 1009 at once.
//
// Write, Ping and Close may be called from any goroutine, including from
// inside the handler's functions; messages never interleave.
type EventConn struct {
	fd    int32
	flags uint32       // evClient, evDeflate; set before the loop sees c
	state atomic.Int64 // users, and the st* bits
	limit atomic.Int64
	h     *EventHandler
	wmu   sync.Mutex // held while a frame goes out
	end   atomic.Pointer[CloseError]
	x     atomic.Pointer[eventExtra] // nil for a connection with nothing extra
	rs    *eventRead                 // owned by the worker with stReading; nil between messages
}

// eventExtra is what only some connections need. It is never changed in
// place: SetValue swaps in a copy.
type eventExtra struct {
	subprotocol  string
	extensions   string
	closeTimeout time.Duration
	comp         *deflate.Compressor   // guarded by wmu
	decomp       *deflate.Decompressor // used by the reading worker
	threshold    int
	value        any
}

// eventRead is the reading state of a connection between reads: an
// incomplete frame header or control frame, or a data message that has
// not all arrived. Connections between messages hold none.
type eventRead struct {
	pending []byte      // the start of a header or control frame
	hdr     wire.Header // the data frame in progress, when inFrame
	inFrame bool
	left    int64 // payload bytes of that frame still to come
	maskPos int
	msg     msgState
	text    utf8.Validator
	data    []byte // the message so far, unmasked (compressed if msg.rsv1)
}

const (
	evClient = 1 << iota
	evDeflate
	evListener // a listening socket of ServeEvents
)

// The state word: the count of goroutines using the file descriptor in
// its low 32 bits, then flags. The descriptor is closed when stClosing is
// set and the count drops to zero, so no number is used after it is
// closed (and perhaps reused by another connection).
const (
	refMask     = 1<<32 - 1
	stClosing   = 1 << 32 // no new users; the last one out closes
	stReading   = 1 << 33 // a worker is reading
	stCloseSent = 1 << 34 // our close frame went out; set under wmu
	stReadOver  = 1 << 35 // the peer failed: input is dropped until EOF
	stNotified  = 1 << 36 // OnClose has been called
	stHandshake = 1 << 37 // ServeEvents is reading the HTTP request
	stEdge      = 1 << 38 // the poller reports every arrival (netpoll Follow)
	stAgain     = 1 << 39 // bytes arrived while a worker was reading
	stHup       = 1 << 40 // the peer hung up: read until EOF, not a short read
)

var (
	pollerOnce sync.Once
	poller     *netpoll.Poller[EventConn]
	pollerErr  error
)

func sharedPoller() (*netpoll.Poller[EventConn], error) {
	pollerOnce.Do(func() { poller, pollerErr = netpoll.New((*EventConn).onReadable) })
	return poller, pollerErr
}

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
	ec.limit.Store(c.readLimit.Load())
	if c.client {
		ec.flags |= evClient
	}
	if c.decomp != nil {
		ec.flags |= evDeflate
	}
	if c.subprotocol != "" || c.extensions != "" || c.closeTimeout != defaultCloseTimeout || c.comp != nil || c.decomp != nil {
		ec.x.Store(&eventExtra{
			subprotocol: c.subprotocol, extensions: c.extensions, closeTimeout: c.closeTimeout,
			comp: c.comp, decomp: c.decomp, threshold: c.threshold,
		})
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
	if x := c.x.Load(); x != nil {
		return x.value
	}
	return nil
}

// SetValue stores v with the connection, for the program's own state
// (a session, a user id), so it needs no map from connections to it.
func (c *EventConn) SetValue(v any) {
	for {
		old := c.x.Load()
		var x eventExtra
		if old != nil {
			x = *old
		} else {
			x.closeTimeout = defaultCloseTimeout
		}
		x.value = v
		if c.x.CompareAndSwap(old, &x) {
			return
		}
	}
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

// acquire registers a user of the descriptor; it fails once the
// connection is closing.
func (c *EventConn) acquire() bool {
	for {
		s := c.state.Load()
		if s&stClosing != 0 {
			return false
		}
		if c.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// release ends a use; the last user of a closing connection closes it.
func (c *EventConn) release() {
	if s := c.state.Add(-1); s&refMask == 0 && s&stClosing != 0 {
		c.destroy()
	}
}

// kill ends the connection now, recording e unless an ending is already
// known. The socket is shut down at once, waking a writer blocked on it;
// the descriptor is closed when its last user leaves.
func (c *EventConn) kill(e *CloseError) {
	c.end.CompareAndSwap(nil, e)
	if !c.acquire() {
		return
	}
	c.state.Or(stClosing)
	syscall.Shutdown(int(c.fd), syscall.SHUT_RDWR)
	c.release()
}

// destroy runs once, when the connection is closing and unused.
func (c *EventConn) destroy() {
	if p, _ := sharedPoller(); p != nil {
		p.Remove(int(c.fd), c)
	}
	syscall.Close(int(c.fd))
	if x := c.x.Load(); x != nil && x.decomp != nil {
		x.decomp.Done()
	}
	c.notify()
}

// notify calls OnClose, once.
func (c *EventConn) notify() {
	if c.state.Or(stNotified)&stNotified == 0 && c.h.OnClose != nil {
		go c.h.OnClose(c, c.endErr())
	}
}

// endErr is the connection's CloseError, for calls made after its end.
func (c *EventConn) endErr() error {
	if e := c.end.Load(); e != nil {
		return e
	}
	return &CloseError{Code: StatusAbnormalClosure, Err: net.ErrClosed}
}

// Write sends p as one message of type typ, compressed when
// permessage-deflate was negotiated and p is at least the compression
// threshold. It returns once the message is in the socket's buffer. When
// that buffer is full it waits, until ctx ends: then the connection is
// dropped, as the message was cut.
func (c *EventConn) Write(ctx context.Context, typ MessageType, p []byte) error {
	x := c.x.Load()
	return c.write(ctx, typ, p, x != nil && x.comp != nil && len(p) >= x.threshold)
}

// WriteCompressed is Conn.WriteCompressed.
func (c *EventConn) WriteCompressed(ctx context.Context, typ MessageType, p []byte, compress bool) error {
	x := c.x.Load()
	return c.write(ctx, typ, p, compress && x != nil && x.comp != nil)
}

func (c *EventConn) write(ctx context.Context, typ MessageType, p []byte, compress bool) error {
	if typ != MessageText && typ != MessageBinary {
		return fmt.Errorf("duplex: invalid message type %d", typ)
	}
	if !compress {
		return c.writeFrame(ctx, wire.Opcode(typ), 0, p, false)
	}
	if !c.acquire() {
		return c.endErr()
	}
	defer c.release()
	bp := getWriteBuf()
	defer putWriteBuf(bp)
	// The compressor is guarded by wmu: compress and send in one hold.
	c.wmu.Lock()
	out, err := c.x.Load().comp.Compress((*bp)[:0], p)
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("duplex: compress: %w", err)
	}
	return c.writeFrame(ctx, wire.Opcode(typ), wire.RSV1, out, false)
}

// Ping sends a ping with payload (at most 125 bytes); the answer reaches
// EventHandler.OnPong.
func (c *EventConn) Ping(ctx context.Context, payload []byte) error {
	if len(payload) > wire.MaxControlPayload {
		return errors.New("duplex: ping payload longer than 125 bytes")
	}
	return c.writeFrame(ctx, wire.OpPing, 0, payload, false)
}

// Close sends a close frame with code and reason and returns. The
// connection ends when the peer answers, or after the close timeout;
// messages that arrive before the answer still reach OnMessage, and
// OnClose reports the end. Calling Close again does nothing.
func (c *EventConn) Close(code StatusCode, reason string) error {
	if !wire.ValidCloseCode(uint16(code)) {
		return fmt.Errorf("duplex: close code %d may not be sent", code)
	}
	if len(reason) > wire.MaxControlPayload-2 {
		return fmt.Errorf("duplex: close reason longer than %d bytes", wire.MaxControlPayload-2)
	}
	c.end.CompareAndSwap(nil, &CloseError{Code: code, Reason: reason, Sent: true, Err: net.ErrClosed})
	if c.sendClose(wire.AppendClose(nil, uint16(code), reason)) {
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
	return c.writeFrame(ctx, wire.OpClose, 0, p, true) == nil
}

var errCloseSentEvent = errors.New("duplex: close frame already sent")

// writeFrame sends one frame. Nothing follows a close frame (§5.5.1).
func (c *EventConn) writeFrame(ctx context.Context, op wire.Opcode, rsv byte, p []byte, isClose bool) error {
	h := wire.Header{Fin: true, RSV: rsv, Opcode: op, Length: int64(len(p))}
	var hdr [wire.MaxHeaderSize]byte
	var bufs [2][]byte
	if c.flags&evClient != 0 {
		// §5.3: a fresh key for every frame; masked into a pool buffer,
		// never in place: p is the caller's.
		h.Masked = true
		k := rand.Uint32()
		h.Key = [4]byte{byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}
		bp := getWriteBuf()
		defer putWriteBuf(bp)
		b := append(wire.Append((*bp)[:0], h), p...)
		wire.Mask(h.Key, 0, b[len(b)-len(p):])
		bufs[0] = b
	} else {
		bufs[0], bufs[1] = wire.Append(hdr[:0], h), p
	}
	return c.transmit(ctx, bufs[:], isClose)
}

// transmit puts an encoded frame on the wire, unless our close frame has
// gone out already.
func (c *EventConn) transmit(ctx context.Context, bufs [][]byte, isClose bool) error {
	if !c.acquire() {
		return c.endErr()
	}
	defer c.release()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.state.Load()&stCloseSent != 0 {
		if isClose {
			return errCloseSentEvent
		}
		return c.endErr()
	}
	if isClose {
		c.state.Or(stCloseSent)
	}
	if err := c.send(ctx, bufs); err != nil {
		c.kill(&CloseError{Code: StatusAbnormalClosure, Err: err})
		return c.endErr()
	}
	return nil
}

// send writes bufs whole. When the socket's buffer is full it waits for
// room through the runtime's poller, on a descriptor made for the wait.
func (c *EventConn) send(ctx context.Context, bufs [][]byte) error {
	for {
		n, err := netpoll.Writev(int(c.fd), bufs)
		if err == syscall.EAGAIN {
			break
		}
		if err != nil {
			return err
		}
		bufs = advance(bufs, n)
		if len(bufs) == 0 {
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fd, err := syscall.Dup(int(c.fd))
	if err != nil {
		return err
	}
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "websocket") // non-blocking: the runtime polls it
	defer f.Close()
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	stop := interrupt(ctx, f.SetWriteDeadline)
	defer stop()
	var werr error
	if err := raw.Write(func(fd uintptr) bool {
		for len(bufs) > 0 {
			n, err := netpoll.Writev(int(fd), bufs)
			if err == syscall.EAGAIN {
				return false
			}
			if err != nil {
				werr = err
				return true
			}
			bufs = advance(bufs, n)
		}
		return true
	}); err != nil {
		return err
	}
	return werr
}

// advance drops the first n bytes of bufs.
func advance(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) > 0 {
		bufs[0] = bufs[0][n:]
	}
	for len(bufs) > 0 && len(bufs[0]) == 0 {
		bufs = bufs[1:]
	}
	return bufs
}

// eventBufSize is the read buffer a worker borrows while it reads. A
// frame longer than half of it is read straight into a message buffer
// once its header is known.
const eventBufSize = 4 << 10

// eventDataMax: larger message buffers are not kept for reuse.
const eventDataMax = 1 << 20

// readAhead bounds how far a message buffer grows ahead of the bytes that
// have arrived.
const readAhead = 256 << 10

var (
	eventBufs  = sync.Pool{New: func() any { b := make([]byte, eventBufSize); return &b }}
	eventReads = sync.Pool{New: func() any { return new(eventRead) }}
	// inflatedBufs hold decompressed messages.
	inflatedBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}
)

func putInflated(bp *[]byte) {
	if cap(*bp) <= eventDataMax {
		inflatedBufs.Put(bp)
	}
}

func newEventRead() *eventRead { return eventReads.Get().(*eventRead) }

// freeEventRead keeps rs for reuse, emptied.
func freeEventRead(rs *eventRead) {
	data := rs.data[:0]
	if cap(data) > eventDataMax {
		data = nil
	}
	pending := rs.pending[:0]
	if cap(pending) > 256 {
		pending = nil
	}
	*rs = eventRead{data: data, pending: pending}
	eventReads.Put(rs)
}

// onReadable runs on a worker when the socket has bytes or was hung up.
//
// A connection is watched one-shot until it is open (a listener always),
// then edge-triggered: every arrival is reported and nothing is re-armed,
// which saves a system call per message. An arrival reported while a
// worker reads is left to that worker, which reads again before it lets
// go of the read side. hup says the peer has shut down its side: from
// then on a short read does not prove the socket empty, since the hang-up
// may have come in the same edge as the bytes read, and only a read that
// returns 0 shows it.
func (c *EventConn) onReadable(hup bool) {
	if hup {
		c.state.Or(stHup)
	}
	// Take the read side; an event for a connection that has ended, or
	// one a worker already reads, is dropped.
	for {
		s := c.state.Load()
		if s&stClosing != 0 {
			return
		}
		if s&stReading != 0 {
			if s&stEdge == 0 || c.state.CompareAndSwap(s, s|stAgain) {
				return
			}
			continue
		}
		if c.state.CompareAndSwap(s, (s+1)|stReading) {
			break
		}
	}
	p, _ := sharedPoller()
	for {
		var more bool
		switch {
		case c.flags&evListener != 0:
			more = c.acceptAll()
		case c.state.Load()&stHandshake != 0:
			more = c.readHandshake()
		default:
			more = c.readSocket()
		}
		s := c.state.Load()
		if more && s&(stEdge|stHandshake) == 0 && c.flags&evListener == 0 {
			// Open now: from here on every arrival is reported, and
			// bytes already waiting at once (to this worker, as stAgain).
			c.state.Or(stEdge)
			if p == nil || p.Follow(int(c.fd)) != nil {
				c.kill(&CloseError{Code: StatusAbnormalClosure, Err: net.ErrClosed})
				more = false
			}
		}
		if !more {
			c.state.And(^int64(stReading | stAgain))
			break
		}
		if c.takeAgain() {
			continue
		}
		if c.state.Load()&stEdge == 0 {
			// Readiness comes back at once if bytes arrived meanwhile.
			if p == nil || p.Rearm(int(c.fd)) != nil {
				c.kill(&CloseError{Code: StatusAbnormalClosure, Err: net.ErrClosed})
			}
		}
		break
	}
	c.release()
}

// takeAgain lets go of the read side, unless bytes were reported while
// the worker read: then it keeps it and reports true.
func (c *EventConn) takeAgain() bool {
	for {
		s := c.state.Load()
		if s&stAgain != 0 {
			if c.state.CompareAndSwap(s, s&^stAgain) {
				return true
			}
			continue
		}
		if c.state.CompareAndSwap(s, s&^stReading) {
			return false
		}
	}
}

// readSocket reads what the socket has and handles it. It reports whether
// the connection goes on waiting for bytes.
func (c *EventConn) readSocket() bool {
	bp := eventBufs.Get().(*[]byte)
	defer eventBufs.Put(bp)
	buf := (*bp)[:cap(*bp)]
	for {
		if c.state.Load()&stReadOver != 0 {
			return c.drain(buf)
		}
		if rs := c.rs; rs != nil && rs.inFrame && rs.left > int64(len(buf)/2) && len(rs.pending) == 0 {
			// A long frame: read straight into the message.
			ok, again := c.readIntoMessage(rs, buf)
			if !ok {
				return c.stopped(buf)
			}
			if !again {
				return true
			}
			continue
		}
		k := 0
		if rs := c.rs; rs != nil && len(rs.pending) > 0 {
			k = copy(buf, rs.pending)
			rs.pending = rs.pending[:0]
		}
		n, err := netpoll.Read(int(c.fd), buf[k:])
		if err == syscall.EAGAIN {
			if k > 0 && !c.handle(buf[:k]) {
				return c.stopped(buf)
			}
			return true
		}
		if err != nil || n == 0 {
			if k > 0 && !c.handle(buf[:k]) {
				return c.stopped(buf)
			}
			c.lost(err)
			return false
		}
		if !c.handle(buf[:k+n]) {
			return c.stopped(buf)
		}
		if k+n < len(buf) && c.state.Load()&stHup == 0 {
			// The socket is probably empty: let the poller say when more
			// comes rather than spend a read to learn that nothing has.
			return true
		}
	}
}

// stopped is where reading goes after handle stopped early: nowhere if
// the connection ended, to draining if the peer failed.
func (c *EventConn) stopped(buf []byte) bool {
	s := c.state.Load()
	switch {
	case s&stClosing != 0:
		return false
	case s&stReadOver != 0:
		return c.drain(buf)
	}
	return true
}

// readIntoMessage reads the rest of a long data frame into the message
// buffer. ok false: handling stopped. again false: the socket is empty.
// When the read can finish the frame, what follows it goes into buf in
// the same call (readv) and is handled, so a short read tells that the
// socket is empty without a read that finds nothing.
func (c *EventConn) readIntoMessage(rs *eventRead, buf []byte) (ok, again bool) {
	// The buffer grows with the bytes that arrive, not with what the
	// header announced: a header alone must not cost its length.
	want := int(min(rs.left, readAhead))
	if cap(rs.data)-len(rs.data) < want {
		grown := make([]byte, len(rs.data), max(len(rs.data)+want, 2*cap(rs.data)))
		copy(grown, rs.data)
		rs.data = grown
	}
	dst := rs.data[len(rs.data):cap(rs.data)]
	dst = dst[:min(int64(len(dst)), rs.left)]
	if int64(len(dst)) < rs.left {
		buf = nil // what follows dst is this frame's too
	}
	n, err := netpoll.Readv(int(c.fd), dst, buf)
	if err == syscall.EAGAIN {
		return true, false
	}
	if err != nil || n == 0 {
		c.lost(err)
		return false, false
	}
	if !c.payload(rs, dst[:min(n, len(dst))], true) {
		return false, false
	}
	if n > len(dst) && !c.handle(buf[:n-len(dst)]) {
		return false, false
	}
	// A short read emptied the socket, unless the peer hung up: wait for
	// the poller.
	return true, n == len(dst)+len(buf) || c.state.Load()&stHup != 0
}

// lost ends the connection after EOF or a read error without a close frame.
func (c *EventConn) lost(err error) {
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	c.kill(&CloseError{Code: StatusAbnormalClosure, Err: err})
}

// drain drops input after a protocol failure until the peer closes, so
// our close frame is read before the socket goes.
func (c *EventConn) drain(buf []byte) bool {
	for {
		n, err := netpoll.Read(int(c.fd), buf)
		if err == syscall.EAGAIN {
			return true
		}
		if err != nil || n == 0 {
			c.kill(&CloseError{Code: StatusAbnormalClosure, Err: net.ErrClosed})
			return false
		}
	}
}

// handle parses in, which follows the bytes already handled, and acts on
// every whole frame and every payload byte in it. It keeps what it cannot
// use yet. It reports false when the connection has ended or failed.
func (c *EventConn) handle(in []byte) bool {
	for len(in) > 0 {
		rs := c.rs
		if rs != nil && rs.inFrame {
			k := min(int64(len(in)), rs.left)
			if !c.payload(rs, in[:k], false) {
				return false
			}
			in = in[k:]
			continue
		}
		if len(in) < 2 || len(in) < wire.HeaderSize(in[1]) {
			break
		}
		h, n, err := wire.Parse(in)
		if err != nil {
			return c.fail(StatusProtocolError, err)
		}
		var m msgState
		if rs != nil {
			m = rs.msg
		}
		if code, err := checkFrame(&h, c.flags&evClient != 0, c.flags&evDeflate != 0, m, c.limit.Load()); err != nil {
			return c.fail(code, err)
		}
		if h.Opcode.IsControl() {
			if int64(len(in)-n) < h.Length {
				break // wait for the whole control frame
			}
			p := in[n : n+int(h.Length)]
			if h.Masked {
				wire.Mask(h.Key, 0, p)
			}
			if !c.control(h.Opcode, p) {
				return false
			}
			in = in[n+int(h.Length):]
			continue
		}
		in = in[n:]
		if rs == nil && h.Fin && h.RSV == 0 && int64(len(in)) >= h.Length {
			// The common case: a whole unfragmented message, delivered
			// from the read buffer.
			p := in[:h.Length]
			in = in[h.Length:]
			if h.Masked {
				wire.Mask(h.Key, 0, p)
			}
			if h.Opcode == wire.OpText && !utf8.Valid(p) {
				return c.fail(StatusInvalidFramePayloadData, ErrInvalidUTF8)
			}
			if !c.deliver(MessageType(h.Opcode), p) {
				return false
			}
			continue
		}
		if rs == nil {
			rs = newEventRead()
			c.rs = rs
		}
		if h.Opcode != wire.OpContinuation {
			rs.msg = msgState{op: h.Opcode, rsv1: h.RSV&wire.RSV1 != 0}
			rs.text.Reset()
			rs.data = rs.data[:0]
		}
		rs.msg.raw += h.Length
		if rs.msg.rsv1 {
			if limit := c.limit.Load(); limit > 0 && rs.msg.raw > limit+limit/64+1024 {
				// Deflate expands incompressible data by a few bytes in
				// a thousand: a compressed message this long inflates
				// past the limit.
				return c.fail(StatusMessageTooBig, ErrReadLimit)
			}
		}
		rs.hdr, rs.inFrame, rs.left, rs.maskPos = h, true, h.Length, 0
		if h.Length == 0 && !c.payload(rs, nil, false) {
			return false
		}
	}
	if len(in) > 0 {
		if c.rs == nil {
			c.rs = newEventRead()
		}
		c.rs.pending = append(c.rs.pending, in...)
	} else if rs := c.rs; rs != nil && !rs.inFrame && rs.msg.op == 0 && len(rs.pending) == 0 {
		c.rs = nil
		freeEventRead(rs)
	}
	return true
}

// payload takes the next bytes of the data frame in progress. inPlace: p
// is already at the end of rs.data.
func (c *EventConn) payload(rs *eventRead, p []byte, inPlace bool) bool {
	if rs.hdr.Masked {
		rs.maskPos = wire.Mask(rs.hdr.Key, rs.maskPos, p)
	}
	rs.left -= int64(len(p))
	if rs.msg.op == wire.OpText && !rs.msg.rsv1 && !rs.text.Write(p) {
		// Found as soon as the byte arrives, like Read.
		return c.fail(StatusInvalidFramePayloadData, ErrInvalidUTF8)
	}
	if inPlace {
		rs.data = rs.data[:len(rs.data)+len(p)]
	} else {
		rs.data = append(rs.data, p...)
	}
	if rs.left > 0 {
		return true
	}
	rs.inFrame = false
	if !rs.hdr.Fin {
		return true
	}
	typ, msg := MessageType(rs.msg.op), rs.data
	if rs.msg.op == wire.OpText && !rs.msg.rsv1 && !rs.text.Complete() {
		return c.fail(StatusInvalidFramePayloadData, ErrInvalidUTF8)
	}
	compressed := rs.msg.rsv1
	rs.msg = msgState{}
	if !compressed {
		return c.deliver(typ, msg)
	}
	out, ok := c.inflate(msg)
	if !ok {
		return false
	}
	defer putInflated(out)
	if typ == MessageText && !utf8.Valid(*out) {
		return c.fail(StatusInvalidFramePayloadData, ErrInvalidUTF8)
	}
	return c.deliver(typ, *out)
}

// inflate decompresses a whole message into a pool buffer, enforcing the
// read limit on its decompressed size.
func (c *EventConn) inflate(p []byte) (*[]byte, bool) {
	d := c.x.Load().decomp
	limit := c.limit.Load()
	bp := inflatedBufs.Get().(*[]byte)
	out := (*bp)[:0]
	r := d.Reader(bytes.NewReader(p))
	for {
		if len(out) == cap(out) {
			out = append(out, 0)[:len(out)]
		}
		n, err := r.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if limit > 0 && int64(len(out)) > limit {
			d.Done()
			putInflated(bp)
			return nil, c.fail(StatusMessageTooBig, ErrReadLimit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			d.Done()
			putInflated(bp)
			if errors.Is(err, deflate.ErrCorrupt) {
				return nil, c.fail(StatusInvalidFramePayloadData, err)
			}
			return nil, c.fail(StatusProtocolError, err)
		}
	}
	d.Done()
	*bp = out
	return bp, true
}

// deliver hands a message to the program, unless the connection ended.
func (c *EventConn) deliver(typ MessageType, p []byte) bool {
	if c.h.OnMessage != nil {
		c.h.OnMessage(c, typ, p)
	}
	return c.state.Load()&stClosing == 0
}

// control acts on a ping, pong or close frame.
func (c *EventConn) control(op wire.Opcode, p []byte) bool {
	switch op {
	case wire.OpPing:
		// §5.5.2: the same payload back, unless our close went out.
		err := c.writeFrame(context.Background(), wire.OpPong, 0, p, false)
		return err == nil || c.state.Load()&stClosing == 0
	case wire.OpPong:
		if c.h.OnPong != nil {
			c.h.OnPong(c, p)
		}
		return true
	}
	code, reason, failCode, err := parseClose(p)
	if err != nil {
		return c.fail(failCode, err)
	}
	e := &CloseError{Code: StatusCode(code), Reason: reason}
	c.end.CompareAndSwap(nil, e)
	var reply []byte
	if code != wire.NoStatus {
		reply = wire.AppendClose(nil, code, "")
	}
	c.sendClose(reply)
	// The handshake is complete: the server closes first (§7.1.1), and a
	// client may close at any time after it.
	c.kill(e)
	return false
}

// fail ends the connection because of the peer: a close frame with code,
// then, for a server, a half-close, and input dropped until the peer
// closes or the close timeout ends.
func (c *EventConn) fail(code StatusCode, cause error) bool {
	e := &CloseError{Code: code, Sent: true, Err: cause}
	c.end.CompareAndSwap(nil, e)
	c.state.Or(stReadOver)
	if rs := c.rs; rs != nil {
		c.rs = nil
		freeEventRead(rs)
	}
	if !c.sendClose(wire.AppendClose(nil, uint16(code), "")) {
		if c.state.Load()&stClosing != 0 {
			return false
		}
	}
	if c.flags&evClient == 0 {
		// Half-close: the peer reads our close frame and then EOF, while
		// bytes still arriving cannot turn our close into a reset.
		syscall.Shutdown(int(c.fd), syscall.SHUT_WR)
	}
	time.AfterFunc(c.closeTimeout(), func() { c.kill(e) })
	// The connection has ended for the program; the socket lingers.
	c.notify()
	return false
}

// WritePrepared sends pm as one message, like Write; see PreparedMessage.
func (c *EventConn) WritePrepared(ctx context.Context, pm *PreparedMessage) error {
	x := c.x.Load()
	compress := x != nil && x.comp != nil && len(pm.data) >= x.threshold
	if c.flags&evClient != 0 || (compress && !x.comp.Stateless()) {
		return c.write(ctx, pm.typ, pm.data, compress)
	}
	if pm.typ != MessageText && pm.typ != MessageBinary {
		return fmt.Errorf("duplex: invalid message type %d", pm.typ)
	}
	var comp *deflate.Compressor
	if compress {
		comp = x.comp
	}
	frame, err := pm.serverFrame(comp, compress)
	if err != nil {
		return err
	}
	return c.transmit(ctx, [][]byte{frame}, false)
}
