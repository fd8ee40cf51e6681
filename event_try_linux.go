//go:build linux

package duplex

import (
	"errors"
	"runtime"
	"syscall"

	"github.com/duplexws/duplex/internal/netpoll"
	"github.com/duplexws/duplex/internal/wire"
)

// Writes that never wait (issue 13). A program with queues of its own,
// such as the gateway's pool of writer goroutines, writes to many
// connections from a few goroutines, and hands a connection whose socket
// is full to a goroutine that may wait.
//
// The socket may take part of a frame. That frame is sent: its end is
// kept in c.rest (the bytes of a prepared frame as they are, a copy of
// anything else) and goes on the wire before any other frame of the
// connection, finished by the next Try call when the socket has room,
// or by any waiting write, which waits for it (finishRest). A frame the
// socket took none of is not sent, unless encoding it changed the
// connection (compression with context takeover): such a frame is kept
// whole, as it cannot be encoded again.

// TryWrite sends p as one message of type typ, compressed as Write would,
// if the socket has room for it now. It never waits for the socket (only,
// briefly, for another write of c that does not wait either). sent
// reports whether the message counts as sent. err is ErrWouldBlock when
// the socket is full, or a waiting write of c waits for room in it: if
// sent is false, nothing went out and the same message may be given again
// later; if sent is true, the socket took only part of it, and the rest
// goes out before anything else, with the next write. A program that has
// nothing more to send then hands c to a goroutine that calls
// WritePreparedBatch(ctx, nil), which waits until the rest is out. After
// the connection ended, err is what Write returns.
func (c *EventConn) TryWrite(typ MessageType, p []byte) (sent bool, err error) {
	if err := checkType(typ); err != nil {
		return false, err
	}
	x := c.x.Load()
	compress := x != nil && wantCompress(x.comp, x.threshold, len(p))
	if err := c.tryBegin(); err != nil {
		return false, err
	}
	defer c.tryEnd()
	return c.tryEncode(wire.Opcode(typ), p, compress)
}

// TryPing sends a ping with payload (at most 125 bytes) if the socket has
// room for it now, as Ping does without waiting; the answer reaches
// EventHandler.OnPong. sent and err are as for TryWrite.
func (c *EventConn) TryPing(payload []byte) (sent bool, err error) {
	if len(payload) > wire.MaxControlPayload {
		return false, errors.New("duplex: ping payload longer than 125 bytes")
	}
	if err := c.tryBegin(); err != nil {
		return false, err
	}
	defer c.tryEnd()
	return c.tryEncode(wire.OpPing, payload, false)
}

// TryWritePreparedBatch sends the messages of pms in order, as
// WritePreparedBatch does, while the socket has room; it never waits for
// the socket. It returns how many of pms count as sent. err is
// ErrWouldBlock when the socket filled up, or a waiting write of c waits
// for room: the messages after the first n were not sent and may be given
// again later, in order, and if the last one counted was taken only in
// part, its rest goes out before anything else, with the next write (see
// TryWrite). err is nil only when every message is wholly in the socket's
// buffer.
func (c *EventConn) TryWritePreparedBatch(pms []*PreparedMessage) (int, error) {
	x := c.x.Load()
	if err := c.tryBegin(); err != nil {
		return 0, err
	}
	defer c.tryEnd()
	client := c.flags&evClient != 0
	var vec [batchFrames][]byte
	frames := vec[:0]
	sent := 0
	for _, pm := range pms {
		var frame []byte
		var compress bool
		var err error
		if x != nil {
			frame, compress, err = pm.encodedFor(client, x.comp, x.threshold)
		} else {
			frame, compress, err = pm.encodedFor(client, nil, 0)
		}
		if err != nil {
			return sent, err
		}
		if frame != nil {
			frames = append(frames, frame)
			if len(frames) < batchFrames {
				continue
			}
		}
		if len(frames) > 0 {
			n, err := c.tryFrames(frames)
			sent += n
			if err != nil {
				return sent, err
			}
			frames = frames[:0]
		}
		if frame == nil {
			ok, err := c.tryEncode(wire.Opcode(pm.typ), pm.data, compress)
			if ok {
				sent++
			}
			if err != nil {
				return sent, err
			}
		}
	}
	n, err := c.tryFrames(frames)
	return sent + n, err
}

