package duplex

import (
	"fmt"
	"math/rand/v2"

	"github.com/duplexws/duplex/internal/deflate"
	"github.com/duplexws/duplex/internal/wire"
)

// The protocol engine's write half: how a frame we send is framed,
// masked and compressed, for Conn and EventConn alike. The drivers only
// decide when a frame may go (one at a time, nothing after our close
// frame) and put the bytes on their transport.

// copyLimit: a server payload up to this size is copied next to its header
// and sent in one write; a larger one goes out with writev, uncopied.
const copyLimit = 2 << 10

// checkType refuses a message type that is not one of RFC 6455 §5.6's.
func checkType(typ MessageType) error {
	if typ != MessageText && typ != MessageBinary {
		return fmt.Errorf("duplex: invalid message type %d", typ)
	}
	return nil
}

// outHeader returns the header of a frame of n payload bytes that we
// send. A client masks every frame with a fresh, unpredictable key
// (§5.3); the runtime's generator is ChaCha8, seeded from the OS per
// thread.
func outHeader(client, fin bool, op wire.Opcode, rsv byte, n int) wire.Header {
	h := wire.Header{Fin: fin, RSV: rsv, Opcode: op, Length: int64(n)}
	if client {
		h.Masked = true
		k := rand.Uint32()
		h.Key = [4]byte{byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}
	}
	return h
}

// encodeFrame encodes the frame with header h and payload p and hands it
// to emit in order, in pieces of one or two slices (b may be nil). A
// masked payload is masked into pool-buffer chunks, never in place: p is
// the caller's. A short unmasked payload is copied next to its header so
// the frame goes out in one write; a long one goes out uncopied, after
// its header (writev).
func encodeFrame(h wire.Header, p []byte, emit func(a, b []byte) error) error {
	bp := getWriteBuf()
	defer putWriteBuf(bp)
	buf := *bp
	b := wire.Append(buf[:0], h)
	if !h.Masked {
		if len(p) <= copyLimit {
			return emit(append(b, p...), nil)
		}
		return emit(b, p)
	}
	pos := 0
	for {
		k := copy(buf[len(b):cap(buf)], p)
		b = buf[:len(b)+k]
		pos = wire.Mask(h.Key, pos, b[len(b)-k:])
		p = p[k:]
		if err := emit(b, nil); err != nil {
			return err
		}
		if len(p) == 0 {
			return nil
		}
		b = buf[:0]
	}
}

// closePayload is the payload of a close frame the program asked for,
// or why it may not be sent.
func closePayload(code StatusCode, reason string) ([]byte, error) {
	if !wire.ValidCloseCode(uint16(code)) {
		return nil, fmt.Errorf("duplex: close code %d may not be sent", code)
	}
	if len(reason) > wire.MaxControlPayload-2 {
		return nil, fmt.Errorf("duplex: close reason longer than %d bytes", wire.MaxControlPayload-2)
	}
	return wire.AppendClose(nil, uint16(code), reason), nil
}

// wantCompress says whether Write compresses a message of n bytes: when
// permessage-deflate was negotiated and n is at least the threshold.
func wantCompress(comp *deflate.Compressor, threshold, n int) bool {
	return comp != nil && n >= threshold
}

// compressPayload compresses the message p into the pool buffer bp
// (RFC 7692 §7.2.1); the frame that carries it has RSV1 set.
func compressPayload(comp *deflate.Compressor, bp *[]byte, p []byte) ([]byte, error) {
	out, err := comp.Compress((*bp)[:0], p)
	if err != nil {
		return nil, fmt.Errorf("duplex: compress: %w", err)
	}
	return out, nil
}

// encodedFor returns the frame of pm ready to send as it is on a
// connection of this kind, or nil when the connection must send pm as an
// ordinary message, compressed or not as compress says: a client masks
// every frame, and with context takeover the compressed bytes depend on
// the connection's history.
func (pm *PreparedMessage) encodedFor(client bool, comp *deflate.Compressor, threshold int) (frame []byte, compress bool, err error) {
	compress = wantCompress(comp, threshold, len(pm.data))
	if client || (compress && !comp.Stateless()) {
		return nil, compress, checkType(pm.typ)
	}
	if err := checkType(pm.typ); err != nil {
		return nil, false, err
	}
	frame, err = pm.serverFrame(comp, compress)
	return frame, compress, err
}
