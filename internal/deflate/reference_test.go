package deflate

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"github.com/duplexws/duplex/internal/testkit"
)

// vecWriter builds DEFLATE streams bit by bit, for vectors a compressor
// would never write.
type vecWriter struct {
	b []byte
	n int // bits written
}

// bits writes the n-bit number v, least significant bit first (RFC 1951
// §3.1.1: data elements other than Huffman codes).
func (w *vecWriter) bits(v, n int) *vecWriter {
	for i := range n {
		if w.n&7 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte(v>>i&1) << (w.n & 7)
		w.n++
	}
	return w
}

// code writes an n-bit Huffman code, most significant bit first.
func (w *vecWriter) code(c, n int) *vecWriter {
	for i := n - 1; i >= 0; i-- {
		w.bits(c>>i&1, 1)
	}
	return w
}

// sym writes symbol s of the code with lengths lens.
func (w *vecWriter) sym(lens []int, s int) *vecWriter {
	c, n := canonical(lens, s)
	return w.code(c, n)
}

// canonical returns the code of symbol s and its length, by §3.2.2.
func canonical(lens []int, s int) (code, n int) {
	var count [16]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	var next [16]int
	c := 0
	for l := 1; l < 16; l++ {
		c = (c + count[l-1]) << 1
		next[l] = c
	}
	for t := range s {
		if lens[t] == lens[s] {
			next[lens[s]]++
		}
	}
	return next[lens[s]], lens[s]
}

// fixedLens are the literal/length lengths of the fixed code (§3.2.6).
func fixedLens() []int {
	lens := make([]int, 288)
	for s := range lens {
		lens[s] = map[bool]int{true: 8, false: 9}[s < 144 || s >= 280]
		if s >= 256 && s < 280 {
			lens[s] = 7
		}
	}
	return lens
}

// cgLens is the code length code of the dynamic headers below: complete,
// with 0-12 in 4 bits and 13-18 in 5.
var cgLens = []int{4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5}

// dynamic starts a dynamic block: BFINAL, BTYPE 2, HLIT, HDIST, the code
// length code cgLens, then the code lengths as symbols of it: a number
// 0-18, followed for 16, 17 and 18 by their extra bits as [sym, extra].
func (w *vecWriter) dynamic(final, nlit, ndist int, lengths ...[]int) *vecWriter {
	w.bits(final, 1).bits(2, 2).bits(nlit-257, 5).bits(ndist-1, 5).bits(19-4, 4)
	for _, s := range refCodeOrder {
		w.bits(cgLens[s], 3)
	}
	extra := map[int]int{16: 2, 17: 3, 18: 7}
	for _, l := range lengths {
		w.sym(cgLens, l[0])
		if len(l) > 1 {
			w.bits(l[1], extra[l[0]])
		}
	}
	return w
}

// lensOf spells out code lengths for dynamic: each length once.
func lensOf(lens ...int) [][]int {
	var out [][]int
	for _, l := range lens {
		out = append(out, []int{l})
	}
	return out
}

// zeros is n zero lengths, as 18s, 17s and 0s.
func zeros(n int) [][]int {
	var out [][]int
	for n > 0 {
		switch {
		case n >= 11:
			k := min(n, 138)
			out = append(out, []int{18, k - 11})
			n -= k
		case n >= 3:
			out = append(out, []int{17, n - 3})
			n = 0
		default:
			out = append(out, []int{0})
			n--
		}
	}
	return out
}

