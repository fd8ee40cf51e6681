package deflate

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// trailer follows every message's payload on its way into the inflater: the
// tail that RFC 7692 §7.2.2 says to append, then an empty final stored
// block, so that the inflater reports io.EOF at the end of the message
// instead of waiting for more input.
const trailer = tail + "\x01\x00\x00\xff\xff"

// ErrLimit is returned by [Decompressor.Inflate] once a message has
// decompressed to more than the limit given to [Decompressor.Begin]. The
// connection should fail; close code 1009 is usual.
var ErrLimit = errors.New("duplex: decompressed message exceeds the limit")

// Decompressor decompresses the messages of one direction of a connection.
// Between messages it holds no inflater, only (with context takeover) the
// last 2^windowBits bytes of output; see the package doc.
type Decompressor struct {
	takeover bool
	shared   bool // SharedDecompressor's: never inflates, Take does
	hist     window
	wbits    int // the peer's window in bits, 9 to 15

	inf *inflater // between Begin (or Reader) and Done
	err error     // the current message's error, returned from then on
	rd  msgReader // what Reader returns
}

// inflaterPool holds inflaters, the pooled part of a Decompressor.
var inflaterPool = sync.Pool{New: func() any { return new(inflater) }}

// NewDecompressor returns a decompressor for a peer that compresses with
// at most windowBits (8..15; any other value means 15) and context takeover
// or not, as negotiated for this direction. The history kept is never below
// 512 bytes: zlib refuses an 8-bit window, so peers built on it compress
// with 9 bits when 8 was agreed (zlib itself then refers at most 250 bytes
// back, but other compressors may not). A distance beyond the window, into
// the history or within a message, is invalid data ([ErrCorrupt]): the
// peer broke the agreement (RFC 7692 §7.1.2.1, §7.1.2.2).
func NewDecompressor(windowBits int, contextTakeover bool) *Decompressor {
	d := &Decompressor{takeover: contextTakeover, wbits: max(bitsOr15(windowBits), 9)}
	d.rd.d = d
	if contextTakeover {
		d.hist.max = 1 << d.wbits
	}
	return d
}

// sharedDecompressors are SharedDecompressor's, by window bits.
var sharedDecompressors = func() (ds [16]Decompressor) {
	for i := range ds {
		ds[i] = Decompressor{shared: true, wbits: max(bitsOr15(i), 9)}
	}
	return ds
}()

// SharedDecompressor returns what a connection without context takeover
// holds between messages, for a peer whose window is windowBits: such a
// connection needs a decompressor only while it reads a compressed
// message, so one value per window size serves them all. It is never
// used to inflate: [Decompressor.Take] gives a working decompressor for
// one message, and [ReleaseDecompressor] takes it back.
func SharedDecompressor(windowBits int) *Decompressor {
	return &sharedDecompressors[bitsOr15(windowBits)]
}

// Shared reports whether d is a [SharedDecompressor].
func (d *Decompressor) Shared() bool { return d.shared }

// decompressorPool holds the working decompressors Take hands out.
var decompressorPool = sync.Pool{New: func() any { return new(Decompressor) }}

// Take returns a decompressor without context takeover for the window of
// d, a [SharedDecompressor], to read one message with; give it back with
// [ReleaseDecompressor].
func (d *Decompressor) Take() *Decompressor {
	w := decompressorPool.Get().(*Decompressor)
	w.wbits = d.wbits
	w.rd.d = w
	return w
}

// ReleaseDecompressor ends w's message, if any, and keeps w for another
// Take.
func ReleaseDecompressor(w *Decompressor) {
	w.Done()
	w.err = nil
	decompressorPool.Put(w)
}

// Begin starts a message whose decompressed size may be at most limit
// bytes (0 or less: no limit), for [Decompressor.Inflate]. It takes an
// inflater from the pool until [Decompressor.Done].
func (d *Decompressor) Begin(limit int64) {
	inf := d.begin()
	h1, h2 := d.history()
	inf.start(h1, h2, max(limit, 0))
	inf.wbits = d.wbits
}

