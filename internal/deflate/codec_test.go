package deflate

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"math/rand"
	"slices"
	"testing"
	"testing/iotest"
)

// bigInputs are inputs that take a codec past its buffers: many blocks,
// stored blocks, matches longer than 258, outputs that wrap the 32 KiB
// window many times.
func bigInputs() map[string][]byte {
	r := rand.New(rand.NewSource(42))
	noise := make([]byte, 200<<10)
	r.Read(noise)
	var text bytes.Buffer
	for text.Len() < 300<<10 {
		fmt.Fprintf(&text, "%s %d ", []string{"alpha", "beta", "gamma", "delta"}[r.Intn(4)], r.Intn(50))
	}
	// Text that repeats 20-40 KiB back, across the window's end.
	var far bytes.Buffer
	chunk := make([]byte, 24<<10)
	for i := range chunk {
		chunk[i] = "abcdefgh"[r.Intn(8)]
	}
	for range 6 {
		far.Write(chunk)
		far.Write(noise[:r.Intn(10<<10)])
	}
	// Noise, then a pattern (what the browser test sends).
	half := make([]byte, 1<<20)
	copy(half, noise)
	r.Read(half[len(noise) : 512<<10])
	for i := 512 << 10; i < len(half); i++ {
		half[i] = byte(i%251) ^ byte(i>>12)
	}
	return map[string][]byte{
		"noise":  noise,
		"half":   half,
		"zeros":  make([]byte, 1<<20),
		"text":   text.Bytes(),
		"far":    far.Bytes(),
		"binary": bytes.Repeat([]byte{0, 1, 2, 3, 250, 251}, 50<<10),
	}
}

// TestEncoderLarge compresses inputs far larger than a block and than the
// window, with and without history, and checks them with compress/flate
// and with our Decompressor.
func TestEncoderLarge(t *testing.T) {
	for name, in := range bigInputs() {
		for _, takeover := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/takeover=%v", name, takeover), func(t *testing.T) {
				c := NewCompressor(flate.BestSpeed, 15, takeover)
				// A short message first, so that with takeover there is
				// history, then the input whole, then a slice of it short
				// enough to be joined to the history.
				msgs := [][]byte{in[:100], in, in[len(in)/2 : len(in)/2+maxJoin]}
				var compressed [][]byte
				for _, m := range msgs {
					out, err := c.Compress(nil, m)
					if err != nil {
						t.Fatal(err)
					}
					compressed = append(compressed, out)
				}
				peerInflate(t, compressed, msgs)
				ourInflate(t, NewDecompressor(15, takeover), compressed, msgs)
			})
		}
	}
}

// TestEncoderRatio compares the encoder's output with compress/flate's at
// level 1, on the big inputs and on messages: it must not be larger by
// more than 2%.
func TestEncoderRatio(t *testing.T) {
	inputs := bigInputs()
	for i, m := range messages(14, 300) {
		inputs[fmt.Sprint("message ", i)] = m
	}
	var ours, std int
	for name, in := range inputs {
		if len(in) == 0 {
			continue
		}
		out, _ := NewCompressor(flate.BestSpeed, 15, false).Compress(nil, in)
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
		fw.Write(in)
		fw.Flush()
		n := buf.Len() - len(tail)
		if float64(len(out)) > 1.02*float64(n)+8 {
			t.Errorf("%s: %d bytes compressed to %d; compress/flate: %d", name, len(in), len(out), n)
		}
		ours += len(out)
		std += n
	}
	t.Logf("in all %d bytes, compress/flate %d", ours, std)
}

