package deflate

import (
	"encoding/binary"
	"io"
	"slices"
)

// inflater decodes DEFLATE data (RFC 1951) from src into a 32 KiB window
// that also serves as the history distances refer to, and hands the
// output out from there, so that output is produced only as it is read.
//
// It exists because a flate.Reader pays, on every message, costs made for
// long streams: building 512-entry tables for codes of a few dozen
// symbols, and reading input through a byte-at-a-time interface. Here
// tables are sized to the code (zlib's layout), and while at least 8
// bytes of input and 258 bytes of window are left, tokens are decoded
// without further checks, refilling 64 bits at a time (libdeflate's way).
// Near either end it goes one checked token at a time.
type inflater struct {
	src  source
	in   [4 << 10]byte
	ip   int // in[ip:iend] is unread input
	iend int
	// bits holds nb unconsumed input bits, least significant first. Bits
	// above them may hold the bytes at in[ip:], never anything else.
	bits uint64
	nb   uint

	win  [winSize]byte
	wpos int // where the next output byte goes
	rpos int // win[rpos:wpos] is output not read yet
	have int // bytes before wpos a distance may reach, up to winSize

	state    int
	final    bool // the current block is the last one
	stored   int  // bytes left in a stored block
	copyLen  int  // bytes left of a match that the window's end cut short
	copyDist int
	lit      *decTable
	dist     *decTable
	err      error

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
	stateHeader  = iota // at a block header
	stateStored         // in a stored block
	stateHuffman        // in a block of Huffman codes
	stateDone           // past the final block
)

// reset starts a stream read from r whose distances may reach back into
// the history h1 then h2, at most winSize bytes in all.
func (f *inflater) reset(r io.Reader, h1, h2 []byte) {
	f.src = source{r: r}
	f.ip, f.iend = 0, 0
	f.bits, f.nb = 0, 0
	n := copy(f.win[:], h1)
	n += copy(f.win[n:], h2)
	f.wpos, f.rpos, f.have = n, n, n
	f.state, f.final, f.stored, f.copyLen = stateHeader, false, 0, 0
	f.lit, f.dist = nil, nil
	f.err = nil
}

// Read returns output. At the end of the stream (the end of its final
// block) it returns io.EOF; on invalid data errCorrupt or
// io.ErrUnexpectedEOF, and the source's errors as they are.
func (f *inflater) Read(p []byte) (int, error) {
	for {
		if f.rpos < f.wpos {
			n := copy(p, f.win[f.rpos:f.wpos])
			f.rpos += n
			return n, nil
		}
		if f.err != nil {
			return 0, f.err
		}
		if f.wpos == winSize {
			f.wpos, f.rpos = 0, 0
		}
		f.err = f.decode()
	}
}

