//go:build linux

package duplex

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkEventBatch is WritePreparedBatch against TryWritePreparedBatch
// for a batch of 8 prepared messages into a socket whose other end a
// goroutine drains: the cost of a call that never waits, and its
// allocations (none). A Try call that finds the socket full hands the rest
// to WritePreparedBatch, as a program would; wouldblock/op counts those.
func BenchmarkEventBatch(b *testing.B) {
	for _, n := range []int{64, 1 << 10} {
		pms := make([]*PreparedMessage, 8)
		for i := range pms {
			pms[i] = NewPreparedMessage(MessageBinary, make([]byte, n))
		}
		for _, try := range []bool{false, true} {
			name := "Wait/"
			if try {
				name = "Try/"
			}
			b.Run(name+strconv.Itoa(n), func(b *testing.B) {
				ec, closeEC := drainedEventConn(b)
				ctx := context.Background()
				blocked := 0
				b.SetBytes(int64(len(pms) * n))
				b.ReportAllocs()
				for b.Loop() {
					if !try {
						if _, err := ec.WritePreparedBatch(ctx, pms); err != nil {
							b.Fatal(err)
						}
						continue
					}
					k, err := ec.TryWritePreparedBatch(pms)
					if err == ErrWouldBlock {
						blocked++
						_, err = ec.WritePreparedBatch(ctx, pms[k:])
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(blocked)/float64(b.N), "wouldblock/op")
				closeEC()
			})
		}
	}
}

// BenchmarkEventTryWrite is BenchmarkEventWrite's server case with
// TryWrite: framing and the system call, no waiting, no allocation.
func BenchmarkEventTryWrite(b *testing.B) {
	for _, n := range []int{16, 1 << 10} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			ec, closeEC := drainedEventConn(b)
			msg := make([]byte, n)
			blocked := 0
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				sent, err := ec.TryWrite(MessageBinary, msg)
				if err == ErrWouldBlock {
					blocked++
					if !sent {
						err = ec.Write(context.Background(), MessageBinary, msg)
					} else {
						_, err = ec.WritePreparedBatch(context.Background(), nil)
					}
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(blocked)/float64(b.N), "wouldblock/op")
			closeEC()
		})
	}
}
