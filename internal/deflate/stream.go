package deflate

// stream is what a level 1 Compressor with context takeover keeps between
// messages: the end of the plaintext sent so far, which the peer's inflater
// holds in its window (RFC 7692 §7.1.1), and the match index over it. The
// index carries on from one message to the next as compress/flate's does
// within a stream, so a message finds the history's matches without the
// history being indexed again, and the positions the index keeps are those
// a single pass over the whole stream would: the starts of earlier matches
// rather than every position, which is what finds a long match where a
// message repeats an earlier one.
type stream struct {
	// buf holds the last bytes sent, oldest first: at least the window's
	// worth once that many were sent. A message is appended to it and
	// compressed in place, maxJoin bytes at a time; when there is no room,
	// the last window of it moves to the front. It grows as bytes arrive,
	// to at most window+maxJoin.
	buf   []byte
	base  uint32   // the stream position of buf[0]
	table []uint16 // see encoder.match; nil before the first message
	// window is how far back a reference may reach: 1<<windowBits, as
	// negotiated (RFC 7692 §7.1.2).
	window int
}

const (
	// streamHashBits sizes a stream's index: 2^13 entries of 2 bytes.
	streamHashBits = 13
	// maxJoin is the most bytes of a message compressed in one pass: a
	// longer message is appended to the history and compressed in pieces
	// of that size, each a block or more, so that the buffer never holds
	// more than the window and one piece.
	maxJoin = 8 << 10
)

// compress appends to dst the DEFLATE blocks for p, which may refer to
// everything sent before within the window, followed by the start of an
// empty stored block (see encoder.end). p must not be empty.
func (st *stream) compress(e *encoder, dst, p []byte) []byte {
	if st.table == nil {
		st.table = make([]uint16, 1<<streamHashBits)
	}
	e.begin(dst)
	for len(p) > 0 {
		n := min(len(p), maxJoin)
		st.makeRoom(n)
		start := len(st.buf)
		st.buf = append(st.buf, p[:n]...)
		e.tab, e.base, e.shift = st.table, st.base, 32-streamHashBits
		e.run(st.buf, start, st.window)
		p = p[n:]
	}
	return e.end()
}

// makeRoom makes room in buf for n more bytes, n <= maxJoin, dropping what
// is older than the window and growing buf, doubling, up to window+maxJoin.
func (st *stream) makeRoom(n int) {
	if len(st.buf)+n <= cap(st.buf) {
		return
	}
	keep := min(len(st.buf), st.window)
	old := st.buf[len(st.buf)-keep:]
	st.base += uint32(len(st.buf) - keep)
	if keep+n > cap(st.buf) {
		b := make([]byte, keep, min(max(keep+n, 2*cap(st.buf), 1<<10), st.window+maxJoin))
		copy(b, old)
		st.buf = b
		return
	}
	st.buf = st.buf[:copy(st.buf, old)]
}

// size returns the bytes the stream keeps between messages.
func (st *stream) size() int { return cap(st.buf) + 2*cap(st.table) }
