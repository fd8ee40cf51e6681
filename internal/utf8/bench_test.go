package utf8

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// benchText returns n bytes of valid UTF-8 made by repeating unit, cut
// back to a code point boundary.
func benchText(unit string, n int) []byte {
	s := strings.Repeat(unit, n/len(unit)+1)[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return []byte(s)
}

func BenchmarkValidate(b *testing.B) {
	texts := []struct{ name, unit string }{
		{"ascii", `{"type":"chat","room":"lobby","text":"hello, world"} `},
		{"multibyte", "Ελληνικά 日本語のテキスト русский ✓ 😀 "}, // 2-, 3- and 4-byte code points
	}
	impls := []struct {
		name  string
		valid func([]byte) bool
	}{
		{"Valid", Valid},
		{"Validator", func(p []byte) bool {
			// As the Conn uses it: one message fed in 512-byte reads.
			var v Validator
			for len(p) > 512 {
				if !v.Write(p[:512]) {
					return false
				}
				p = p[512:]
			}
			return v.Write(p) && v.Complete()
		}},
		{"stdlib", utf8.Valid},
	}
	for _, tx := range texts {
		for _, n := range []int{16, 1 << 10, 64 << 10} {
			p := benchText(tx.unit, n)
			for _, im := range impls {
				b.Run(tx.name+"/"+im.name+"/"+strconv.Itoa(n), func(b *testing.B) {
					b.SetBytes(int64(len(p)))
					b.ReportAllocs()
					for b.Loop() {
						if !im.valid(p) {
							b.Fatal("valid text rejected")
						}
					}
				})
			}
		}
	}
}
