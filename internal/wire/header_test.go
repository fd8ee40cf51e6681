package wire_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/wire"
)

// headerVectors are whole headers, as RFC 6455 §5.2 lays them out: byte 0
// is FIN, RSV1-3 and the opcode; byte 1 the MASK bit and the 7-bit length;
// then the extended length, then the masking key.
var headerVectors = []struct {
	name string
	wire string
	want wire.Header
}{
	{"§5.7 unmasked text Hello", "81 05", wire.Header{Fin: true, Opcode: wire.OpText, Length: 5}},
	{"§5.7 masked text Hello", "81 85 37fa213d", wire.Header{Fin: true, Opcode: wire.OpText, Masked: true, Key: [4]byte{0x37, 0xfa, 0x21, 0x3d}, Length: 5}},
	{"§5.7 first fragment", "01 03", wire.Header{Opcode: wire.OpText, Length: 3}},
	{"§5.7 last fragment", "80 02", wire.Header{Fin: true, Opcode: wire.OpContinuation, Length: 2}},
	{"§5.7 unmasked ping", "89 05", wire.Header{Fin: true, Opcode: wire.OpPing, Length: 5}},
	{"§5.7 masked pong", "8a 85 37fa213d", wire.Header{Fin: true, Opcode: wire.OpPong, Masked: true, Key: [4]byte{0x37, 0xfa, 0x21, 0x3d}, Length: 5}},
	{"§5.7 256 bytes, 16-bit length", "82 7e 0100", wire.Header{Fin: true, Opcode: wire.OpBinary, Length: 256}},
	{"§5.7 64 KiB, 64-bit length", "82 7f 0000000000010000", wire.Header{Fin: true, Opcode: wire.OpBinary, Length: 65536}},
	{"empty close", "88 00", wire.Header{Fin: true, Opcode: wire.OpClose}},
	{"125: longest 7-bit length", "82 7d", wire.Header{Fin: true, Opcode: wire.OpBinary, Length: 125}},
	{"126: shortest 16-bit length", "82 7e 007e", wire.Header{Fin: true, Opcode: wire.OpBinary, Length: 126}},
	{"65535: longest 16-bit length", "82 7e ffff", wire.Header{Fin: true, Opcode: wire.OpBinary, Length: 65535}},
	{"longest 64-bit length", "82 7f 7fffffffffffffff", wire.Header{Fin: true, Opcode: wire.OpBinary, Length: 1<<63 - 1}},
	{"masked 16-bit length", "82 fe 0100 01020304", wire.Header{Fin: true, Opcode: wire.OpBinary, Masked: true, Key: [4]byte{1, 2, 3, 4}, Length: 256}},
	{"masked 64-bit length", "02 ff 0000000000010000 01020304", wire.Header{Opcode: wire.OpBinary, Masked: true, Key: [4]byte{1, 2, 3, 4}, Length: 65536}},
	{"RSV1 (permessage-deflate)", "c1 00", wire.Header{Fin: true, RSV: wire.RSV1, Opcode: wire.OpText}},
	{"RSV2", "a1 00", wire.Header{Fin: true, RSV: 2, Opcode: wire.OpText}},
	{"RSV3", "91 00", wire.Header{Fin: true, RSV: 1, Opcode: wire.OpText}},
	// Parse decodes what a peer may not send; the connection rejects it.
	{"reserved opcode B", "8b 00", wire.Header{Fin: true, Opcode: 0xb}},
	{"all bits of byte 0", "ff 00", wire.Header{Fin: true, RSV: 7, Opcode: 0xf}},
}

func TestParse(t *testing.T) {
	for _, tt := range headerVectors {
		b := testkit.Hex(tt.wire)
		// Payload bytes after the header are not the header's business.
		h, n, err := wire.Parse(append(b, 0xaa, 0xbb))
		if err != nil || h != tt.want || n != len(b) {
			t.Errorf("%s: Parse(%s) = %+v, %d, %v; want %+v, %d, nil", tt.name, tt.wire, h, n, err, tt.want, len(b))
		}
		if got := wire.HeaderSize(b[1]); got != len(b) {
			t.Errorf("%s: HeaderSize(%#x) = %d; want %d", tt.name, b[1], got, len(b))
		}
	}
}

