package deflate

import (
	"encoding/binary"
	"errors"
	"io"
	"slices"
)

// inflater decodes DEFLATE data (RFC 1951) into a 32 KiB window that also
// serves as the history distances refer to, and hands the output out from
// there.
//
// It is push-driven: [inflater.step] is fed compressed bytes in pieces of
// any size, down to one byte, and decodes as far as they allow. Whatever
// it is in the middle of when they run out (a block header, the code
// lengths of a dynamic block, a token, a stored block) is kept: the bytes
// of an unfinished header or token stay staged in f.in and it resumes at
// the start of that header, code length or token, so no rule is checked
// from a different place when the input comes split. Every check is made
// as soon as the bits it reads are there, so invalid data is reported at
// the first byte that proves it. Read is the pull form of the same
// decoder, for a whole stream read from an io.Reader.
//
// It exists because a flate.Reader pays, on every message, costs made for
// long streams: building 512-entry tables for codes of a few dozen
// symbols, and reading input through a byte-at-a-time interface. Here
// tables are sized to the code (zlib's layout), and while at least 8
// bytes of input and 258 bytes of window are left, tokens are decoded
// without further checks, refilling 64 bits at a time (libdeflate's way).
// Near either end it goes one checked token at a time.
type inflater struct {
	in   [4 << 10]byte
	ip   int // in[ip:iend] is staged input not decoded yet
	iend int
	// bits holds nb unconsumed input bits, least significant first. Bits
	// above them may hold the bytes at in[ip:], never anything else.
	bits uint64
	nb   uint

	ended bool  // the caller said the input ends: the trailer is next
	tail  int   // bytes of the trailer staged
	limit int64 // output allowed; 0 for no limit
	total int64 // output produced

	win  [winSize]byte
	wpos int // where the next output byte goes
	rpos int // win[rpos:wpos] is output not handed out yet
	wend int // where output stops for now: winSize, or sooner at the limit
	have int // bytes before wpos a distance may reach, up to winSize

	// wbits is the peer's window in bits, 9 to 15: 15, or the smaller
	// window negotiated for it (RFC 7692 §7.1.2), which it must not
	// exceed even within a message. The distance tables refuse the codes
	// past it (windowDistMeanings).
	wbits int

	state    int
	final    bool // the current block is the last one
	stored   int  // bytes left in a stored block
	copyLen  int  // bytes left of a match that the window's end cut short
	copyDist int
	lit      *decTable
	dist     *decTable
	err      error // sticky: what ended the stream

	// A dynamic block's header as it is read (§3.2.7).
	nlit, ndist, ncl int
	ci               int // code length code lengths read, then lengths read
	prev             int // the previous length, which code 16 repeats
	cl               [numCodegen]uint8
	litCL, distCL    codeLens

	// The pull form's source (Read).
	src       io.Reader
	srcEOF    bool
	srcFailed bool   // Read's error is the source's
	pend      []byte // output handed out by step, not yet read

	dynLit, dynDist, cg decTable
	litEntries          [litEntries]decEntry
	distEntries         [distEntries]decEntry
	cgEntries           [cgEntries]decEntry
	lens                [numLitLen + numDist]uint8
	litSyms             [numLitLen]uint16
	distSyms            [numDist]uint16
	cgSyms              [numCodegen]uint16
	sorted              [numLitLen]uint16
}

const (
	stateHeader   = iota // at a block header
	stateStored          // in a stored block
	stateHuffman         // in a block of Huffman codes
	stateDynCount        // at the counts of a dynamic block's header
	stateDynCL           // reading the code length code's lengths
	stateDynLens         // reading the literal/length and distance lengths
	stateDone            // past the final block
)

// errNeedInput is how the decoder says it ran out of staged input; it
// never leaves the inflater.
var errNeedInput = errors.New("deflate: more input needed")

// errLimit is what step returns once the output limit is passed.
var errLimit = errors.New("flate: output limit exceeded")

