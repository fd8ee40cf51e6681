//go:build linux

package duplex

import (
	"strconv"
	"testing"
)

// benchEventStream feeds stream to an EventConn's handler in reads of up
// to 4 KiB, as readSocket does (without its reads straight into a long
// message), copied from the stream since frames are unmasked in place.
func benchEventStream(b *testing.B, n int, stream []byte) {
	b.Run("Event/"+strconv.Itoa(n), func(b *testing.B) {
		got := 0
		ec := &EventConn{fd: -1, h: &EventHandler{OnMessage: func(c *EventConn, typ MessageType, p []byte) {
			if len(p) != n {
				b.Fatalf("OnMessage got %d bytes; want %d", len(p), n)
			}
			got++
		}}}
		ec.limit.Store(defaultReadLimit)
		src := &cycleReader{p: stream}
		buf := make([]byte, eventBufSize)
		b.SetBytes(int64(n))
		b.ReportAllocs()
		b.ResetTimer()
		// One read holds many short messages: count messages, not reads.
		for got < b.N {
			// As readSocket does: a partial header kept from the last
			// read goes first.
			k := 0
			if rs := ec.rs; rs != nil && len(rs.pending) > 0 {
				k = copy(buf, rs.pending)
				rs.pending = rs.pending[:0]
			}
			m, _ := src.Read(buf[k:])
			if !ec.handle(buf[:k+m]) {
				b.Fatal("handle stopped")
			}
		}
	})
}
