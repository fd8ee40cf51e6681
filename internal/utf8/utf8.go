// Package utf8 validates UTF-8 incrementally, as bytes arrive, so a text
// message can be rejected at its first invalid byte even when a code point
// is split across frames or reads (RFC 6455 §8.1).
package utf8

import (
	"encoding/binary"
	stdutf8 "unicode/utf8"
)

// Validator holds the state between chunks. The zero value is ready at the
// start of a message.
type Validator struct {
	need   uint8 // continuation bytes still expected
	lo, hi byte  // range allowed for the next continuation byte
}

// Reset makes v ready for a new message.
func (v *Validator) Reset() { *v = Validator{} }

// Complete reports whether the bytes so far end on a code point boundary.
func (v *Validator) Complete() bool { return v.need == 0 }

const asciiMask = 0x8080808080808080

// Write feeds p and reports whether it is valid so far. After it returns
// false the validator stays invalid until Reset.
func (v *Validator) Write(p []byte) bool {
	i := 0
	// Finish a code point left open by the previous chunk.
	for v.need != 0 && v.need != 0xff && i < len(p) {
		if !v.write(p[i : i+1]) {
			return false
		}
		i++
	}
	if v.need == 0 && len(p)-i > 16 {
		// The standard library is fastest on whole code points; leave it
		// all but a code point the chunk may end inside.
		end := len(p)
		for k := len(p) - 1; k >= i && k >= len(p)-3; k-- {
			if p[k] >= 0xc0 {
				end = k
				break
			}
			if p[k] < 0x80 {
				break
			}
		}
		if !stdutf8.Valid(p[i:end]) {
			v.need, v.lo, v.hi = 0xff, 1, 0
			return false
		}
		i = end
	}
	return v.write(p[i:])
}

// write is the byte-at-a-time state machine behind Write.
func (v *Validator) write(p []byte) bool {
	i := 0
	for i < len(p) {
		if v.need == 0 {
			// ASCII fast path, eight bytes at a time.
			for i+8 <= len(p) && binary.LittleEndian.Uint64(p[i:])&asciiMask == 0 {
				i += 8
			}
			if i == len(p) {
				break
			}
			b := p[i]
			i++
			if b < 0x80 {
				continue
			}
			if !v.lead(b) {
				return false
			}
			continue
		}
		b := p[i]
		if b < v.lo || b > v.hi {
			v.need, v.lo, v.hi = 0xff, 1, 0 // stuck invalid
			return false
		}
		i++
		v.need--
		v.lo, v.hi = 0x80, 0xbf
	}
	return v.need != 0xff
}

// lead starts a multi-byte sequence, following the table of RFC 3629 §4,
// which rules out overlong forms and surrogates.
func (v *Validator) lead(b byte) bool {
	v.lo, v.hi = 0x80, 0xbf
	switch {
	case b >= 0xc2 && b <= 0xdf:
		v.need = 1
	case b == 0xe0:
		v.need, v.lo = 2, 0xa0
	case b >= 0xe1 && b <= 0xec, b == 0xee, b == 0xef:
		v.need = 2
	case b == 0xed:
		v.need, v.hi = 2, 0x9f
	case b == 0xf0:
		v.need, v.lo = 3, 0x90
	case b >= 0xf1 && b <= 0xf3:
		v.need = 3
	case b == 0xf4:
		v.need, v.hi = 3, 0x8f
	default:
		v.need, v.lo, v.hi = 0xff, 1, 0
		return false
	}
	return true
}

// Valid reports whether p is complete, valid UTF-8.
func Valid(p []byte) bool {
	var v Validator
	return v.Write(p) && v.Complete()
}