// tryBegin takes c for a write that must not wait: a use of the
// descriptor and wmu, unless a write that holds wmu waits for the socket,
// and then finishes what a Try call left unwritten. Unless it fails,
// tryEnd lets go.
func (c *EventConn) tryBegin() error {
	if !c.acquire() {
		return c.endErr()
	}
	for !c.wmu.TryLock() {
		// Another write holds wmu. If it waits for room in the socket,
		// so would this call; otherwise it is about to let go.
		if c.state.Load()&stWriteWait != 0 {
			c.release()
			return ErrWouldBlock
		}
		runtime.Gosched()
	}
	var err error
	if c.state.Load()&(stCloseSent|stClosing) != 0 {
		err = c.endErr()
	} else {
		err = c.tryRest()
	}
	if err != nil {
		c.tryEnd()
	}
	return err
}

func (c *EventConn) tryEnd() {
	c.wmu.Unlock()
	c.release()
}

// tryRest writes what is left of a frame a Try call began, as far as the
// socket takes it. The caller holds wmu.
func (c *EventConn) tryRest() error {
	if c.rest == nil {
		return nil
	}
	vec := [1][]byte{*c.rest}
	n, err := netpoll.Writev(int(c.fd), vec[:])
	if err == syscall.EAGAIN {
		return ErrWouldBlock
	}
	if err != nil {
		return c.writeFailed(err)
	}
	if n < len(vec[0]) {
		*c.rest = vec[0][n:]
		return ErrWouldBlock
	}
	c.rest = nil
	return nil
}

// tryFrames writes frames encoded already (a prepared frame, which a
// connection can drop unsent without harm) while the socket takes them,
// and returns how many count as sent: the whole ones, and the one the
// socket took in part, whose end becomes c.rest, uncopied. The caller
// holds wmu and c.rest is nil.
func (c *EventConn) tryFrames(frames [][]byte) (int, error) {
	sent := 0
	for len(frames) > 0 {
		n, err := netpoll.Writev(int(c.fd), frames)
		if err == syscall.EAGAIN {
			return sent, ErrWouldBlock
		}
		if err != nil {
			return sent, c.writeFailed(err)
		}
		for len(frames) > 0 && n >= len(frames[0]) {
			n -= len(frames[0])
			frames = frames[1:]
			sent++
		}
		if n > 0 {
			// The end of a prepared frame, whose bytes never change. Its
			// capacity is cut so that nothing is ever appended in place.
			f := frames[0]
			rest := f[n:len(f):len(f)]
			c.rest = &rest
			return sent + 1, ErrWouldBlock
		}
	}
	return sent, nil
}

// errNotStarted: the socket took no byte of a frame that may be dropped.
var errNotStarted = errors.New("duplex: frame not started")

// tryEncode encodes a frame of type op carrying p (compressed first when
// compress is set) and writes it as far as the socket takes it. It
// reports whether the frame counts as sent. The caller holds wmu and
// c.rest is nil.
func (c *EventConn) tryEncode(op wire.Opcode, p []byte, compress bool) (bool, error) {
	var rsv byte
	// started: bytes of the frame went out, or the frame cannot be
	// dropped since encoding it moved a compression context along.
	started := false
	if compress {
		comp := c.x.Load().comp
		bp := getWriteBuf()
		defer putWriteBuf(bp)
		var err error
		if p, err = compressPayload(comp, bp, p); err != nil {
			return false, err
		}
		rsv = wire.RSV1
		started = !comp.Stateless()
	}
	h := outHeader(c.flags&evClient != 0, true, op, rsv, len(p))
	err := encodeFrame(h, p, func(a, b []byte) error {
		if c.rest == nil {
			vec := [2][]byte{a, b}
			n, err := netpoll.Writev(int(c.fd), vec[:])
			if err != nil && err != syscall.EAGAIN {
				return err
			}
			if n == len(a)+len(b) {
				started = true
				return nil
			}
			if n == 0 && !started {
				return errNotStarted
			}
			started = true
			if n >= len(a) {
				a, b = b[n-len(a):], nil
			} else {
				a = a[n:]
			}
		}
		// a and b are a pool buffer or the caller's bytes: keep a copy.
		if c.rest == nil {
			c.rest = new([]byte)
		}
		*c.rest = append(append(*c.rest, a...), b...)
		return nil
	})
	switch {
	case err == errNotStarted:
		return false, ErrWouldBlock
	case err != nil:
		return started, c.writeFailed(err)
	case c.rest != nil:
		return true, ErrWouldBlock
	}
	return true, nil
}

// writeFailed ends the connection after a write error.
func (c *EventConn) writeFailed(err error) error {
	c.kill(&CloseError{Code: StatusAbnormalClosure, Err: err})
	return c.endErr()
}
