package wire

import (
	"strconv"
	"testing"
)

var benchKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

func BenchmarkMask(b *testing.B) {
	for _, n := range []int{16, 1 << 10, 64 << 10, 1 << 20} {
		buf := make([]byte, n)
		b.Run("word/"+strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				Mask(benchKey, 1, buf)
			}
		})
		// The byte loop of RFC 6455 §5.3, as a baseline for the word loop.
		b.Run("naive/"+strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				maskRef(benchKey, 1, buf)
			}
		})
	}
}

// benchHeaders are frame headers for payloads of each size: the 7-bit,
// 16-bit and 64-bit length encodings, masked as a client sends them.
func benchHeaders() []Header {
	var hs []Header
	for _, n := range []int64{16, 1 << 10, 64 << 10} {
		hs = append(hs, Header{Fin: true, Opcode: OpBinary, Masked: true, Key: benchKey, Length: n})
	}
	return hs
}

func BenchmarkParse(b *testing.B) {
	for _, h := range benchHeaders() {
		wire := Append(nil, h)
		b.Run(strconv.FormatInt(h.Length, 10), func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Parse(wire); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, h := range benchHeaders() {
		buf := make([]byte, 0, MaxHeaderSize)
		b.Run(strconv.FormatInt(h.Length, 10), func(b *testing.B) {
			b.SetBytes(int64(len(Append(nil, h))))
			b.ReportAllocs()
			for b.Loop() {
				buf = Append(buf[:0], h)
			}
		})
	}
}
