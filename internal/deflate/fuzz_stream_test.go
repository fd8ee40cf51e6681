package deflate

import (
	"bytes"
	"compress/flate"
	"testing"
)

// FuzzCompressStream compresses a sequence of messages at level 1 and
// checks that each inflates, with compress/flate given only the negotiated
// window as history, to the same bytes (so that no reference reaches past
// the window), and that compress/flate's stream and our Decompressor read
// the whole sequence back.
//
// data is split into messages at each 0xff byte, the first 40 of them;
// ctl picks the window bits (8..15) and takeover; repeat how many times
// each message repeats within itself, so that messages longer than maxJoin
// come easily.
func FuzzCompressStream(f *testing.F) {
	f.Add([]byte(`{"a":1}`+"\xff"+`{"a":2}`+"\xff"+`{"a":1}`), uint8(7), uint8(0))
	f.Add([]byte("hello hello\xffhello\xff\xffworld hello"), uint8(0x0f), uint8(3))
	f.Add(bytes.Repeat([]byte("abcdefgh"), 300), uint8(0x08), uint8(9))
	f.Add(bytes.Join(messages(40, 60), []byte{0xff}), uint8(0x0d), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, ctl, repeat uint8) {
		bits := 8 + int(ctl&7)
		takeover := ctl&8 == 0
		var msgs [][]byte
		for m := range bytes.SplitSeq(data, []byte{0xff}) {
			if len(msgs) == 40 {
				break
			}
			msgs = append(msgs, bytes.Repeat(m, 1+int(repeat%32)))
		}
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
