package deflate

import (
	"fmt"
	"io"
	"testing"
)

// BenchmarkInflate is BenchmarkDecompress through the push API that the
// connections use (Begin, Inflate, Done), the compressed bytes fed in
// pieces as frames or reads bring them: whole, 100 bytes, or 1 byte at a
// time (the worst case, a peer sending one byte per frame).
func BenchmarkInflate(b *testing.B) {
	msgs := benchMessages()
	for _, lv := range benchLevels {
		for _, takeover := range []bool{false, true} {
			for _, piece := range []int{0, 100, 1} {
				name := fmt.Sprintf("%s/takeover=%v/piece=%d", lv.name, takeover, piece)
				b.Run(name, func(b *testing.B) {
					c := NewCompressor(lv.level, 15, takeover)
					var compressed [][]byte
					for i := range 1024 {
						out, _ := c.Compress(nil, msgs[i%len(msgs)])
						compressed = append(compressed, out)
					}
					var d *Decompressor
					b.SetBytes(1024)
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if i%len(compressed) == 0 {
							d = NewDecompressor(15, takeover)
						}
						in := compressed[i%len(compressed)]
						d.Begin(0)
						for {
							k := len(in)
							if piece > 0 {
								k = min(k, piece)
							}
							k = min(k, d.Room())
							n, _, err := d.Inflate(in[:k], k == len(in))
							in = in[n:]
							if err == io.EOF {
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
}
