//go:build linux

package duplex

import (
	"context"
	"syscall"

	"github.com/duplexws/duplex/internal/deflate"
	"github.com/duplexws/duplex/internal/netpoll"
)

// WritePreparedBatch sends the messages of pms in order, as that many
// WritePrepared calls would, in as few system calls as it can: the
// frames a server connection can send as they were prepared (no
// compression, or compression without context takeover) leave together,
// several per writev, without being copied. A message that must be
// encoded for this connection alone (a client's, masked; a compressed
// one with context takeover) is sent on its own, in its place. It
// returns how many messages were sent whole, and the first error; then
// the messages after them were not sent. (issue 13: a gateway client
// behind on several fan-out messages gets them in one system call.)
//
// Like every waiting write, it first finishes a frame that a Try call
// left partly written; with no messages, that is all it does.
func (c *EventConn) WritePreparedBatch(ctx context.Context, pms []*PreparedMessage) (int, error) {
	var comp *deflate.Compressor
	threshold := 0
	if x := c.x.Load(); x != nil {
		comp, threshold = x.comp, x.threshold
	}
	var vec [batchFrames][]byte
	frames := vec[:0]
	sent := 0
	for _, pm := range pms {
		frame, compress, err := pm.encodedFor(c.flags&evClient != 0, comp, threshold)
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
			if err := c.transmitFrames(ctx, frames); err != nil {
				return sent, err
			}
			sent += len(frames)
			frames = frames[:0]
		}
		if frame == nil {
			if err := c.write(ctx, pm.typ, pm.data, compress); err != nil {
				return sent, err
			}
			sent++
		}
	}
	if len(frames) > 0 || len(pms) == 0 {
		if err := c.transmitFrames(ctx, frames); err != nil {
			return sent, err
		}
	}
	return sent + len(frames), nil
}

// batchFrames bounds the frames of one WritePreparedBatch system call.
const batchFrames = 16

// transmitFrames puts whole encoded frames on the wire, in one hold of
// wmu, like transmit: with writev while the socket takes them, and
// through send, which waits for room, for a frame the socket took only
// part of. It modifies the slices of frames, not their bytes.
func (c *EventConn) transmitFrames(ctx context.Context, frames [][]byte) error {
	if !c.acquire() {
		return c.endErr()
	}
	defer c.release()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.state.Load()&stCloseSent != 0 {
		return c.endErr()
	}
	err := c.finishRest(ctx)
	for err == nil && len(frames) > 0 {
		n, werr := netpoll.Writev(int(c.fd), frames)
		if werr != nil && werr != syscall.EAGAIN {
			err = werr
			break
		}
		if werr == syscall.EAGAIN {
			// The socket is full: the frame it is on (perhaps sent in
			// part) goes out the waiting way.
			if err = c.send(ctx, frames[0], nil); err != nil {
				break
			}
			frames = frames[1:]
			continue
		}
		frames = advance(frames, n)
	}
	if err != nil {
		c.kill(&CloseError{Code: StatusAbnormalClosure, Err: err})
		return c.endErr()
	}
	return nil
}
