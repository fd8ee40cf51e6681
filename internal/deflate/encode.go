package deflate

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// encoder is the level 1 compressor: one pass of a single-probe hash
// matcher (the Snappy family, as in compress/flate's level 1), then, for
// each block, the cheapest of a dynamic Huffman, fixed Huffman or stored
// block. It exists because flate writers are built for streams: on a 1 KiB
// message most of their time goes to building Huffman tables with an
// algorithm made for large blocks, and to state that a whole message does
// not need. See BenchmarkCompress.
//
// An encoder holds no stream between messages, so pooled encoders are
// interchangeable and need no reset. With context takeover the match
// index is the connection's (see stream), lent to the encoder for one
// message, and so is the history.
type encoder struct {
	// table is the match index of messages without history: it maps the
	// hash of 4 bytes to the position they were last seen at. A pass uses
	// the first 1<<(32-shift) entries, fewer for small inputs, which then
	// stay in the cache and take fewer misses.
	table [1 << hashBits]uint16
	// next is the position the next pass without history starts at, so
	// that what earlier passes left in table reads as too far back.
	next uint32

	// The pass: tab is the index in use (table, or a stream's), base the
	// position of src[0] and maxDist the window. Positions are kept mod
	// 2^16 (see match), so an index needs no clearing, ever.
	tab     []uint16
	base    uint32
	shift   uint8 // 32 - the pass's hash bits
	maxDist int
	inside  bool // enter positions inside matches (see match)

	src        []byte // history, then the input
	blockStart int    // where in src the block's tokens start
	// toks[:ntok] are the block's tokens.
	toks [maxBlockTokens]lzToken
	ntok int

	litFreq  [numLitLen]uint32
	distFreq [numDist]uint32
	// The codes, in arrays as large as a token's fields can index, so
	// that writeTokens needs no bounds checks. dist[numDist] is no
	// distance: no bits.
	lit      [512]hcode
	dist     [32]hcode
	litLens  [numLitLen]uint8
	distLens [numDist]uint8
	litSyms  [numLitLen]uint16 // symbols in use, in order
	distSyms [numDist]uint16
	cgSyms   [numCodegen]uint16
	// The code lengths of both alphabets, run-length coded (§3.2.7):
	// symbol in the low 5 bits, extra bits' value above.
	cg      [numLitLen + numDist]uint16
	ncg     int // symbols in cg
	cgFreq  [numCodegen]uint32
	cgLens  [numCodegen]uint8
	cgCodes [numCodegen]hcode
	scratch huffScratch

	bw bitWriter
}

const (
	hashBits       = 14
	minMatch       = 4
	maxBlockTokens = 1 << 14
)

// An lzToken is what the block writer needs of a literal or a match, with no
// branch between the two: a literal/length symbol (9 bits), the value of
// its extra bits (5), a distance symbol (5), numDist for a literal, and
// the value of its extra bits (13).
type lzToken uint32

func literalToken(b byte) lzToken { return lzToken(b) | numDist<<14 }

func matchToken(length, dist int) lzToken {
	lc := lengthCode[length-3]
	dc := distCode(uint32(dist - 1))
	return lzToken(257+int(lc)) | lzToken(length-int(lengthBase[lc]))<<9 |
		lzToken(dc)<<14 | lzToken(dist-int(distBase[dc]))<<19
}

// hash4 hashes 4 bytes to 32-shift bits.
func hash4(u uint32, shift uint8) uint {
	return uint((u * 0x1e35a7bd) >> (shift & 31))
}

func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }

// begin starts the output of a message at the end of dst.
func (e *encoder) begin(dst []byte) { e.bw = bitWriter{out: dst} }

// end closes the message's output with the start of an empty stored block,
// what a sync flush writes before its 00 00 ff ff (RFC 7692 §7.2.1), and
// returns it.
func (e *encoder) end() []byte {
	// The empty stored block's header, BFINAL=0 BTYPE=00, padded to a byte.
	e.bw.writeBits(0, 3)
	out := e.bw.flush()
	e.bw.out = nil
	e.src, e.tab = nil, nil // the caller's
	return out
}

