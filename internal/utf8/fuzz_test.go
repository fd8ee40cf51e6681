package utf8

import (
	"testing"
	"unicode/utf8"
)

// validPrefix reports whether p can still be the start of valid UTF-8: it
// is valid, or it is valid up to a code point cut short that some
// continuation bytes would complete. It is written on the standard
// library, to check the Validator against something independent.
func validPrefix(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	for k := 1; k <= 3 && k <= len(p); k++ {
		if !utf8.Valid(p[:len(p)-k]) {
			continue
		}
		tail := p[len(p)-k:]
		var need int
		switch b := tail[0]; {
		case b >= 0xc2 && b <= 0xdf:
			need = 2
		case b >= 0xe0 && b <= 0xef:
			need = 3
		case b >= 0xf0 && b <= 0xf4:
			need = 4
		default:
			continue
		}
		if k >= need {
			continue
		}
		// Only the byte after the lead has a narrowed range (RFC 3629
		// §4); the others take any continuation byte, so trying each c
		// in every missing position covers every completion that matters.
		for c := byte(0x80); c <= 0xbf; c++ {
			q := append([]byte(nil), tail...)
			for len(q) < need {
				q = append(q, c)
			}
			if utf8.Valid(q) {
				return true
			}
		}
	}
	return false
}

func FuzzValidator(f *testing.F) {
	seeds := []struct {
		text   string
		splits []byte
	}{
		{"Hello", nil}, // RFC 6455 §5.7 text
		{"Hello-µ@ßöäüàá-UTF-8!!", []byte{6, 1}}, // Autobahn 6.2.x
		{"κόσμε", []byte{1, 1, 1, 1, 1, 1, 1}},
		{"κόσμε\xed\xa0\x80edited", []byte{11, 1}}, // surrogate U+D800 (Autobahn 6.3.1)
		{"\xf4\x90\x80\x80", []byte{1, 1}},         // above U+10FFFF
		{"\xc0\xaf", nil},                          // overlong '/'
		{"\xe0\x80\xaf", []byte{1}},                // overlong '/'
		{"\xf0\x9f\x98\x80", []byte{1, 2}},         // U+1F600 split three ways
		{"\xf0\x9f\x98", nil},                      // cut short
		{"abcdefgh\x80ijklmnop", []byte{8}},        // stray continuation after a word
		{"\xef\xbf\xbf\xf4\x8f\xbf\xbf", []byte{2, 3}},
	}
	for _, s := range seeds {
		f.Add([]byte(s.text), s.splits)
	}
	f.Fuzz(func(t *testing.T, data, splits []byte) {
		want := utf8.Valid(data)
		if got := Valid(data); got != want {
			t.Fatalf("Valid(%q) = %v; want %v", data, got, want)
		}

		var v Validator
		ok, off, rest := true, 0, data
		feed := func(n int) {
			ok = v.Write(rest[:n])
			off += n
			rest = rest[n:]
			if got := validPrefix(data[:off]); ok != got {
				t.Fatalf("Write of %q after %q = %v; %q is a valid prefix: %v",
					data[off-n:off], data[:off-n], ok, data[:off], got)
			}
			if ok && v.Complete() != utf8.Valid(data[:off]) {
				t.Fatalf("Complete after %q = %v; want %v", data[:off], v.Complete(), utf8.Valid(data[:off]))
			}
		}
		for _, s := range splits {
			if !ok {
				break
			}
			feed(int(s) % (len(rest) + 1))
		}
		if ok {
			feed(len(rest))
		}
		if got := ok && v.Complete(); got != want {
			t.Fatalf("Validator over %q in pieces %v = %v; want %v", data, splits, got, want)
		}
		// Once invalid, it stays so until Reset.
		if !ok && (v.Write([]byte("a")) || v.Write(nil) || v.Complete()) {
			t.Fatalf("Validator recovered after invalid input %q", data)
		}
		v.Reset()
		if !v.Write(data) || !v.Complete() {
			if want {
				t.Fatalf("Validator after Reset rejects valid %q", data)
			}
		} else if !want {
			t.Fatalf("Validator after Reset accepts invalid %q", data)
		}
	})
}