// TestInflateAgainstFlate decodes what compress/flate writes at every
// level, with a dictionary or not, feeding the input in small pieces and
// reading the output in pieces of odd sizes, so that the inflater stops
// and resumes everywhere: mid-block, mid-match and at the window's end.
func TestInflateAgainstFlate(t *testing.T) {
	dict := bytes.Repeat([]byte("abcdefgh alpha 12 "), 2000)[:32<<10]
	for name, in := range bigInputs() {
		in = in[:min(len(in), 150<<10)]
		for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, 5, flate.BestCompression} {
			for _, withDict := range []bool{false, true} {
				var d []byte
				if withDict {
					d = dict
				}
				var buf bytes.Buffer
				fw, _ := flate.NewWriterDict(&buf, level, d)
				fw.Write(in)
				fw.Flush()
				payload := buf.Bytes()[:buf.Len()-len(tail)]
				for _, size := range []int{1, 7, 4093, 100 << 10} {
					inf := new(inflater)
					inf.reset(iotest.HalfReader(bytes.NewReader(payload)), d, nil)
					var got []byte
					p := make([]byte, size)
					var err error
					for err == nil {
						var n int
						n, err = inf.Read(p)
						got = append(got, p[:n]...)
					}
					if err != io.EOF || !bytes.Equal(got, in) {
						t.Fatalf("%s, level %d, dict %v, reads of %d: %d bytes, %v; want %d bytes, EOF",
							name, level, withDict, size, len(got), err, len(in))
					}
				}
			}
		}
	}
}

// A bitField is a DEFLATE header field or code, for packBits.
type bitField struct {
	v uint64
	n uint
}

// num is a number of n bits, which DEFLATE writes least significant first.
func num(v uint64, n uint) bitField { return bitField{v, n} }

// code is a Huffman code, which DEFLATE writes most significant bit first
// (RFC 1951 §3.1.1): given as "0000001", it is sent in that order.
func code(bits string) bitField {
	var v uint64
	for i, c := range bits {
		v |= uint64(c-'0') << i
	}
	return bitField{v, uint(len(bits))}
}

// packBits packs fields into bytes, first field in the lowest bits.
func packBits(fields ...bitField) []byte {
	var out []byte
	var acc uint64
	var n uint
	for _, f := range fields {
		for i := range f.n {
			acc |= (f.v >> i & 1) << n
			n++
			if n == 8 {
				out = append(out, byte(acc))
				acc, n = 0, 0
			}
		}
	}
	if n > 0 {
		out = append(out, byte(acc))
	}
	return out
}

