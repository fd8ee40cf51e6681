package deflate

import (
	"bytes"
	"compress/flate"
	"io"
	"math/rand"
	"testing"
)

// FuzzInflateSplit feeds arbitrary payloads to the push inflater cut at
// points the fuzzer picks (and byte by byte): every split must give the
// output and the verdict of the whole, with an error reported while the
// byte that proves it is fed, and the whole must agree with compress/flate
// as in FuzzInflateDifferential. An output limit is passed at the same
// byte in every split.
func FuzzInflateSplit(f *testing.F) {
	msgs := messages(17, 24)
	for i, m := range msgs[:12] {
		for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, flate.BestCompression} {
			var buf bytes.Buffer
			fw, _ := flate.NewWriterDict(&buf, level, msgs[i+12])
			fw.Write(m)
			fw.Flush()
			f.Add(buf.Bytes()[:buf.Len()-len(tail)], msgs[i+12], int64(i), uint16(0))
		}
		out, _ := NewCompressor(flate.BestSpeed, 15, false).Compress(nil, m)
		f.Add(out, []byte(nil), int64(i), uint16(len(m)/2))
	}
	f.Add(dictRef(f), []byte("0123456789abcdefghijklmnopqrstuvwxyz"), int64(1), uint16(0))
	f.Add([]byte{0x07}, []byte(nil), int64(0), uint16(0))
	f.Fuzz(func(t *testing.T, data, dict []byte, seed int64, limit uint16) {
		if len(dict) > winSize {
			dict = dict[len(dict)-winSize:]
		}
		if len(data) > 64<<10 {
			data = data[:64<<10]
		}
		const most = 1 << 20 // output compared
		r := rand.New(rand.NewSource(seed))
		lim := int64(limit)
		if lim == 0 {
			lim = most
		}
		whole := checkSplits(t, r, data, dict, lim)
		full := append(bytes.Clone(data), trailer...)
		want, wantErr := io.ReadAll(io.LimitReader(flate.NewReaderDict(bytes.NewReader(full), dict), lim+1))
		switch {
		case int64(len(want)) > lim:
			if whole.err != errLimit || !bytes.Equal(whole.out, want) {
				t.Fatalf("limit %d: %d bytes, %v; compress/flate gives more (%d), so want them and errLimit", lim, len(whole.out), whole.err, len(want))
			}
		case wantErr == nil && (whole.err != io.EOF || !bytes.Equal(whole.out, want)):
			t.Fatalf("%d bytes, %v; compress/flate gives %d bytes", len(whole.out), whole.err, len(want))
		case wantErr != nil && whole.err == io.EOF:
			t.Fatalf("inflated %d bytes where compress/flate fails (%v)", len(whole.out), wantErr)
		case whole.err != io.EOF && whole.err != errCorrupt && whole.err != io.ErrUnexpectedEOF && whole.err != errLimit:
			t.Fatalf("failed with %v", whole.err)
		}
	})
}
