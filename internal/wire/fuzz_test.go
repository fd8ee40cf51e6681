package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// unhex decodes a wire vector written with spaces between fields, so the
// seeds read like the bytes in RFC 6455 §5.7.
func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// rfcFrames are the examples of RFC 6455 §5.7, whole frames.
var rfcFrames = []string{
	"81 05 48656c6c6f",            // unmasked text "Hello"
	"81 85 37fa213d 7f9f4d5158",   // masked text "Hello"
	"01 03 48656c",                // fragmented unmasked text "Hel" ...
	"80 02 6c6f",                  // ... "lo"
	"89 05 48656c6c6f",            // unmasked ping "Hello"
	"8a 85 37fa213d 7f9f4d5158",   // masked pong "Hello"
	"82 7e 0100",                  // 256 bytes binary, 16-bit length (header only)
	"82 7f 0000000000010000",      // 64 KiB binary, 64-bit length (header only)
	"88 82 00000000 03e8",         // masked close 1000 with a zero key
	"82 fe ffff 01020304",         // masked, longest 16-bit length
	"0f 7f 7fffffffffffffff",      // reserved opcode, longest length
	"7f 7f 8000000000000000",      // length with the top bit set
	"82 7e 007d",                  // non-minimal 16-bit length
	"82 7f 000000000000ffff",      // non-minimal 64-bit length
	"82 ff 0000000000010000 aabb", // short: key cut off
}

func FuzzParse(f *testing.F) {
	for _, s := range rfcFrames {
		f.Add(unhex(s))
	}
	f.Add([]byte{})
	f.Add([]byte{0x81})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		if len(b) >= 2 && len(b) >= HeaderSize(b[1]) {
			if errors.Is(err, ErrShortHeader) {
				t.Fatalf("Parse(% x) = ErrShortHeader; header of %d bytes is all there", b, HeaderSize(b[1]))
			}
		} else if !errors.Is(err, ErrShortHeader) {
			t.Fatalf("Parse(% x) err = %v; want ErrShortHeader", b, err)
		}
		if err != nil {
			return
		}
		if n != HeaderSize(b[1]) || n > MaxHeaderSize {
			t.Fatalf("Parse(% x) n = %d; want HeaderSize = %d", b, n, HeaderSize(b[1]))
		}
		if h.Length < 0 {
			t.Fatalf("Parse(% x) Length = %d < 0", b, h.Length)
		}
		if h.RSV > 7 || h.Opcode > 0xf {
			t.Fatalf("Parse(% x) = %+v: RSV or opcode out of range", b, h)
		}
		if !h.Masked && h.Key != [4]byte{} {
			t.Fatalf("Parse(% x) = %+v: key without the mask bit", b, h)
		}
		// The length is minimal, so encoding the header again must give
		// exactly the bytes consumed.
		if got := Append(nil, h); !bytes.Equal(got, b[:n]) {
			t.Fatalf("Append(Parse(% x)) = % x; want % x", b, got, b[:n])
		}
		// Append appends, leaving what is already in dst.
		prefix := []byte{0xde, 0xad}
		if got := Append(prefix, h); !bytes.Equal(got[:2], prefix) || !bytes.Equal(got[2:], b[:n]) {
			t.Fatalf("Append(% x, %+v) = % x", prefix, h, got)
		}
	})
}

// maskRef is masking as RFC 6455 §5.3 writes it: octet i of the payload
// is XORed with octet (i + pos) mod 4 of the key.
func maskRef(key [4]byte, pos int, b []byte) {
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
}

func FuzzMask(f *testing.F) {
	// §5.7: "Hello" masked with 37 fa 21 3d is 7f 9f 4d 51 58.
	f.Add(uint32(0x3d21fa37), 0, unhex("48656c6c6f"), []byte{2})
	f.Add(uint32(0x3d21fa37), 0, unhex("7f9f4d5158"), []byte{})
	f.Add(uint32(0x01020304), 3, bytes.Repeat([]byte("0123456789abcdef"), 9), []byte{1, 15, 64, 7})
	f.Add(uint32(0xffffffff), -1, make([]byte, 200), []byte{63, 64, 65})
	f.Fuzz(func(t *testing.T, k uint32, pos int, data, splits []byte) {
		var key [4]byte
		binary.LittleEndian.PutUint32(key[:], k)

		want := bytes.Clone(data)
		maskRef(key, pos, want)

		whole := bytes.Clone(data)
		if got, wantPos := Mask(key, pos, whole), (pos+len(data))&3; got != wantPos {
			t.Fatalf("Mask(%x, %d, %d bytes) = %d; want position %d", key, pos, len(data), got, wantPos)
		}
		if !bytes.Equal(whole, want) {
			t.Fatalf("Mask(%x, %d, % x) = % x; want % x", key, pos, data, whole, want)
		}

		// In pieces, each continuing at the position the last returned.
		pieces := bytes.Clone(data)
		p, rest := pos, pieces
		for _, s := range splits {
			if len(rest) == 0 {
				break
			}
			n := int(s) % (len(rest) + 1)
			p = Mask(key, p, rest[:n])
			rest = rest[n:]
		}
		Mask(key, p, rest)
		if !bytes.Equal(pieces, want) {
			t.Fatalf("Mask in pieces %v (key %x, pos %d) = % x; want % x", splits, key, pos, pieces, want)
		}

		// Masking is its own inverse.
		Mask(key, pos, whole)
		if !bytes.Equal(whole, data) {
			t.Fatalf("masking twice (key %x, pos %d) = % x; want % x", key, pos, whole, data)
		}
	})
}

func FuzzParseClose(f *testing.F) {
	f.Add([]byte{})                                 // no status (1005)
	f.Add(unhex("03e8"))                            // 1000
	f.Add(append(unhex("03e9"), "bye"...))          // 1001 "bye"
	f.Add(unhex("03"))                              // one byte
	f.Add(unhex("03ed"))                            // 1005 may not be sent
	f.Add(unhex("0bb8 ff"))                         // 3000, invalid UTF-8
	f.Add(append(unhex("1387"), "héllo ✓"...))      // 4999, multibyte reason
	f.Add(append(unhex("03f3"), "\xed\xa0\x80"...)) // 1011, surrogate
	f.Fuzz(func(t *testing.T, p []byte) {
		code, reason, err := ParseClose(p)
		switch {
		case len(p) == 0:
			if code != NoStatus || reason != "" || err != nil {
				t.Fatalf("ParseClose(empty) = %d, %q, %v; want %d, \"\", nil", code, reason, err, NoStatus)
			}
			return
		case len(p) == 1:
			if !errors.Is(err, ErrCloseOneByte) {
				t.Fatalf("ParseClose(% x) err = %v; want ErrCloseOneByte", p, err)
			}
			return
		case !ValidCloseCode(binary.BigEndian.Uint16(p)):
			if !errors.Is(err, ErrCloseCode) {
				t.Fatalf("ParseClose(% x) err = %v; want ErrCloseCode", p, err)
			}
			return
		case !utf8.Valid(p[2:]):
			if !errors.Is(err, ErrCloseReason) {
				t.Fatalf("ParseClose(% x) err = %v; want ErrCloseReason", p, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseClose(% x) err = %v; want nil", p, err)
		}
		if got := AppendClose(nil, code, reason); !bytes.Equal(got, p) {
			t.Fatalf("AppendClose(ParseClose(% x)) = % x", p, got)
		}
	})
}
