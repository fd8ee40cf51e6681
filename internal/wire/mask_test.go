package wire_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/wire"
)

// naiveMask is RFC 6455 §5.3 word for word: octet i is XORed with octet
// i MOD 4 of the key, where i counts from the start of the payload.
func naiveMask(key [4]byte, start int, b []byte) {
	for i := range b {
		b[i] ^= key[(start+i)%4]
	}
}

func TestMaskRFCVector(t *testing.T) {
	// §5.7: "Hello" masked with 37 fa 21 3d.
	p := []byte("Hello")
	if pos := wire.Mask([4]byte{0x37, 0xfa, 0x21, 0x3d}, 0, p); pos != 1 || !bytes.Equal(p, testkit.Hex("7f9f4d5158")) {
		t.Errorf("Mask(Hello) = % x, %d; want 7f 9f 4d 51 58, 1", p, pos)
	}
}

// Mask agrees with naiveMask at every key position, for every length up to
// past the word loops, and at every alignment of the slice.
func TestMask(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 8+300)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for pos := range 8 { // positions past 3 wrap
		for align := range 8 {
			for n := 0; n <= 300; n++ {
				got := append([]byte(nil), buf[:align+n]...)[align:]
				want := append([]byte(nil), got...)
				naiveMask(key, pos, want)
				end := wire.Mask(key, pos, got)
				if !bytes.Equal(got, want) {
					t.Fatalf("Mask(pos %d, align %d, len %d) differs from RFC 6455 §5.3 at byte %d", pos, align, n, firstDiff(got, want))
				}
				if wantEnd := (pos + n) % 4; end != wantEnd {
					t.Fatalf("Mask(pos %d, len %d) = %d; want %d", pos, n, end, wantEnd)
				}
			}
		}
	}
}

// A payload masked in pieces, each starting where the last ended, equals
// the payload masked whole; masking twice restores it.
func TestMaskInPieces(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	r := rand.New(rand.NewPCG(5, 6))
	for range 1000 {
		p := make([]byte, r.IntN(500))
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		whole := append([]byte(nil), p...)
		wire.Mask(key, 0, whole)
		pieces := append([]byte(nil), p...)
		pos := 0
		for rest := pieces; len(rest) > 0; {
			k := min(len(rest), r.IntN(70))
			pos = wire.Mask(key, pos, rest[:k])
			rest = rest[k:]
		}
		if !bytes.Equal(pieces, whole) {
			t.Fatalf("masked in pieces differs at byte %d of %d", firstDiff(pieces, whole), len(p))
		}
		wire.Mask(key, 0, whole)
		if !bytes.Equal(whole, p) {
			t.Fatal("masking twice did not restore the payload")
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}
