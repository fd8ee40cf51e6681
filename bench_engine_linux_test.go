//go:build linux

package duplex

import (
	"context"
	"io"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/duplexws/duplex/internal/deflate"
)

// benchEventStream feeds stream to an EventConn's handler in reads of up
// to 4 KiB, as readSocket does (without its reads straight into a long
// message), copied from the stream since frames are unmasked in place;
// with compressed, on a connection that negotiated permessage-deflate.
func benchEventStream(b *testing.B, n int, stream []byte, compressed bool) {
	b.Run("Event/"+strconv.Itoa(n), func(b *testing.B) {
		got := 0
		ec := &EventConn{fd: -1, h: &EventHandler{OnMessage: func(c *EventConn, typ MessageType, p []byte) {
			if len(p) != n {
				b.Fatalf("OnMessage got %d bytes; want %d", len(p), n)
			}
			got++
		}}}
		ec.limit.Store(defaultReadLimit)
		if compressed {
			ec.flags |= evDeflate
			ec.x.Store(&eventExtra{closeTimeout: defaultCloseTimeout, decomp: deflate.NewDecompressor(15, false)})
		}
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

// drainedEventConn returns an EventConn, not on the event loop, on one end
// of a socket pair whose other end a goroutine reads and discards, and
// the function that closes both once the benchmark's timer is stopped.
func drainedEventConn(b *testing.B) (*EventConn, func()) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	peer := os.NewFile(uintptr(fds[1]), "peer")
	drained := make(chan struct{})
	go func() {
		io.Copy(io.Discard, peer)
		close(drained)
	}()
	return &EventConn{fd: int32(fds[0]), h: &EventHandler{}}, func() {
		syscall.Close(fds[0])
		<-drained
		peer.Close()
	}
}

// BenchmarkEventWrite is EventConn.Write into a socket whose other end a
// goroutine drains: framing (and, as a client, masking) and the system
// call, per message.
func BenchmarkEventWrite(b *testing.B) {
	for _, client := range []bool{false, true} {
		role := "server"
		if client {
			role = "client"
		}
		for _, n := range []int{16, 1 << 10, 64 << 10} {
			b.Run(role+"/"+strconv.Itoa(n), func(b *testing.B) {
				ec, closeEC := drainedEventConn(b)
				if client {
					ec.flags |= evClient
				}
				msg := make([]byte, n)
				ctx := context.Background()
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if err := ec.Write(ctx, MessageBinary, msg); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				closeEC()
			})
		}
	}
}
