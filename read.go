package duplex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/duplexws/duplex/internal/wire"
)

// Read reads the next whole data message. It answers pings and handles
// close frames that arrive before or between its frames. The returned
// slice is the caller's. See Conn for what cancelling ctx does.
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	return c.ReadInto(ctx, nil)
}

// ReadInto is Read reusing buf's storage: the message is written to
// buf[:0], growing it only when it is too small, so a loop that passes
// back the slice it got allocates nothing per message in steady state.
func (c *Conn) ReadInto(ctx context.Context, buf []byte) (MessageType, []byte, error) {
	if err := c.acquireRead(); err != nil {
		return 0, nil, err
	}
	defer unlock(c.readSem)
	return c.readInto(ctx, buf)
}

// readInto is ReadInto for a caller that holds the read side.
func (c *Conn) readInto(ctx context.Context, buf []byte) (MessageType, []byte, error) {
	typ, err := c.reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	r := (*heldReader)(&c.mr)
	p := buf[:0]
	if left := c.ps.left; c.ps.hdr.Fin && !c.ps.msg.rsv1 && left <= maxPrealloc {
		// One uncompressed frame: its length is the message's.
		if int64(cap(p)) < left {
			p = make([]byte, 0, left)
		}
		p = p[:left]
		_, err = io.ReadFull(r, p)
		if err == nil {
			_, err = r.Read(nil) // reach the end: UTF-8 completeness, state reset
		}
		if err == io.EOF {
			err = nil
		}
		if err != nil {
			return 0, nil, err
		}
		return typ, p, nil
	}
	if cap(p) == 0 {
		p = make([]byte, 0, 512)
	}
	for {
		if len(p) == cap(p) {
			p = append(p, 0)[:len(p)]
		}
		n, err := r.Read(p[len(p):cap(p)])
		p = p[:len(p)+n]
		if err == io.EOF {
			return typ, p, nil
		}
		if err != nil {
			return 0, nil, err
		}
	}
}

// maxPrealloc bounds the buffer Read sizes from a frame header before the
// payload arrives; longer messages grow as their bytes do.
const maxPrealloc = 1 << 20

// Reader waits for the next data message and returns its type and a reader
// of its payload, which streams: a large message is never held whole. The
// reader returns io.EOF at the end of the message and is valid until the
// next call to Reader or Read, which first discards whatever of it is left.
// ctx bounds the wait and every read of the message.
func (c *Conn) Reader(ctx context.Context) (MessageType, io.Reader, error) {
	if err := c.acquireRead(); err != nil {
		return 0, nil, err
	}
	defer unlock(c.readSem)
	typ, err := c.reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	return typ, &c.mr, nil
}

// heldReader is msgReader for a caller that already holds readSem.
type heldReader msgReader

func (h *heldReader) Read(p []byte) (int, error) { return (*msgReader)(h).read(p) }

// acquireRead takes the read side. While Close is reading the peer's
// answer it waits for the outcome and returns it.
func (c *Conn) acquireRead() error {
	select {
	case c.readSem <- struct{}{}:
		c.readEver.Store(true)
		return nil
	default:
	}
	if c.closing() {
		select {
		case <-c.peerClose:
		case <-c.done:
		}
		return c.err()
	}
	return ErrConcurrentRead
}

// reader starts the next message; the caller holds readSem.
func (c *Conn) reader(ctx context.Context) (MessageType, error) {
	if e := c.readClosed(); e != nil {
		return 0, e
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c.readCtx = ctx
	if !c.msgDone {
		if err := c.mr.discard(); err != nil {
			return 0, err
		}
	}
	stop := c.interruptRead(ctx)
	err := c.nextDataFrame()
	stop()
	if err != nil {
		return 0, c.readError(err)
	}
	c.mr.start()
	return MessageType(c.ps.msg.op), nil
}

// closing reports whether our close frame has gone out.
func (c *Conn) closing() bool {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.closeSent
}

// readClosed returns the end of the connection if the read side is over.
// It runs before every read, so it is one atomic load: readOver is set
// before peerClose or done is closed.
func (c *Conn) readClosed() error {
	if c.readOver.Load() {
		return c.err()
	}
	return nil
}

// readError turns an error met while reading into what the caller sees,
// ending the connection unless ctx merely ended before a message began.
func (c *Conn) readError(err error) error {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce
	}
	if ctxErr := c.readCtx.Err(); ctxErr != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if c.ps.idle() {
			// Nothing of a message has been taken: a frame begun is
			// still in the buffer, and the next read resumes it.
			return ctxErr
		}
		return c.fail(StatusGoingAway, fmt.Errorf("duplex: read abandoned mid-message: %w", ctxErr))
	}
	if e := c.err(); e != nil {
		// Closed locally while we were reading.
		c.closeTransport()
		return e
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	e := c.setErr(&CloseError{Code: StatusAbnormalClosure, Err: err})
	c.closeTransport()
	return e
}

// nextEvent feeds the engine the buffered bytes, reading more until it
// has something to say. It is not called inside a data frame's payload,
// which payloadReader reads.
func (c *Conn) nextEvent() (event, error) {
	rd := &c.rd
	for {
		var ev event
		rd.discard(c.ps.next(rd.buf[rd.r:rd.w], &ev))
		if ev.kind != evMore {
			return ev, nil
		}
		if rd.buffered() == 0 && c.ps.idle() {
			// Between messages: wait holding no pool buffer.
			if err := rd.waitIdle(); err != nil {
				return ev, err
			}
			continue
		}
		if err := rd.fill(int(ev.need)); err != nil {
			return ev, err
		}
	}
}