// TestInflateCorrupt checks invalid data that compress/flate also rejects,
// each case a rule of RFC 1951 that the inflater enforces.
func TestInflateCorrupt(t *testing.T) {
	final, notFinal := num(1, 1), num(0, 1)
	stored, fixed, dynamic, reserved := num(0, 2), num(1, 2), num(2, 2), num(3, 2)
	tests := []struct {
		name string
		data []byte
	}{
		{"§3.2.3: reserved block type 11", packBits(final, reserved)},
		{"§3.2.4: stored NLEN not the complement of LEN", append(packBits(notFinal, stored),
			0x05, 0x00, 0xfa, 0xfe, 'H', 'e', 'l', 'l', 'o')},
		{"§3.2.7: HLIT 30, 287 literal/length codes", packBits(notFinal, dynamic, num(30, 5), num(0, 5), num(0, 4))},
		{"§3.2.7: HDIST 30, 31 distance codes", packBits(notFinal, dynamic, num(0, 5), num(30, 5), num(0, 4))},
		{"§3.2.7: 19 code length codes of 1 bit", packBits(notFinal, dynamic, num(0, 5), num(0, 5), num(15, 4),
			num(1, 3), num(1, 3), num(1, 3), num(1, 3), num(1, 3), num(1, 3), num(1, 3), num(1, 3), num(1, 3), num(1, 3),
			num(1, 3), num(1, 3), num(1, 3), num(1, 3), num(1, 3), num(1, 3), num(1, 3), num(1, 3), num(1, 3))},
		// Code length codes 0 and 16 of one bit each: 0 is "0", 16 is "1".
		{"§3.2.7: repeat (16) with no previous length", packBits(notFinal, dynamic, num(0, 5), num(0, 5), num(0, 4),
			num(1, 3), num(0, 3), num(0, 3), num(1, 3), code("1"), num(0, 2))},
		// Fixed codes (§3.2.6): 257 (length 3) is 0000001, 'a' is 10010001.
		{"§3.2.6: distance code 30", packBits(final, fixed, code("10010001"), code("0000001"), code("11110"))},
		{"§3.2.6: literal/length code 286", packBits(final, fixed, code("11000110"))},
		{"§3.2.5: distance beyond the start", packBits(final, fixed, code("10010001"), code("0000001"), code("00001"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			full := append(bytes.Clone(tt.data), trailer...)
			if _, err := io.ReadAll(flate.NewReader(bytes.NewReader(full))); err == nil {
				t.Fatalf("compress/flate accepts % x", tt.data)
			}
			inf := new(inflater)
			inf.reset(bytes.NewReader(tt.data), nil, nil)
			got, err := io.ReadAll(inf)
			if err != errCorrupt {
				t.Errorf("inflate(% x) = %q, %v; want errCorrupt", tt.data, got, err)
			}
		})
	}
}

// TestBuildLengths checks the code lengths the encoder computes: a
// complete prefix code for exactly the used symbols, within the limit, and
// as short in total as a Huffman code when the limit does not bind.
func TestBuildLengths(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	var w huffScratch
	for i := range 2000 {
		n := 2 + r.Intn(numLitLen-1)
		maxBits := maxLitBits
		if i%3 == 0 {
			n = 2 + r.Intn(numCodegen-1)
			maxBits = maxCodeBits
		}
		freq := make([]uint32, n)
		for j := range freq {
			switch r.Intn(4) {
			case 0:
			case 1:
				freq[j] = uint32(1 << r.Intn(14)) // skewed: long codes to limit
			default:
				freq[j] = uint32(1 + r.Intn(100))
			}
		}
		freq[0], freq[1] = max(freq[0], 1), max(freq[1], 1) // two codes at least
		lens := make([]uint8, n)
		syms := make([]uint16, n)
		got := buildLengths(freq, lens, syms, maxBits, &w)
		kraft := 0.0
		nz := 0
		for j, l := range lens {
			if (freq[j] != 0) != (l != 0) {
				t.Fatalf("symbol %d: frequency %d, length %d", j, freq[j], l)
			}
			if int(l) > maxBits {
				t.Fatalf("symbol %d: length %d over %d", j, l, maxBits)
			}
			if l != 0 {
				kraft += 1 / float64(uint(1)<<l)
				nz++
			}
		}
		if got != nz || kraft != 1 {
			t.Fatalf("%d symbols used, %d listed; Kraft sum %v, want 1", nz, got, kraft)
		}
		cost, longest := 0, uint8(0)
		for j, l := range lens {
			cost += int(freq[j]) * int(l)
			longest = max(longest, l)
		}
		if opt := huffmanCost(freq); cost < opt || (int(longest) < maxBits && cost != opt) {
			t.Fatalf("%d bits in all, longest code %d; a Huffman code takes %d", cost, longest, opt)
		}
	}
}

// huffmanCost returns the bits a Huffman code for freq takes in all: the
// sum of the weights of the nodes it merges.
func huffmanCost(freq []uint32) int {
	var w []int
	for _, f := range freq {
		if f != 0 {
			w = append(w, int(f))
		}
	}
	cost := 0
	for len(w) > 1 {
		slices.Sort(w)
		m := w[0] + w[1]
		cost += m
		w = append(w[2:], m)
	}
	return cost
}

// TestCompressFitsDst checks that compressing into a buffer with room for
// the output allocates nothing, however many tokens the message has: a
// Conn compresses into a pooled 16 KiB buffer.
func TestCompressFitsDst(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop objects")
	}
	// Words from a small vocabulary: many short matches, so many tokens
	// for the output's size.
	r := rand.New(rand.NewSource(3))
	var text bytes.Buffer
	for text.Len() < 30<<10 {
		text.WriteString([]string{"alpha ", "beta ", "gamma ", "delta ", "ok ", "status ", "id "}[r.Intn(7)])
	}
	for _, level := range []int{flate.BestSpeed, flate.DefaultCompression} {
		for _, takeover := range []bool{false, true} {
			c := NewCompressor(level, 15, takeover)
			dst := make([]byte, 0, 16<<10)
			for _, n := range []int{1 << 10, 10 << 10, 30 << 10} {
				p := text.Bytes()[:n]
				out, _ := c.Compress(dst, p)
				if cap(out) != cap(dst) {
					t.Fatalf("level %d: %d bytes compressed to %d; the test needs them to fit", level, n, len(out))
				}
				if a := testing.AllocsPerRun(20, func() { c.Compress(dst, p) }); a != 0 {
					t.Errorf("level %d, takeover %v, %d bytes: %v allocations", level, takeover, n, a)
				}
			}
		}
	}
}
