package deflate

import "math/bits"

// stream is what a level 1 Compressor with context takeover keeps between
// messages: the end of the plaintext sent so far, which the peer's inflater
// holds in its window (RFC 7692 §7.1.1), and the match index over it.
//
// The index carries on from one message to the next, as compress/flate's
// does within a stream, so a message finds the history's matches without
// the history being indexed again. It also keeps the positions a single
// pass over the whole stream would: where earlier searches and matches
// started rather than every position, so a message that repeats an earlier
// one finds it as one long match instead of many short ones to the
// nearest similar bytes.
type stream struct {
	// buf holds the last bytes sent, oldest first: the last reach of them
	// or more. A message of at most maxJoin bytes is appended to it and
	// compressed in place; when there is no room, the last reach of it
	// moves to the front. It grows as bytes arrive, doubling, to
	// reach+slack, or as much more as the largest message needs, up to
	// reach+maxJoin.
	buf   []byte
	base  uint32   // the stream position of buf[0]
	table []uint16 // see encoder.match; nil before the first message
	// reach is how far back a reference goes: the negotiated window
	// (RFC 7692 §7.1.2), but at most maxReach.
	reach int
}

const (
	// streamHashBits sizes a stream's index: 2^12 entries of 2 bytes, or
	// fewer for a smaller window (see tableBits).
	streamHashBits = 12
	// maxReach bounds how far back a stream's references go, and so the
	// history it keeps. Looking back further costs memory and finds no
	// more: the index keeps one position per hash, the latest, and a match
	// far back costs more bits than a near one. On two streams of 1 KiB
	// JSON messages, 8 KiB gave 0.6% and 1.3% less output than the whole
	// 32 KiB window, and 0.3% more on the package's test messages, with a
	// quarter of the history (bench/results/2026-12-03-deflate.md).
	maxReach = 8 << 10
	// maxJoin bounds the messages appended to the history and compressed
	// there. A longer one is compressed in place, referring only within
	// itself, as if on its own, which costs ratio on its first bytes
	// only; its end then becomes the history. Compressing its first bytes
	// joined to the history and the rest in a second pass did worse: the
	// second pass starts where the first left the index, with candidates
	// as far back as the first pass's matches started.
	maxJoin = 8 << 10
	// slack is the room kept after the history for messages: the history
	// moves to the front of buf once per slack bytes sent, copying reach
	// bytes, 2 bytes a byte sent with these sizes.
	slack = 4 << 10
)

// compress appends to dst the DEFLATE blocks for p, which may refer to
// what was sent before within reach, followed by the start of an empty
// stored block (see encoder.end). p must not be empty.
func (st *stream) compress(e *encoder, dst, p []byte) []byte {
	if st.table == nil {
		st.table = make([]uint16, 1<<st.tableBits())
	}
	if len(p) > maxJoin {
		// On its own, with the pooled index: no reference reaches the
		// history.
		st.keep(p, st.base+uint32(len(st.buf)))
		return e.compress(dst, p, st.reach)
	}
	e.begin(dst)
	e.tab, e.shift, e.inside = st.table, uint8(32-st.tableBits()), true
	st.makeRoom(len(p))
	start := len(st.buf)
	st.buf = append(st.buf, p...)
	e.base = st.base
	e.run(st.buf, start, st.reach)
	return e.end()
}

// makeRoom makes room in buf for n more bytes, n <= maxJoin, dropping what
// is out of reach and growing buf (see buf).
func (st *stream) makeRoom(n int) {
	if len(st.buf)+n <= cap(st.buf) {
		return
	}
	keep := min(len(st.buf), st.reach)
	old := st.buf[len(st.buf)-keep:]
	st.base += uint32(len(st.buf) - keep)
	if keep+n > cap(st.buf) {
		b := make([]byte, keep, max(keep+n, min(max(2*cap(st.buf), 1<<10), st.reach+slack)))
		copy(b, old)
		st.buf = b
		return
	}
	st.buf = st.buf[:copy(st.buf, old)]
}

// keep makes the end of p, which starts at stream position pos, the
// history.
func (st *stream) keep(p []byte, pos uint32) {
	n := min(len(p), st.reach)
	if cap(st.buf) < n {
		st.buf = make([]byte, 0, st.reach+slack)
	}
	st.buf = append(st.buf[:0], p[len(p)-n:]...)
	st.base = pos + uint32(len(p)-n)
}

// size returns the bytes the stream keeps between messages.
func (st *stream) size() int { return cap(st.buf) + 2*cap(st.table) }

// tableBits returns the size of the index in bits: streamHashBits, or for
// a window smaller than 2^streamHashBits one entry per position it
// reaches, at least 2^9. A larger index would mostly remember positions
// out of reach, and it is most of what a connection with a small window
// keeps (README, "Compression at scale").
func (st *stream) tableBits() int {
	return min(streamHashBits, max(bits.Len(uint(st.reach))-1, 9))
}
