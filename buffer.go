package duplex

import (
	"io"
	"sync"
	"syscall"
)

// Buffers come from pools and are held only while a frame is being read or
// written, so an idle connection holds none. Between messages a Conn waits
// for the next bytes in a small array of its own.
const (
	readBufSize  = 4 << 10
	writeBufSize = 16 << 10
	smallBufSize = 32
	// directRead: payload reads at least this long bypass the buffer and go
	// straight into the caller's slice.
	directRead = 1 << 10
)

var (
	readPool  = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}
	writePool = sync.Pool{New: func() any { b := make([]byte, writeBufSize); return &b }}
)

// getWriteBuf returns a write buffer of writeBufSize bytes from the pool.
func getWriteBuf() *[]byte { return writePool.Get().(*[]byte) }

// putWriteBuf returns bp to the pool at its full length, however its holder
// resliced it: a message Writer fills its buffer by length, and one that
// drew an empty slice would send empty frames for ever.
func putWriteBuf(bp *[]byte) {
	if cap(*bp) < writeBufSize {
		return
	}
	*bp = (*bp)[:writeBufSize]
	writePool.Put(bp)
}

// bufReader is a read buffer that is pooled while busy and shrinks to a
// 32-byte array while idle.
type bufReader struct {
	src    io.Reader
	buf    []byte // unread bytes are buf[r:w]
	r, w   int
	pooled *[]byte // the pool buffer behind buf, or nil
	small  [smallBufSize]byte
	// raw, when the transport is a socket, lets waitIdle park until the
	// socket is readable without a buffer and then read it in one call.
	raw    syscall.RawConn
	readFD func(fd uintptr) bool
	rawN   int
	rawErr error
}

func (b *bufReader) buffered() int { return b.w - b.r }

// preload puts bytes read past the handshake in front of the stream.
func (b *bufReader) preload(p []byte) {
	if len(p) == 0 {
		return
	}
	if len(p) > readBufSize {
		b.buf = p
	} else {
		b.pooled = readPool.Get().(*[]byte)
		b.buf = *b.pooled
		copy(b.buf, p)
	}
	b.r, b.w = 0, len(p)
}

// release returns the pool buffer once everything in it has been read.
func (b *bufReader) release() {
	if b.r != b.w {
		return
	}
	if b.pooled != nil {
		readPool.Put(b.pooled)
		b.pooled = nil
	}
	b.buf, b.r, b.w = nil, 0, 0
}

// waitIdle blocks for the next bytes of the stream while holding no pool
// buffer. The caller has checked that nothing is buffered.
func (b *bufReader) waitIdle() error {
	b.release()
	if b.raw != nil {
		return b.readRaw()
	}
	n, err := b.src.Read(b.small[:])
	b.buf, b.r, b.w = b.small[:], 0, n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// readRaw reads the socket into a pool buffer taken only once bytes are
// there: while the goroutine is parked waiting for them it holds none.
// This costs the same system calls as a plain Read (a read that finds
// nothing, the wait, the read), where reading into the small array first
// would cost one more for every message longer than it.
func (b *bufReader) readRaw() error {
	if b.readFD == nil {
		b.readFD = b.readFromFD // a method value, made once: no allocation per read
	}
	err := b.raw.Read(b.readFD)
	n, rerr := b.rawN, b.rawErr
	switch {
	case err == nil && rerr == nil && n > 0:
		b.buf, b.r, b.w = *b.pooled, 0, n
		return nil
	case err == nil && rerr != nil:
		err = rerr
	case err == nil:
		err = io.EOF
	}
	if b.pooled != nil {
		readPool.Put(b.pooled)
		b.pooled = nil
	}
	b.buf, b.r, b.w = nil, 0, 0
	return err
}

// fill makes at least min bytes (min <= readBufSize) available.
func (b *bufReader) fill(min int) error {
	if b.w-b.r >= min {
		return nil
	}
	if b.pooled == nil {
		p := readPool.Get().(*[]byte)
		n := copy(*p, b.buf[b.r:b.w])
		b.pooled, b.buf, b.r, b.w = p, *p, 0, n
	} else if len(b.buf)-b.r < min {
		n := copy(b.buf, b.buf[b.r:b.w])
		b.r, b.w = 0, n
	}
	for b.w-b.r < min {
		n, err := b.src.Read(b.buf[b.w:])
		b.w += n
		if err != nil {
			if b.w-b.r >= min {
				return nil
			}
			return err
		}
	}
	return nil
}

// peek returns the next n bytes; fill(n) must have succeeded.
func (b *bufReader) peek(n int) []byte { return b.buf[b.r : b.r+n] }

func (b *bufReader) discard(n int) { b.r += n }

// read reads up to len(p) bytes, from the buffer first, then straight from
// the stream for long reads.
func (b *bufReader) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if len(p) >= directRead {
			return b.src.Read(p)
		}
		if err := b.fill(1); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}
