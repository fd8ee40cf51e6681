package deflate

import (
	"bytes"
	"compress/flate"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

// messages returns n messages like those of a chat or ticker protocol:
// mostly similar JSON of varied sizes, with an empty message, single bytes,
// incompressible noise and messages larger than the 32 KiB window.
func messages(seed int64, n int) [][]byte {
	r := rand.New(rand.NewSource(seed))
	words := []string{"alice", "bob", "price", "update", "order", "filled", "cancelled", "room", "general"}
	out := make([][]byte, n)
	for i := range out {
		var b bytes.Buffer
		switch i % 50 {
		case 0:
			// empty
		case 1:
			b.WriteByte(byte(r.Intn(256)))
		case 2:
			noise := make([]byte, 1+r.Intn(3000))
			r.Read(noise)
			b.Write(noise)
		case 3:
			for b.Len() < 40<<10+r.Intn(20<<10) {
				fmt.Fprintf(&b, "%s %d ", words[r.Intn(len(words))], r.Intn(100))
			}
		default:
			size := []int{20, 130, 600, 1200, 5000}[r.Intn(5)]
			fmt.Fprintf(&b, `{"type":"event","seq":%d,"items":[`, i)
			for b.Len() < size {
				fmt.Fprintf(&b, `{"who":%q,"what":%q,"n":%d},`, words[r.Intn(len(words))], words[r.Intn(len(words))], r.Intn(1000))
			}
			b.WriteString("{}]}")
		}
		out[i] = b.Bytes()
	}
	return out
}

// peerInflate checks compressed messages the way a peer reads them: one
// flate.Reader for the whole connection, fed each message followed by the
// tail, so its window spans messages (RFC 7692 §7.2.2).
func peerInflate(t *testing.T, compressed, want [][]byte) {
	t.Helper()
	var stream bytes.Buffer
	for _, c := range compressed {
		stream.Write(c)
		stream.WriteString(tail)
	}
	fr := flate.NewReader(&stream)
	for i, w := range want {
		got := make([]byte, len(w))
		if _, err := io.ReadFull(fr, got); err != nil {
			t.Fatalf("peer inflating message %d: %v", i, err)
		}
		if !bytes.Equal(got, w) {
			t.Fatalf("peer inflated message %d = %.40q…; want %.40q…", i, got, w)
		}
	}
	// Nothing more: the stream stops after the last tail.
	if n, err := fr.Read(make([]byte, 1)); n != 0 || err != io.ErrUnexpectedEOF {
		t.Fatalf("after the last message: %d bytes, %v; want 0, unexpected EOF", n, err)
	}
}

// hexBytes turns "f2 48 cd" into bytes.
func hexBytes(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRFCExamples decodes the payloads of RFC 7692 §7.2.3, each "Hello".
func TestRFCExamples(t *testing.T) {
	tests := []struct {
		name     string
		payloads []string // messages in order; frames of one message split by "|"
	}{
		{"§7.2.3.1 one compressed block", []string{"f2 48 cd c9 c9 07 00"}},
		{"§7.2.3.1 fragmented", []string{"f2 48 cd | c9 c9 07 00"}},
		{"§7.2.3.2 sharing the sliding window", []string{"f2 48 cd c9 c9 07 00", "f2 00 11 00 00"}},
		{"§7.2.3.3 block with no compression", []string{"00 05 00 fa ff 48 65 6c 6c 6f 00"}},
		{"§7.2.3.4 block with BFINAL set", []string{"f3 48 cd c9 c9 07 00 00"}},
		{"§7.2.3.5 two blocks in one message", []string{"f2 48 05 00 00 00 ff ff ca c9 c9 07 00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecompressor(15, true)
			for _, msg := range tt.payloads {
				var frames []io.Reader
				for _, f := range strings.Split(msg, "|") {
					frames = append(frames, bytes.NewReader(hexBytes(t, f)))
				}
				got, err := io.ReadAll(d.Reader(io.MultiReader(frames...)))
				d.Done()
				if err != nil || string(got) != "Hello" {
					t.Errorf("decompress %s = %q, %v; want \"Hello\"", msg, got, err)
				}
			}
		})
	}

	// Without takeover the second message of §7.2.3.2 refers to nothing.
	d := NewDecompressor(15, false)
	io.ReadAll(d.Reader(bytes.NewReader(hexBytes(t, "f2 48 cd c9 c9 07 00"))))
	d.Done()
	_, err := io.ReadAll(d.Reader(bytes.NewReader(hexBytes(t, "f2 00 11 00 00"))))
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("§7.2.3.2 without takeover: error %v; want ErrCorrupt", err)
	}
}

func TestEmptyMessage(t *testing.T) {
	for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, flate.DefaultCompression, flate.BestCompression} {
		for _, takeover := range []bool{false, true} {
			c := NewCompressor(level, 15, takeover)
			for i := range 3 { // fresh, primed and continued writers
				got, err := c.Compress(nil, nil)
				if err != nil || !bytes.Equal(got, []byte{0}) {
					t.Errorf("level %d, takeover %v, message %d: Compress(empty) = % x, %v; want 00", level, takeover, i, got, err)
				}
				c.Compress(nil, []byte("some history to refer to, some history"))
			}
		}
	}
	d := NewDecompressor(15, true)
	got, err := io.ReadAll(d.Reader(bytes.NewReader([]byte{0})))
	d.Done()
	if err != nil || len(got) != 0 {
		t.Errorf("decompress 00 = %q, %v; want empty", got, err)
	}
}

