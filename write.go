package duplex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"time"

	"github.com/duplexws/duplex/internal/wire"
)

// errCloseSent is returned for a frame that would follow our close frame;
// callers see the connection's CloseError instead.
var errCloseSent = errors.New("duplex: close frame already sent")

// copyLimit: a server payload up to this size is copied next to its header
// and sent in one write; a larger one goes out with writev, uncopied.
const copyLimit = 2 << 10

// Write sends p as one message of type typ. It is safe to call from any
// number of goroutines at once; messages never interleave. With
// permessage-deflate negotiated, messages of at least the compression
// threshold are compressed. See Conn for what cancelling ctx does.
func (c *Conn) Write(ctx context.Context, typ MessageType, p []byte) error {
	return c.write(ctx, typ, p, c.comp != nil && len(p) >= c.threshold)
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
	if typ != MessageText && typ != MessageBinary {
		return fmt.Errorf("duplex: invalid message type %d", typ)
	}
	if err := c.lock(ctx, c.msgSem); err != nil {
		return err
	}
	defer unlock(c.msgSem)
	if compress {
		bp := getWriteBuf()
		defer putWriteBuf(bp)
		out, err := c.comp.Compress((*bp)[:0], p)
		if err != nil {
			return fmt.Errorf("duplex: compress: %w", err)
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
	if typ != MessageText && typ != MessageBinary {
		return nil, fmt.Errorf("duplex: invalid message type %d", typ)
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
	h := wire.Header{Fin: fin, RSV: rsv, Opcode: op, Length: int64(len(p))}
	if c.client {
		// §5.3: a fresh, unpredictable key for every frame. The runtime's
		// generator is ChaCha8, seeded from the OS per thread.
		h.Masked = true
		k := rand.Uint32()
		h.Key = [4]byte{byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}
		return c.writeMasked(h, p)
	}
	hdr := wire.Append(c.whdr[:0], h)
	if len(p) <= copyLimit {
		bp := getWriteBuf()
		b := append(append((*bp)[:0], hdr...), p...)
		_, err := c.tr.Write(b)
		putWriteBuf(bp)
		return err
	}
	if _, ok := c.tr.(*net.TCPConn); ok {
		c.wvec = [2][]byte{hdr, p}
		c.wbufs = c.wvec[:]
		_, err := c.wbufs.WriteTo(c.tr)
		c.wvec = [2][]byte{}
		return err
	}
	if _, err := c.tr.Write(hdr); err != nil {
		return err
	}
	_, err := c.tr.Write(p)
	return err
}

// writeMasked masks p into pool buffers, never in place: p is the caller's.
func (c *Conn) writeMasked(h wire.Header, p []byte) error {
	bp := getWriteBuf()
	defer putWriteBuf(bp)
	buf := *bp
	b := wire.Append(buf[:0], h)
	pos := 0
	for {
		k := copy(buf[len(b):cap(buf)], p)
		b = buf[:len(b)+k]
		pos = wire.Mask(h.Key, pos, b[len(b)-k:])
		p = p[k:]
		if _, err := c.tr.Write(b); err != nil {
			return err
		}
		if len(p) == 0 {
			return nil
		}
		b = buf[:0]
	}
}
