package deflate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// bitBuilder writes DEFLATE bits (RFC 1951 §3.1.1): fields least
// significant bit first, Huffman codes most significant bit first.
type bitBuilder struct {
	out  []byte
	bits uint32
	nb   uint
}

func (w *bitBuilder) field(v uint32, n uint) {
	w.bits |= v << w.nb
	w.nb += n
	for w.nb >= 8 {
		w.out = append(w.out, byte(w.bits))
		w.bits >>= 8
		w.nb -= 8
	}
}

func (w *bitBuilder) code(v uint32, n uint) {
	var r uint32
	for i := uint(0); i < n; i++ {
		r |= (v >> i & 1) << (n - 1 - i)
	}
	w.field(r, n)
}

func (w *bitBuilder) align() {
	if w.nb > 0 {
		w.field(0, 8-w.nb)
	}
}

// farMatch returns a message payload as RFC 7692 §7.2.1 sends it: a
// stored block of n bytes (0, 1, 2, ... mod 251), then a fixed-Huffman
// block copying 8 bytes from dist bytes back, then the sync flush's empty
// stored block with its 00 00 ff ff removed. The message inflates to
// want; dist must be 257..768 (distance codes 16-18).
func farMatch(n, dist int) (payload, want []byte) {
	var w bitBuilder
	w.field(0, 3) // BFINAL 0, BTYPE 00: stored
	w.align()
	w.field(uint32(n), 16)
	w.field(uint32(^uint16(n)), 16)
	for i := range n {
		want = append(want, byte(i%251))
		w.field(uint32(i%251), 8)
	}
	w.field(0, 1) // BFINAL 0
	w.field(1, 2) // BTYPE 01: fixed Huffman codes
	// Length 8 is symbol 262, the 7-bit code 0000110 (§3.2.6).
	w.code(262-256, 7)
	switch {
	case dist <= 384: // code 16: 257-384, 7 extra bits
		w.code(16, 5)
		w.field(uint32(dist-257), 7)
	case dist <= 512: // code 17: 385-512, 7 extra bits
		w.code(17, 5)
		w.field(uint32(dist-385), 7)
	default: // code 18: 513-768, 8 extra bits
		w.code(18, 5)
		w.field(uint32(dist-513), 8)
	}
	for i := range 8 {
		want = append(want, want[n-dist+i])
	}
	w.code(0, 7)  // end of block, symbol 256
	w.field(0, 3) // the empty stored block's header; its 00 00 ff ff goes
	w.align()
	return w.out, want
}

// TestDistanceBeyondWindow checks that a peer that refers further back
// than the window agreed for it (RFC 7692 §7.1.2.1, §7.1.2.2) is caught,
// within a message as well as into the history, on every decoding path.
func TestDistanceBeyondWindow(t *testing.T) {
	tests := []struct {
		bits, n, dist int
		ok            bool
	}{
		{bits: 9, n: 600, dist: 512, ok: true},
		{bits: 9, n: 600, dist: 513},
		{bits: 8, n: 600, dist: 512, ok: true}, // 8 bits keeps 9 (zlib's)
		{bits: 8, n: 600, dist: 513},
		{bits: 10, n: 700, dist: 700, ok: true},
		{bits: 15, n: 700, dist: 513, ok: true},
	}
	for _, tt := range tests {
		payload, want := farMatch(tt.n, tt.dist)
		for _, takeover := range []bool{false, true} {
			name := fmt.Sprintf("bits%d/dist%d/takeover=%v", tt.bits, tt.dist, takeover)
			t.Run(name+"/Reader", func(t *testing.T) {
				d := NewDecompressor(tt.bits, takeover)
				got, err := io.ReadAll(d.Reader(bytes.NewReader(payload)))
				d.Done()
				checkFar(t, got, want, err, tt.ok)
			})
			for _, piece := range []int{1, len(payload)} {
				t.Run(fmt.Sprintf("%s/Inflate%d", name, piece), func(t *testing.T) {
					d := NewDecompressor(tt.bits, takeover)
					got, err := inflatePieces(d, payload, piece)
					checkFar(t, got, want, err, tt.ok)
				})
			}
		}
	}
}

// inflatePieces inflates payload with Begin and Inflate, piece bytes at a
// time.
func inflatePieces(d *Decompressor, payload []byte, piece int) ([]byte, error) {
	defer d.Done()
	d.Begin(0)
	var got []byte
	for i := 0; ; {
		j := min(i+piece, len(payload))
		n, out, err := d.Inflate(payload[i:j], j == len(payload))
		got = append(got, out...)
		i += n
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

func checkFar(t *testing.T, got, want []byte, err error, ok bool) {
	t.Helper()
	if !ok {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v; want ErrCorrupt", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("inflated %d bytes, not the %d expected", len(got), len(want))
	}
}

// TestDistanceBeyondWindowIntoHistory checks the same limit across
// messages: with a 9-bit window the history is 512 bytes, and a message
// that reaches 513 bytes back into it is invalid.
func TestDistanceBeyondWindowIntoHistory(t *testing.T) {
	first, _ := farMatch(600, 300)
	d := NewDecompressor(9, true)
	if _, err := inflatePieces(d, first, len(first)); err != nil {
		t.Fatal(err)
	}
	if got := d.hist.len(); got != 512 {
		t.Fatalf("history = %d bytes; want 512", got)
	}
	// An empty stored block, then the match: the copy reaches into the
	// history only.
	var w bitBuilder
	w.field(2, 3) // BFINAL 0, BTYPE 01
	w.code(262-256, 7)
	w.code(18, 5)
	w.field(0, 8) // distance 513
	w.code(0, 7)
	w.field(0, 3)
	w.align()
	if _, err := inflatePieces(d, w.out, len(w.out)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v; want ErrCorrupt", err)
	}
}

// TestHistoryIsTheWindow checks the memory the window sets: the
// decompressor's history grows only as output arrives, up to 2^bits.
func TestHistoryIsTheWindow(t *testing.T) {
	for _, bits := range []int{9, 10, 12, 15} {
		d := NewDecompressor(bits, true)
		if got := cap(d.hist.buf); got != 0 {
			t.Errorf("bits %d: idle history = %d bytes; want 0 before any message", bits, got)
		}
		c := NewCompressor(1, bits, true)
		for _, m := range messages(3, 120) {
			out, err := c.Compress(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(d.Reader(bytes.NewReader(out))); err != nil {
				t.Fatalf("bits %d: %v", bits, err)
			}
			d.Done()
		}
		if got, want := cap(d.hist.buf), 1<<bits; got != want {
			t.Errorf("bits %d: history = %d bytes; want %d", bits, got, want)
		}
	}
}
