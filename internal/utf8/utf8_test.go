package utf8_test

import (
	"math/rand/v2"
	"testing"
	stdutf8 "unicode/utf8"

	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/utf8"
)

// utf8Vectors follow RFC 3629 §4: the table of well-formed sequences
// rules out overlong forms, surrogates and code points above U+10FFFF.
// prefix: the bytes are not valid, but a longer message could still be.
var utf8Vectors = []struct {
	name   string
	hex    string
	valid  bool
	prefix bool
}{
	{"empty", "", true, true},
	{"ASCII", "48656c6c6f", true, true},
	{"NUL and DEL", "00 7f", true, true},
	{"κόσμε", "ceba e1bdb9 cf83 cebc ceb5", true, true},
	{"U+0080, first 2-byte", "c280", true, true},
	{"U+07FF, last 2-byte", "dfbf", true, true},
	{"U+0800, first 3-byte", "e0a080", true, true},
	{"U+D7FF, before the surrogates", "ed9fbf", true, true},
	{"U+E000, after the surrogates", "ee8080", true, true},
	{"U+FEFF byte order mark", "efbbbf", true, true},
	{"U+FFFF", "efbfbf", true, true},
	{"U+10000, first 4-byte", "f0908080", true, true},
	{"U+10FFFF, last code point", "f48fbfbf", true, true},
	{"long ASCII then €", "41414141414141414141414141414141 e282ac", true, true},

	{"lone continuation byte", "80", false, false},
	{"continuation after ASCII", "41 bf", false, false},
	{"FE", "fe", false, false},
	{"FF", "ff", false, false},
	{"overlong NUL, 2 bytes", "c080", false, false},
	{"overlong slash, 2 bytes", "c0af", false, false},
	{"overlong U+007F, C1", "c1bf", false, false},
	{"overlong slash, 3 bytes", "e080af", false, false},
	{"overlong U+07FF, 3 bytes", "e09fbf", false, false},
	{"overlong slash, 4 bytes", "f08080af", false, false},
	{"overlong U+FFFF, 4 bytes", "f08fbfbf", false, false},
	{"surrogate U+D800", "eda080", false, false},
	{"surrogate U+DFFF", "edbfbf", false, false},
	{"surrogate pair", "eda0bd edb2a9", false, false},
	{"U+110000, above the last", "f4908080", false, false},
	{"F5 lead", "f5808080", false, false},
	{"5-byte form", "f888808080", false, false},
	{"ASCII inside a sequence", "e2 41 ac", false, false},
	{"valid, then invalid", "48656c6c6f ff 48", false, false},

	{"truncated 2-byte", "c2", false, true},
	{"truncated 3-byte", "e282", false, true},
	{"truncated 4-byte", "f09f98", false, true},
	{"text then truncated", "48656c6c6f e282", false, true},
}

func TestValid(t *testing.T) {
	for _, tt := range utf8Vectors {
		b := testkit.Hex(tt.hex)
		if got := utf8.Valid(b); got != tt.valid {
			t.Errorf("%s: Valid(%s) = %v; want %v", tt.name, tt.hex, got, tt.valid)
		}
		if stdutf8.Valid(b) != tt.valid {
			t.Errorf("%s: the table disagrees with unicode/utf8", tt.name)
		}
		var v utf8.Validator
		if ok := v.Write(b); ok != tt.prefix || (ok && v.Complete() != tt.valid) {
			t.Errorf("%s: Write(%s) = %v, Complete %v; want %v, %v", tt.name, tt.hex, ok, v.Complete(), tt.prefix, tt.valid)
		}
	}
}

// Fed one byte at a time, the validator reaches the same verdict, and
// fails at the first byte that cannot be part of valid UTF-8.
func TestValidatorByteByByte(t *testing.T) {
	for _, tt := range utf8Vectors {
		b := testkit.Hex(tt.hex)
		var v utf8.Validator
		ok := true
		for _, c := range b {
			if ok = v.Write([]byte{c}); !ok {
				break
			}
		}
		if ok != tt.prefix || (ok && v.Complete() != tt.valid) {
			t.Errorf("%s: byte by byte: %v, Complete %v; want %v, %v", tt.name, ok, v.Complete(), tt.prefix, tt.valid)
		}
	}
}

// Once invalid, a validator stays invalid until Reset.
func TestValidatorSticky(t *testing.T) {
	var v utf8.Validator
	if v.Write([]byte{0xff}) {
		t.Fatal("Write(ff) = true")
	}
	if v.Write([]byte("ok")) || v.Write(nil) {
		t.Error("Write after an invalid byte = true; want false until Reset")
	}
	v.Reset()
	if !v.Write([]byte("ok")) || !v.Complete() {
		t.Error("after Reset, Write(ok) = false")
	}
	// Reset in the middle of a code point forgets it.
	v.Write([]byte{0xe2})
	v.Reset()
	if !v.Complete() || !v.Write([]byte("a")) {
		t.Error("after Reset, the validator still expected continuation bytes")
	}
}

// randomText mixes ASCII runs, encoded code points of every length, and
// now and then a byte that breaks the sequence, so that both verdicts are
// common.
func randomText(r *rand.Rand) []byte {
	var b []byte
	for range r.IntN(40) {
		switch r.IntN(10) {
		case 0:
			b = append(b, byte(r.IntN(256)))
		case 1, 2:
			b = append(b, "plain ASCII text"[:r.IntN(17)]...)
		default:
			ranges := [][2]rune{{0x80, 0x7ff}, {0x800, 0xffff}, {0x10000, 0x10ffff}}
			rg := ranges[r.IntN(len(ranges))]
			c := rg[0] + rune(r.IntN(int(rg[1]-rg[0]+1)))
			b = stdutf8.AppendRune(b, c) // surrogates come out as U+FFFD
		}
	}
	if len(b) > 0 && r.IntN(8) == 0 {
		b = b[:r.IntN(len(b))] // cut, maybe inside a code point
	}
	return b
}

// Against unicode/utf8.Valid on random inputs, fed whole, byte by byte,
// and in random chunks.
func TestValidatorMatchesStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	counts := map[bool]int{}
	for range 20000 {
		b := randomText(r)
		want := stdutf8.Valid(b)
		counts[want]++
		if got := utf8.Valid(b); got != want {
			t.Fatalf("Valid(% x) = %v; unicode/utf8 says %v", b, got, want)
		}
		var whole, bytewise, chunked utf8.Validator
		wholeOK := whole.Write(b)
		byteOK := true
		for i := range b {
			if !bytewise.Write(b[i : i+1]) {
				byteOK = false
			}
		}
		chunkOK := true
		for rest := b; len(rest) > 0; {
			k := min(len(rest), 1+r.IntN(12))
			if !chunked.Write(rest[:k]) {
				chunkOK = false
			}
			rest = rest[k:]
		}
		if wholeOK != byteOK || wholeOK != chunkOK {
			t.Fatalf("Write(% x): whole %v, byte by byte %v, in chunks %v", b, wholeOK, byteOK, chunkOK)
		}
		if got := wholeOK && whole.Complete(); got != want {
			t.Fatalf("Write(% x) && Complete() = %v; unicode/utf8 says %v", b, got, want)
		}
		if wholeOK && (whole.Complete() != bytewise.Complete() || whole.Complete() != chunked.Complete()) {
			t.Fatalf("Complete() after % x differs between whole, byte-by-byte and chunked feeding", b)
		}
	}
	if counts[true] < 1000 || counts[false] < 1000 {
		t.Errorf("random inputs: %d valid, %d invalid; want plenty of both", counts[true], counts[false])
	}
}