// nextDataFrame reads until the header of a data frame, acting on the
// control frames before it.
func (c *Conn) nextDataFrame() error {
	for {
		ev, err := c.nextEvent()
		if err != nil {
			return err
		}
		switch ev.kind {
		case evFrame:
			c.wireDone = false
			return nil
		case evPing:
			// Unless our close frame has gone out (§5.5.1).
			err := c.writeControl(context.Background(), wire.OpPong, ev.p)
			if err != nil && !errors.Is(err, errCloseSent) {
				return err
			}
		case evPong:
			c.gotPong(ev.p)
		case evClose:
			return c.handleClose(ev.code, ev.reason)
		case evFail:
			return c.fail(ev.code, ev.err)
		}
	}
}

// handleClose answers the peer's close frame (§5.5.1) and ends the read
// side; the transport then ends as endStepFor says.
func (c *Conn) handleClose(code StatusCode, reason string) error {
	e := c.setErr(&CloseError{Code: code, Reason: reason})
	c.sendClose(closeReply(code))
	c.readOver.Store(true)
	close(c.peerClose)
	c.rd.release()
	c.endTransport(endStepFor(c.client, true))
	return e
}

// fail ends the connection because of the peer: it sends a close frame
// with code, then ends the transport as endStepFor says. It returns the
// CloseError every later call will see.
func (c *Conn) fail(code StatusCode, cause error) error {
	e := c.setErr(&CloseError{Code: code, Sent: true, Err: cause})
	c.readOver.Store(true)
	c.sendClose(closeReply(code))
	// The read state is abandoned.
	c.rd.release()
	c.endTransport(endStepFor(c.client, false))
	return e
}

// endTransport carries out step once the read side is over. The caller
// gets its error at once: lingering is left to a goroutine of its own.
func (c *Conn) endTransport(step endStep) {
	if _, ok := c.tr.(*h2Stream); ok || !step.linger {
		// Over HTTP/2 the close frame is already on the stream and ending
		// it loses nothing in flight, unlike a TCP reset; and the handler
		// may return as soon as Read reports the end, after which its
		// ResponseWriter must not be touched. So no lingering.
		c.closeTransport()
		return
	}
	go c.linger(step.halfClose)
}

// linger drains the transport until the peer closes or the timeout ends,
// so that our close frame is read before the transport goes.
func (c *Conn) linger(halfClose bool) {
	if cw, ok := c.tr.(interface{ CloseWrite() error }); ok && halfClose {
		cw.CloseWrite()
	}
	c.tr.SetReadDeadline(time.Now().Add(c.closeTimeout))
	io.Copy(io.Discard, c.tr)
	c.closeTransport()
}

// msgReader reads the payload of the current message. The engine checks
// what it returns: the read limit, UTF-8, the inflated data.
type msgReader struct {
	c    *Conn
	src  io.Reader // c.pr, or a decompressor over it
	zlib bool      // src is a decompressor
}

func (mr *msgReader) start() {
	c := mr.c
	c.msgDone = false
	mr.src, mr.zlib = &c.pr, false
	if c.ps.msg.rsv1 {
		mr.src, mr.zlib = c.decomp.Reader(&c.pr), true
	}
}

func (mr *msgReader) Read(p []byte) (int, error) {
	if err := mr.c.acquireRead(); err != nil {
		return 0, err
	}
	defer unlock(mr.c.readSem)
	return mr.read(p)
}

// discard reads the rest of the message and drops it.
func (mr *msgReader) discard() error {
	bp := readPool.Get().(*[]byte)
	defer readPool.Put(bp)
	for !mr.c.msgDone {
		if _, err := mr.read(*bp); err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// read is Read for a caller that holds readSem.
func (mr *msgReader) read(p []byte) (int, error) {
	c := mr.c
	if c.msgDone {
		return 0, io.EOF
	}
	if e := c.readClosed(); e != nil {
		return 0, e
	}
	stop := c.interruptRead(c.readCtx)
	n, err := mr.src.Read(p)
	stop()
	if !mr.zlib {
		if err == io.EOF {
			c.msgDone = true
		} else if err != nil {
			return 0, c.readError(err)
		}
		return n, err
	}
	if ev := c.ps.inflated(p[:n]); ev.kind == evFail {
		return 0, c.fail(ev.code, ev.err)
	}
	if err == nil {
		return n, nil
	}
	ev, ok := c.ps.inflateEnd(err)
	if !ok {
		return 0, c.readError(err)
	}
	if ev.kind == evFail {
		return 0, c.fail(ev.code, ev.err)
	}
	c.decomp.Done()
	c.msgDone = true
	return n, io.EOF
}

// payloadReader reads the wire payload of the current message across its
// frames, handling control frames between them, and has the engine unmask
// and check it. It returns io.EOF after the final frame.
type payloadReader struct{ c *Conn }

func (pr *payloadReader) Read(p []byte) (int, error) {
	c := pr.c
	for !c.ps.inFrame || c.ps.left == 0 {
		if c.ps.inFrame {
			// An empty frame: the engine ends it.
			if err := c.payloadEvent(c.ps.payload(nil)); err != nil {
				return 0, err
			}
			continue
		}
		if c.wireDone {
			return 0, io.EOF
		}
		if err := c.nextDataFrame(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the message was cut off
			}
			return 0, err
		}
	}
	if int64(len(p)) > c.ps.left {
		p = p[:c.ps.left]
	}
	n, err := c.rd.read(p)
	if perr := c.payloadEvent(c.ps.payload(p[:n])); perr != nil {
		return 0, perr
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if n > 0 && err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil // report it on the next call
	}
	return n, err
}

// payloadEvent acts on what the engine said of payload bytes.
func (c *Conn) payloadEvent(ev event) error {
	if ev.kind == evFail {
		return c.fail(ev.code, ev.err)
	}
	if ev.end {
		c.wireDone = true
	}
	return nil
}
