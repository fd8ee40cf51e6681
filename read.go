package duplex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/duplexws/duplex/internal/deflate"
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
	if c.frame.Fin && !c.msgRSV1 && c.frameLeft <= maxPrealloc {
		// One uncompressed frame: its length is the message's.
		if int64(cap(p)) < c.frameLeft {
			p = make([]byte, 0, c.frameLeft)
		}
		p = p[:c.frameLeft]
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
	return MessageType(c.msgOp), nil
}

// closing reports whether our close frame has gone out.
func (c *Conn) closing() bool {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.closeSent
}

// readClosed returns the end of the connection if the read side is over.
func (c *Conn) readClosed() error {
	if c.readOver.Load() {
		return c.err()
	}
	select {
	case <-c.peerClose:
		return c.err()
	case <-c.done:
		return c.err()
	default:
		return nil
	}
}

// readError turns an error met while reading into what the caller sees,
// ending the connection unless ctx merely ended before a message began.
func (c *Conn) readError(err error) error {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce
	}
	if ctxErr := c.readCtx.Err(); ctxErr != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if c.msgOp == 0 && c.frameLeft == 0 {
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

// readHeader reads and checks the next frame header.
func (c *Conn) readHeader() error {
	rd := &c.rd
	if rd.buffered() == 0 {
		if c.msgOp == 0 {
			if err := rd.waitIdle(); err != nil {
				return err
			}
		}
	}
	if err := rd.fill(2); err != nil {
		return err
	}
	n := wire.HeaderSize(rd.peek(2)[1])
	if err := rd.fill(n); err != nil {
		return err
	}
	h, _, err := wire.Parse(rd.peek(n))
	rd.discard(n)
	if err != nil {
		return c.fail(StatusProtocolError, err)
	}
	c.frame, c.frameLeft, c.maskPos = h, h.Length, 0
	return c.checkHeader(&h)
}

// checkHeader enforces the framing rules of RFC 6455 §5.
func (c *Conn) checkHeader(h *wire.Header) error {
	st := msgState{op: c.msgOp, rsv1: c.msgRSV1, raw: c.msgRaw}
	if code, err := checkFrame(h, c.client, c.decomp != nil, st, c.readLimit.Load()); err != nil {
		return c.fail(code, err)
	}
	if !h.Opcode.IsControl() {
		c.msgRaw += h.Length
	}
	return nil
}

// msgState is what the framing rules need to know of the data message in
// progress: its opcode (0 if none), whether it is compressed, and how many
// wire payload bytes it has had.
type msgState struct {
	op   wire.Opcode
	rsv1 bool
	raw  int64
}

// checkFrame applies the framing rules of RFC 6455 §5 (and RFC 7692's for
// RSV1) to the header of the next frame, for an endpoint in the given role
// with or without permessage-deflate, and returns the close code and error
// for a frame that breaks one. limit is the read limit, 0 or less for none.
func checkFrame(h *wire.Header, client, deflate bool, m msgState, limit int64) (StatusCode, error) {
	allowed := byte(0)
	if deflate {
		allowed = wire.RSV1
	}
	switch {
	case h.RSV&^allowed != 0:
		// §5.2: RSV bits MUST be 0 unless an extension defines them.
		return protocolViolation("reserved bits set without a negotiated extension")
	case h.Opcode.IsReserved():
		return protocolViolation(fmt.Sprintf("reserved opcode %#x", byte(h.Opcode)))
	case h.Masked == client:
		// §5.1: a server MUST close on an unmasked frame, a client on a masked one.
		if client {
			return protocolViolation("masked frame from server")
		}
		return protocolViolation("unmasked frame from client")
	}
	if h.Opcode.IsControl() {
		// §5.5: control frames carry at most 125 bytes and are never fragmented.
		switch {
		case !h.Fin:
			return protocolViolation("fragmented control frame")
		case h.Length > wire.MaxControlPayload:
			return protocolViolation("control frame longer than 125 bytes")
		case h.RSV != 0:
			// RFC 7692 §6: RSV1 is for the first frame of a data message.
			return protocolViolation("RSV1 on a control frame")
		}
		return 0, nil
	}
	if h.Opcode == wire.OpContinuation {
		if m.op == 0 {
			return protocolViolation("continuation frame without a message to continue")
		}
		if h.RSV != 0 {
			return protocolViolation("RSV1 on a continuation frame")
		}
	} else if m.op != 0 {
		// §5.4: fragments of one message are not interleaved with another.
		return protocolViolation("new data frame inside a fragmented message")
	}
	if !deflate || !(m.rsv1 || h.RSV&wire.RSV1 != 0) {
		// Uncompressed: the wire length is the message length, so the
		// limit is checked before a byte of payload is read.
		if limit > 0 && h.Length > limit-m.raw {
			return StatusMessageTooBig, ErrReadLimit
		}
	}
	return 0, nil
}

func protocolViolation(msg string) (StatusCode, error) {
	return StatusProtocolError, fmt.Errorf("%w: %s", ErrProtocol, msg)
}

func (c *Conn) protocolError(msg string) error {
	return c.fail(StatusProtocolError, fmt.Errorf("%w: %s", ErrProtocol, msg))
}

// nextDataFrame reads frames until the header of a data frame, handling
// the control frames before it. For a new message it records the opcode.
func (c *Conn) nextDataFrame() error {
	for {
		if err := c.readHeader(); err != nil {
			return err
		}
		if c.frame.Opcode.IsControl() {
			if err := c.handleControl(); err != nil {
				return err
			}
			continue
		}
		if c.frame.Opcode != wire.OpContinuation {
			c.msgOp = c.frame.Opcode
			c.msgRSV1 = c.frame.RSV&wire.RSV1 != 0
		}
		return nil
	}
}

// handleControl reads the payload of a control frame and acts on it.
func (c *Conn) handleControl() error {
	n := int(c.frameLeft)
	if err := c.rd.fill(n); err != nil {
		return err
	}
	p := c.ctrl[:n]
	copy(p, c.rd.peek(n))
	c.rd.discard(n)
	c.frameLeft = 0
	if c.frame.Masked {
		wire.Mask(c.frame.Key, 0, p)
	}
	switch c.frame.Opcode {
	case wire.OpPing:
		// §5.5.2: answer with a pong carrying the same payload, unless a
		// close frame has already gone out.
		err := c.writeControl(context.Background(), wire.OpPong, p)
		if err != nil && !errors.Is(err, errCloseSent) {
			return err
		}
	case wire.OpPong:
		c.gotPong(p)
	case wire.OpClose:
		return c.handleClose(p)
	}
	return nil
}

// parseClose parses the payload of a close frame (§5.5.1, §7.4); for a
// bad one it returns the code to fail with and why.
func parseClose(p []byte) (code uint16, reason string, failCode StatusCode, err error) {
	code, reason, err = wire.ParseClose(p)
	switch {
	case errors.Is(err, wire.ErrCloseReason):
		return 0, "", StatusInvalidFramePayloadData, fmt.Errorf("%w: close reason", ErrInvalidUTF8)
	case err != nil:
		return 0, "", StatusProtocolError, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return code, reason, 0, nil
}

// handleClose answers the peer's close frame (§5.5.1) and ends the read
// side. The server closes the transport first (§7.1.1); a client waits,
// briefly, for the server to do so.
func (c *Conn) handleClose(p []byte) error {
	code, reason, failCode, err := parseClose(p)
	if err != nil {
		return c.fail(failCode, err)
	}
	e := c.setErr(&CloseError{Code: StatusCode(code), Reason: reason})
	var reply []byte
	if code != wire.NoStatus {
		reply = wire.AppendClose(c.ctrl[:0], code, "")
	}
	c.sendClose(reply)
	close(c.peerClose)
	if c.client {
		c.tr.SetReadDeadline(time.Now().Add(c.closeTimeout))
		c.rd.r, c.rd.w = 0, 0
		io.Copy(io.Discard, c.tr)
	}
	c.closeTransport()
	return e
}

// fail ends the connection because of the peer: it sends a close frame
// with code, then lets the peer answer in the background, for at most the
// close timeout, before closing the transport. It returns the CloseError
// every later call will see.
func (c *Conn) fail(code StatusCode, cause error) error {
	e := c.setErr(&CloseError{Code: code, Sent: true, Err: cause})
	c.readOver.Store(true)
	c.sendClose(wire.AppendClose(nil, uint16(code), ""))
	// Leave the lingering read to a goroutine of its own so the caller
	// gets the error at once; the read state is abandoned.
	c.rd.release()
	if _, ok := c.tr.(*h2Stream); ok {
		// Over HTTP/2 the close frame is already on the stream and ending
		// it loses nothing in flight, unlike a TCP reset; and the handler
		// may return as soon as Read reports this error, after which its
		// ResponseWriter must not be touched. So no lingering.
		c.closeTransport()
		return e
	}
	go c.linger()
	return e
}

// linger drains the transport until the peer closes or the timeout ends,
// so that our close frame is read before the transport goes.
func (c *Conn) linger() {
	// Half-close first: the peer reads our close frame and then EOF, so
	// it sees the connection end now (RFC 6455 §7.1.7), while unread bytes
	// still arriving cannot turn our close into a reset that loses it.
	// A client leaves closing first to the server (§7.1.1).
	if cw, ok := c.tr.(interface{ CloseWrite() error }); ok && !c.client {
		cw.CloseWrite()
	}
	c.tr.SetReadDeadline(time.Now().Add(c.closeTimeout))
	io.Copy(io.Discard, c.tr)
	c.closeTransport()
}

// msgReader reads the payload of the current message, enforcing the read
// limit on the bytes it returns and UTF-8 validity for text.
type msgReader struct {
	c       *Conn
	src     io.Reader // c.pr, or a decompressor over it
	n       int64     // bytes returned so far
	limited bool      // the limit must be checked here (compressed messages)
}

func (mr *msgReader) start() {
	c := mr.c
	c.msgDone = false
	c.text.Reset()
	mr.n = 0
	mr.src = &c.pr
	mr.limited = false
	if c.msgRSV1 {
		mr.src = c.decomp.Reader(&c.pr)
		mr.limited = true
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
	mr.n += int64(n)
	if mr.limited {
		if limit := c.readLimit.Load(); limit > 0 && mr.n > limit {
			return 0, c.fail(StatusMessageTooBig, ErrReadLimit)
		}
	}
	if c.msgOp == wire.OpText && !c.text.Write(p[:n]) {
		// §8.1: fail at the first byte that is not UTF-8.
		return 0, c.fail(StatusInvalidFramePayloadData, ErrInvalidUTF8)
	}
	switch {
	case err == io.EOF:
		if c.msgOp == wire.OpText && !c.text.Complete() {
			return 0, c.fail(StatusInvalidFramePayloadData, ErrInvalidUTF8)
		}
		if c.msgRSV1 {
			c.decomp.Done()
		}
		c.msgDone, c.msgOp, c.msgRSV1, c.msgRaw = true, 0, false, 0
		return n, io.EOF
	case errors.Is(err, deflate.ErrCorrupt):
		return 0, c.fail(StatusInvalidFramePayloadData, err)
	case err != nil:
		return 0, c.readError(err)
	}
	return n, nil
}

// payloadReader reads the wire payload of the current message across its
// frames, unmasked, handling control frames between them. It returns
// io.EOF after the final frame.
type payloadReader struct{ c *Conn }

func (pr *payloadReader) Read(p []byte) (int, error) {
	c := pr.c
	for c.frameLeft == 0 {
		if c.frame.Fin && !c.frame.Opcode.IsControl() {
			return 0, io.EOF
		}
		if err := c.nextDataFrame(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the message was cut off
			}
			return 0, err
		}
	}
	if int64(len(p)) > c.frameLeft {
		p = p[:c.frameLeft]
	}
	n, err := c.rd.read(p)
	if c.frame.Masked {
		c.maskPos = wire.Mask(c.frame.Key, c.maskPos, p[:n])
	}
	c.frameLeft -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if n > 0 && err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil // report it on the next call
	}
	return n, err
}