// start begins a stream whose distances may reach back into the history
// h1 then h2, at most winSize bytes in all, and whose output may be at
// most limit bytes (0: no limit): step hands out at most limit+1 bytes,
// so that a caller counting them sees the limit passed, then errLimit.
func (f *inflater) start(h1, h2 []byte, limit int64) {
	f.ip, f.iend = 0, 0
	f.bits, f.nb = 0, 0
	f.ended, f.tail = false, 0
	f.limit, f.total = limit, 0
	n := copy(f.win[:], h1)
	n += copy(f.win[n:], h2)
	f.wpos, f.rpos, f.have = n, n, n
	f.wbits = 15
	f.state, f.final, f.stored, f.copyLen = stateHeader, false, 0, 0
	f.lit, f.dist = nil, nil
	f.err = nil
	f.src, f.srcEOF, f.srcFailed, f.pend = nil, false, false, nil
}

// room returns how many bytes the next step takes for sure.
func (f *inflater) room() int { return len(f.in) - (f.iend - f.ip) }

// take stages as much of p as fits and returns how many bytes it took.
func (f *inflater) take(p []byte) int {
	if len(p) == 0 {
		return 0
	}
	if f.ip > 0 && len(f.in)-f.iend < len(p) {
		f.iend = copy(f.in[:], f.in[f.ip:f.iend])
		f.ip = 0
	}
	n := copy(f.in[f.iend:], p)
	f.iend += n
	return n
}

// step feeds the inflater in, the next compressed bytes of the stream,
// end saying that the stream ends after them (it may be said once in with
// no bytes; it stays said), and returns how many of them it took and what
// came of them. It returns exactly one of three things:
//   - out, the next output: valid until the next call, which may take more
//     of in and give more output;
//   - an error: io.EOF after the final block's end once the input has
//     ended, errCorrupt for invalid data, io.ErrUnexpectedEOF when the
//     input ended inside the stream, errLimit past the limit. The same
//     error is returned from then on;
//   - neither, having taken all of in: more input is needed.
//
// Bytes fed after the final block are taken and ignored, as zlib does.
func (f *inflater) step(in []byte, end bool) (n int, out []byte, err error) {
	f.ended = f.ended || end
	for {
		n += f.take(in[n:])
		if f.ended && n == len(in) && f.tail < len(trailer) {
			// RFC 7692 §7.2.2: the tail, then an empty final block so that
			// the stream ends here.
			f.tail += f.take([]byte(trailer[f.tail:]))
		}
		if f.err != nil {
			return n, nil, f.err
		}
		if f.limit > 0 && f.total > f.limit {
			f.err = errLimit
			return n, nil, f.err
		}
		if f.state == stateDone {
			n, f.ip, f.iend, f.nb = len(in), 0, 0, 0
			if !f.ended {
				return n, nil, nil
			}
			f.err = io.EOF
			return n, nil, f.err
		}
		if f.wpos == winSize {
			f.wpos, f.rpos = 0, 0
		}
		f.wend = winSize
		if f.limit > 0 {
			f.wend = int(min(int64(winSize), int64(f.wpos)+f.limit+1-f.total))
		}
		derr := f.decode()
		if f.rpos < f.wpos {
			out = f.win[f.rpos:f.wpos]
			f.rpos = f.wpos
			f.total += int64(len(out))
			if derr != nil && derr != errNeedInput && derr != io.EOF {
				f.err = derr // after this output
			}
			return n, out, nil
		}
		switch derr {
		case nil, io.EOF:
			// The window or the limit is reached with nothing new, or
			// the final block ended: the next turn says which.
		case errNeedInput:
			if n < len(in) || f.ended && f.tail < len(trailer) {
				continue
			}
			if f.ended {
				f.err = io.ErrUnexpectedEOF
				return n, nil, f.err
			}
			return n, nil, nil
		default:
			f.err = derr
			return n, nil, f.err
		}
	}
}

// reset starts a stream read from r, for Read, whose distances may reach
// back into the history h1 then h2, at most winSize bytes in all.
func (f *inflater) reset(r io.Reader, h1, h2 []byte) {
	f.start(h1, h2, 0)
	f.src = r
}

// Read returns output of the stream read from the reader given to reset,
// which it reads into the input buffer, the trailer after it. At the end
// of the stream (the end of its final block) it returns io.EOF; on invalid
// data errCorrupt or io.ErrUnexpectedEOF; and the source's errors as they
// are. Once the stream has ended, the rest of the source is not read.
func (f *inflater) Read(p []byte) (int, error) {
	for {
		if len(f.pend) > 0 {
			n := copy(p, f.pend)
			f.pend = f.pend[n:]
			return n, nil
		}
		_, out, err := f.step(nil, f.srcEOF)
		if len(out) > 0 {
			f.pend = out
			continue
		}
		if err != nil {
			return 0, err
		}
		// More input: read it straight into the buffer.
		if f.ip > 0 {
			f.iend = copy(f.in[:], f.in[f.ip:f.iend])
			f.ip = 0
		}
		n, err := f.src.Read(f.in[f.iend:])
		f.iend += n
		switch {
		case err == io.EOF:
			f.srcEOF = true
		case err != nil:
			f.srcFailed = true
			return 0, err
		}
	}
}

