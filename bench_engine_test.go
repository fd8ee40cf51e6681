package duplex

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/wire"
)

// cycleReader yields p over and over: an endless stream of the same
// frames, read with no network and no other goroutine.
type cycleReader struct {
	p   []byte
	off int
}

func (r *cycleReader) Read(b []byte) (int, error) {
	n := copy(b, r.p[r.off:])
	r.off = (r.off + n) % len(r.p)
	return n, nil
}

type cycleTransport struct{ *cycleReader }

func (cycleTransport) Write(p []byte) (int, error)      { return len(p), nil }
func (cycleTransport) Close() error                     { return nil }
func (cycleTransport) SetReadDeadline(time.Time) error  { return nil }
func (cycleTransport) SetWriteDeadline(time.Time) error { return nil }

// maskedStream is masked binary messages of n bytes, as a client sends
// them, repeated to about 256 KiB.
func maskedStream(n int) []byte {
	h := wire.Header{Fin: true, Opcode: wire.OpBinary, Masked: true, Key: [4]byte{1, 2, 3, 4}, Length: int64(n)}
	frame := wire.Append(nil, h)
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i)
	}
	wire.Mask(h.Key, 0, payload)
	frame = append(frame, payload...)
	var s []byte
	for len(s) < 256<<10 || len(s) == 0 {
		s = append(s, frame...)
	}
	return s
}

// BenchmarkReadStream is the CPU cost of reading a message on the server
// side, with the network taken away: Conn.ReadInto over an in-memory
// transport, and (on Linux) the event loop's handling of the bytes a
// worker read. ns/op is per message.
func BenchmarkReadStream(b *testing.B) {
	for _, n := range []int{16, 1 << 10, 64 << 10} {
		stream := maskedStream(n)
		b.Run("Conn/"+strconv.Itoa(n), func(b *testing.B) {
			c := newConn(connConfig{tr: cycleTransport{&cycleReader{p: stream}}})
			buf := make([]byte, n)
			ctx := context.Background()
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				_, p, err := c.ReadInto(ctx, buf)
				if err != nil || len(p) != n {
					b.Fatalf("ReadInto: %d bytes, %v", len(p), err)
				}
			}
		})
		benchEventStream(b, n, stream)
	}
}