// begin takes an inflater for a new message, ending the current one.
func (d *Decompressor) begin() *inflater {
	if d.inf != nil {
		d.Done()
	}
	inf := inflaterPool.Get().(*inflater)
	d.inf, d.err = inf, nil
	return inf
}

// history returns what the message may refer to: with context takeover
// (§7.1.1) the previous messages' output (example in §7.2.3.2).
func (d *Decompressor) history() (h1, h2 []byte) {
	if d.takeover {
		return d.hist.parts()
	}
	return nil, nil
}

// Room returns how many bytes the next call to Inflate takes for sure:
// at least 4 KiB less what an unfinished header or token holds back, and
// 0 when the inflater has decoding left to do before it takes more.
func (d *Decompressor) Room() int { return d.inf.room() }

// Inflate feeds the decompressor in, the next bytes of the compressed
// payload of the message begun with Begin (frame payloads concatenated,
// without the 00 00 ff ff tail, in pieces of any size), end saying that
// the message ends after them; it may be said on its own, with no bytes.
// It decodes as far as they allow, keeping its state between calls, and
// returns how many bytes of in it took and exactly one of three things:
//   - out, the next decompressed bytes, valid until the next call, which
//     may give more from what was taken or take more of in;
//   - an error: io.EOF once the message has ended (after end was said),
//     an error wrapping [ErrCorrupt] for invalid data, reported at the
//     first byte that proves it, or [ErrLimit] past Begin's limit, which
//     it passes by one byte so that a caller counting the output sees it.
//     The same error is returned from then on;
//   - neither, having taken all of in: more input is needed.
//
// After an error, call [Decompressor.Done].
func (d *Decompressor) Inflate(in []byte, end bool) (n int, out []byte, err error) {
	if d.err != nil {
		return 0, nil, d.err
	}
	n, out, err = d.inf.step(in, end)
	if d.takeover && len(out) > 0 {
		d.hist.write(out)
	}
	switch err {
	case nil, io.EOF:
	case errLimit:
		err = ErrLimit
		d.err = err
	default:
		err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		d.err = err
	}
	return n, out, err
}

// Reader returns a reader of the decompressed message whose compressed
// payload r yields: the frame payloads of one message, concatenated, without
// the 00 00 ff ff tail. It is the pull form of Begin and Inflate, with no
// limit. The reader streams, holding at most a 32 KiB window. It returns
// io.EOF at the end of the message, having read r to its end; an error
// wrapping [ErrCorrupt] for invalid data; and errors from r as they are.
// After io.EOF the caller calls [Decompressor.Done]. The reader is valid
// until then.
func (d *Decompressor) Reader(r io.Reader) io.Reader {
	inf := d.begin()
	h1, h2 := d.history()
	inf.reset(r, h1, h2)
	inf.wbits = d.wbits
	return &d.rd
}

// Done ends the current message and returns the inflater to its pool.
// Call it after the end of the message (io.EOF) or an error: with context
// takeover, ending a message early leaves a history that no longer matches
// the peer's. Done without a current message does nothing.
func (d *Decompressor) Done() {
	inf := d.inf
	if inf == nil {
		return
	}
	d.inf = nil
	inf.src, inf.pend = nil, nil
	inflaterPool.Put(inf)
}

type msgReader struct{ d *Decompressor }

func (mr *msgReader) Read(p []byte) (int, error) {
	d := mr.d
	if d.err != nil {
		return 0, d.err
	}
	if d.inf == nil {
		return 0, io.EOF
	}
	n, err := d.inf.Read(p)
	if d.takeover && n > 0 {
		d.hist.write(p[:n])
	}
	switch {
	case err == nil, err == io.EOF:
	case err == errCorrupt, err == io.ErrUnexpectedEOF && !d.inf.srcFailed:
		err = fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err != nil && err != io.EOF {
		d.err = err
	}
	return n, err
}
