package deflate

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"testing"
)

// fed is what feeding an inflater gave: its output, its last error (io.EOF
// at a clean end), and for an error other than io.EOF the index of the
// piece whose feeding reported it and the input bytes before that piece.
// A piece of index len(pieces) is the end of the input, said on its own.
type fed struct {
	out    []byte
	err    error
	piece  int
	before int
}

// feedPieces runs data through a fresh inflater over history dict, cut
// after each offset in cuts (increasing, inside data), with an output
// limit (0: none). The end of the input is said with the last piece when
// endWithLast, else on its own after it.
func feedPieces(f *inflater, data, dict []byte, cuts []int, limit int64, endWithLast bool) fed {
	f.start(dict, nil, limit)
	var r fed
	prev := 0
	bounds := append(append([]int(nil), cuts...), len(data))
	for i := 0; i <= len(bounds); i++ {
		var in []byte
		end := false
		if i < len(bounds) {
			in = data[prev:bounds[i]]
			end = endWithLast && i == len(bounds)-1
		} else if endWithLast {
			break
		} else {
			end = true
		}
		r.before = prev
		for {
			n, out, err := f.step(in, end)
			in = in[n:]
			r.out = append(r.out, out...)
			if err != nil {
				r.err, r.piece = err, i
				return r
			}
			if len(out) == 0 {
				if len(in) != 0 {
					panic(fmt.Sprintf("step took %d bytes, left %d, gave nothing", n, len(in)))
				}
				break
			}
		}
		if i < len(bounds) {
			prev = bounds[i]
		}
	}
	return r
}

// byteCuts cuts data into single bytes; randomCuts into pieces of random
// sizes, many small.
func byteCuts(n int) []int {
	cuts := make([]int, 0, n)
	for i := 1; i < n; i++ {
		cuts = append(cuts, i)
	}
	return cuts
}

func randomCuts(r *rand.Rand, n int) []int {
	var cuts []int
	for i := r.Intn(8) + 1; i < n; i += 1 + r.Intn([]int{3, 40, 5000}[r.Intn(3)]) {
		cuts = append(cuts, i)
	}
	return cuts
}

// checkSplits feeds data whole, byte by byte and in random pieces, and
// checks that every split gives the output and verdict of the whole, with
// an error reported while the byte that proves it is fed: the byte at
// which feeding byte by byte reports it. It returns the whole's result.
func checkSplits(t *testing.T, r *rand.Rand, data, dict []byte, limit int64) fed {
	t.Helper()
	f := new(inflater)
	whole := feedPieces(f, data, dict, nil, limit, false)
	byByte := feedPieces(f, data, dict, byteCuts(len(data)), limit, false)
	// proof is the number of input bytes that prove the error: len(data)+1
	// when it is the input's end.
	proof := byByte.before + 1
	if byByte.piece == len(data) || (len(data) == 0 && byByte.piece == 0) {
		proof = len(data) + 1
	}
	splits := [][]int{byteCuts(len(data)), randomCuts(r, len(data)), randomCuts(r, len(data))}
	for i, cuts := range splits {
		for _, endWithLast := range []bool{false, true} {
			got := feedPieces(f, data, dict, cuts, limit, endWithLast)
			if got.err != whole.err || !bytes.Equal(got.out, whole.out) {
				t.Fatalf("split %d (end with last %v, %d pieces): %d bytes, %v; fed whole: %d bytes, %v",
					i, endWithLast, len(cuts)+1, len(got.out), got.err, len(whole.out), whole.err)
			}
			if got.err == io.EOF {
				continue
			}
			// The piece that reported the error holds the byte that
			// proves it, or is the end said on its own.
			lo, hi := got.before, len(data)
			if got.piece < len(cuts) {
				hi = cuts[got.piece]
			}
			if endWithLast && got.piece == len(cuts) || got.piece > len(cuts) {
				hi = len(data) + 1
			}
			if proof > len(data) {
				if !(got.piece >= len(cuts) || endWithLast && got.piece == len(cuts)) {
					t.Fatalf("split %d: %v reported in piece %d of %d before the input's end", i, got.err, got.piece, len(cuts)+1)
				}
				continue
			}
			if !(lo < proof && proof <= hi) {
				t.Fatalf("split %d: %v reported feeding bytes %d..%d; byte %d proves it", i, got.err, lo, hi, proof-1)
			}
		}
	}
	return whole
}

