package deflate

import (
	"errors"
	"math/bits"
)

// errCorrupt is what the inflater fails with on invalid data; the reader
// from Decompressor.Reader wraps it in ErrCorrupt.
var errCorrupt = errors.New("flate: corrupt input")

// A decTable decodes one Huffman code: the entry at the next rootBits input
// bits (least significant first, so codes stand bit-reversed) gives what
// the code means and its length; codes longer than rootBits go through a
// subtable that the root entry links to, indexed by the bits after the
// root ones. The layout follows zlib's inflate_table, whose bounds on the
// total size (852 entries for literals and lengths with 9 root bits, 592
// for distances with 6) hold here.
type decTable struct {
	root    uint   // root bits; at most the longest code
	mask    uint64 // 1<<root - 1
	entries []decEntry
}

// A decEntry is what a code means, ready for the inflater's loop. The low
// 4 bits are the code's whole length (for a link, the subtable's index
// bits) and the next 4 the extra bits that follow it. The value from bit
// 16 is a literal byte, a length's or a distance's base, a code length
// symbol, or a subtable's offset. In the literal/length table, flags above
// it say which, so that a literal, the most frequent, is any entry below
// entryLiteralEnd.
type decEntry uint32

const (
	entryLink       decEntry = 1 << 31 // to a subtable
	entryLength     decEntry = 1 << 30 // literal/length code: a length
	entryEnd        decEntry = 1 << 29 // literal/length code: end of block
	entryLiteralEnd decEntry = 1 << 28
	// invalidBit marks bits no code starts with, and symbols outside the
	// alphabet, in every table; entryInvalid also keeps them from reading
	// as literals. Their length is the bits that prove the input wrong.
	invalidBit   decEntry = 1 << 8
	entryInvalid          = entryLiteralEnd | invalidBit
)

// What each symbol of the three alphabets means, without its code length:
// decTable.build adds that.
var (
	litMeanings = func() (m [288]decEntry) {
		for s := range 256 {
			m[s] = decEntry(s) << 16
		}
		m[256] = entryEnd
		for i := range 29 {
			m[257+i] = entryLength | decEntry(lengthBase[i])<<16 | decEntry(lengthExtra[i])<<4
		}
		m[286], m[287] = entryInvalid, entryInvalid
		return m
	}()
	distMeanings = func() (m [32]decEntry) {
		for i := range numDist {
			m[i] = decEntry(distBase[i])<<16 | decEntry(distExtra[i])<<4
		}
		m[30], m[31] = entryInvalid, entryInvalid
		return m
	}()
	// windowDistMeanings[n] is distMeanings for a peer whose window is
	// 2^n bytes, n from 9 to 15 (RFC 7692 §7.1.2): distance code 2n and
	// above start past 2^n (code 2n's base is 2^n+1, code 2n-1 ends at
	// 2^n), so they are invalid like 30 and 31, and a distance beyond the
	// window is refused where its code is read, at no cost per token.
	windowDistMeanings = func() (m [16][32]decEntry) {
		for n := 9; n <= 15; n++ {
			m[n] = distMeanings
			for i := 2 * n; i < 32; i++ {
				m[n][i] = entryInvalid
			}
		}
		return m
	}()
	codegenMeanings = func() (m [numCodegen]decEntry) {
		for s := range m {
			m[s] = decEntry(s) << 16
		}
		return m
	}()
)

const (
	litRootBits  = 9
	distRootBits = 6
	cgRootBits   = 7
	litEntries   = 852
	distEntries  = 592
	cgEntries    = 1 << cgRootBits
)

// A codeLens is a Huffman code given by its lengths: lens[s] for each
// symbol s of syms, the symbols with a code in increasing order, and
// count[l] of them of length l (count[0] unused). Other entries of lens
// are not read, so a caller that knows the used symbols need not clear it.
type codeLens struct {
	lens  []uint8
	syms  []uint16
	count [maxLitBits + 1]uint16
}

// codeOf describes lens, every entry of which gives a length, using syms
// for the list.
func codeOf(lens []uint8, syms []uint16) codeLens {
	c := codeLens{lens: lens, syms: syms[:0]}
	for s, l := range lens {
		if l != 0 {
			c.syms = append(c.syms, uint16(s))
			c.count[l]++
		}
	}
	return c
}