func concat(parts ...[][]int) [][]int {
	var out [][]int
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// inflateVector is a stream with the verdict zlib gives it.
type inflateVector struct {
	name string
	hist []byte
	data []byte
	want refVerdict
	out  string // the output, for refEnd
}

// inflateVectors exercise each rule of zlib's that refInflate's doc lists,
// and its exceptions.
func inflateVectors() []inflateVector {
	// A dynamic block's literal/length code for "a", "b" and 256 only:
	// 'a' 1 bit, 'b' and 256 two bits each; and one distance code.
	litABEnd := func(nlit int) ([]int, [][]int) {
		lens := make([]int, nlit)
		lens['a'], lens['b'], lens[256] = 1, 2, 2
		return lens, concat(zeros('a'), lensOf(1, 2), zeros(256-'c'), lensOf(2), zeros(nlit-257))
	}
	lit, litSpec := litABEnd(257)
	noEOB := bytes.Repeat([]byte{0x55}, 1100)

	w := func() *vecWriter { return &vecWriter{} }
	return []inflateVector{
		{"stored abc", nil, testkit.Hex("01 0300 fcff 616263"), refEnd, "abc"},
		{"stored, NLEN not ~LEN", nil, testkit.Hex("01 0500 0000 6162636465"), refInvalid, ""},
		{"block type 3", nil, testkit.Hex("07 00"), refInvalid, ""},
		{"stored, cut short", nil, testkit.Hex("01 0500 faff 6162"), refShort, ""},
		{"no final block", nil, testkit.Hex("00 0100 feff 61"), refShort, ""},
		{"fixed: a literal and the end", nil, w().bits(1, 1).bits(1, 2).sym(fixedLens(), 'x').sym(fixedLens(), 256).b, refEnd, "x"},
		{"fixed: literal/length 286", nil, w().bits(1, 1).bits(1, 2).sym(fixedLens(), 286).b, refInvalid, ""},
		{"fixed: literal/length 287", nil, w().bits(1, 1).bits(1, 2).sym(fixedLens(), 287).b, refInvalid, ""},
		{
			"fixed: distance code 30", nil,
			w().bits(1, 1).bits(1, 2).sym(fixedLens(), 'x').sym(fixedLens(), 257).code(30, 5).sym(fixedLens(), 256).b,
			refInvalid, "",
		},
		{
			"fixed: distance 1 after one byte", nil,
			w().bits(1, 1).bits(1, 2).sym(fixedLens(), 'x').sym(fixedLens(), 257).code(0, 5).sym(fixedLens(), 256).b,
			refEnd, "xxxx",
		},
		{
			"fixed: distance 2 after one byte", nil,
			w().bits(1, 1).bits(1, 2).sym(fixedLens(), 'x').sym(fixedLens(), 257).code(1, 5).sym(fixedLens(), 256).b,
			refInvalid, "",
		},
		{
			"fixed: distance 2 into the history", []byte("yz"),
			w().bits(1, 1).bits(1, 2).sym(fixedLens(), 'x').sym(fixedLens(), 257).code(2, 5).sym(fixedLens(), 256).b,
			refEnd, "xyzx",
		},
		// The issue 17 case: compress/flate decodes this for 1,135,222
		// bytes before it fails; the header has no code for 256.
		{"dynamic: no end of block (issue 17)", nil, append(testkit.Hex("ecc0a10000000000a0fcfd6f01"), noEOB...), refInvalid, ""},
		{
			"dynamic: ab", nil,
			w().dynamic(1, 257, 1, concat(litSpec, lensOf(1))...).sym(lit, 'a').sym(lit, 'b').sym(lit, 256).b,
			refEnd, "ab",
		},
		{
			"dynamic: 287 literal/length codes", nil,
			w().dynamic(1, 287, 1, concat(zeros(256), lensOf(1, 1), zeros(29), lensOf(1))...).b,
			refInvalid, "",
		},
		{
			"dynamic: 31 distance codes", nil,
			w().dynamic(1, 257, 31, concat(litSpec, lensOf(1), zeros(30))...).b,
			refInvalid, "",
		},
		{
			"dynamic: repeat with no length before", nil,
			w().dynamic(1, 257, 1, concat([][]int{{16, 0}}, litSpec)...).b,
			refInvalid, "",
		},
		{
			"dynamic: repeat past the last length", nil,
			w().dynamic(1, 257, 1, concat(litSpec, [][]int{{17, 2}})...).b,
			refInvalid, "",
		},
		{
			"dynamic: repeat across the two codes", nil,
			// 'a', 'b', 256, 257 and the four distance codes all have 2
			// bits; one repeat sets 257's length and the distance codes'.
			func() []byte {
				lit := make([]int, 258)
				lit['a'], lit['b'], lit[256], lit[257] = 2, 2, 2, 2
				dist := []int{2, 2, 2, 2}
				b := w().dynamic(1, 258, 4, concat(zeros('a'), lensOf(2, 2), zeros(256-'c'), lensOf(2), [][]int{{16, 2}})...)
				return b.sym(lit, 'a').sym(lit, 'b').sym(lit, 257).sym(dist, 0).sym(lit, 256).b
			}(),
			refEnd, "abbbb",
		},
		{
			"dynamic: literal/length code incomplete", nil,
			// 'a' 1 bit, 'b' 3 bits, 256 3 bits: 1/8 unused.
			w().dynamic(1, 257, 1, concat(zeros('a'), lensOf(1, 3), zeros(256-'c'), lensOf(3), lensOf(1))...).b,
			refInvalid, "",
		},
		{
			"dynamic: literal/length code over-subscribed", nil,
			w().dynamic(1, 257, 1, concat(zeros('a'), lensOf(1, 1), zeros(256-'c'), lensOf(1), lensOf(1))...).b,
			refInvalid, "",
		},
		{
			"dynamic: only 256, one bit", nil,
			// zlib's exception: an incomplete code of a single 1-bit code.
			w().dynamic(1, 257, 1, concat(zeros(256), lensOf(1), lensOf(0))...).code(0, 1).b,
			refEnd, "",
		},
		{
			"dynamic: only 256, one bit, then the unused code", nil,
			w().dynamic(1, 257, 1, concat(zeros(256), lensOf(1), lensOf(0))...).code(1, 1).code(0x7fff, 15).b,
			refInvalid, "",
		},
		{
			"dynamic: a length with no distance code", nil,
			w().dynamic(1, 258, 1, concat(zeros('a'), lensOf(1), zeros(256-'b'), lensOf(2, 2), lensOf(0))...).
				code(0, 1).code(3, 2).code(0, 1).code(2, 2).b,
			refInvalid, "",
		},
		{
			"dynamic: a single 1-bit distance code", nil,
			w().dynamic(1, 258, 1, concat(zeros('a'), lensOf(1), zeros(256-'b'), lensOf(2, 2), lensOf(1))...).
				code(0, 1).code(3, 2).code(0, 1).code(2, 2).b,
			refEnd, "aaaa",
		},
		{
			"dynamic: distance code incomplete", nil,
			w().dynamic(1, 258, 2, concat(zeros('a'), lensOf(1), zeros(256-'b'), lensOf(2, 2), lensOf(1, 2))...).
				code(0, 1).code(3, 2).code(0, 1).code(2, 2).b,
			refInvalid, "",
		},
		{
			"dynamic: code length code incomplete", nil,
			// cgLens with 18 left out: 1/32 unused.
			func() []byte {
				b := &vecWriter{}
				b.bits(1, 1).bits(2, 2).bits(0, 5).bits(0, 5).bits(0, 4)
				for _, s := range refCodeOrder[:4] {
					b.bits(map[int]int{16: 5, 17: 5, 18: 0, 0: 4}[s], 3)
				}
				return b.b
			}(),
			refInvalid, "",
		},
	}
}

// TestReferenceVectors checks refInflate on the vectors.
func TestReferenceVectors(t *testing.T) {
	for _, v := range inflateVectors() {
		out, verdict, err := refInflate(v.data, v.hist, 1<<20)
		if verdict != v.want || verdict == refEnd && string(out) != v.out {
			t.Errorf("%s: refInflate(%x) = %q, %v (%v); want %q, %v", v.name, v.data, out, verdict, err, v.out, v.want)
		}
	}
}

// TestReferenceMatchesZlib runs zlib itself (Python's zlib module) on the
// vectors, on compress/flate's output and on thousands of mutations of
// them, and checks that refInflate gives zlib's verdict and output: it is
// the reference FuzzInflateDifferential trusts.
func TestReferenceMatchesZlib(t *testing.T) {
	python := testkit.RequireTool(t, "python3")
	const limit = 1 << 16
	type tcase struct {
		name       string
		hist, data []byte
	}
	var cases []tcase
	for _, v := range inflateVectors() {
		cases = append(cases, tcase{v.name, v.hist, v.data})
	}
	vectors := len(cases)
	for i, s := range differentialSeeds(t) {
		cases = append(cases, tcase{fmt.Sprintf("seed %d", i), s.hist, s.data})
	}
	r := rand.New(rand.NewPCG(17, 17))
	for n := len(cases); len(cases) < n+5000; {
		c := cases[r.IntN(n)]
		data := bytes.Clone(c.data)
		if len(data) == 0 {
			continue
		}
		for range 1 + r.IntN(3) {
			switch r.IntN(3) {
			case 0: // flip a bit
				data[r.IntN(len(data))] ^= 1 << r.IntN(8)
			case 1: // cut
				data = data[:r.IntN(len(data))+1]
			case 2: // a random byte
				data[r.IntN(len(data))] = byte(r.Uint32())
			}
		}
		cases = append(cases, tcase{fmt.Sprintf("mutation %d of %s", len(cases)-n, c.name), c.hist, data})
	}

	var in bytes.Buffer
	for _, c := range cases {
		for _, b := range [][]byte{c.hist, c.data} {
			binary.Write(&in, binary.BigEndian, uint32(len(b)))
			in.Write(b)
		}
	}
	cmd := exec.Command(python, "testdata/zlibverdict.py", fmt.Sprint(limit))
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zlibverdict.py: %v\n%s", err, stderr.Bytes())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 4*limit)
	seen := map[refVerdict]int{}
	failures := 0
	for i := 0; sc.Scan(); i++ {
		if i >= len(cases) {
			t.Fatalf("zlibverdict.py gave more verdicts than the %d cases", len(cases))
		}
		c := cases[i]
		zv, zout, _ := strings.Cut(sc.Text(), " ")
		got, verdict, rerr := refInflate(c.data, c.hist, limit)
		seen[verdict]++
		ok := true
		switch zv {
		case "end", "limit":
			want, _ := hex.DecodeString(zout)
			ok = verdict.String() == zv && bytes.Equal(got, want)
		case "short", "invalid":
			// How far zlib reads before refusing may differ by a few bits,
			// so an invalid code at the end of the input is "short" to one
			// and "invalid" to the other: both refuse. The vectors are
			// made to be exact.
			ok = verdict == refShort || verdict == refInvalid
			if i < vectors {
				ok = verdict.String() == zv
			}
		}
		if !ok {
			failures++
			t.Errorf("%s: stream %x (history %q): zlib %s; refInflate %v (%v), %d bytes", c.name, c.data, c.hist, sc.Text()[:min(len(sc.Text()), 80)], verdict, rerr, len(got))
			if failures > 10 {
				t.FailNow()
			}
		}
	}
	t.Logf("%d streams; refInflate's verdicts: %v", len(cases), seen)
	for _, v := range []refVerdict{refEnd, refInvalid, refShort, refLimit} {
		if seen[v] < 20 {
			t.Errorf("only %d streams came out %v: the cases miss a path", seen[v], v)
		}
	}
}

// differentialSeed is an input of FuzzInflateDifferential.
type differentialSeed struct{ data, hist []byte }

// differentialSeeds are the seeds of FuzzInflateDifferential: compress/flate
// and the Compressor at several levels, with and without history, a back
// reference into the history, and the vectors.
func differentialSeeds(t testing.TB) []differentialSeed {
	var seeds []differentialSeed
	msgs := messages(13, 60)
	for i, m := range msgs[:20] {
		for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, flate.BestCompression} {
			var buf bytes.Buffer
			fw, _ := flate.NewWriterDict(&buf, level, msgs[i+20])
			fw.Write(m)
			fw.Flush()
			seeds = append(seeds, differentialSeed{buf.Bytes()[:buf.Len()-len(tail)], msgs[i+20]})
		}
		out, _ := NewCompressor(flate.BestSpeed, 15, false).Compress(nil, m)
		seeds = append(seeds, differentialSeed{out, nil})
	}
	seeds = append(seeds, differentialSeed{dictRef(t), []byte("0123456789abcdefghijklmnopqrstuvwxyz")})
	// Past the output limits: 1.5 MiB of a short pattern.
	long, _ := NewCompressor(flate.BestSpeed, 15, false).Compress(nil, bytes.Repeat([]byte("duplex "), 1<<18-1<<16))
	seeds = append(seeds, differentialSeed{long, nil})
	for _, v := range inflateVectors() {
		seeds = append(seeds, differentialSeed{v.data, v.hist})
	}
	return seeds
}

