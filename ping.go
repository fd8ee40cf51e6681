package duplex

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/duplexws/duplex/internal/wire"
)

// Ping sends a ping and waits for the matching pong, returning the round
// trip time. The pong is seen only while some goroutine reads the
// connection. If ctx ends first, Ping returns ctx.Err() and the connection
// is unaffected. (EventConn.Ping, which has no goroutine to block, returns
// once the ping is sent and reports the pong to OnPong.)
func (c *Conn) Ping(ctx context.Context) (time.Duration, error) {
	c.pingMu.Lock()
	c.pingSeq++
	id := c.pingSeq
	if c.pings == nil {
		c.pings = make(map[uint64]chan struct{})
	}
	ch := make(chan struct{})
	c.pings[id] = ch
	c.pingMu.Unlock()
	defer func() {
		c.pingMu.Lock()
		delete(c.pings, id)
		c.pingMu.Unlock()
	}()

	var p [8]byte
	binary.BigEndian.PutUint64(p[:], id)
	start := time.Now()
	if err := c.writeControl(ctx, wire.OpPing, p[:]); err != nil {
		if err == errCloseSent {
			return 0, c.err()
		}
		return 0, err
	}
	select {
	case <-ch:
		return time.Since(start), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-c.done:
		return 0, c.err()
	case <-c.peerClose:
		return 0, c.err()
	}
}

// gotPong wakes the Ping waiting for p. Unsolicited pongs are ignored
// (RFC 6455 §5.5.3).
func (c *Conn) gotPong(p []byte) {
	if len(p) != 8 {
		return
	}
	id := binary.BigEndian.Uint64(p)
	c.pingMu.Lock()
	if ch, ok := c.pings[id]; ok {
		close(ch)
		delete(c.pings, id)
	}
	c.pingMu.Unlock()
}
