package deflate

// window keeps the last max bytes written to it: the plaintext history that
// context takeover carries from one message to the next. Its buffer grows
// only as bytes arrive, up to max, so an unused window costs nothing.
type window struct {
	// buf holds the bytes in order while len(buf) < max. Once full it is a
	// ring whose oldest byte is buf[pos].
	buf []byte
	pos int
	max int
}

func (w *window) write(p []byte) {
	if len(p) >= w.max {
		p = p[len(p)-w.max:]
		w.grow(w.max)
		w.buf = append(w.buf[:0], p...)
		w.pos = 0
		return
	}
	if n := min(w.max-len(w.buf), len(p)); n > 0 {
		w.grow(len(w.buf) + n)
		w.buf = append(w.buf, p[:n]...)
		p = p[n:]
	}
	for len(p) > 0 {
		n := copy(w.buf[w.pos:], p)
		p = p[n:]
		w.pos += n
		if w.pos == len(w.buf) {
			w.pos = 0
		}
	}
}

// grow makes room for n bytes, doubling but never past max.
func (w *window) grow(n int) {
	if n <= cap(w.buf) {
		return
	}
	c := min(max(n, 2*cap(w.buf), 512), w.max)
	b := make([]byte, len(w.buf), c)
	copy(b, w.buf)
	w.buf = b
}

// parts returns the history oldest first, in two pieces when the ring has
// wrapped.
func (w *window) parts() (a, b []byte) {
	return w.buf[w.pos:], w.buf[:w.pos]
}

// len returns the number of bytes kept.
func (w *window) len() int { return len(w.buf) }
