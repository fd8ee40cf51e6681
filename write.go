package duplex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/duplexws/duplex/internal/wire"
)

// errCloseSent is returned for a frame that would follow our close frame;
// callers see the connection's CloseError instead.
var errCloseSent = errors.New("duplex: close frame already sent")

// Write sends p as one message of type typ. It is safe to call from any
// number of goroutines at once; messages never interleave. With
// permessage-deflate negotiated, messages of at least the compression
// threshold are compressed. See Conn for what cancelling ctx does.
func (c *Conn) Write(ctx context.Context, typ MessageType, p []byte) error {
	return c.write(ctx, typ, p, wantCompress(c.comp, c.threshold, len(p)))
}

// WriteCompressed is Write with the compression decided for this message
// alone, whatever its size: compress is honoured when permessage-deflate
// was negotiated and ignored otherwise. Use it to skip compressing data
// that is already compressed, or to compress a small message that repeats
// earlier ones.
func (c *Conn) WriteCompressed(ctx context.Context, typ MessageType, p []byte, compress bool) error {
	return c.write(ctx, typ, p, compress && c.comp != nil)
}

func (c *Conn) write(ctx context.Context, typ MessageType, p []byte, compress bool) error {
	if err := checkType(typ); err != nil {
		return err
	}
	if err := c.lock(ctx, c.msgSem); err != nil {
		return err
	}
	defer unlock(c.msgSem)
	if compress {
		bp := getWriteBuf()
		defer putWriteBuf(bp)
		out, err := compressPayload(c.comp, bp, p)
		if err != nil {
			return err
		}
		return c.writeData(ctx, true, wire.Opcode(typ), wire.RSV1, out)
	}
	return c.writeData(ctx, true, wire.Opcode(typ), 0, p)
}

// Writer returns a writer for one message of type typ, sent as frames as
// its buffer fills, so a large message is never held whole. Other writers
// wait until it is closed; Close sends the final frame. A streamed message
// is sent uncompressed.
func (c *Conn) Writer(ctx context.Context, typ MessageType) (io.WriteCloser, error) {
	if err := checkType(typ); err != nil {
		return nil, err
	}
	if err := c.lock(ctx, c.msgSem); err != nil {
		return nil, err
	}
	c.mw.start(ctx, wire.Opcode(typ))
	return &c.mw, nil
}

// msgWriter is the writer Writer returns. It is guarded by msgSem, which
// it holds from start to Close.
type msgWriter struct {
	c      *Conn
	ctx    context.Context
	op     wire.Opcode // opcode of the next frame: the type, then continuation
	buf    *[]byte
	n      int
	closed bool
}

func (mw *msgWriter) start(ctx context.Context, op wire.Opcode) {
	mw.ctx, mw.op, mw.n, mw.closed = ctx, op, 0, false
	mw.buf = getWriteBuf()
}

func (mw *msgWriter) Write(p []byte) (int, error) {
	if mw.closed {
		return 0, errors.New("duplex: write to closed message writer")
	}
	total := 0
	for len(p) > 0 {
		if mw.n == len(*mw.buf) {
			if err := mw.flush(false); err != nil {
				return total, err
			}
		}
		k := copy((*mw.buf)[mw.n:], p)
		mw.n += k
		p = p[k:]
		total += k
	}
	return total, nil
}

func (mw *msgWriter) flush(fin bool) error {
	err := mw.c.writeData(mw.ctx, fin, mw.op, 0, (*mw.buf)[:mw.n])
	mw.op, mw.n = wire.OpContinuation, 0
	return err
}

// Close sends the final frame and lets other writers go.
func (mw *msgWriter) Close() error {
	if mw.closed {
		return nil
	}
	mw.closed = true
	err := mw.flush(true)
	putWriteBuf(mw.buf)
	mw.buf = nil
	unlock(mw.c.msgSem)
	return err
}

