package deflate

import (
	"errors"
	"math/bits"
)

// errCorrupt is what the inflater fails with on invalid data; the reader
// from Decompressor.Reader wraps it in ErrCorrupt.
var errCorrupt = errors.New("flate: corrupt input")

// A decTable decodes one Huffman code: the entry at the next rootBits input
// bits (least significant first, so codes stand bit-reversed) gives the
// symbol and its length; codes longer than rootBits go through a subtable
// that the root entry links to, indexed by the bits after the root ones.
// The layout follows zlib's inflate_table, whose bounds on the total size
// (852 entries for literals and lengths with 9 root bits, 592 for
// distances with 6) hold here.
type decTable struct {
	root    uint   // root bits; at most the longest code
	mask    uint64 // 1<<root - 1
	entries []decEntry
}

// A decEntry holds a symbol in its high 16 bits and the code's length in
// its low 4. A link to a subtable has its top bit set, the subtable's
// offset above bit 16 and its index bits in the low 4. Bits no code
// starts with decode as invalidSym, which every caller rejects as out of
// its alphabet.
type decEntry uint32

const (
	entryLink    decEntry = 1 << 31
	invalidSym            = 0x7fff
	entryInvalid decEntry = invalidSym << 16
)

const (
	litRootBits  = 9
	distRootBits = 6
	cgRootBits   = 7
	litEntries   = 852
	distEntries  = 592
	cgEntries    = 1 << cgRootBits
)

// build makes t decode the code with lengths lens (0 for unused symbols),
// in entries, which must hold the bound for its alphabet. It reports false
// for an over-subscribed code, and for an incomplete one except a single
// code of one bit, or no code at all, which compress/flate and zlib accept
// as well: then the unused bits decode as invalid.
func (t *decTable) build(lens []uint8, rootBits uint, entries []decEntry, sorted []uint16) bool {
	count := countLengths(lens)
	maxLen := uint(maxLitBits)
	for maxLen > 0 && count[maxLen] == 0 {
		maxLen--
	}
	root := max(min(rootBits, maxLen), 1)
	t.root, t.mask = root, 1<<root-1
	t.entries = entries
	if maxLen == 0 {
		entries[0], entries[1] = entryInvalid, entryInvalid
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
		// One code of one bit: root is 1, and the other half is unused.
		entries[0], entries[1] = entryInvalid, entryInvalid
	}

	// Symbols ordered by length, then value: their canonical order.
	var offs [maxLitBits + 2]uint16
	for l := 1; l <= maxLitBits; l++ {
		offs[l+1] = offs[l] + count[l]
	}
	for s, l := range lens {
		if l != 0 {
			sorted[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	n := int(offs[maxLitBits+1])

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
			entries[reverseBits(code, l)] = decEntry(sorted[i])<<16 | decEntry(l)
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
		e := decEntry(sorted[i])<<16 | decEntry(l)
		for j := rev >> root; j < 1<<subBits; j += 1 << (l - root) {
			entries[sub+j] = e
		}
		count[l]--
		code++
	}
	return true
}

// countLengths counts the codes of each length, lens[i] <= 15, and none
// of length 0. Four tallies interleaved keep a run of equal lengths from
// making each increment wait for the one before.
func countLengths(lens []uint8) (count [maxLitBits + 1]uint16) {
	var c [4][maxLitBits + 1]uint16
	i := 0
	for ; i+4 <= len(lens); i += 4 {
		c[0][lens[i]&15]++
		c[1][lens[i+1]&15]++
		c[2][lens[i+2]&15]++
		c[3][lens[i+3]&15]++
	}
	for ; i < len(lens); i++ {
		c[0][lens[i]&15]++
	}
	for l := 1; l <= maxLitBits; l++ {
		count[l] = c[0][l] + c[1][l] + c[2][l] + c[3][l]
	}
	return count
}

// reverseBits returns the low n bits of v in reverse order, n <= 16.
func reverseBits(v, n uint) uint {
	return uint(bits.Reverse16(uint16(v))) >> (16 - n)
}

// The fixed codes' tables (RFC 1951 §3.2.6). Distance codes 30 and 31 are
// in the code but mean nothing; the inflater rejects them.
var fixedLitTable, fixedDistTable = func() (lit, dist decTable) {
	var lens [288]uint8
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
	var sorted [288]uint16
	lit.build(lens[:], litRootBits, make([]decEntry, litEntries), sorted[:])
	var dlens [32]uint8
	for i := range dlens {
		dlens[i] = 5
	}
	dist.build(dlens[:], distRootBits, make([]decEntry, distEntries), sorted[:])
	return lit, dist
}()
