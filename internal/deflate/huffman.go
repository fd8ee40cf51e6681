package deflate

import (
	"math/bits"
	"slices"
)

// Huffman codes for the encoder (RFC 1951 §3.2.2). A code is stored as the
// bit-reversed canonical code in the low 16 bits, so that it is written
// least significant bit first as DEFLATE packs bits, its length in the
// next 8, and in the top 8 its length plus the extra bits its symbol takes
// after it.
type hcode uint32

func (c hcode) len() uint { return uint(c >> 16 & 0xff) }

// bits is the code with its extra bits: its length plus theirs.
func (c hcode) bits() uint { return uint(c >> 24) }

// huffScratch is the working memory of buildLengths.
type huffScratch struct {
	list  [numLitLen]uint32 // freq<<9 | symbol, sorted by frequency
	depth [numLitLen]uint32
}

// buildLengths sets lens[i] to the length of symbol i in a minimum-redundancy
// code for freq limited to maxBits, and 0 for unused symbols, and lists the
// used symbols in order in syms, returning how many there are. At least two
// frequencies must be non-zero and each below 1<<23. The code it gives is
// complete, which every inflater accepts (zlib's rejects some incomplete
// ones).
//
// It sorts the used symbols, computes unlimited lengths in place
// (Moffat and Katajainen, "In-place calculation of minimum-redundancy
// codes", 1995), then moves overlong codes to maxBits and restores the
// Kraft sum by lengthening the longest codes below maxBits, as miniz does.
// Its cost follows the symbols used rather than the alphabet, which is
// what matters for the small blocks of small messages.
func buildLengths(freq []uint32, lens []uint8, syms []uint16, maxBits int, w *huffScratch) int {
	n := 0
	for i := 0; i < len(freq); i += 4 {
		// Alphabets are mostly unused: skip four at a time.
		if i+4 <= len(freq) && freq[i]|freq[i+1]|freq[i+2]|freq[i+3] == 0 {
			continue
		}
		for j := i; j < min(i+4, len(freq)); j++ {
			syms[n] = uint16(j)
			n += int((freq[j] | -freq[j]) >> 31) // without a branch: below 1<<31
		}
	}
	clear(lens)

	// Counting sort by frequency, the few frequent symbols sorted after.
	const buckets = 64
	var start [buckets]uint16
	for _, s := range syms[:n] {
		start[min(freq[s], buckets-1)]++
	}
	sum := uint16(0)
	for b, c := range start {
		start[b] = sum
		sum += c
	}
	tail := int(start[buckets-1])
	for _, s := range syms[:n] {
		f := freq[s]
		b := min(f, buckets-1)
		w.list[start[b]] = f<<9 | uint32(s)
		start[b]++
	}
	list := w.list[:n]
	slices.Sort(list[tail:])

	a := w.depth[:n]
	for i, v := range list {
		a[i] = v >> 9
	}

	// First pass, left to right: combine the two smallest items, leaves
	// from a[leaf:], internal nodes from a[root:next], leaving parent
	// pointers behind.
	a[0] += a[1]
	root, leaf := 0, 2
	for next := 1; next < n-1; next++ {
		if leaf >= n || a[root] < a[leaf] {
			a[next] = a[root]
			a[root] = uint32(next)
			root++
		} else {
			a[next] = a[leaf]
			leaf++
		}
		if leaf >= n || (root < next && a[root] < a[leaf]) {
			a[next] += a[root]
			a[root] = uint32(next)
			root++
		} else {
			a[next] += a[leaf]
			leaf++
		}
	}
	// Second pass, right to left: depths of internal nodes.
	a[n-2] = 0
	for next := n - 3; next >= 0; next-- {
		a[next] = a[a[next]] + 1
	}
	// Third pass, right to left: depths of leaves.
	avail, used, depth := 1, 0, uint32(0)
	root, next := n-2, n-1
	for avail > 0 {
		for root >= 0 && a[root] == depth {
			used++
			root--
		}
		for avail > used {
			a[next] = depth
			next--
			avail--
		}
		avail = 2 * used
		depth++
		used = 0
	}

	// Limit the lengths: count codes per length, the overlong ones at
	// maxBits, then take codes from maxBits one at a time, each time
	// splitting a shorter code in two, until the Kraft sum is exact.
	var count [maxLitBits + 1]int
	for _, d := range a {
		count[min(int(d), maxBits)]++
	}
	total := 0
	for l := 1; l <= maxBits; l++ {
		total += count[l] << (maxBits - l)
	}
	for total > 1<<maxBits {
		count[maxBits]--
		for l := maxBits - 1; l > 0; l-- {
			if count[l] != 0 {
				count[l]--
				count[l+1] += 2
				break
			}
		}
		total--
	}
	// The most frequent symbols, at the end of list, get the shortest codes.
	j := n
	for l := 1; l <= maxBits; l++ {
		for range count[l] {
			j--
			lens[list[j]&511] = uint8(l)
		}
	}
	return n
}

// assignCodes gives each symbol of syms, in order, its canonical code
// (RFC 1951 §3.2.2), bit-reversed for writing; symbol s takes extra[s]
// extra bits.
func assignCodes(lens []uint8, syms []uint16, extra []uint8, codes []hcode) {
	var count [maxLitBits + 1]uint16
	for _, s := range syms {
		count[lens[s]]++
	}
	count[0] = 0
	var next [maxLitBits + 1]uint16
	code := uint16(0)
	for l := 1; l <= maxLitBits; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	for _, s := range syms {
		l := lens[s]
		c := next[l]
		next[l]++
		codes[s] = hcode(bits.Reverse16(c)>>(16-l)) | hcode(l)<<16 | hcode(l+extra[s])<<24
	}
}

var (
	// lengthCode maps a match length minus 3 to its code minus 257. 258
	// has a code of its own (285) although 284 plus extra bits could say it.
	lengthCode = func() (t [256]uint8) {
		for c := range 28 {
			for l := int(lengthBase[c]); l < int(lengthBase[c])+1<<lengthExtra[c] && l-3 < 255; l++ {
				t[l-3] = uint8(c)
			}
		}
		t[255] = 28
		return t
	}()

	// The fixed codes of §3.2.6.
	fixedLit, fixedDist = func() (lit [512]hcode, dist [32]hcode) {
		lens := fixedLitLengths()
		var syms [288]uint16
		for i := range syms {
			syms[i] = uint16(i)
		}
		var all [288]hcode
		assignCodes(lens[:], syms[:], litExtra[:], all[:])
		copy(lit[:], all[:])
		var dlens [32]uint8
		for i := range dlens {
			dlens[i] = 5
		}
		var dall [32]hcode
		assignCodes(dlens[:], syms[:32], distExtraOrNone[:], dall[:])
		copy(dist[:numDist], dall[:]) // dist[numDist]: no distance
		return lit, dist
	}()
)

// distCode returns the code of a distance minus 1.
func distCode(d uint32) uint32 {
	if d < 4 {
		return d
	}
	n := uint32(bits.Len32(d))
	return 2*(n-1) + (d>>(n-2))&1
}
