package deflate

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"testing"
)

var headerSeeds = []string{
	"permessage-deflate",
	"permessage-deflate; client_max_window_bits",
	"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9",
	`permessage-deflate; server_max_window_bits="1\0", permessage-deflate`,
	`x-webkit-deflate-frame, foo; bar="a, b", PerMessage-Deflate ;Client_Max_Window_Bits = 8`,
	"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
	"permessage-deflate; server_max_window_bits",
	"permessage-deflate;;, ,permessage-deflate; x=\"",
}

// FuzzParseOffers checks that parsing never panics and that every offer it
// returns renders to an element that parses back to the same offer.
func FuzzParseOffers(f *testing.F) {
	for _, s := range headerSeeds {
		f.Add(s, "")
	}
	f.Add("permessage-deflate; server_max_window_bits=12", "permessage-deflate")
	f.Fuzz(func(t *testing.T, h1, h2 string) {
		offers := ParseOffers([]string{h1, h2})
		for _, o := range offers {
			s := o.String()
			again := ParseOffers([]string{s})
			if len(again) != 1 || again[0] != o {
				t.Fatalf("ParseOffers(%q) = %+v; %+v rendered as %q, which parses as %+v", []string{h1, h2}, offers, o, s, again)
			}
			// A server can answer every valid offer, and the client that
			// made it accepts the answer.
			resp, ok := Accept([]Params{o}, Config{})
			if !ok {
				t.Fatalf("Accept(%+v) declined", o)
			}
			if _, ok, err := ParseResponse([]string{resp.String()}, o); !ok || err != nil {
				t.Fatalf("offer %q, response %q: %v", s, resp.String(), err)
			}
		}
	})
}

// FuzzParseResponse checks that a response never panics the client and that
// an accepted one renders back to itself.
func FuzzParseResponse(f *testing.F) {
	for _, s := range headerSeeds {
		f.Add(s, true, 0, 0)
	}
	f.Add("permessage-deflate; server_max_window_bits=9", false, 10, 12)
	f.Fuzz(func(t *testing.T, h string, cmwb bool, smwbOffered, cmwbOffered int) {
		offered := Params{ClientMaxWindowBitsSet: cmwb}
		if validBits(smwbOffered) {
			offered.ServerMaxWindowBits = smwbOffered
		}
		if cmwb && validBits(cmwbOffered) {
			offered.ClientMaxWindowBits = cmwbOffered
		}
		p, ok, err := ParseResponse([]string{h}, offered)
		if err != nil && ok {
			t.Fatalf("ParseResponse(%q) = ok with error %v", h, err)
		}
		if !ok {
			return
		}
		again, ok, err := ParseResponse([]string{p.String()}, offered)
		if !ok || err != nil || again != p {
			t.Fatalf("ParseResponse(%q) = %+v; its rendering %q parses as %+v, %v, %v", h, p, p.String(), again, ok, err)
		}
	})
}

// FuzzInflate feeds arbitrary payloads to a Decompressor: it must not panic,
// must give at most what the caller reads, and must fail only with
// ErrCorrupt. Each input is read twice on one Decompressor so that takeover
// history is exercised.
func FuzzInflate(f *testing.F) {
	c := NewCompressor(flate.BestSpeed, 15, true)
	for _, m := range []string{"", "a", "hello hello hello hello", string(make([]byte, 100000))} {
		out, _ := c.Compress(nil, []byte(m))
		f.Add(out, true, uint8(15))
	}
	f.Add([]byte{0x00}, false, uint8(8))
	f.Add([]byte{0xff, 0xff}, true, uint8(9))
	f.Add([]byte{0x01, 0x00, 0x00, 0xff, 0xff, 0x42}, false, uint8(15))
	f.Fuzz(func(t *testing.T, data []byte, takeover bool, bits uint8) {
		const limit = 1 << 20
		d := NewDecompressor(int(bits), takeover)
		for range 2 {
			n, err := io.Copy(io.Discard, io.LimitReader(d.Reader(bytes.NewReader(data)), limit))
			if n > limit {
				t.Fatalf("read %d bytes past the limit", n)
			}
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			d.Done()
			if d.hist.len() > 32<<10 {
				t.Fatalf("history grew to %d", d.hist.len())
			}
		}
	})
}

// FuzzCompress checks the round trip through a Compressor, a peer's
// persistent flate.Reader and our Decompressor, over two messages so that
// the second can refer to the first.
func FuzzCompress(f *testing.F) {
	f.Add([]byte("hello"), []byte("hello hello"), uint8(1), uint8(15), true)
	f.Add([]byte{}, []byte{}, uint8(9), uint8(8), false)
	f.Add(bytes.Repeat([]byte("abc"), 20000), []byte("abcabc"), uint8(6), uint8(15), true)
	f.Fuzz(func(t *testing.T, m1, m2 []byte, level, bits uint8, takeover bool) {
		c := NewCompressor(int(level%12)-2, int(bits), takeover)
		var compressed [][]byte
		for _, m := range [][]byte{m1, m2} {
			out, err := c.Compress(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			compressed = append(compressed, out)
		}
		msgs := [][]byte{m1, m2}
		peerInflate(t, compressed, msgs)
		ourInflate(t, NewDecompressor(int(bits), takeover), compressed, msgs)
	})
}

// FuzzInflateDifferential decodes arbitrary payloads with the inflater and
// with refInflate, a reference decoder that refuses what zlib refuses,
// over the same history (compareWithReference): the same output where the
// reference reaches the end of the stream or 1 MiB of output, a failure
// where it refuses. It used to compare with compress/flate, which accepts
// streams zlib refuses: a dynamic block with no end-of-block code gave
// 1,135,222 bytes before flate failed, where zlib and the inflater refuse
// at the header (issue 17), so the target could fail on a correct
// inflater.
func FuzzInflateDifferential(f *testing.F) {
	for _, s := range differentialSeeds(f) {
		f.Add(s.data, s.hist)
	}
	f.Fuzz(func(t *testing.T, data, dict []byte) {
		if msg := compareWithReference(data, dict, 1<<20); msg != "" {
			t.Fatal(msg)
		}
	})
}
