//go:build linux

package duplex

import (
	"bytes"
	"context"
	"syscall"
	"time"

	"github.com/duplexws/duplex/internal/wire"
)

// The event loop's driver of the engine (engine.go): it feeds the parser
// the bytes a worker read and carries out what the parser says. Whole
// messages are delivered to OnMessage from the read buffer when they fit
// in it; longer ones are gathered in eventRead.data.

// eventRead is the reading state of a connection between reads: an
// incomplete frame header or control frame, or a data message that has
// not all arrived. Connections between messages hold none.
type eventRead struct {
	pending []byte // the start of a header or control frame
	ps      parser
	data    []byte // the message so far, unmasked (compressed if it is)
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

// newParser returns the engine's read state for c between messages.
func (c *EventConn) newParser() parser {
	return parser{client: c.flags&evClient != 0, deflate: c.flags&evDeflate != 0, limit: &c.limit, whole: true}
}

// readState returns c.rs, making it, with the parser state ps, if c has
// none.
func (c *EventConn) readState(ps *parser) *eventRead {
	if c.rs == nil {
		rs := newEventRead()
		rs.ps = *ps
		c.rs = rs
	}
	return c.rs
}

// handle feeds the parser in, which follows the bytes already handled,
// and acts on every event. It keeps what the parser cannot use yet. It
// reports false when the connection has ended or failed.
func (c *EventConn) handle(in []byte) bool {
	var local parser
	ps := &local
	if c.rs != nil {
		ps = &c.rs.ps
	} else {
		local = c.newParser()
	}
	var ev event
loop:
	for {
		in = in[ps.next(in, &ev):]
		switch ev.kind {
		case evMore:
			break loop
		case evFrame:
			rs := c.readState(ps)
			ps = &rs.ps
			if ev.first {
				rs.data = rs.data[:0]
			}
		case evData:
			if ev.first {
				// The common case: a whole message, delivered from the
				// read buffer.
				if !c.deliver(MessageType(ev.op), ev.p) {
					return false
				}
				continue
			}
			if !c.onPayload(ev, false) {
				return false
			}
		default:
			if !c.control(ev) {
				return false
			}
		}
	}
	if len(in) > 0 {
		rs := c.readState(ps)
		rs.pending = append(rs.pending, in...)
	} else if rs := c.rs; rs != nil && rs.ps.idle() && len(rs.pending) == 0 {
		c.rs = nil
		freeEventRead(rs)
	}
	return true
}

// onPayload acts on payload bytes the parser checked: it adds them to
// the message, and delivers the message at its end. inPlace: they are
// already at the end of rs.data.
func (c *EventConn) onPayload(ev event, inPlace bool) bool {
	if ev.kind == evFail {
		return c.fail(ev.code, ev.err)
	}
	rs := c.rs
	if inPlace {
		rs.data = rs.data[:len(rs.data)+len(ev.p)]
	} else {
		rs.data = append(rs.data, ev.p...)
	}
	if !ev.end {
		return true
	}
	if !ev.compressed {
		return c.deliver(MessageType(ev.op), rs.data)
	}
	return c.inflate(MessageType(ev.op), rs.data)
}

// inflate decompresses a whole message into a pool buffer, with the
// engine checking the output as it comes, and delivers it.
func (c *EventConn) inflate(typ MessageType, p []byte) bool {
	ps := &c.rs.ps
	d := c.x.Load().decomp
	bp := inflatedBufs.Get().(*[]byte)
	defer putInflated(bp)
	out := (*bp)[:0]
	r := d.Reader(bytes.NewReader(p))
	for {
		if len(out) == cap(out) {
			out = append(out, 0)[:len(out)]
		}
		n, err := r.Read(out[len(out):cap(out)])
		if ev := ps.inflated(out[len(out) : len(out)+n]); ev.kind == evFail {
			d.Done()
			*bp = out
			return c.fail(ev.code, ev.err)
		}
		out = out[:len(out)+n]
		if err == nil {
			continue
		}
		ev, ok := ps.inflateEnd(err)
		d.Done()
		*bp = out
		if !ok {
			// A bytes.Reader does not fail; should the decompressor.
			ev = ps.fail(StatusInternalError, err)
		}
		if ev.kind == evFail {
			return c.fail(ev.code, ev.err)
		}
		return c.deliver(typ, out)
	}
}

// deliver hands a message to the program, unless the connection ended.
func (c *EventConn) deliver(typ MessageType, p []byte) bool {
	if c.h.OnMessage != nil {
		c.h.OnMessage(c, typ, p)
	}
	return c.state.Load()&stClosing == 0
}

// control acts on a ping, a pong, the peer's close or a failure.
func (c *EventConn) control(ev event) bool {
	switch ev.kind {
	case evPing:
		// The same payload back, unless our close went out (§5.5.1).
		err := c.transmit(context.Background(), wire.OpPong, ev.p, false, nil, false)
		return err == nil || c.state.Load()&stClosing == 0
	case evPong:
		if c.h.OnPong != nil {
			c.h.OnPong(c, ev.p)
		}
		return true
	case evFail:
		return c.fail(ev.code, ev.err)
	}
	e := &CloseError{Code: ev.code, Reason: ev.reason}
	c.end.CompareAndSwap(nil, e)
	c.sendClose(closeReply(ev.code))
	return c.endRead(e, endStepFor(c.flags&evClient != 0, true))
}

// fail ends the connection because of the peer: a close frame with code,
// then the ending endStepFor gives.
func (c *EventConn) fail(code StatusCode, cause error) bool {
	e := &CloseError{Code: code, Sent: true, Err: cause}
	c.end.CompareAndSwap(nil, e)
	c.state.Or(stReadOver)
	if rs := c.rs; rs != nil {
		c.rs = nil
		freeEventRead(rs)
	}
	if !c.sendClose(closeReply(code)) && c.state.Load()&stClosing != 0 {
		return false
	}
	return c.endRead(e, endStepFor(c.flags&evClient != 0, false))
}

// endRead ends the read side as step says. The connection has ended for
// the program, which hears of it now; a lingering socket drops its input
// until the peer closes, or the close timeout.
func (c *EventConn) endRead(e *CloseError, step endStep) bool {
	if rs := c.rs; rs != nil {
		c.rs = nil
		freeEventRead(rs)
	}
	if !step.linger {
		c.kill(e)
		return false
	}
	c.state.Or(stReadOver)
	if step.halfClose {
		syscall.Shutdown(int(c.fd), syscall.SHUT_WR)
	}
	time.AfterFunc(c.closeTimeout(), func() { c.kill(e) })
	c.notify()
	return false
}