// decode fills the window. It returns nil once the window is full, and
// otherwise the error that stopped it, io.EOF at the end.
func (f *inflater) decode() error {
	for {
		switch f.state {
		case stateHeader:
			if err := f.need(3); err != nil {
				return err
			}
			f.final = f.bits&1 == 1
			typ := f.bits >> 1 & 3
			f.consume(3)
			switch typ {
			case 0: // §3.2.4: aligned LEN and NLEN, then LEN bytes
				f.consume(f.nb & 7)
				if err := f.need(32); err != nil {
					return err
				}
				n, nn := uint16(f.bits), uint16(f.bits>>16)
				f.consume(32)
				if nn != ^n {
					return errCorrupt
				}
				f.stored = int(n)
				f.state = stateStored
			case 1:
				f.lit, f.dist = &fixedLitTable, &fixedDistTable
				f.state = stateHuffman
			case 2:
				if err := f.readCodes(); err != nil {
					return err
				}
				f.lit, f.dist = &f.dynLit, &f.dynDist
				f.state = stateHuffman
			default:
				return errCorrupt
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

// moreByte adds one byte of input to f.bits, reading more if needed.
func (f *inflater) moreByte() error {
	if f.ip == f.iend {
		if err := f.fill(); err != nil {
			return err
		}
	}
	f.bits |= uint64(f.in[f.ip]) << f.nb
	f.ip++
	f.nb += 8
	return nil
}

// fill reads more input, keeping what is left unread; at the end of the
// source it returns io.ErrUnexpectedEOF: the stream should have ended.
func (f *inflater) fill() error {
	n := copy(f.in[:], f.in[f.ip:f.iend])
	f.ip, f.iend = 0, n
	for {
		n, err := f.src.Read(f.in[f.iend:])
		f.iend += n
		if n > 0 {
			return nil
		}
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
	}
}

// entry decodes one code with t, reading input as needed, and returns
// its entry, the code consumed but not its extra bits.
func (f *inflater) entry(t *decTable) (decEntry, error) {
	for {
		if f.nb < maxLitBits && f.iend-f.ip >= 8 {
			f.refill()
		}
		e := t.entries[f.bits&t.mask]
		if e&entryLink != 0 {
			e = t.entries[uint(e>>16&0x7fff)+uint(f.bits>>t.root)&(1<<(e&15)-1)]
		}
		if n := uint(e & 15); e&invalidBit == 0 && n <= f.nb {
			f.consume(n)
			return e, nil
		}
		if f.nb >= maxLitBits {
			// Every code is at most 15 bits, and these are all there.
			return 0, errCorrupt
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

// readCodes reads the code lengths of a dynamic block (§3.2.7) and builds
// its tables.
func (f *inflater) readCodes() error {
	if err := f.need(14); err != nil {
		return err
	}
	nlit := int(f.bits&31) + 257
	ndist := int(f.bits>>5&31) + 1
	ncl := int(f.bits>>10&15) + 4
	f.consume(14)
	if nlit > numLitLen || ndist > numDist {
		return errCorrupt
	}
	var cl [numCodegen]uint8
	for _, s := range codegenOrder[:ncl] {
		if err := f.need(3); err != nil {
			return err
		}
		cl[s] = uint8(f.bits & 7)
		f.consume(3)
	}
	cgCode := codeOf(cl[:], f.cgSyms[:])
	if !f.cg.build(&cgCode, codegenMeanings[:], cgRootBits, f.cgEntries[:], f.sorted[:]) {
		return errCorrupt
	}
	// The lengths, run-length coded: the two codes are described as they
	// are read, and only the lengths of the symbols they use are written.
	lens := f.lens[:nlit+ndist]
	lit := codeLens{lens: lens[:nlit], syms: f.litSyms[:0]}
	dist := codeLens{lens: lens[nlit:], syms: f.distSyms[:0]}
	prev := -1 // the previous length, which code 16 repeats
	cg := &f.cg
	for i := 0; i < len(lens); {
		// A code and its extra bits take at most 14 bits; while 8 bytes of
		// input are left, take them without checking for each.
		var s int
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
			e, err := f.entry(cg)
			if err != nil {
				return err
			}
			s = int(e >> 16)
		}
		v, rep := s, 1
		switch s {
		case 16: // the previous length 3-6 times
			if prev < 0 {
				return errCorrupt
			}
			x, err := f.extra(2)
			if err != nil {
				return err
			}
			v, rep = prev, 3+x
		case 17: // 3-10 zeros
			x, err := f.extra(3)
			if err != nil {
				return err
			}
			v, rep = 0, 3+x
		case 18: // 11-138 zeros
			x, err := f.extra(7)
			if err != nil {
				return err
			}
			v, rep = 0, 11+x
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
		!f.dynDist.build(&dist, distMeanings[:], distRootBits, f.distEntries[:], f.sorted[:]) {
		return errCorrupt
	}
	return nil
}

// copyStored copies the stored block into the window, until its end or
// the window's.
func (f *inflater) copyStored() error {
	for f.stored > 0 && f.wpos < winSize {
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
			if err := f.fill(); err != nil {
				return err
			}
		}
		n := min(f.stored, winSize-f.wpos, f.iend-f.ip)
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
	n := min(f.copyLen, winSize-f.wpos)
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
// until the window is full.
func (f *inflater) huffman() (bool, error) {
	for {
		if f.iend-f.ip >= 8 && f.wpos <= winSize-fastRoom {
			end, err := f.huffmanFast()
			if end || err != nil {
				return end, err
			}
			continue
		}
		if f.wpos == winSize {
			return false, nil
		}
		e, err := f.entry(f.lit)
		if err != nil {
			return false, err
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
			return false, err
		}
		length := int(e>>16&0xfff) + x
		if e, err = f.entry(f.dist); err != nil {
			return false, err
		}
		if x, err = f.extra(uint(e >> 4 & 15)); err != nil {
			return false, err
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
	for ip+8 <= len(in) && w <= winSize-fastRoom {
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
