package deflate

import (
	"fmt"
	"io"
	"sync"
)

// trailer follows every message's payload on its way into the inflater: the
// tail that RFC 7692 §7.2.2 says to append, then an empty final stored
// block, so that the inflater reports io.EOF at the end of the message
// instead of waiting for more input.
const trailer = tail + "\x01\x00\x00\xff\xff"

// Decompressor decompresses the messages of one direction of a connection.
// Between messages it holds no inflater, only (with context takeover) the
// last 2^windowBits bytes of output; see the package doc.
type Decompressor struct {
	takeover bool
	hist     window

	inf *inflater // between Reader and Done
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
// back, but other compressors may not).
func NewDecompressor(windowBits int, contextTakeover bool) *Decompressor {
	d := &Decompressor{takeover: contextTakeover}
	d.rd.d = d
	if contextTakeover {
		d.hist.max = 1 << max(bitsOr15(windowBits), 9)
	}
	return d
}

// Reader returns a reader of the decompressed message whose compressed
// payload r yields: the frame payloads of one message, concatenated, without
// the 00 00 ff ff tail. The reader streams, holding at most a 32 KiB
// window, so the caller can count the bytes it reads and stop at its limit:
// limits apply to the decompressed size. It returns io.EOF at the end
// of the message, having read r to its end; an error wrapping [ErrCorrupt]
// for invalid data; and errors from r as they are. After io.EOF the caller
// calls [Decompressor.Done]. The reader is valid until then.
func (d *Decompressor) Reader(r io.Reader) io.Reader {
	if d.inf != nil {
		d.Done()
	}
	inf := inflaterPool.Get().(*inflater)
	var h1, h2 []byte
	if d.takeover {
		// §7.1.1: the message may refer to the previous messages' output
		// (example in §7.2.3.2).
		h1, h2 = d.hist.parts()
	}
	inf.reset(r, h1, h2)
	d.inf, d.err = inf, nil
	return &d.rd
}

// Done ends the current message and returns the inflater to its pool.
// Call it after the reader returned io.EOF: with context takeover, ending a
// message early leaves a history that no longer matches the peer's. Done
// without a current message does nothing.
func (d *Decompressor) Done() {
	inf := d.inf
	if inf == nil {
		return
	}
	d.inf = nil
	inf.src = source{}
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
	case err == nil:
	case err == io.EOF:
		// A message that ended with a final block (BFINAL=1, as in
		// §7.2.3.4) leaves the rest of r unread; read it so that the
		// caller is at the end of the message.
		err = d.inf.src.drain()
	case d.inf.src.err != nil:
		err = d.inf.src.err
	default:
		err = fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err != nil && err != io.EOF {
		d.err = err
	}
	return n, err
}

// source yields r, then the trailer.
type source struct {
	r    io.Reader
	eof  bool  // r returned io.EOF
	err  error // r failed
	tail int   // bytes of the trailer yielded
}

func (s *source) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if !s.eof {
		n, err := s.r.Read(p)
		switch {
		case err == io.EOF:
			s.eof = true
		case err != nil:
			s.err = err
			return n, err
		}
		if n > 0 || !s.eof {
			return n, nil
		}
	}
	if s.tail == len(trailer) {
		return 0, io.EOF
	}
	n := copy(p, trailer[s.tail:])
	s.tail += n
	return n, nil
}

// drain reads r to its end, ignoring what follows a final block.
func (s *source) drain() error {
	if !s.eof && s.err == nil {
		if _, err := io.Copy(io.Discard, s.r); err != nil {
			s.err = err
		}
		s.eof = true
	}
	if s.err != nil {
		return s.err
	}
	return io.EOF
}