// build makes t decode c, symbol s meaning means[s], in entries, which
// must hold the bound for its alphabet. It reports false for an
// over-subscribed code, and for an incomplete one except a single code of
// one bit, or no code at all, which compress/flate and zlib accept as
// well: then the unused bits decode as invalid.
func (t *decTable) build(c *codeLens, means []decEntry, rootBits uint, entries []decEntry, sorted []uint16) bool {
	count := c.count
	maxLen := uint(maxLitBits)
	for maxLen > 0 && count[maxLen] == 0 {
		maxLen--
	}
	root := max(min(rootBits, maxLen), 1)
	t.root, t.mask = root, 1<<root-1
	t.entries = entries
	if maxLen == 0 {
		// Any bit proves the input wrong: one is the length.
		entries[0], entries[1] = entryInvalid|1, entryInvalid|1
		return true
	}
	left := 1
	for l := 1; l <= maxLitBits; l++ {
		left = left<<1 - int(count[l])
		if left < 0 {
			return false
		}
	}
	if left > 0 {
		if maxLen != 1 {
			return false
		}
		// One code of one bit: root is 1, and the other half is unused,
		// which its one bit proves.
		entries[0], entries[1] = entryInvalid|1, entryInvalid|1
	}

	// Symbols ordered by length, then value: their canonical order.
	var offs [maxLitBits + 2]uint16
	for l := 1; l <= maxLitBits; l++ {
		offs[l+1] = offs[l] + count[l]
	}
	for _, s := range c.syms {
		l := c.lens[s]
		sorted[offs[l]] = s
		offs[l]++
	}
	n := len(c.syms)

	// Codes in canonical order: code is the current one, most significant
	// bit first, of length l; its bits arrive reversed. The root table is
	// built length by length, doubling it each time, so that each shorter
	// code is repeated wherever the bits after it may vary.
	code, i := uint(0), 0
	l := uint(1)
	for ; l <= root; l++ {
		if l > 1 {
			copy(entries[1<<(l-1):1<<l], entries[:1<<(l-1)])
		}
		for range count[l] {
			entries[reverseBits(code, l)] = means[sorted[i]] | decEntry(l)
			i++
			code++
		}
		code <<= 1
	}
	// Longer codes go to subtables, one per root-bit prefix.
	next := 1 << root // where the next subtable goes
	subLow := ^uint(0)
	var sub, subBits uint
	for ; i < n; i++ {
		for count[l] == 0 {
			l++
			code <<= 1
		}
		rev := reverseBits(code, l)
		if low := rev & uint(t.mask); low != subLow {
			// As many index bits as the longest code with this prefix
			// needs past the root (zlib's computation).
			subLow = low
			subBits = l - root
			room := 1 << subBits
			for subBits+root < maxLen {
				room -= int(count[subBits+root])
				if room <= 0 {
					break
				}
				subBits++
				room <<= 1
			}
			sub = uint(next)
			next += 1 << subBits
			if next > len(entries) {
				return false
			}
			entries[low] = entryLink | decEntry(sub)<<16 | decEntry(subBits)
		}
		e := means[sorted[i]] | decEntry(l)
		for j := rev >> root; j < 1<<subBits; j += 1 << (l - root) {
			entries[sub+j] = e
		}
		count[l]--
		code++
	}
	return true
}

// reverseBits returns the low n bits of v in reverse order, n <= 16.
func reverseBits(v, n uint) uint {
	return uint(bits.Reverse16(uint16(v))) >> (16 - n)
}

// fixedLitLengths returns the code lengths of the fixed literal/length
// code (RFC 1951 §3.2.6), which the encoder and the inflater both use.
func fixedLitLengths() (lens [288]uint8) {
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	return lens
}

// The fixed codes' tables (RFC 1951 §3.2.6). Literal/length codes 286 and
// 287 and distance codes 30 and 31 are in the codes but mean nothing.
// fixedDistTables[n] is the distance table for a window of 2^n bytes, n
// from 9 to 15 (see windowDistMeanings).
var fixedLitTable, fixedDistTables = func() (lit decTable, dist [16]decTable) {
	lens := fixedLitLengths()
	var syms, sorted [288]uint16
	c := codeOf(lens[:], syms[:])
	lit.build(&c, litMeanings[:], litRootBits, make([]decEntry, litEntries), sorted[:])
	var dlens [32]uint8
	for i := range dlens {
		dlens[i] = 5
	}
	for n := 9; n <= 15; n++ {
		c = codeOf(dlens[:], syms[:])
		dist[n].build(&c, windowDistMeanings[n][:], distRootBits, make([]decEntry, distEntries), sorted[:])
	}
	return lit, dist
}()