// writeData sends one data frame; the caller holds msgSem.
func (c *Conn) writeData(ctx context.Context, fin bool, op wire.Opcode, rsv byte, p []byte) error {
	return c.putData(ctx, nil, fin, op, rsv, p)
}

// putData puts one data frame on the wire: encoded, when it is not nil, is
// the whole frame already encoded (a PreparedMessage); otherwise the frame
// is built from the other arguments. The caller holds msgSem.
func (c *Conn) putData(ctx context.Context, encoded []byte, fin bool, op wire.Opcode, rsv byte, p []byte) error {
	if err := c.lock(ctx, c.frameSem); err != nil {
		return err
	}
	defer unlock(c.frameSem)
	if err := c.writeAllowed(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := c.interruptWrite(ctx)
	var err error
	if encoded != nil {
		_, err = c.tr.Write(encoded)
	} else {
		err = c.writeFrame(fin, op, rsv, p)
	}
	stop()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			// Part of a frame may be on the wire: the stream is broken.
			err = fmt.Errorf("duplex: write abandoned mid-frame: %w", ctxErr)
		}
		return c.writeFailed(err)
	}
	return nil
}

// writeAllowed reports why no data frame may be sent now, if so.
func (c *Conn) writeAllowed() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closeSent {
		return c.closeErr
	}
	select {
	case <-c.done:
		return c.closeErr
	default:
	}
	return nil
}

// writeFailed ends the connection after a transport write error.
func (c *Conn) writeFailed(err error) error {
	e := c.setErr(&CloseError{Code: StatusAbnormalClosure, Err: err})
	c.closeTransport()
	return e
}

// writeControl sends a ping or pong frame.
func (c *Conn) writeControl(ctx context.Context, op wire.Opcode, p []byte) error {
	if err := c.lock(ctx, c.frameSem); err != nil {
		return err
	}
	defer unlock(c.frameSem)
	c.closeMu.Lock()
	sent := c.closeSent
	c.closeMu.Unlock()
	if sent {
		return errCloseSent
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := c.interruptWrite(ctx)
	err := c.writeFrame(true, op, 0, p)
	stop()
	if err != nil {
		return c.writeFailed(err)
	}
	return nil
}

// sendClose sends our close frame once (RFC 6455 §5.5.1: nothing follows
// it). It reports whether this call sent it. When the frame cannot be
// written in time the transport is closed.
func (c *Conn) sendClose(p []byte) bool {
	ctx, cancel := context.WithTimeout(context.Background(), c.closeTimeout)
	defer cancel()
	if err := c.lock(ctx, c.frameSem); err != nil {
		c.closeTransport()
		return false
	}
	defer unlock(c.frameSem)
	c.closeMu.Lock()
	if c.closeSent {
		c.closeMu.Unlock()
		return false
	}
	c.closeSent = true
	c.closeMu.Unlock()
	c.tr.SetWriteDeadline(time.Now().Add(c.closeTimeout))
	err := c.writeFrame(true, wire.OpClose, 0, p)
	c.tr.SetWriteDeadline(time.Time{})
	if err != nil {
		c.closeTransport()
		return false
	}
	return true
}

// writeFrame puts one frame on the wire; the caller holds frameSem.
func (c *Conn) writeFrame(fin bool, op wire.Opcode, rsv byte, p []byte) error {
	return encodeFrame(outHeader(c.client, fin, op, rsv, len(p)), p, c.emit)
}

// emit writes the pieces of a frame from encodeFrame; the caller holds
// frameSem.
func (c *Conn) emit(a, b []byte) error {
	if b == nil {
		_, err := c.tr.Write(a)
		return err
	}
	if _, ok := c.tr.(*net.TCPConn); ok {
		c.wvec = [2][]byte{a, b}
		c.wbufs = c.wvec[:]
		_, err := c.wbufs.WriteTo(c.tr)
		c.wvec = [2][]byte{}
		return err
	}
	if _, err := c.tr.Write(a); err != nil {
		return err
	}
	_, err := c.tr.Write(b)
	return err
}