// decode fills the window. It returns nil once the window is full (up to
// f.wend), io.EOF at the end of the final block, errNeedInput when the
// staged input runs out, and otherwise the error that stopped it.
func (f *inflater) decode() error {
	for {
		switch f.state {
		case stateHeader:
			if err := f.header(); err != nil {
				return err
			}
		case stateDynCount, stateDynCL, stateDynLens:
			if err := f.readCodes(); err != nil {
				return err
			}
		case stateStored:
			if err := f.copyStored(); err != nil {
				return err
			}
			if f.stored > 0 {
				return nil // window full
			}
			f.endBlock()
		case stateHuffman:
			if f.copyLen > 0 {
				f.copyPending()
				if f.copyLen > 0 {
					return nil
				}
			}
			end, err := f.huffman()
			if err != nil {
				return err
			}
			if !end {
				return nil
			}
			f.endBlock()
		default:
			return io.EOF
		}
	}
}

// A mark is where the decoder was in its input, to go back to when the
// input runs out in the middle of a header or token.
type mark struct {
	bits uint64
	nb   uint
	ip   int
}

func (f *inflater) mark() mark { return mark{f.bits, f.nb, f.ip} }

// back returns err, going back to m first if err is errNeedInput.
func (f *inflater) back(m mark, err error) error {
	if err == errNeedInput {
		f.bits, f.nb, f.ip = m.bits, m.nb, m.ip
	}
	return err
}

// header reads a block header (§3.2.3), and a stored block's lengths.
func (f *inflater) header() error {
	m := f.mark()
	if err := f.need(3); err != nil {
		return err
	}
	final := f.bits&1 == 1
	typ := f.bits >> 1 & 3
	f.consume(3)
	switch typ {
	case 0: // §3.2.4: aligned LEN and NLEN, then LEN bytes
		f.consume(f.nb & 7)
		if err := f.need(32); err != nil {
			return f.back(m, err)
		}
		n, nn := uint16(f.bits), uint16(f.bits>>16)
		f.consume(32)
		if nn != ^n {
			return errCorrupt
		}
		f.stored = int(n)
		f.state = stateStored
	case 1:
		f.lit, f.dist = &fixedLitTable, &fixedDistTables[f.wbits]
		f.state = stateHuffman
	case 2:
		f.state = stateDynCount
	default:
		return errCorrupt
	}
	f.final = final
	return nil
}

func (f *inflater) endBlock() {
	if f.final {
		f.state = stateDone
	} else {
		f.state = stateHeader
	}
}

func (f *inflater) consume(n uint) {
	f.bits >>= n
	f.nb -= n
}

// need makes sure n <= 56 bits are in f.bits.
func (f *inflater) need(n uint) error {
	if f.nb >= n {
		return nil
	}
	if f.iend-f.ip >= 8 {
		f.refill()
		return nil
	}
	for f.nb < n {
		if err := f.moreByte(); err != nil {
			return err
		}
	}
	return nil
}

// refill adds whole bytes to f.bits until at least 56 are there. It needs
// 8 bytes of input.
func (f *inflater) refill() {
	f.bits |= binary.LittleEndian.Uint64(f.in[f.ip:]) << f.nb
	f.ip += int((63 - f.nb) >> 3)
	f.nb |= 56
}

// moreByte adds one byte of input to f.bits.
func (f *inflater) moreByte() error {
	if f.ip == f.iend {
		return errNeedInput
	}
	f.bits |= uint64(f.in[f.ip]) << f.nb
	f.ip++
	f.nb += 8
	return nil
}

