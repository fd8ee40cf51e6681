package loadgen

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/duplexws/duplex/internal/wire"
)

var noDeadline time.Time

// maxFrame bounds the frames the load generator accepts, so a server bug
// cannot make it allocate without limit.
const maxFrame = 64 << 20

// errProtocol marks a frame the load generator cannot go on from; the
// connection ends there.
var errProtocol = errors.New("loadgen: protocol error")

// frameReader is a reusable read buffer over one connection: the bytes
// between r and w have been read and not yet consumed. Frames are parsed
// in place, so reading an echo copies nothing.
type frameReader struct {
	nc   net.Conn
	buf  []byte
	r, w int
}

func newFrameReader(nc net.Conn, size int) *frameReader {
	return &frameReader{nc: nc, buf: make([]byte, size)}
}

// reset points fr at nc and drops anything buffered.
func (fr *frameReader) reset(nc net.Conn) {
	fr.nc, fr.r, fr.w = nc, 0, 0
}

// fill reads until at least need bytes are buffered, moving them to the
// front of the buffer or growing it when they would not fit.
func (fr *frameReader) fill(need int) error {
	if fr.w-fr.r >= need {
		return nil
	}
	if fr.r+need > len(fr.buf) {
		if need > len(fr.buf) {
			nb := make([]byte, max(need, 2*len(fr.buf)))
			fr.w = copy(nb, fr.buf[fr.r:fr.w])
			fr.buf = nb
		} else {
			fr.w = copy(fr.buf, fr.buf[fr.r:fr.w])
		}
		fr.r = 0
	}
	for fr.w-fr.r < need {
		n, err := fr.nc.Read(fr.buf[fr.w:])
		fr.w += n
		if err != nil {
			if err == io.EOF && fr.w-fr.r > 0 {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// peekBody returns, on one line, the start of what is buffered after a
// refused handshake's head: usually its body, which says why.
func (fr *frameReader) peekBody() string {
	b := fr.buf[fr.r:fr.w]
	if len(b) > 200 {
		b = b[:200]
	}
	return strings.ToValidUTF8(strings.Join(strings.Fields(string(b)), " "), "?")
}

// readHead returns an HTTP response head, through its blank line. Bytes
// after it stay buffered: they are the first frames.
func (fr *frameReader) readHead() ([]byte, error) {
	for {
		if i := headEnd(fr.buf[fr.r:fr.w]); i >= 0 {
			head := fr.buf[fr.r : fr.r+i]
			fr.r += i
			return head, nil
		}
		if fr.w-fr.r >= 8<<10 {
			return nil, errors.New("response head over 8 KiB")
		}
		if err := fr.fill(fr.w - fr.r + 1); err != nil {
			return nil, err
		}
	}
}

// next returns the next frame. The payload aliases the buffer and is valid
// until the following call.
func (fr *frameReader) next() (wire.Header, []byte, error) {
	if err := fr.fill(2); err != nil {
		return wire.Header{}, nil, err
	}
	if err := fr.fill(wire.HeaderSize(fr.buf[fr.r+1])); err != nil {
		return wire.Header{}, nil, err
	}
	h, n, err := wire.Parse(fr.buf[fr.r:fr.w])
	if err != nil {
		return h, nil, fmt.Errorf("%w: %w", errProtocol, err)
	}
	// RFC 6455 §5.1: a server must not mask the frames it sends.
	if h.Masked {
		return h, nil, fmt.Errorf("%w: masked frame from the server", errProtocol)
	}
	if h.Length > maxFrame {
		return h, nil, fmt.Errorf("%w: frame of %d bytes", errProtocol, h.Length)
	}
	end := n + int(h.Length)
	if err := fr.fill(end); err != nil {
		return h, nil, err
	}
	p := fr.buf[fr.r+n : fr.r+end]
	fr.r += end
	return h, p, nil
}

// buildFrame returns a whole masked client frame carrying p (RFC 6455 §5.3).
func buildFrame(op wire.Opcode, rsv byte, key [4]byte, p []byte) []byte {
	return appendFrame(make([]byte, 0, wire.MaxHeaderSize+len(p)), op, rsv, key, p)
}

// appendFrame appends a whole masked client frame carrying p to dst.
func appendFrame(dst []byte, op wire.Opcode, rsv byte, key [4]byte, p []byte) []byte {
	h := wire.Header{Fin: true, RSV: rsv, Opcode: op, Masked: true, Key: key, Length: int64(len(p))}
	dst = wire.Append(dst, h)
	hs := len(dst)
	dst = append(dst, p...)
	wire.Mask(key, 0, dst[hs:])
	return dst
}

func randomKey(r *rand.Rand) [4]byte {
	v := r.Uint32()
	return [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}

// stampSize is the length of the sequence stamp at the start of each
// message: eight hex digits, valid UTF-8 for text messages. It lets the
// verifier notice an echo that is lost, repeated or reordered, which a
// payload that never changes would hide.
const stampSize = 8

func putStamp(dst []byte, seq uint64) {
	const hex = "0123456789abcdef"
	for i := stampSize - 1; i >= 0; i-- {
		dst[i] = hex[seq&0xf]
		seq >>= 4
	}
}

// words make text payloads that compress about as well as chat or JSON
// traffic: a small vocabulary in random order.
var words = []string{
	"the", "message", "user", "channel", "id", "time", "hello", "world",
	"status", "ok", "event", "update", "data", "value", "name", "type",
	"duplex", "frame", "server", "client", "ping", "text", "true", "false",
	"null", "count", "page", "item", "price", "order", "created", "2025",
}

// makePayload returns size deterministic bytes: random bytes for binary
// messages, random words for text.
func makePayload(size int, text bool, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	p := make([]byte, 0, size+16)
	if !text {
		for len(p) < size {
			v := r.Uint64()
			for i := 0; i < 8 && len(p) < size; i++ {
				p = append(p, byte(v>>(8*i)))
			}
		}
		return p
	}
	for len(p) < size {
		p = append(p, words[r.IntN(len(words))]...)
		p = append(p, ' ')
	}
	return p[:size]
}

// deflateTail is the end of an empty stored block, which RFC 7692 §7.2.1
// has the sender remove from every compressed message and the receiver put
// back before inflating.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// compress returns p as one permessage-deflate message: flate at level 1,
// flushed, with the trailing 00 00 ff ff removed.
func compress(p []byte) []byte {
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestSpeed)
	fw.Write(p)
	fw.Flush()
	return bytes.TrimSuffix(b.Bytes(), deflateTail)
}

// inflater decompresses permessage-deflate messages into a reused buffer.
type inflater struct {
	src tailReader
	fr  io.ReadCloser
	out []byte
}

func newInflater(size int) *inflater {
	in := &inflater{out: make([]byte, size+1)}
	in.fr = flate.NewReader(&in.src)
	return in
}

// inflate returns the message compressed in p, which must inflate to at
// most len(in.out)-1 bytes; a longer one is cut there, which still fails
// the comparison.
func (in *inflater) inflate(p []byte) ([]byte, error) {
	in.src = tailReader{p: p}
	if err := in.fr.(flate.Resetter).Reset(&in.src, nil); err != nil {
		return nil, err
	}
	n, err := io.ReadFull(in.fr, in.out)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		// The message ends at the sync flush, without a final block, so
		// the decompressor reports running out of input.
		err = nil
	}
	return in.out[:n], err
}

// tailReader reads p followed by deflateTail. It is an io.ByteReader so
// that flate reads it directly instead of wrapping it in a new bufio.Reader
// on every message.
type tailReader struct {
	p   []byte
	off int
}

func (t *tailReader) Read(b []byte) (int, error) {
	total := len(t.p) + len(deflateTail)
	if t.off >= total {
		return 0, io.EOF
	}
	n := 0
	if t.off < len(t.p) {
		n = copy(b, t.p[t.off:])
	}
	n += copy(b[n:], deflateTail[max(t.off+n-len(t.p), 0):])
	t.off += n
	return n, nil
}

func (t *tailReader) ReadByte() (byte, error) {
	switch {
	case t.off < len(t.p):
		t.off++
		return t.p[t.off-1], nil
	case t.off < len(t.p)+len(deflateTail):
		t.off++
		return deflateTail[t.off-1-len(t.p)], nil
	}
	return 0, io.EOF
}