// compress appends to dst the DEFLATE blocks for p, with no history and
// back references of at most maxDist, followed by the start of an empty
// stored block (see end). p must not be empty.
func (e *encoder) compress(dst, p []byte, maxDist int) []byte {
	e.begin(dst)
	e.tab = e.table[:]
	e.inside = false
	e.shift = 32 - uint8(min(max(bits.Len(uint(len(p))), 10), hashBits))
	e.base = e.next
	// The next pass starts past this one's positions, so that they read
	// as further back than its start.
	e.next += uint32(len(p))
	e.run(p, 0, maxDist)
	return e.end()
}

// run compresses src[start:] into blocks, src[:start] being history that
// back references of at most maxDist may reach, with e.tab, e.base and
// e.shift set for the pass.
func (e *encoder) run(src []byte, start, maxDist int) {
	e.src = src
	e.maxDist = maxDist
	e.blockStart = start
	e.ntok = 0
	e.match(start)
	e.writeBlock(len(src))
}

// match finds the literals and matches of src[s:] and writes them out in
// blocks of at most maxBlockTokens.
//
// The index holds each position as base+i mod 2^16: a candidate's distance
// is the difference mod 2^16, which is the true distance for positions
// less than 64 KiB back, and for older ones (or an index that another
// stream left behind) names some byte that the load below then compares.
// So a match is always real and within the window, whatever the index
// holds, and a stale entry costs one comparison at most.
func (e *encoder) match(s int) {
	src, shift, tab := e.src, e.shift, e.tab
	// The hash has as many bits as the index has entries; masking it
	// anyway, with an index known not to be empty, spares the bounds
	// checks.
	if len(tab) == 0 {
		e.addLiterals(s, len(src))
		return
	}
	mask := uint(len(tab) - 1)
	pos := uint16(e.base) // the position of src[0], mod 2^16
	maxDist := e.maxDist
	nextEmit := s
	sLimit := len(src) - minMatch // last position a 4-byte load can start at
	if len(src)-s < 16 {
		e.addLiterals(nextEmit, len(src))
		return
	}
	for {
		// Look for a 4-byte match, stepping further the longer nothing is
		// found, so that incompressible data goes fast. After 16 KiB
		// without one, the literals go out and the steps start again at
		// one byte (compress/flate's level 1 restarts at every 64 KiB
		// block), so that compressible data after incompressible data is
		// found: a long step over a short period finds nothing.
		var t int
		for {
			// The inner loop makes no call, so that what it uses stays
			// in registers.
			stop := min(sLimit, nextEmit+16<<10)
			found := false
			for {
				cv := load32(src, s)
				h := hash4(cv, shift) & mask
				p := pos + uint16(s)
				d := int(p - tab[h])
				tab[h] = p
				// 0 < d <= min(s, maxDist): within src and the window.
				if uint(d-1) < uint(min(s, maxDist)) && load32(src, s-d) == cv {
					t, found = s-d, true
					break
				}
				s += 1 + (s-nextEmit)>>5
				if s > stop {
					break
				}
			}
			if found {
				break
			}
			if s > sLimit {
				e.addLiterals(nextEmit, len(src))
				return
			}
			e.addLiterals(nextEmit, s)
			nextEmit = s
		}
		// Extend it backwards over the pending literals, then forwards.
		for t > 0 && s > nextEmit && src[t-1] == src[s-1] {
			t--
			s--
		}
		l := minMatch + matchLen(src, s+minMatch, t+minMatch)
		if n := e.ntok; n+(s-nextEmit) < maxBlockTokens-1 && l <= maxMatch {
			// The usual case, inline: the block has room for the pending
			// literals and a match of one token.
			toks := e.toks[n : n+(s-nextEmit)+1]
			for i, b := range src[nextEmit:s] {
				toks[i] = literalToken(b)
				e.litFreq[b]++
			}
			tk := matchToken(l, s-t)
			toks[len(toks)-1] = tk
			e.litFreq[tk&511]++
			e.distFreq[tk>>14&31]++
			e.ntok = n + len(toks)
		} else {
			e.addLiterals(nextEmit, s)
			e.addMatch(s, l, s-t)
		}
		s += l
		nextEmit = s
		if s > sLimit {
			e.addLiterals(nextEmit, len(src))
			return
		}
		// With a stream (see stream), enter every 8th position of the
		// match, so that later messages find parts of it as well as its
		// start, which the search entered. Not every position: then a
		// message that repeats an earlier one would find the latest of
		// its similar parts, a short match, before the long one. On
		// streams of JSON messages this gives 2-3% less output, and
		// every 4th or 2nd position little more. Without a stream it
		// would give 1%, for 4% more time.
		if e.inside {
			for i := s - l + 1; i < s-minMatch; i += 8 {
				tab[hash4(load32(src, i), shift)&mask] = pos + uint16(i)
			}
		}
		// Enter the position two back, so that a repeat of what just
		// matched is found again.
		tab[hash4(load32(src, s-2), shift)&mask] = pos + uint16(s-2)
	}
}