// flateStreams compresses msgs every way the tests know: compress/flate at
// several levels, with and without a dictionary, and our Compressor.
func flateStreams(t *testing.T, msgs [][]byte) (streams, dicts [][]byte) {
	for i, m := range msgs {
		dict := msgs[(i+1)%len(msgs)]
		for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, flate.DefaultCompression, flate.BestCompression} {
			for _, d := range [][]byte{nil, dict} {
				var buf bytes.Buffer
				fw, err := flate.NewWriterDict(&buf, level, d)
				if err != nil {
					t.Fatal(err)
				}
				fw.Write(m)
				fw.Flush()
				streams = append(streams, buf.Bytes()[:buf.Len()-len(tail)])
				dicts = append(dicts, d)
			}
			var buf bytes.Buffer // a final block, as §7.2.3.4 allows
			fw, _ := flate.NewWriter(&buf, level)
			fw.Write(m)
			fw.Close()
			streams = append(streams, buf.Bytes())
			dicts = append(dicts, nil)
		}
		out, err := NewCompressor(flate.BestSpeed, 15, false).Compress(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, out)
		dicts = append(dicts, nil)
	}
	return streams, dicts
}

func splitMessages() [][]byte {
	msgs := messages(21, 8)
	big := bytes.Repeat([]byte("a long run of text, then some more of it; "), 2000) // past the window
	return append(msgs, nil, []byte("x"), big, messages(3, 1)[0])
}

// TestInflateSplitValid: valid streams give, in every split, the bytes that
// were compressed, as compress/flate gives them.
func TestInflateSplitValid(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	msgs := splitMessages()
	streams, dicts := flateStreams(t, msgs)
	per := len(streams) / len(msgs)
	for i, s := range streams {
		if (testing.Short() || raceEnabled) && len(s) > 4<<10 {
			continue
		}
		want := msgs[i/per]
		full := append(bytes.Clone(s), trailer...)
		ref, err := io.ReadAll(flate.NewReaderDict(bytes.NewReader(full), dicts[i]))
		if err != nil || !bytes.Equal(ref, want) {
			t.Fatalf("stream %d: compress/flate gives %d bytes, %v; the test is wrong", i, len(ref), err)
		}
		got := checkSplits(t, r, s, dicts[i], 0)
		if got.err != io.EOF || !bytes.Equal(got.out, want) {
			t.Fatalf("stream %d: %d bytes, %v; want the %d bytes compressed, io.EOF", i, len(got.out), got.err, len(want))
		}
	}
}

// TestInflateSplitCorrupt: damaged streams, and streams cut short, get the
// same verdict and output in every split, at the byte that proves them
// wrong, and fail where compress/flate fails.
func TestInflateSplitCorrupt(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	streams, dicts := flateStreams(t, messages(22, 6))
	failed := 0
	tries := 12
	if raceEnabled || testing.Short() {
		tries = 4 // the race detector slows this down tenfold
	}
	for i, s := range streams {
		for range tries {
			d := bytes.Clone(s)
			switch {
			case len(d) == 0:
				d = []byte{byte(r.Intn(256))}
			case r.Intn(4) == 0:
				d = d[:r.Intn(len(d))]
			default:
				d[r.Intn(len(d))] ^= byte(1 + r.Intn(255))
			}
			got := checkSplits(t, r, d, dicts[i], 0)
			full := append(bytes.Clone(d), trailer...)
			ref, refErr := io.ReadAll(flate.NewReaderDict(bytes.NewReader(full), dicts[i]))
			switch {
			case refErr == nil && (got.err != io.EOF || !bytes.Equal(got.out, ref)):
				t.Fatalf("stream %d damaged: %d bytes, %v; compress/flate gives %d bytes", i, len(got.out), got.err, len(ref))
			case refErr != nil && got.err == io.EOF:
				t.Fatalf("stream %d damaged: inflated where compress/flate fails (%v)", i, refErr)
			case got.err != io.EOF:
				failed++
				if got.err != errCorrupt && got.err != io.ErrUnexpectedEOF {
					t.Fatalf("stream %d damaged: %v", i, got.err)
				}
			}
		}
	}
	if failed == 0 {
		t.Fatal("no damaged stream failed: the test checks nothing")
	}
}

// TestInflateSplitLimit: the output limit is passed at the same input byte
// in every split, by one byte of output.
func TestInflateSplitLimit(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	msgs := splitMessages()
	streams, dicts := flateStreams(t, msgs)
	per := len(streams) / len(msgs)
	for i, s := range streams {
		want := msgs[i/per]
		if len(want) < 2 || (testing.Short() || raceEnabled) && len(s) > 4<<10 {
			continue
		}
		for _, limit := range []int64{1, int64(len(want)) / 3, int64(len(want)) - 1, int64(len(want))} {
			got := checkSplits(t, r, s, dicts[i], limit)
			if limit < int64(len(want)) {
				if got.err != errLimit || int64(len(got.out)) != limit+1 || !bytes.Equal(got.out, want[:limit+1]) {
					t.Fatalf("stream %d, limit %d: %d bytes, %v; want %d bytes, errLimit", i, limit, len(got.out), got.err, limit+1)
				}
			} else if got.err != io.EOF || !bytes.Equal(got.out, want) {
				t.Fatalf("stream %d, limit %d: %d bytes, %v; want all %d, io.EOF", i, limit, len(got.out), got.err, len(want))
			}
		}
	}
}