// entry decodes one code with t, reading staged input as needed, and
// returns its entry, the code consumed but not its extra bits. Bits no
// code starts with are invalid as soon as they are there.
func (f *inflater) entry(t *decTable) (decEntry, error) {
	for {
		if f.nb < maxLitBits && f.iend-f.ip >= 8 {
			f.refill()
		}
		e := t.entries[f.bits&t.mask]
		if e&entryLink != 0 {
			e = t.entries[uint(e>>16&0x7fff)+uint(f.bits>>t.root)&(1<<(e&15)-1)]
		}
		if n := uint(e & 15); n <= f.nb {
			if e&invalidBit != 0 {
				return 0, errCorrupt
			}
			f.consume(n)
			return e, nil
		}
		if err := f.moreByte(); err != nil {
			return 0, err
		}
	}
}

// extra reads the n <= 13 extra bits after a code.
func (f *inflater) extra(n uint) (int, error) {
	if err := f.need(n); err != nil {
		return 0, err
	}
	v := int(f.bits & (1<<n - 1))
	f.consume(n)
	return v, nil
}

// readCodes reads the header of a dynamic block (§3.2.7), from where it
// stopped when the input ran out, and builds its tables.
func (f *inflater) readCodes() error {
	if f.state == stateDynCount {
		if err := f.need(14); err != nil {
			return err
		}
		f.nlit = int(f.bits&31) + 257
		f.ndist = int(f.bits>>5&31) + 1
		f.ncl = int(f.bits>>10&15) + 4
		f.consume(14)
		if f.nlit > numLitLen || f.ndist > numDist {
			return errCorrupt
		}
		f.cl = [numCodegen]uint8{}
		f.ci = 0
		f.state = stateDynCL
	}
	if f.state == stateDynCL {
		for ; f.ci < f.ncl; f.ci++ {
			if err := f.need(3); err != nil {
				return err
			}
			f.cl[codegenOrder[f.ci]] = uint8(f.bits & 7)
			f.consume(3)
		}
		cgCode := codeOf(f.cl[:], f.cgSyms[:])
		if !f.cg.build(&cgCode, codegenMeanings[:], cgRootBits, f.cgEntries[:], f.sorted[:]) {
			return errCorrupt
		}
		// The lengths, run-length coded: the two codes are described as
		// they are read, and only the lengths of the symbols they use are
		// written.
		lens := f.lens[:f.nlit+f.ndist]
		f.litCL = codeLens{lens: lens[:f.nlit], syms: f.litSyms[:0]}
		f.distCL = codeLens{lens: lens[f.nlit:], syms: f.distSyms[:0]}
		f.ci, f.prev = 0, -1
		f.state = stateDynLens
	}
	// The loop works on locals, which it saves when the input runs out,
	// with the bits of the length it was reading given back.
	lens := f.lens[:f.nlit+f.ndist]
	nlit := f.nlit
	lit, dist := f.litCL, f.distCL
	i, prev := f.ci, f.prev
	cg := &f.cg
	for i < len(lens) {
		// A code and its extra bits take at most 14 bits; while 8 bytes of
		// input are left, take them without checking for each.
		m := f.mark()
		var s int
		var err error
		if f.nb >= 2*maxCodeBits || f.iend-f.ip >= 8 {
			if f.nb < 2*maxCodeBits {
				f.refill()
			}
			e := cg.entries[f.bits&cg.mask] // no subtables: root bits are 7
			if e&invalidBit != 0 {
				return errCorrupt
			}
			f.consume(uint(e & 15))
			s = int(e >> 16)
		} else {
			var e decEntry
			if e, err = f.entry(cg); err != nil {
				f.ci, f.prev, f.litCL, f.distCL = i, prev, lit, dist
				return f.back(m, err)
			}
			s = int(e >> 16)
		}
		v, rep := s, 1
		x := 0
		switch s {
		case 16: // the previous length 3-6 times
			if prev < 0 {
				return errCorrupt
			}
			x, err = f.extra(2)
			v, rep = prev, 3+x
		case 17: // 3-10 zeros
			x, err = f.extra(3)
			v, rep = 0, 3+x
		case 18: // 11-138 zeros
			x, err = f.extra(7)
			v, rep = 0, 11+x
		}
		if err != nil {
			f.ci, f.prev, f.litCL, f.distCL = i, prev, lit, dist
			return f.back(m, err)
		}
		if i+rep > len(lens) {
			return errCorrupt
		}
		prev = v
		if v == 0 {
			i += rep
			continue
		}
		for range rep {
			lens[i] = uint8(v)
			if i < nlit {
				lit.syms = append(lit.syms, uint16(i))
				lit.count[v]++
			} else {
				dist.syms = append(dist.syms, uint16(i-nlit))
				dist.count[v]++
			}
			i++
		}
	}
	// No end of block: the block could never end.
	if !slices.Contains(lit.syms, 256) {
		return errCorrupt
	}
	if !f.dynLit.build(&lit, litMeanings[:], litRootBits, f.litEntries[:], f.sorted[:]) ||
		!f.dynDist.build(&dist, windowDistMeanings[f.wbits][:], distRootBits, f.distEntries[:], f.sorted[:]) {
		return errCorrupt
	}
	f.lit, f.dist = &f.dynLit, &f.dynDist
	f.state = stateHuffman
	return nil
}