// matchLen returns how many bytes src[s:] and src[t:] have in common at
// their start; t < s.
func matchLen(src []byte, s, t int) int {
	n := 0
	for s+n+8 <= len(src) {
		x := binary.LittleEndian.Uint64(src[s+n:]) ^ binary.LittleEndian.Uint64(src[t+n:])
		if x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for s+n < len(src) && src[s+n] == src[t+n] {
		n++
	}
	return n
}

// addLiterals adds src[from:to] as literals.
func (e *encoder) addLiterals(from, to int) {
	for from < to {
		n := min(to-from, maxBlockTokens-e.ntok)
		toks := e.toks[e.ntok : e.ntok+n]
		for i, b := range e.src[from : from+n] {
			toks[i] = literalToken(b)
			e.litFreq[b]++
		}
		e.ntok += n
		from += n
		if e.ntok == maxBlockTokens {
			e.writeBlock(from)
		}
	}
}

// addMatch adds a match of length l at distance d for src[pos:pos+l], as
// several when it is longer than 258.
func (e *encoder) addMatch(pos, l, d int) {
	for l > 0 {
		n := min(l, maxMatch)
		if l-n > 0 && l-n < 3 {
			n = l - 3 // leave a valid length for the last piece
		}
		t := matchToken(n, d)
		e.toks[e.ntok] = t
		e.ntok++
		e.litFreq[t&511]++
		e.distFreq[t>>14&31]++
		l -= n
		pos += n
		if e.ntok == maxBlockTokens {
			e.writeBlock(pos)
		}
	}
}

// writeBlock writes the pending tokens, which cover src[e.blockStart:end],
// as one block, of whichever type is smallest.
func (e *encoder) writeBlock(end int) {
	input := e.src[e.blockStart:end]
	e.blockStart = end
	if e.ntok == 0 {
		return
	}
	e.litFreq[256] = 1 // end of block
	// Every tree gets two codes at least, as zlib does: a complete code
	// is valid for every inflater.
	nd := 0
	for _, f := range e.distFreq {
		if f != 0 {
			nd++
		}
	}
	if nd < 2 {
		if e.distFreq[0] == 0 {
			e.distFreq[0] = 1
		} else {
			e.distFreq[1] = 1
		}
		if nd == 0 {
			e.distFreq[1] = 1
		}
	}
	nl := buildLengths(e.litFreq[:], e.litLens[:], e.litSyms[:], maxLitBits, &e.scratch)
	nd = buildLengths(e.distFreq[:], e.distLens[:], e.distSyms[:], maxLitBits, &e.scratch)
	litSyms, distSyms := e.litSyms[:nl], e.distSyms[:nd]
	nlit, ndist := int(litSyms[nl-1])+1, int(distSyms[nd-1])+1
	ncg := e.codegen(nlit, ndist, litSyms, distSyms)

	// Sizes in bits, after the 3-bit block header.
	var extra, dynData, fixedData int
	for _, s := range litSyms {
		f := int(e.litFreq[s])
		dynData += f * int(e.litLens[s])
		fixedData += f * int(fixedLit[s].len())
		if s > 256 {
			extra += f * int(lengthExtra[s-257])
		}
	}
	for _, s := range distSyms {
		f := int(e.distFreq[s])
		extra += f * int(distExtra[s])
		dynData += f * int(e.distLens[s])
		fixedData += f * 5
	}
	dynSize := 5 + 5 + 4 + 3*ncg + dynData + extra
	for _, v := range e.cg[:e.ncg] {
		sym := v & 31
		dynSize += int(e.cgLens[sym]) + int(codegenExtra[sym])
	}
	fixedSize := fixedData + extra
	storedSize := (len(input)+0xffff-1)/0xffff*(5*8+7) + 8*len(input)

	switch {
	case storedSize <= dynSize && storedSize <= fixedSize:
		e.writeStored(input)
	case fixedSize <= dynSize:
		e.bw.writeBits(1<<1, 3) // BFINAL=0, BTYPE=01
		e.writeTokens(&fixedLit, &fixedDist)
	default:
		e.bw.writeBits(2<<1, 3) // BFINAL=0, BTYPE=10
		e.writeDynamicHeader(nlit, ndist, ncg)
		assignCodes(e.litLens[:], litSyms, litExtra[:], e.lit[:])
		assignCodes(e.distLens[:], distSyms, distExtraOrNone[:], e.dist[:])
		e.writeTokens(&e.lit, &e.dist)
	}
	e.ntok = 0
	clear(e.litFreq[:])
	clear(e.distFreq[:])
}

// codegen run-length codes the literal/length and distance code lengths
// into e.cg, builds the code length code and returns how many of its
// lengths the header sends (HCLEN + 4). The lengths form one sequence,
// nlit of the first code then ndist of the second; it walks the used
// symbols of each, litSyms and distSyms, so that the unused ones cost
// nothing but the zero runs between them.
func (e *encoder) codegen(nlit, ndist int, litSyms, distSyms []uint16) int {
	clear(e.cgFreq[:])
	n := 0
	add := func(sym, extra uint16) {
		e.cg[n] = sym | extra<<5
		e.cgFreq[sym]++
		n++
	}
	zeros := func(z int) {
		for z >= 11 {
			r := min(z, 138)
			add(18, uint16(r-11))
			z -= r
		}
		if z >= 3 {
			add(17, uint16(z-3))
			z = 0
		}
		for ; z > 0; z-- {
			add(0, 0)
		}
	}
	repeat := func(v uint8, run int) {
		add(uint16(v), 0)
		run--
		for run >= 3 {
			r := min(run, 6)
			add(16, uint16(r-3))
			run -= r
		}
		for ; run > 0; run-- {
			add(uint16(v), 0)
		}
	}
	pos := 0 // where in the sequence the next length goes
	var v uint8
	run := 0 // v, run times, pending
	for i := range len(litSyms) + len(distSyms) {
		var p int
		var l uint8
		if i < len(litSyms) {
			p, l = int(litSyms[i]), e.litLens[litSyms[i]]
		} else {
			s := distSyms[i-len(litSyms)]
			p, l = nlit+int(s), e.distLens[s]
		}
		if p == pos && l == v && run > 0 {
			run++
			pos++
			continue
		}
		if run > 0 {
			repeat(v, run)
		}
		zeros(p - pos)
		v, run, pos = l, 1, p+1
	}
	repeat(v, run)
	zeros(nlit + ndist - pos) // none: ndist follows the last used distance
	e.ncg = n
	used := 0
	for _, f := range e.cgFreq {
		if f != 0 {
			used++
		}
	}
	if used < 2 {
		// Two codes at least; 0 and 18 never both occur alone.
		if e.cgFreq[0] == 0 {
			e.cgFreq[0] = 1
		} else {
			e.cgFreq[18] = 1
		}
	}
	n = buildLengths(e.cgFreq[:], e.cgLens[:], e.cgSyms[:], maxCodeBits, &e.scratch)
	assignCodes(e.cgLens[:], e.cgSyms[:n], codegenExtra[:], e.cgCodes[:])
	ncg := numCodegen
	for ncg > 4 && e.cgLens[codegenOrder[ncg-1]] == 0 {
		ncg--
	}
	return ncg
}

func (e *encoder) writeDynamicHeader(nlit, ndist, ncg int) {
	w := &e.bw
	w.writeBits(uint64(nlit-257), 5)
	w.writeBits(uint64(ndist-1), 5)
	w.writeBits(uint64(ncg-4), 4)
	for _, sym := range codegenOrder[:ncg] {
		w.writeBits(uint64(e.cgLens[sym]), 3)
	}
	for _, v := range e.cg[:e.ncg] {
		sym := v & 31
		c := e.cgCodes[sym]
		w.writeBits(uint64(c&0xffff)|uint64(v>>5)<<c.len(), c.bits())
	}
}

// writeTokens writes the block's tokens and its end with the given codes.
// Each token is written whole, then its whole bytes stored as one 8-byte
// word (libdeflate's way): no branch on its kind or on the bits pending.
func (e *encoder) writeTokens(lit *[512]hcode, dist *[32]hcode) {
	w := &e.bw
	w.alignBytes()
	buf, pos := w.out, len(w.out)
	acc, n := w.bits, w.nbits // n < 8 between tokens
	for toks := e.toks[:e.ntok]; len(toks) > 0; {
		// Room for the next tokens at 48 bits each at most: a batch at a
		// time, so that dst grows only as the output does.
		batch := toks[:min(len(toks), 1024)]
		toks = toks[len(batch):]
		if cap(buf)-pos < len(batch)*6+8 {
			buf = slices.Grow(buf[:pos], len(batch)*6+8)
		}
		buf = buf[:cap(buf)]
		for _, t := range batch {
			// Shift counts are masked to 6 bits, which they fit, so that
			// the compiler need not make shifts past 63 give zero.
			c := lit[t&511]
			acc |= (uint64(c&0xffff) | uint64(t>>9&31)<<(c.len()&63)) << (n & 63)
			n += c.bits()
			d := dist[t>>14&31]
			acc |= (uint64(d&0xffff) | uint64(t>>19)<<(d.len()&63)) << (n & 63)
			n += d.bits()
			binary.LittleEndian.PutUint64(buf[pos:], acc)
			k := n >> 3
			pos += int(k)
			acc >>= (k << 3) & 63
			n &= 7
		}
	}
	w.out, w.bits, w.nbits = buf[:pos], acc, n
	c := lit[256]
	w.writeBits(uint64(c&0xffff), c.len())
}

// litExtra and distExtraOrNone give the extra bits of every symbol in a
// token: none for literals and the end of block, none for numDist.
var litExtra, distExtraOrNone = func() (l [512]uint8, d [32]uint8) {
	copy(l[257:], lengthExtra[:])
	copy(d[:], distExtra[:])
	return l, d
}()

// writeStored writes input as stored blocks (§3.2.4).
func (e *encoder) writeStored(input []byte) {
	w := &e.bw
	for {
		n := min(len(input), 0xffff)
		w.writeBits(0, 3) // BFINAL=0, BTYPE=00
		w.out = w.flush()
		w.out = append(w.out, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		w.out = append(w.out, input[:n]...)
		input = input[n:]
		if len(input) == 0 {
			return
		}
	}
}

// bitWriter packs bits least significant first (RFC 1951 §3.1.1).
type bitWriter struct {
	out   []byte
	bits  uint64
	nbits uint
}

// writeBits writes the low n bits of b, n <= 32.
func (w *bitWriter) writeBits(b uint64, n uint) {
	w.bits |= b << w.nbits
	w.nbits += n
	if w.nbits >= 32 {
		w.out = binary.LittleEndian.AppendUint32(w.out, uint32(w.bits))
		w.bits >>= 32
		w.nbits -= 32
	}
}

// alignBytes writes out the whole bytes of the pending bits, leaving
// fewer than 8.
func (w *bitWriter) alignBytes() {
	for w.nbits >= 8 {
		w.out = append(w.out, byte(w.bits))
		w.bits >>= 8
		w.nbits -= 8
	}
}

// flush writes out the pending bits, padded with zeros to a byte, and
// returns the output.
func (w *bitWriter) flush() []byte {
	for w.nbits > 0 {
		w.out = append(w.out, byte(w.bits))
		w.bits >>= 8
		w.nbits -= min(w.nbits, 8)
	}
	w.bits, w.nbits = 0, 0
	return w.out
}
