package deflate

import (
	"compress/flate"
	"errors"
	"sync"
	"sync/atomic"
)

// tail is the empty stored block that ends a sync flush. RFC 7692 §7.2.1
// removes it from every compressed message and §7.2.2 appends it back.
const tail = "\x00\x00\xff\xff"

// maxPrime bounds the history a Compressor at a level other than 1 keeps
// for context takeover (level 1 keeps a stream; see stream.go). It is
// compressed into a discarding sink to prime a pooled flate.Writer, which
// costs about as much as compressing it. On 1 KiB JSON messages
// (BenchmarkCompress) a primed message costs ~57 µs at level 6, against
// ~29 µs without takeover, where priming with all 32 KiB would cost ~700
// µs. 2 KiB gets 85-90% of the ratio gain at level 6.
const maxPrime = 2 << 10

// Compressor compresses the messages of one direction of a connection.
// Between messages it holds no encoder or flate.Writer, only (with context
// takeover) history: at level 1 a stream of at most 24 KiB, at other levels
// up to 2 KiB; see the package doc.
type Compressor struct {
	level int // flate level; flate.HuffmanOnly when the window is limited (see NewCompressor)

	// With context takeover at levels other than 1, hist holds the end of
	// the plaintext sent so far and id/seq name the stream's state, so that
	// a pooled writer still holding it can carry on without priming.
	takeover bool
	id       uint64
	seq      uint64 // messages compressed
	hist     window

	// At level 1 with context takeover, the history and match index;
	// st.table is nil until the first message.
	st stream
}

// pooledWriter is a flate.Writer writing to an in-memory sink.
type pooledWriter struct {
	fw  *flate.Writer
	out sink
	// The writer's state continues the stream of Compressor owner right
	// after its message seq; owner 0 means no stream.
	owner, seq uint64
}

// sink appends to buf, or drops everything while priming.
type sink struct {
	buf     []byte
	discard bool
}

func (s *sink) Write(p []byte) (int, error) {
	if !s.discard {
		s.buf = append(s.buf, p...)
	}
	return len(p), nil
}

// writerPools holds one pool per flate level, from HuffmanOnly (-2) to
// BestCompression (9).
var writerPools [flate.BestCompression - flate.HuffmanOnly + 1]sync.Pool

var lastCompressorID atomic.Uint64

// NewCompressor returns a compressor for flate level (an invalid level means
// flate.DefaultCompression), a window of windowBits (8..15; any other value
// means 15) and context takeover or not, as negotiated for this direction.
//
// Below 15 bits, level 1 with context takeover keeps its references within
// the window. compress/flate cannot compress with a window smaller than 32
// KiB, so at other levels, and without takeover (whose output must not
// depend on the window; see the package doc), the compressor uses
// flate.HuffmanOnly, which never refers back and so honours any window
// (RFC 7692 §7.1.2.1, §7.1.2.2). flate.NoCompression is kept as is, for the
// same reason.
func NewCompressor(level int, windowBits int, contextTakeover bool) *Compressor {
	if level < flate.HuffmanOnly || level > flate.BestCompression || level == flate.DefaultCompression {
		level = 6 // what flate.DefaultCompression means
	}
	if !validBits(windowBits) {
		windowBits = 15
	}
	if windowBits < 15 && level != flate.NoCompression && (level != flate.BestSpeed || !contextTakeover) {
		level = flate.HuffmanOnly
	}
	// Without back references there is nothing to take over.
	if !contextTakeover || level == flate.HuffmanOnly || level == flate.NoCompression {
		// A compressor without takeover has no state: one per level
		// serves every connection (a server answers thousands the same
		// way, and each would otherwise keep its own).
		return &stateless[level-flate.HuffmanOnly]
	}
	c := &Compressor{level: level, takeover: true, id: lastCompressorID.Add(1)}
	c.hist.max = maxPrime
	c.st.reach = min(1<<windowBits, maxReach)
	return c
}

// Compress appends the compressed form of p to dst and returns it. The
// output is sync-flushed with its trailing 00 00 ff ff removed (RFC 7692
// §7.2.1); an empty p gives the single byte 00. dst and p must not overlap.
func (c *Compressor) Compress(dst, p []byte) ([]byte, error) {
	if len(p) == 0 {
		// The 3 header bits of an empty stored block, padded: all that a
		// sync flush of nothing leaves once 00 00 ff ff is removed. The
		// stream's state, and so a writer carrying it on, is unchanged.
		return append(dst, 0), nil
	}
	if c.level != flate.BestSpeed {
		return c.compressFlate(dst, p)
	}
	e := encoderPool.Get().(*encoder)
	var out []byte
	if c.takeover {
		// §7.1.1: the message may refer to earlier ones, which the peer's
		// inflater still holds (example in §7.2.3.2).
		out = c.st.compress(e, dst, p)
	} else {
		out = e.compress(dst, p, maxDistance)
	}
	encoderPool.Put(e)
	return out, nil
}

var encoderPool = sync.Pool{New: func() any { return new(encoder) }}

// stateless holds the compressors without context takeover, by level
// from flate.HuffmanOnly; NewCompressor hands them out. Compress only
// reads them.
var stateless = func() (cs [flate.BestCompression - flate.HuffmanOnly + 1]Compressor) {
	for i := range cs {
		cs[i].level = i + flate.HuffmanOnly
	}
	return cs
}()

// compressFlate is Compress with a pooled flate.Writer, for levels other
// than 1.
func (c *Compressor) compressFlate(dst, p []byte) ([]byte, error) {
	pool := &writerPools[c.level-flate.HuffmanOnly]
	w, _ := pool.Get().(*pooledWriter)
	if w == nil {
		w = &pooledWriter{}
		// The level was checked in NewCompressor.
		w.fw, _ = flate.NewWriter(&w.out, c.level)
	}
	w.out.buf = dst
	start := len(dst)

	// §7.1.1: with context takeover the message may refer to earlier
	// ones, which the peer's inflater still holds (example in §7.2.3.2).
	// A writer that carries our stream on needs nothing; any other is
	// primed with the history.
	if !c.takeover || w.owner != c.id || w.seq != c.seq {
		w.fw.Reset(&w.out)
		if c.takeover && c.hist.len() > 0 {
			w.out.discard = true
			a, b := c.hist.parts()
			w.fw.Write(a)
			w.fw.Write(b)
			w.fw.Flush()
			w.out.discard = false
		}
	}
	_, err := w.fw.Write(p)
	if err == nil {
		err = w.fw.Flush()
	}
	out := w.out.buf
	w.out.buf = nil
	w.owner = 0
	if c.takeover {
		c.seq++
		c.hist.write(p)
		if err == nil {
			w.owner, w.seq = c.id, c.seq
		}
	}
	pool.Put(w)

	if err != nil {
		return dst, err
	}
	if len(out)-start < len(tail) || string(out[len(out)-len(tail):]) != tail {
		return dst, errors.New("duplex: deflate: sync flush did not end with 00 00 ff ff")
	}
	return out[:len(out)-len(tail)], nil
}

// Stateless reports whether each message is compressed on its own (no
// context takeover), so that the same input always gives the same output
// at the same level: then one compressed form can serve many connections.
func (c *Compressor) Stateless() bool { return !c.takeover }

// Level is the flate level the compressor uses.
func (c *Compressor) Level() int { return c.level }
