package deflate

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"runtime"
	"testing"
)

// benchMessages returns 64 different 1 KiB JSON messages.
func benchMessages() [][]byte {
	var out [][]byte
	for _, m := range messages(7, 1000) {
		if len(m) >= 1024 {
			out = append(out, m[:1024])
		}
		if len(out) == 64 {
			break
		}
	}
	return out
}

var benchLevels = []struct {
	name  string
	level int
}{{"level1", flate.BestSpeed}, {"default", flate.DefaultCompression}}

// BenchmarkCompress compresses 1 KiB messages into a reused buffer. Level
// 1 uses the package's encoder, the default level compress/flate's writer.
//
//   - notakeover: a fresh window per message.
//   - takeover/own: one connection sending. At level 1 the connection's
//     stream carries its history and match index on (stream.go); a
//     flate.Writer comes back from the pool still carrying the
//     connection's stream and needs nothing.
//   - takeover/interleaved: two connections taking turns: a flate.Writer
//     is primed with 2 KiB of history for every message (the worst case);
//     at level 1 each stream carries on as when alone.
func BenchmarkCompress(b *testing.B) {
	msgs := benchMessages()
	for _, lv := range benchLevels {
		for _, mode := range []string{"notakeover", "takeover/own", "takeover/interleaved"} {
			b.Run(lv.name+"/"+mode, func(b *testing.B) {
				takeover := mode != "notakeover"
				cs := []*Compressor{NewCompressor(lv.level, 15, takeover)}
				if mode == "takeover/interleaved" {
					cs = append(cs, NewCompressor(lv.level, 15, takeover))
				}
				var dst []byte
				var total int
				b.SetBytes(1024)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					dst, _ = cs[i%len(cs)].Compress(dst[:0], msgs[i%len(msgs)])
					total += len(dst)
				}
				b.ReportMetric(float64(total)/float64(b.N), "out-B/msg")
			})
		}
	}
}

// BenchmarkDecompress decompresses 1 KiB messages, reading them through a
// reused 4 KiB buffer, with and without context takeover.
func BenchmarkDecompress(b *testing.B) {
	msgs := benchMessages()
	for _, lv := range benchLevels {
		for _, takeover := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/takeover=%v", lv.name, takeover), func(b *testing.B) {
				// One long stream, so that restarting it (and regrowing the
				// history) is rare.
				c := NewCompressor(lv.level, 15, takeover)
				var compressed [][]byte
				for i := range 1024 {
					out, _ := c.Compress(nil, msgs[i%len(msgs)])
					compressed = append(compressed, out)
				}
				var d *Decompressor
				src := new(bytes.Reader)
				buf := make([]byte, 4096)
				b.SetBytes(1024)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if i%len(compressed) == 0 {
						d = NewDecompressor(15, takeover) // the history restarts with the stream
					}
					src.Reset(compressed[i%len(compressed)])
					r := d.Reader(src)
					for {
						if _, err := r.Read(buf); err == io.EOF {
							break
						} else if err != nil {
							b.Fatal(err)
						}
					}
					d.Done()
				}
			})
		}
	}
}

// BenchmarkIdleConn reports the heap a connection keeps between messages
// with context takeover, after it exchanged 40 KiB of 1 KiB messages (enough
// to fill both histories): a Compressor and a Decompressor, as a Conn holds
// them, for each window size negotiated both ways. Without takeover they
// hold only their two small structs.
func BenchmarkIdleConn(b *testing.B) {
	for _, bits := range []int{15, 12, 10, 9} {
		b.Run(fmt.Sprintf("bits=%d", bits), func(b *testing.B) { benchIdleConn(b, bits) })
	}
}

func benchIdleConn(b *testing.B, bits int) {
	msgs := benchMessages()
	type conn struct {
		c *Compressor
		d *Decompressor
	}
	var buf []byte
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	conns := make([]conn, b.N)
	b.ReportAllocs()
	for i := range conns {
		cn := conn{NewCompressor(flate.BestSpeed, bits, true), NewDecompressor(bits, true)}
		for _, m := range msgs[:40] {
			buf, _ = cn.c.Compress(buf[:0], m)
			io.Copy(io.Discard, cn.d.Reader(bytes.NewReader(buf)))
			cn.d.Done()
		}
		conns[i] = cn
	}
	b.StopTimer()
	// Two collections empty the pools, so only what connections hold stays.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(int64(ms.HeapAlloc)-int64(before))/float64(b.N), "idle-B/conn")
	runtime.KeepAlive(conns)
	// The messages were counted in before: freeing them would take their
	// size from the figure.
	runtime.KeepAlive(msgs)
}