func TestCompressAppends(t *testing.T) {
	c := NewCompressor(flate.BestSpeed, 15, true)
	dst := []byte("header")
	out, err := c.Compress(dst, []byte("hello hello hello hello"))
	if err != nil || !bytes.HasPrefix(out, []byte("header")) {
		t.Fatalf("Compress = %q, %v; want it to start with the dst", out, err)
	}
	peerInflate(t, [][]byte{out[len("header"):]}, [][]byte{[]byte("hello hello hello hello")})
}

func TestRoundTrip(t *testing.T) {
	msgs := messages(1, 300)
	for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, 4, flate.DefaultCompression, flate.BestCompression} {
		for _, bits := range []int{15, 10, 8} {
			for _, takeover := range []bool{true, false} {
				t.Run(fmt.Sprintf("level%d/bits%d/takeover=%v", level, bits, takeover), func(t *testing.T) {
					c := NewCompressor(level, bits, takeover)
					compressed := make([][]byte, len(msgs))
					for i, m := range msgs {
						out, err := c.Compress(nil, m)
						if err != nil {
							t.Fatal(err)
						}
						compressed[i] = out
					}
					peerInflate(t, compressed, msgs)
					ourInflate(t, NewDecompressor(bits, takeover), compressed, msgs)
				})
			}
		}
	}
}

// ourInflate decompresses each message with d and compares.
func ourInflate(t *testing.T, d *Decompressor, compressed, want [][]byte) {
	t.Helper()
	for i, c := range compressed {
		got, err := io.ReadAll(d.Reader(bytes.NewReader(c)))
		d.Done()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(got, want[i]) {
			t.Fatalf("message %d = %.40q…; want %.40q…", i, got, want[i])
		}
	}
}

// TestTakeoverSavesBytes shows the history is used: similar messages shrink.
func TestTakeoverSavesBytes(t *testing.T) {
	msgs := messages(2, 200)
	for _, level := range []int{flate.BestSpeed, flate.DefaultCompression} {
		size := map[bool]int{}
		for _, takeover := range []bool{false, true} {
			c := NewCompressor(level, 15, takeover)
			for _, m := range msgs {
				out, _ := c.Compress(nil, m)
				size[takeover] += len(out)
			}
		}
		if size[true] >= size[false] {
			t.Errorf("level %d: %d bytes with takeover, %d without; want fewer with", level, size[true], size[false])
		}
		t.Logf("level %d: %d bytes with takeover, %d without", level, size[true], size[false])
	}
}

// TestSmallWindowHasNoMatches checks that a limited window gives Huffman-only
// output: a run of one byte cannot shrink below a bit per byte.
func TestSmallWindowHasNoMatches(t *testing.T) {
	run := bytes.Repeat([]byte("a"), 64<<10)
	for _, bits := range []int{8, 9, 14} {
		out, _ := NewCompressor(flate.BestCompression, bits, true).Compress(nil, run)
		if len(out) < len(run)/8 {
			t.Errorf("bits %d: %d bytes for %d; back references were used", bits, len(out), len(run))
		}
	}
	if out, _ := NewCompressor(flate.BestCompression, 15, true).Compress(nil, run); len(out) > 1000 {
		t.Errorf("bits 15: %d bytes for a run of %d; want back references", len(out), len(run))
	}
}