// copyStored copies the stored block into the window, until its end, the
// window's or the input's.
func (f *inflater) copyStored() error {
	for f.stored > 0 && f.wpos < f.wend {
		if f.nb >= 8 { // bytes already in f.bits (aligned)
			f.win[f.wpos] = byte(f.bits)
			f.consume(8)
			f.wpos++
			f.stored--
			f.have = min(f.have+1, winSize)
			continue
		}
		// f.bits is empty; drop what it may hold of the input it skips.
		f.bits = 0
		if f.ip == f.iend {
			return errNeedInput
		}
		n := min(f.stored, f.wend-f.wpos, f.iend-f.ip)
		copy(f.win[f.wpos:], f.in[f.ip:f.ip+n])
		f.ip += n
		f.wpos += n
		f.stored -= n
		f.have = min(f.have+n, winSize)
	}
	return nil
}

// copyPending continues a match the window's end cut short.
func (f *inflater) copyPending() {
	n := min(f.copyLen, f.wend-f.wpos)
	f.copyMatch(f.wpos, n, f.copyDist)
	f.wpos += n
	f.have = min(f.have+n, winSize)
	f.copyLen -= n
}

// copyMatch writes n bytes at w, copied from dist bytes back in the ring.
// w+n must not pass the window's end.
func (f *inflater) copyMatch(w, n, dist int) {
	win := f.win[:]
	src := w - dist
	if src < 0 {
		// The start is in the previous pass over the window, at its end.
		src += winSize
		k := copy(win[w:w+min(n, winSize-src)], win[src:])
		w, n, src = w+k, n-k, 0
	}
	if w-src >= n {
		copy(win[w:w+n], win[src:src+n])
		return
	}
	// It overlaps what it writes: a pattern of w-src bytes repeating.
	// Copy it once, then double the copy.
	end := w + n
	k := copy(win[w:end], win[src:w])
	for w+k < end {
		k += copy(win[w+k:end], win[w:w+k])
	}
}

// huffman decodes the current block until its end, returning true, or
// until the window is full. A token the input ends in is read again from
// its start when more comes.
func (f *inflater) huffman() (bool, error) {
	for {
		if f.iend-f.ip >= 8 && f.wpos <= f.wend-fastRoom {
			end, err := f.huffmanFast()
			if end || err != nil {
				return end, err
			}
			continue
		}
		if f.wpos == f.wend {
			return false, nil
		}
		m := f.mark()
		e, err := f.entry(f.lit)
		if err != nil {
			return false, f.back(m, err)
		}
		if e < entryLiteralEnd { // a literal
			f.win[f.wpos] = byte(e >> 16)
			f.wpos++
			f.have = min(f.have+1, winSize)
			continue
		}
		if e&entryEnd != 0 {
			return true, nil
		}
		x, err := f.extra(uint(e >> 4 & 15))
		if err != nil {
			return false, f.back(m, err)
		}
		length := int(e>>16&0xfff) + x
		if e, err = f.entry(f.dist); err != nil {
			return false, f.back(m, err)
		}
		if x, err = f.extra(uint(e >> 4 & 15)); err != nil {
			return false, f.back(m, err)
		}
		dist := int(e>>16&0x7fff) + x
		if dist > f.have {
			return false, errCorrupt
		}
		f.copyLen, f.copyDist = length, dist
		f.copyPending()
		if f.copyLen > 0 {
			return false, nil
		}
	}
}

// fastRoom is the window huffmanFast needs: a longest match and the 7
// bytes its last 8-byte group may spill, or three literals.
const fastRoom = maxMatch + 7

