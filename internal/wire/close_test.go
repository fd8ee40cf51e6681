package wire_test

import (
	"errors"
	"testing"

	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/wire"
)

func TestParseClose(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		code    uint16
		reason  string
		err     error
	}{
		{"empty: no status", "", 1005, "", nil},
		{"1000", "03e8", 1000, "", nil},
		{"1000 bye", "03e8 627965", 1000, "bye", nil},
		{"4999 with a UTF-8 reason", "1387 e282ac", 4999, "€", nil},
		{"one byte", "03", 0, "", wire.ErrCloseOneByte},
		{"code 0", "0000", 0, "", wire.ErrCloseCode},
		{"code 1005 on the wire", "03ed", 1005, "", wire.ErrCloseCode},
		{"code 1006 on the wire", "03ee", 1006, "", wire.ErrCloseCode},
		{"reason not UTF-8", "03e8 ff", 1000, "", wire.ErrCloseReason},
		{"reason with a surrogate", "03e8 eda080", 1000, "", wire.ErrCloseReason},
		{"reason cut inside a code point", "03e8 e282", 1000, "", wire.ErrCloseReason},
	}
	for _, tt := range tests {
		code, reason, err := wire.ParseClose(testkit.Hex(tt.payload))
		if !errors.Is(err, tt.err) || (err == nil && (code != tt.code || reason != tt.reason)) {
			t.Errorf("%s: ParseClose(%s) = %d, %q, %v; want %d, %q, %v", tt.name, tt.payload, code, reason, err, tt.code, tt.reason, tt.err)
		}
	}
}

// ValidCloseCode follows RFC 6455 §7.4 and the IANA registry over the
// whole uint16 range.
func TestValidCloseCode(t *testing.T) {
	valid := func(c int) bool {
		switch {
		case c < 1000, c > 4999:
			return false // §7.4.2: below 1000 unused; above 4999 undefined
		case c == 1004, c == 1005, c == 1006, c == 1015:
			return false // reserved, or never sent on the wire
		case c <= 1014:
			return true // defined by §7.4.1 and IANA
		case c < 3000:
			return false // 1016-2999: reserved for future revisions
		}
		return true // 3000-4999: libraries, frameworks, applications
	}
	for c := 0; c <= 0xffff; c++ {
		if got := wire.ValidCloseCode(uint16(c)); got != valid(c) {
			t.Errorf("ValidCloseCode(%d) = %v; want %v", c, got, valid(c))
		}
	}
}

func TestAppendClose(t *testing.T) {
	p := wire.AppendClose([]byte{0xaa}, 1001, "bye")
	if got, want := p, testkit.Hex("aa 03e9 627965"); string(got) != string(want) {
		t.Errorf("AppendClose = % x; want % x", got, want)
	}
	code, reason, err := wire.ParseClose(p[1:])
	if code != 1001 || reason != "bye" || err != nil {
		t.Errorf("ParseClose(AppendClose(1001, bye)) = %d, %q, %v", code, reason, err)
	}
}