// TestInterleavedCompressors runs compressors that share the writer pools
// from several goroutines, so that writers carry one stream's state into
// another's message unless primed. Each stream is checked by its own peer.
func TestInterleavedCompressors(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgs := messages(int64(10+g), 150)
			c := NewCompressor(flate.BestSpeed+g%2*5, 15, true)
			compressed := make([][]byte, len(msgs))
			for i, m := range msgs {
				compressed[i], _ = c.Compress(nil, m)
			}
			peerInflate(t, compressed, msgs)
		}()
	}
	wg.Wait()

	// Two compressors taking turns on one goroutine miss their writer on
	// every message, so every message is primed.
	a, b := NewCompressor(flate.BestSpeed, 15, true), NewCompressor(flate.BestSpeed, 15, true)
	msgsA, msgsB := messages(20, 100), messages(21, 100)
	var outA, outB [][]byte
	for i := range msgsA {
		o, _ := a.Compress(nil, msgsA[i])
		outA = append(outA, o)
		o, _ = b.Compress(nil, msgsB[i])
		outB = append(outB, o)
	}
	peerInflate(t, outA, msgsA)
	peerInflate(t, outB, msgsB)
}

// peerCompress compresses msgs as a zlib-like peer with a persistent writer
// would (context takeover), stripping the tail of each.
func peerCompress(t *testing.T, level int, msgs [][]byte) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, level)
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		buf.Reset()
		fw.Write(m)
		fw.Flush()
		if !bytes.HasSuffix(buf.Bytes(), []byte(tail)) {
			t.Fatal("no tail")
		}
		out[i] = bytes.Clone(buf.Bytes()[:buf.Len()-len(tail)])
	}
	return out
}

func TestDecompressPeerStream(t *testing.T) {
	msgs := messages(3, 300)
	for _, level := range []int{flate.BestSpeed, flate.BestCompression} {
		compressed := peerCompress(t, level, msgs)
		ourInflate(t, NewDecompressor(15, true), compressed, msgs)
	}
}

// TestDecompressFinalBlock reads messages that end with BFINAL=1 instead of
// a sync flush (RFC 7692 §7.2.3.5), with junk after the final block.
func TestDecompressFinalBlock(t *testing.T) {
	d := NewDecompressor(15, true)
	for i, m := range messages(4, 60) {
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
		fw.Write(m)
		fw.Close()
		buf.WriteString("junk after the final block")
		src := bytes.NewReader(buf.Bytes())
		got, err := io.ReadAll(d.Reader(iotest.HalfReader(src)))
		d.Done()
		if err != nil || !bytes.Equal(got, m) {
			t.Fatalf("message %d: %.20q…, %v; want %.20q…", i, got, err, m)
		}
		if src.Len() != 0 {
			t.Fatalf("message %d: %d bytes of the payload left unread", i, src.Len())
		}
	}
}

func TestDecompressErrors(t *testing.T) {
	errNet := errors.New("network down")
	good, _ := NewCompressor(flate.BestSpeed, 15, false).Compress(nil, []byte(strings.Repeat("hello ", 100)))
	tests := []struct {
		name string
		src  io.Reader
		want error
	}{
		{"reserved block type", bytes.NewReader([]byte{0xff, 0xff, 0xff}), ErrCorrupt},
		{"stored length mismatch", bytes.NewReader([]byte{0x00, 0x05, 0x00, 0x00, 0x00}), ErrCorrupt},
		{"empty payload", bytes.NewReader(nil), ErrCorrupt},
		{"truncated", bytes.NewReader(good[:len(good)/2]), ErrCorrupt},
		{"reference before the start", bytes.NewReader(dictRef(t)), ErrCorrupt},
		{"source error", io.MultiReader(bytes.NewReader(good[:5]), iotest.ErrReader(errNet)), errNet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecompressor(15, true)
			r := d.Reader(tt.src)
			_, err := io.ReadAll(r)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v; want %v", err, tt.want)
			}
			if tt.want != ErrCorrupt && errors.Is(err, ErrCorrupt) {
				t.Errorf("error = %v; a source error must not read as corrupt data", err)
			}
			if _, err2 := r.Read(make([]byte, 10)); err2 != err {
				t.Errorf("next Read error = %v; want the same %v", err2, err)
			}
			d.Done()
		})
	}
}

// dictRef returns a message that refers to bytes before its start, as if
// there was history.
func dictRef(t testing.TB) []byte {
	var buf bytes.Buffer
	dict := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	fw, _ := flate.NewWriterDict(&buf, flate.BestCompression, dict)
	fw.Write(dict)
	fw.Flush()
	if buf.Len() > 20 {
		t.Fatalf("no back reference in % x", buf.Bytes())
	}
	return buf.Bytes()[:buf.Len()-len(tail)]
}