// huffmanFast decodes tokens while at least 8 bytes of input and fastRoom
// bytes of window are left, so that neither needs checking within a token:
// 48 bits hold a longest one.
func (f *inflater) huffmanFast() (end bool, err error) {
	bits, nb, ip := f.bits, f.nb, f.ip
	in := f.in[:f.iend]
	w := f.wpos
	reach := f.have - w // a distance is valid up to w + reach
	// The tables' fields in locals: the loop's stores to the window
	// would otherwise make the compiler load them again for every code.
	lent, lmask, lroot := f.lit.entries, f.lit.mask, f.lit.root
	dent, dmask, droot := f.dist.entries, f.dist.mask, f.dist.root
	win := &f.win
	// Shift counts are masked to 6 bits, which they fit, so that the
	// compiler need not make shifts past 63 give zero.
	// The bound on w in constant terms lets the compiler drop the
	// window's bounds checks; f.wend may stop it sooner, at the limit.
	wend := f.wend
	for ip+8 <= len(in) && w <= winSize-fastRoom && w <= wend-fastRoom {
		if nb < 48 {
			bits |= binary.LittleEndian.Uint64(in[ip:]) << (nb & 63)
			ip += int((63 - nb) >> 3)
			nb |= 56
		}
		e := lent[bits&lmask]
		if e&entryLink != 0 {
			e = lent[uint(e>>16&0x7fff)+uint(bits>>(lroot&63))&(1<<(e&15)-1)]
		}
		n := uint(e & 15)
		bits >>= n & 63
		nb -= n
		if e < entryLiteralEnd { // a literal
			win[w] = byte(e >> 16)
			w++
			// Literals come in runs: up to two more from the bits left
			// (48 - 15 > 2*15), found in the root table.
			if e = lent[bits&lmask]; e < entryLiteralEnd {
				n = uint(e & 15)
				bits >>= n & 63
				nb -= n
				win[w] = byte(e >> 16)
				w++
				if e = lent[bits&lmask]; e < entryLiteralEnd {
					n = uint(e & 15)
					bits >>= n & 63
					nb -= n
					win[w] = byte(e >> 16)
					w++
				}
			}
			continue
		}
		if e&entryLength == 0 {
			if e&entryEnd != 0 {
				end = true
			} else {
				err = errCorrupt // 286, 287, or bits no code has
			}
			break
		}
		n = uint(e >> 4 & 15)
		length := int(e>>16&0xfff) + int(bits&(1<<(n&63)-1))
		bits >>= n & 63
		nb -= n

		e = dent[bits&dmask]
		if e&entryLink != 0 {
			e = dent[uint(e>>16&0x7fff)+uint(bits>>(droot&63))&(1<<(e&15)-1)]
		}
		if e&invalidBit != 0 { // 30, 31, or bits no code has
			err = errCorrupt
			break
		}
		n = uint(e & 15)
		bits >>= n & 63
		nb -= n
		n = uint(e >> 4 & 15)
		dist := int(e>>16&0x7fff) + int(bits&(1<<(n&63)-1))
		bits >>= n & 63
		nb -= n
		if dist > w+reach {
			err = errCorrupt
			break
		}
		if src := w - dist; src >= 0 && dist >= 8 {
			// Eight bytes at a time, each group read before it is
			// written. When nothing after w is history (the window has
			// not wrapped), the last group may spill past the match:
			// what it spills is overwritten later.
			if reach == 0 {
				for i := 0; i < length; i += 8 {
					binary.LittleEndian.PutUint64(win[w+i:], binary.LittleEndian.Uint64(win[src+i:]))
				}
			} else if length >= 8 {
				i := 0
				for ; i+8 <= length; i += 8 {
					binary.LittleEndian.PutUint64(win[w+i:], binary.LittleEndian.Uint64(win[src+i:]))
				}
				if i < length {
					i = length - 8
					binary.LittleEndian.PutUint64(win[w+i:], binary.LittleEndian.Uint64(win[src+i:]))
				}
			} else {
				for i := range length {
					win[w+i] = win[src+i]
				}
			}
		} else {
			f.copyMatch(w, length, dist)
		}
		w += length
	}
	f.bits, f.nb, f.ip = bits, nb, ip
	f.have = min(f.have+w-f.wpos, winSize)
	f.wpos = w
	return end, err
}
