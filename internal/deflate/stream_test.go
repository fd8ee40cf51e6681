package deflate

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"testing"
)

// windowInflate checks compressed messages against a peer whose window is
// exactly 2^bits bytes: each message is inflated by a fresh
// compress/flate reader given only the last 2^bits bytes sent before it
// (none without takeover) as its dictionary, so that a reference reaching
// further back fails as corrupt input. It returns what the peer read.
func windowInflate(t testing.TB, bits int, takeover bool, compressed, want [][]byte) {
	t.Helper()
	var sent []byte
	fr := flate.NewReader(nil)
	for i, c := range compressed {
		var dict []byte
		if takeover {
			dict = sent[len(sent)-min(len(sent), 1<<bits):]
		}
		fr.(flate.Resetter).Reset(io.MultiReader(bytes.NewReader(c), bytes.NewReader([]byte(tail))), dict)
		got := make([]byte, len(want[i]))
		if _, err := io.ReadFull(fr, got); err != nil {
			t.Fatalf("bits %d, takeover %v: message %d (%d bytes) with a %d-byte window: %v",
				bits, takeover, i, len(want[i]), len(dict), err)
		}
		if !bytes.Equal(got, want[i]) {
			t.Fatalf("bits %d, takeover %v: message %d = %.40q…; want %.40q…", bits, takeover, i, got, want[i])
		}
		if n, err := fr.Read(make([]byte, 1)); n != 0 || err != io.ErrUnexpectedEOF {
			t.Fatalf("bits %d, takeover %v: after message %d: %d bytes, %v; want 0, unexpected EOF", bits, takeover, i, n, err)
		}
		sent = append(sent, want[i]...)
	}
}

// streamCases are message sequences that stress a stream's history: the
// package's test messages (empty, tiny, noise, 40-60 KiB), many small
// messages (so that positions wrap around 64 KiB many times), one message
// over and over, and messages around maxJoin.
func streamCases() map[string][][]byte {
	var small, repeats, joins [][]byte
	for _, m := range messages(30, 2000) {
		if len(m) > 0 && len(m) < 700 {
			small = append(small, m)
		}
	}
	one := messages(31, 10)[5]
	for range 50 {
		repeats = append(repeats, one)
	}
	text := bytes.Join(messages(32, 200), nil)
	for _, n := range []int{maxJoin - 1, maxJoin, maxJoin + 1, 3 * maxJoin, 100, maxReach + 5, 2, 40 << 10} {
		joins = append(joins, text[len(joins)*977:][:n])
	}
	return map[string][][]byte{
		"messages": messages(33, 300),
		"small":    small,
		"repeats":  repeats,
		"joins":    joins,
	}
}

// TestStreamWindow checks that with every window size no reference
// reaches beyond the negotiated window, and that the output inflates to
// the same bytes with compress/flate's stream and with our Decompressor.
func TestStreamWindow(t *testing.T) {
	for name, msgs := range streamCases() {
		for bits := 8; bits <= 15; bits++ {
			for _, takeover := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/bits%d/takeover=%v", name, bits, takeover), func(t *testing.T) {
					c := NewCompressor(flate.BestSpeed, bits, takeover)
					compressed := make([][]byte, len(msgs))
					for i, m := range msgs {
						out, err := c.Compress(nil, m)
						if err != nil {
							t.Fatal(err)
						}
						compressed[i] = out
					}
					windowInflate(t, bits, takeover, compressed, msgs)
					peerInflate(t, compressed, msgs)
					ourInflate(t, NewDecompressor(bits, takeover), compressed, msgs)
				})
			}
		}
	}
}

// TestStreamRepeats checks what takeover is for: a message sent again is
// one long match, a handful of bytes, whatever its size, and a small window
// still finds what fits in it.
func TestStreamRepeats(t *testing.T) {
	for _, n := range []int{200, 1 << 10, 6 << 10} {
		msg := bytes.Join(messages(34, 400)[4:40], nil)[:n]
		for _, bits := range []int{15, 13} {
			c := NewCompressor(flate.BestSpeed, bits, true)
			c.Compress(nil, msg)
			for i := range 5 {
				out, _ := c.Compress(nil, msg)
				// 258 bytes a match, at about 28 bits each, and the
				// block's header and end.
				if limit := 4*n/258 + 12; len(out) > limit {
					t.Errorf("%d bytes, bits %d: repeat %d compressed to %d; want at most %d", n, bits, i, len(out), limit)
				}
			}
		}
	}
	// With a 512-byte window a 1 KiB message is too far back to repeat,
	// but its records (under 100 bytes) are near enough.
	msg := bytes.Join(messages(34, 400)[4:40], nil)[:1<<10]
	c9, c15 := NewCompressor(flate.BestSpeed, 9, true), NewCompressor(flate.BestSpeed, 9, false)
	var with, without int
	for range 10 {
		a, _ := c9.Compress(nil, msg)
		b, _ := c15.Compress(nil, msg)
		with, without = with+len(a), without+len(b)
	}
	if with >= without {
		t.Errorf("9-bit window: %d bytes with takeover, %d without (Huffman only); want fewer with", with, without)
	}
}

// TestStreamLarge checks that a message too long to join the history
// compresses as well with takeover as without: it is compressed on its
// own, and nothing of the stream's index may lead it astray.
func TestStreamLarge(t *testing.T) {
	text := bytes.Join(messages(35, 400), nil)
	for name, p := range map[string][]byte{
		"zeros": make([]byte, 1<<20),
		"text":  text,
		"just":  text[:maxJoin+1],
	} {
		c := NewCompressor(flate.BestSpeed, 15, true)
		c.Compress(nil, text[:5000]) // some history
		with, _ := c.Compress(nil, p)
		without, _ := NewCompressor(flate.BestSpeed, 15, false).Compress(nil, p)
		if len(with) > len(without) {
			t.Errorf("%s, %d bytes: %d compressed with takeover, %d without", name, len(p), len(with), len(without))
		}
	}
}

// TestStreamMemory checks what a level 1 compressor with takeover keeps
// between messages: nothing before the first, then at most the history
// buffer and the index, however large the messages were.
func TestStreamMemory(t *testing.T) {
	for _, bits := range []int{8, 10, 12, 15} {
		c := NewCompressor(flate.BestSpeed, bits, true)
		// The index has one entry per position within reach, 2^9 to 2^12.
		tableBits := min(max(bits, 9), streamHashBits)
		limit := min(1<<bits, maxReach) + maxJoin + 2<<tableBits
		if got := c.st.size(); got != 0 {
			t.Fatalf("bits %d: %d bytes kept before any message", bits, got)
		}
		for _, msgs := range streamCases() {
			for _, m := range msgs {
				c.Compress(nil, m)
				if got := c.st.size(); got > limit {
					t.Fatalf("bits %d: after a %d-byte message the stream keeps %d bytes; want at most %d", bits, len(m), got, limit)
				}
			}
		}
		if got, want := len(c.st.table), 1<<tableBits; got != want {
			t.Errorf("bits %d: index of %d entries; want %d", bits, got, want)
		}
		t.Logf("bits %d: %d bytes kept", bits, c.st.size())
	}
}