func TestAppend(t *testing.T) {
	for _, tt := range headerVectors {
		want := testkit.Hex(tt.wire)
		if got := wire.Append(nil, tt.want); !bytes.Equal(got, want) {
			t.Errorf("%s: Append(%+v) = % x; want % x", tt.name, tt.want, got, want)
		}
		prefix := []byte("xy")
		if got := wire.Append(prefix, tt.want); !bytes.Equal(got, append([]byte("xy"), want...)) {
			t.Errorf("%s: Append(%q, …) = % x; want the header after the prefix", tt.name, prefix, got)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		wire string
		err  error
	}{
		{"empty", "", wire.ErrShortHeader},
		{"one byte", "81", wire.ErrShortHeader},
		{"16-bit length cut short", "82 7e 01", wire.ErrShortHeader},
		{"64-bit length cut short", "82 7f 00000000", wire.ErrShortHeader},
		{"masking key cut short", "81 85 37fa21", wire.ErrShortHeader},
		{"masking key missing after 64-bit length", "82 ff 0000000000010000", wire.ErrShortHeader},
		// §5.2: "the most significant bit MUST be 0".
		{"64-bit length with the top bit set", "82 7f 8000000000000000", wire.ErrLengthOverflow},
		{"64-bit length all ones", "82 7f ffffffffffffffff", wire.ErrLengthOverflow},
		// §5.2: "the minimal number of bytes MUST be used".
		{"5 in 16 bits", "82 7e 0005", wire.ErrNonMinimalLength},
		{"125 in 16 bits", "82 7e 007d", wire.ErrNonMinimalLength},
		{"0 in 64 bits", "82 7f 0000000000000000", wire.ErrNonMinimalLength},
		{"65535 in 64 bits", "82 7f 000000000000ffff", wire.ErrNonMinimalLength},
	}
	for _, tt := range tests {
		_, _, err := wire.Parse(testkit.Hex(tt.wire))
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: Parse(%s) error = %v; want %v", tt.name, tt.wire, err, tt.err)
		}
	}
}

// Every prefix of a header is short, never another error or a header.
func TestParseShort(t *testing.T) {
	for _, tt := range headerVectors {
		b := testkit.Hex(tt.wire)
		for i := range len(b) {
			if _, _, err := wire.Parse(b[:i]); err != wire.ErrShortHeader {
				t.Errorf("Parse(% x) error = %v; want ErrShortHeader", b[:i], err)
			}
		}
	}
}

// Parse(Append(h)) == h for random headers, with lengths around every
// encoding boundary.
func TestHeaderRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lengths := []int64{0, 1, 124, 125, 126, 127, 255, 256, 65535, 65536, 1 << 32, 1<<63 - 1}
	for range 10000 {
		h := wire.Header{
			Fin:    r.IntN(2) == 0,
			RSV:    byte(r.IntN(8)),
			Opcode: wire.Opcode(r.IntN(16)),
			Masked: r.IntN(2) == 0,
		}
		if r.IntN(2) == 0 {
			h.Length = lengths[r.IntN(len(lengths))]
		} else {
			h.Length = r.Int64N(1 << uint(r.IntN(62)+1))
		}
		if h.Masked {
			h.Key = [4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
		}
		b := wire.Append(nil, h)
		got, n, err := wire.Parse(b)
		if err != nil || got != h || n != len(b) || len(b) > wire.MaxHeaderSize {
			t.Fatalf("Parse(Append(%+v) = % x) = %+v, %d, %v", h, b, got, n, err)
		}
	}
}

func TestOpcode(t *testing.T) {
	for op := wire.Opcode(0); op < 16; op++ {
		// §5.2: 0-2 and 8-A are defined; 8-F are control opcodes.
		wantControl := op >= 8
		wantReserved := !(op <= 2 || (op >= 8 && op <= 0xa))
		if op.IsControl() != wantControl || op.IsReserved() != wantReserved {
			t.Errorf("opcode %#x: IsControl %v, IsReserved %v; want %v, %v", byte(op), op.IsControl(), op.IsReserved(), wantControl, wantReserved)
		}
	}
}
