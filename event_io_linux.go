//go:build linux

package duplex

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/duplexws/duplex/internal/netpoll"
	"github.com/duplexws/duplex/internal/wire"
)

// An EventConn's socket I/O: frames out, in one hold of wmu each, and
// bytes in, read by a worker into a pool buffer (or straight into a long
// message) and handed to the engine's driver (event_read_linux.go).

// transmit puts one frame on the wire, unless our close frame has gone
// out already (§5.5.1): encoded, when it is not nil, is the whole frame
// encoded already (a PreparedMessage); otherwise the frame of type op
// carrying p, compressed first when compress is set, is encoded here.
// The compressor is used under wmu, so compressed messages leave in the
// order their context was built in.
func (c *EventConn) transmit(ctx context.Context, op wire.Opcode, p []byte, compress bool, encoded []byte, isClose bool) error {
	if !c.acquire() {
		return c.endErr()
	}
	defer c.release()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.state.Load()&stCloseSent != 0 {
		if isClose {
			return errCloseSent
		}
		return c.endErr()
	}
	if isClose {
		c.state.Or(stCloseSent)
	}
	if err := c.finishRest(ctx); err != nil {
		c.kill(&CloseError{Code: StatusAbnormalClosure, Err: err})
		return c.endErr()
	}
	var err error
	if encoded != nil {
		err = c.send(ctx, encoded, nil)
	} else {
		var rsv byte
		if compress {
			bp := getWriteBuf()
			defer putWriteBuf(bp)
			if p, err = compressPayload(c.x.Load().comp, bp, p); err != nil {
				return err
			}
			rsv = wire.RSV1
		}
		h := outHeader(c.flags&evClient != 0, true, op, rsv, len(p))
		err = encodeFrame(h, p, func(a, b []byte) error { return c.send(ctx, a, b) })
	}
	if err != nil {
		c.kill(&CloseError{Code: StatusAbnormalClosure, Err: err})
		return c.endErr()
	}
	return nil
}

// finishRest puts on the wire, waiting as send does, the end of a frame
// that a Try call began, so that nothing goes out before it. The caller
// holds wmu.
func (c *EventConn) finishRest(ctx context.Context) error {
	if c.rest == nil {
		return nil
	}
	err := c.send(ctx, *c.rest, nil)
	c.rest = nil // sent, or the connection is killed
	return err
}

// send writes a and then b (which may be nil) whole. When the socket's
// buffer is full it waits for room through the runtime's poller, on a
// descriptor made for the wait. The caller holds wmu.
func (c *EventConn) send(ctx context.Context, a, b []byte) error {
	vec := [2][]byte{a, b}
	bufs := vec[:1]
	if b != nil {
		bufs = vec[:]
	}
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
	// Try calls that find wmu taken give up rather than wait behind us.
	c.state.Or(stWriteWait)
	defer c.state.And(^int64(stWriteWait))
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
)

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
		if rs := c.rs; rs != nil && rs.ps.inFrame && !rs.ps.msg.rsv1 && rs.ps.left > int64(len(buf)/2) && len(rs.pending) == 0 {
			// A long uncompressed frame: read straight into the message.
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
	want := int(min(rs.ps.left, readAhead))
	if cap(rs.data)-len(rs.data) < want {
		grown := make([]byte, len(rs.data), max(len(rs.data)+want, 2*cap(rs.data)))
		copy(grown, rs.data)
		rs.data = grown
	}
	dst := rs.data[len(rs.data):cap(rs.data)]
	dst = dst[:min(int64(len(dst)), rs.ps.left)]
	if int64(len(dst)) < rs.ps.left {
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
	if !c.onPayload(rs.ps.payload(dst[:min(n, len(dst))]), true) {
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