// TestInflateMatchesReference runs the inflater over the vectors: the
// table form of FuzzInflateDifferential, with the names of the rules.
func TestInflateMatchesReference(t *testing.T) {
	for _, v := range inflateVectors() {
		if msg := compareWithReference(v.data, v.hist, 1<<20); msg != "" {
			t.Errorf("%s: %s", v.name, msg)
		}
	}
}

// compareWithReference decodes data (as a message payload: the inflater
// appends the trailer, so the reference gets it too) with the inflater and
// with refInflate over the same history, and says how they differ, or ""
// if they agree: where the reference reaches the end, or the limit, the
// inflater must give the same output without error; where it refuses, the
// inflater must fail too, having given at most what the reference gave
// before refusing.
func compareWithReference(data, hist []byte, limit int) string {
	if len(hist) > winSize {
		hist = hist[len(hist)-winSize:]
	}
	want, verdict, werr := refInflate(append(bytes.Clone(data), trailer...), hist, limit)
	inf := new(inflater)
	inf.reset(bytes.NewReader(data), hist, nil)
	got, err := io.ReadAll(io.LimitReader(inf, int64(limit)))
	if err != nil && err != errCorrupt && err != io.ErrUnexpectedEOF {
		return fmt.Sprintf("inflater failed with %v, which is neither errCorrupt nor io.ErrUnexpectedEOF", err)
	}
	switch verdict {
	case refEnd, refLimit:
		if err != nil {
			return fmt.Sprintf("inflater failed (%v) after %d bytes where zlib's rules give %d bytes (%v)", err, len(got), len(want), verdict)
		}
		if !bytes.Equal(got, want) {
			return fmt.Sprintf("inflater gave %d bytes, zlib's rules %d (%v), different from byte %d", len(got), len(want), verdict, firstDifference(got, want))
		}
	default:
		if err == nil {
			return fmt.Sprintf("inflater gave %d bytes and no error where zlib's rules refuse (%v: %v) after %d", len(got), verdict, werr, len(want))
		}
		if !bytes.HasPrefix(want, got) {
			return fmt.Sprintf("inflater gave %d bytes before failing (%v), not a prefix of the %d zlib's rules give before refusing (%v)", len(got), err, len(want), werr)
		}
	}
	return ""
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