// TestDecompressStreams checks that a decompression bomb is read piece by
// piece: after the first bytes of output, little of the input is consumed.
func TestDecompressStreams(t *testing.T) {
	bomb, _ := NewCompressor(flate.BestCompression, 15, false).Compress(nil, make([]byte, 64<<20))
	src := &countingReader{r: bytes.NewReader(bomb)}
	d := NewDecompressor(15, true)
	r := d.Reader(src)
	const limit = 1 << 20
	n, err := io.Copy(io.Discard, io.LimitReader(r, limit))
	if err != nil || n != limit {
		t.Fatalf("read %d, %v; want %d", n, err, limit)
	}
	if src.n > len(bomb)/8 {
		t.Errorf("read %d of %d compressed bytes for 1 MiB of the 64 MiB output", src.n, len(bomb))
	}
	if d.hist.len() > 32<<10 {
		t.Errorf("history holds %d bytes; want at most 32 KiB", d.hist.len())
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestDecompressorLifecycle(t *testing.T) {
	d := NewDecompressor(15, true)
	d.Done() // no message yet
	c := NewCompressor(flate.BestSpeed, 15, true)
	first, _ := c.Compress(nil, []byte("first message, first message"))
	second, _ := c.Compress(nil, []byte("second message, first message"))

	r := d.Reader(bytes.NewReader(first))
	if got, err := io.ReadAll(r); err != nil || string(got) != "first message, first message" {
		t.Fatalf("first = %q, %v", got, err)
	}
	d.Done()
	d.Done()
	if n, err := r.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Errorf("Read after Done = %d, %v; want 0, EOF", n, err)
	}
	r = d.Reader(iotest.OneByteReader(bytes.NewReader(second)))
	if got, err := io.ReadAll(iotest.OneByteReader(r)); err != nil || string(got) != "second message, first message" {
		t.Fatalf("second = %q, %v", got, err)
	}
	d.Done()
}

// TestNoAllocs checks that a message costs no allocation once the pools
// are warm, in both directions, with takeover.
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop objects")
	}
	msgs := messages(12, 400)
	c := NewCompressor(flate.BestSpeed, 15, true)
	d := NewDecompressor(15, true)
	var payload []byte
	src := new(bytes.Reader)
	buf := make([]byte, 4096)
	i := 0
	roundTrip := func() {
		payload, _ = c.Compress(payload[:0], msgs[i%len(msgs)])
		i++
		src.Reset(payload)
		r := d.Reader(src)
		for {
			if _, err := r.Read(buf); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
		d.Done()
	}
	for range msgs { // grow the buffers and histories
		roundTrip()
	}
	if n := testing.AllocsPerRun(200, roundTrip); n != 0 {
		t.Errorf("%v allocations per message; want 0", n)
	}
}

func TestWindow(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, max := range []int{1, 7, 512, 4096} {
		w := window{max: max}
		var all []byte
		for range 300 {
			p := make([]byte, r.Intn(2*max+2))
			r.Read(p)
			w.write(p)
			all = append(all, p...)
			a, b := w.parts()
			got := append(append([]byte{}, a...), b...)
			want := all[len(all)-min(len(all), max):]
			if !bytes.Equal(got, want) {
				t.Fatalf("max %d: window holds %d bytes, not the last %d written", max, len(got), len(want))
			}
			if cap(w.buf) > max {
				t.Fatalf("max %d: buffer grew to %d", max, cap(w.buf))
			}
		}
	}
}

// TestIdleMemory checks what a connection keeps between messages: plaintext
// history only, bounded by the window.
func TestIdleMemory(t *testing.T) {
	c := NewCompressor(flate.DefaultCompression, 15, true)
	d := NewDecompressor(15, true)
	if c.hist.buf != nil || d.hist.buf != nil {
		t.Fatal("history allocated before any message")
	}
	for _, m := range messages(6, 100) {
		out, _ := c.Compress(nil, m)
		io.Copy(io.Discard, d.Reader(bytes.NewReader(out)))
		d.Done()
	}
	if got := cap(c.hist.buf); got > maxPrime {
		t.Errorf("compressor keeps %d bytes; want at most %d", got, maxPrime)
	}
	if got := cap(d.hist.buf); got > 32<<10 {
		t.Errorf("decompressor keeps %d bytes; want at most 32 KiB", got)
	}
	if d.inf != nil {
		t.Error("decompressor holds a flate reader between messages")
	}
	if got := NewDecompressor(8, true).hist.max; got != 512 {
		t.Errorf("8-bit history = %d bytes; want 512", got)
	}
	if got := NewDecompressor(15, false).hist.max; got != 0 {
		t.Errorf("history without takeover = %d bytes; want 0", got)
	}
}