// TestInflateProvesAtOnce pins down bytes that prove a stream wrong by
// themselves: the error comes as they are fed, with no more input.
func TestInflateProvesAtOnce(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"reserved block type (§3.2.3)", packBits(num(1, 1), num(3, 2))},
		{"stored NLEN not LEN's complement", []byte{0x00, 0x05, 0x00, 0x00, 0x00}},
		{"fixed code 286 (§3.2.6)", packBits(num(1, 1), num(1, 2), code("11000110"))},
		{"fixed distance code 30", packBits(num(1, 1), num(1, 2), code("0000001"), code("11110"))},
		{"distance before the start", packBits(num(1, 1), num(1, 2), code("0000001"), code("00000"))},
		{"too many length codes", packBits(num(0, 1), num(2, 2), num(30, 5), num(0, 5), num(0, 4))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := new(inflater)
			got := feedPieces(f, tt.data, nil, byteCuts(len(tt.data)), 0, false)
			if got.err != errCorrupt || got.piece >= len(tt.data) {
				t.Fatalf("fed %x byte by byte: %v at piece %d; want errCorrupt before the end", tt.data, got.err, got.piece)
			}
			if got.piece != len(tt.data)-1 {
				t.Errorf("reported at byte %d of %d; the last byte proves it", got.piece, len(tt.data))
			}
		})
	}
}

// TestInflateNoAllocs: Begin, Inflate and Done allocate nothing per
// message once the pool and the history are warm, with context takeover.
func TestInflateNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	msgs := messages(9, 20)
	c := NewCompressor(flate.BestSpeed, 15, true)
	d := NewDecompressor(15, true)
	buf := make([]byte, 0, 256<<10)
	i := 0
	one := func() {
		in, err := c.Compress(buf[:0], msgs[i%len(msgs)])
		if err != nil {
			t.Fatal(err)
		}
		i++
		d.Begin(1 << 20)
		for len(in) > 0 {
			k := min(len(in), 100, d.Room()) // frames of 100 bytes
			n, _, err := d.Inflate(in[:k], false)
			in = in[n:]
			if err != nil {
				t.Fatal(err)
			}
		}
		for {
			_, _, err := d.Inflate(nil, true)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		d.Done()
	}
	for range msgs { // grow the buffers and histories
		one()
	}
	if n := testing.AllocsPerRun(100, one); n != 0 {
		t.Errorf("%v allocations per message; want 0", n)
	}
}

// TestDecompressorInflate checks the exported push API against Reader,
// with context takeover across messages and errors wrapped as documented.
func TestDecompressorInflate(t *testing.T) {
	msgs := messages(31, 30)
	c := NewCompressor(flate.BestSpeed, 15, true)
	push, pull := NewDecompressor(15, true), NewDecompressor(15, true)
	r := rand.New(rand.NewSource(4))
	for _, m := range msgs {
		in, _ := c.Compress(nil, m)
		want, err := io.ReadAll(pull.Reader(bytes.NewReader(in)))
		pull.Done()
		if err != nil || !bytes.Equal(want, m) {
			t.Fatalf("Reader: %d bytes, %v", len(want), err)
		}
		push.Begin(0)
		var got []byte
		rest := in
		for {
			k := min(len(rest), 1+r.Intn(50), push.Room())
			n, out, err := push.Inflate(rest[:k], k == len(rest))
			rest = rest[n:]
			got = append(got, out...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		push.Done()
		if !bytes.Equal(got, m) {
			t.Fatalf("Inflate: %d bytes; want %d", len(got), len(m))
		}
	}
	push.Begin(0)
	_, _, err := push.Inflate([]byte{0xff}, true)
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("reserved block type: %v; want ErrCorrupt", err)
	}
	if _, _, again := push.Inflate(nil, true); again != err {
		t.Errorf("after an error: %v; want the same error", again)
	}
	push.Done()
	push.Begin(10)
	in, _ := NewCompressor(flate.BestSpeed, 15, false).Compress(nil, make([]byte, 100))
	var n int
	for {
		_, out, err := push.Inflate(in, true)
		n += len(out)
		in = nil
		if err != nil {
			if !errors.Is(err, ErrLimit) || n != 11 {
				t.Errorf("100 zeros, limit 10: %v after %d bytes; want ErrLimit after 11", err, n)
			}
			break
		}
	}
	push.Done()
}
