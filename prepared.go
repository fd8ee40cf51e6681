package duplex

import (
	"context"
	"fmt"
	"sync"

	"github.com/duplexws/duplex/internal/deflate"
	"github.com/duplexws/duplex/internal/wire"
)

// PreparedMessage is a message encoded once for many connections, for
// broadcasts: WritePrepared sends the same frame bytes to every server-side
// connection whose framing matches (no compression, or compression without
// context takeover at the same level), compressing at most once per level.
// Other connections (clients, which mask every frame, and compression with
// context takeover, whose output depends on each connection's history) get
// an ordinary Write. A PreparedMessage is safe for concurrent use; p must
// not change after it is made.
type PreparedMessage struct {
	typ  MessageType
	data []byte

	mu     sync.Mutex
	frames map[preparedKey][]byte // guarded by mu
}

// preparedKey says how a frame was encoded: compressed or not, and at
// which flate level.
type preparedKey struct {
	compressed bool
	level      int
}

// NewPreparedMessage prepares p as a message of type typ.
func NewPreparedMessage(typ MessageType, p []byte) *PreparedMessage {
	return &PreparedMessage{typ: typ, data: p}
}

// frame returns the encoded frame for key, building it on first use.
func (pm *PreparedMessage) frame(key preparedKey, build func() ([]byte, error)) ([]byte, error) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if f, ok := pm.frames[key]; ok {
		return f, nil
	}
	f, err := build()
	if err != nil {
		return nil, err
	}
	if pm.frames == nil {
		pm.frames = make(map[preparedKey][]byte, 1)
	}
	pm.frames[key] = f
	return f, nil
}

// WritePrepared sends pm as one message, like Write.
func (c *Conn) WritePrepared(ctx context.Context, pm *PreparedMessage) error {
	frame, compress, err := pm.encodedFor(c.client, c.comp, c.threshold)
	if err != nil {
		return err
	}
	if frame == nil {
		return c.write(ctx, pm.typ, pm.data, compress)
	}
	if err := c.lock(ctx, c.msgSem); err != nil {
		return err
	}
	defer unlock(c.msgSem)
	return c.putData(ctx, frame, true, 0, 0, nil)
}

// serverFrame returns pm as an unmasked frame, compressed by comp (which
// is stateless) when compress is set.
func (pm *PreparedMessage) serverFrame(comp *deflate.Compressor, compress bool) ([]byte, error) {
	key := preparedKey{compressed: compress}
	if compress {
		key.level = comp.Level()
	}
	return pm.frame(key, func() ([]byte, error) {
		payload, rsv := pm.data, byte(0)
		if compress {
			var err error
			if payload, err = comp.Compress(nil, pm.data); err != nil {
				return nil, fmt.Errorf("duplex: compress: %w", err)
			}
			rsv = wire.RSV1
		}
		h := wire.Header{Fin: true, RSV: rsv, Opcode: wire.Opcode(pm.typ), Length: int64(len(payload))}
		return append(wire.Append(make([]byte, 0, wire.MaxHeaderSize+len(payload)), h), payload...), nil
	})
}
