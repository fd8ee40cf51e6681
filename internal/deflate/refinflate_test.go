package deflate

import (
	"errors"
	"fmt"
)

// refInflate is a reference DEFLATE decoder (RFC 1951) for tests: slow,
// one bit at a time, written from the RFC alone and sharing no table or
// code with the inflater, so that the two can be compared. It refuses
// what zlib's inflate refuses, at the point zlib does:
//
//   - a block type of 3 (§3.2.3), a stored block whose NLEN is not the
//     complement of LEN (§3.2.4);
//   - a dynamic block with more than 286 literal/length or 30 distance
//     codes; a code length code that is over-subscribed or incomplete; a
//     repeat (16) with no length before it, or any repeat past the last
//     length; no code for 256, the end of block (§3.2.7);
//   - a literal/length or distance code that is over-subscribed, or
//     incomplete unless it is a single code of one bit (zlib's one
//     exception, for a block that needs one symbol);
//   - a code that decodes to nothing: an unused bit pattern of such a
//     code, literal/length 286 and 287 and distances 30 and 31 of the
//     fixed codes, a distance in a block whose distance code is empty;
//   - a distance farther back than the history and the output so far.
//
// compress/flate accepts some of these (it decodes a dynamic block with
// no end-of-block code, for one), which is why FuzzInflateDifferential
// compares with this instead.
//
// The output follows the history hist; decoding stops once limit bytes
// are out.
func refInflate(data, hist []byte, limit int) ([]byte, refVerdict, error) {
	d := &refDecoder{in: data, out: append([]byte(nil), hist...), start: len(hist), limit: limit}
	err := d.run()
	out := d.out[d.start:]
	switch {
	case err == nil:
		return out, refEnd, nil
	case errors.Is(err, errRefLimit):
		return out[:limit], refLimit, nil
	case errors.Is(err, errRefShort):
		return out, refShort, err
	default:
		return out, refInvalid, err
	}
}

// refVerdict is how refInflate's decoding ended.
type refVerdict int

const (
	refEnd     refVerdict = iota // the final block ended
	refInvalid                   // zlib refuses the data
	refShort                     // the input ended before the final block
	refLimit                     // limit bytes of output, no verdict yet
)

func (v refVerdict) String() string {
	return [...]string{"end", "invalid", "short", "limit"}[v]
}

var (
	errRefShort = errors.New("input ends before the final block does")
	errRefLimit = errors.New("output limit reached")
)

type refDecoder struct {
	in    []byte
	bit   int    // bits of in consumed
	out   []byte // history, then output
	start int    // where the output starts in out
	limit int
}

// bits reads an n-bit number, least significant bit first (§3.1.1).
func (d *refDecoder) bits(n int) (int, error) {
	v := 0
	for i := range n {
		if d.bit>>3 >= len(d.in) {
			return 0, errRefShort
		}
		v |= int(d.in[d.bit>>3]>>(d.bit&7)&1) << i
		d.bit++
	}
	return v, nil
}

func (d *refDecoder) run() error {
	for {
		final, err := d.bits(1)
		if err != nil {
			return err
		}
		typ, err := d.bits(2)
		if err != nil {
			return err
		}
		switch typ {
		case 0:
			err = d.stored()
		case 1:
			err = d.codes(refFixedLit, refFixedDist)
		case 2:
			var lit, dist *refCode
			if lit, dist, err = d.dynamicCodes(); err == nil {
				err = d.codes(lit, dist)
			}
		default:
			err = errors.New("invalid block type 3")
		}
		if err != nil {
			return err
		}
		if final == 1 {
			return nil
		}
	}
}

// stored copies a stored block (§3.2.4): to the next byte boundary, LEN
// and NLEN, then LEN bytes.
func (d *refDecoder) stored() error {
	d.bit = (d.bit + 7) &^ 7
	n, err := d.bits(16)
	if err != nil {
		return err
	}
	nn, err := d.bits(16)
	if err != nil {
		return err
	}
	if n != nn^0xffff {
		return fmt.Errorf("stored block LEN %#04x, NLEN %#04x: not complements", n, nn)
	}
	for range n {
		b, err := d.bits(8)
		if err != nil {
			return err
		}
		if err := d.emit(byte(b)); err != nil {
			return err
		}
	}
	return nil
}

func (d *refDecoder) emit(b byte) error {
	d.out = append(d.out, b)
	if len(d.out)-d.start >= d.limit {
		return errRefLimit
	}
	return nil
}

// refCode is a canonical Huffman code (§3.2.2) as its lengths give it.
type refCode struct {
	count  [16]int // count[l]: codes of length l
	first  [16]int // first[l]: the numerically smallest code of length l
	offset [16]int // offset[l]: where the symbols of length l start in sorted
	sorted []int   // the symbols, by length, then by value
	left   int     // codes of 15 bits left unused; < 0: over-subscribed
	max    int     // the longest length in use
}

// newRefCode builds the code whose symbol s has length lens[s] (0: none),
// following the steps of §3.2.2.
func newRefCode(lens []int) *refCode {
	c := &refCode{}
	for _, l := range lens {
		c.count[l]++
	}
	c.count[0] = 0
	// 2) The first code of each length: the codes of each length are
	// consecutive, and follow the shorter ones, shifted left by one bit.
	code := 0
	for l := 1; l <= 15; l++ {
		code = (code + c.count[l-1]) << 1
		c.first[l] = code
		if c.count[l] > 0 {
			c.max = l
		}
	}
	// The code space: each length l code takes 2^(15-l) of the 2^15
	// patterns of 15 bits.
	c.left = 1 << 15
	for l := 1; l <= 15; l++ {
		c.left -= c.count[l] << (15 - l)
	}
	for l := 1; l <= 15; l++ {
		c.offset[l] = c.offset[l-1] + c.count[l-1]
	}
	c.sorted = make([]int, c.offset[15]+c.count[15])
	next := c.offset
	for s, l := range lens {
		if l > 0 {
			c.sorted[next[l]] = s
			next[l]++
		}
	}
	return c
}

// complete reports whether every bit pattern decodes to a symbol.
func (c *refCode) complete() bool { return c.left == 0 }

// decode reads one code, most significant bit first (§3.1.1: Huffman codes
// are packed starting with the most significant bit of the code).
func (d *refDecoder) decode(c *refCode, what string) (int, error) {
	code := 0
	for l := 1; l <= 15; l++ {
		b, err := d.bits(1)
		if err != nil {
			return 0, err
		}
		code = code<<1 | b
		if i := code - c.first[l]; i >= 0 && i < c.count[l] {
			return c.sorted[c.offset[l]+i], nil
		}
	}
	return 0, fmt.Errorf("invalid %s code", what)
}

// refCodeOrder is the order of the code length code's lengths (§3.2.7).
var refCodeOrder = [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// dynamicCodes reads the header of a dynamic block (§3.2.7).
func (d *refDecoder) dynamicCodes() (lit, dist *refCode, err error) {
	hlit, err := d.bits(5)
	if err != nil {
		return nil, nil, err
	}
	hdist, err := d.bits(5)
	if err != nil {
		return nil, nil, err
	}
	hclen, err := d.bits(4)
	if err != nil {
		return nil, nil, err
	}
	nlit, ndist := hlit+257, hdist+1
	if nlit > 286 || ndist > 30 {
		return nil, nil, fmt.Errorf("%d literal/length and %d distance codes; at most 286 and 30", nlit, ndist)
	}
	var clens [19]int
	for i := range hclen + 4 {
		if clens[refCodeOrder[i]], err = d.bits(3); err != nil {
			return nil, nil, err
		}
	}
	cl := newRefCode(clens[:])
	if !cl.complete() {
		// zlib allows no exception here; an empty code (all lengths 0)
		// lets no block through either.
		return nil, nil, errors.New("code length code over-subscribed or incomplete")
	}
	lens := make([]int, nlit+ndist)
	for i := 0; i < len(lens); {
		sym, err := d.decode(cl, "code length")
		if err != nil {
			return nil, nil, err
		}
		if sym < 16 {
			lens[i] = sym
			i++
			continue
		}
		var v, n int
		switch sym {
		case 16: // the previous length, 3 to 6 times
			if i == 0 {
				return nil, nil, errors.New("repeat of the previous length, with none before it")
			}
			v = lens[i-1]
			x, err := d.bits(2)
			if err != nil {
				return nil, nil, err
			}
			n = 3 + x
		case 17: // 3 to 10 zeros
			x, err := d.bits(3)
			if err != nil {
				return nil, nil, err
			}
			n = 3 + x
		case 18: // 11 to 138 zeros
			x, err := d.bits(7)
			if err != nil {
				return nil, nil, err
			}
			n = 11 + x
		}
		if i+n > len(lens) {
			return nil, nil, errors.New("repeat past the last code length")
		}
		for range n {
			lens[i] = v
			i++
		}
	}
	if lens[256] == 0 {
		return nil, nil, errors.New("no code for the end of block (256)")
	}
	lit, dist = newRefCode(lens[:nlit]), newRefCode(lens[nlit:])
	for _, c := range []*refCode{lit, dist} {
		// Incomplete is fine for a single one-bit code (zlib's exception);
		// an empty distance code has left 2^15 and max 0, also fine: it
		// fails only if a distance is used.
		if c.left < 0 || c.left > 0 && c.max > 1 {
			return nil, nil, errors.New("literal/length or distance code over-subscribed or incomplete")
		}
	}
	return lit, dist, nil
}

// The length and distance codes' bases and extra bits, as the tables of
// §3.2.5 list them.
var (
	refLenBase   = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	refLenExtra  = [29]int{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	refDistBase  = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	refDistExtra = [30]int{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// The fixed codes (§3.2.6), with all 288 and 32 symbols, as zlib builds
// them: 286, 287, 30 and 31 have codes that decode to an error.
var refFixedLit, refFixedDist = func() (*refCode, *refCode) {
	var lit [288]int
	for s := range lit {
		switch {
		case s < 144:
			lit[s] = 8
		case s < 256:
			lit[s] = 9
		case s < 280:
			lit[s] = 7
		default:
			lit[s] = 8
		}
	}
	var dist [32]int
	for s := range dist {
		dist[s] = 5
	}
	return newRefCode(lit[:]), newRefCode(dist[:])
}()

// codes decodes the symbols of a compressed block (§3.2.5) until 256.
func (d *refDecoder) codes(lit, dist *refCode) error {
	for {
		sym, err := d.decode(lit, "literal/length")
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			if err := d.emit(byte(sym)); err != nil {
				return err
			}
			continue
		case sym == 256:
			return nil
		case sym > 285:
			return fmt.Errorf("invalid literal/length code %d", sym)
		}
		x, err := d.bits(refLenExtra[sym-257])
		if err != nil {
			return err
		}
		n := refLenBase[sym-257] + x
		if dist.max == 0 {
			return errors.New("a length in a block with no distance codes")
		}
		ds, err := d.decode(dist, "distance")
		if err != nil {
			return err
		}
		if ds > 29 {
			return fmt.Errorf("invalid distance code %d", ds)
		}
		if x, err = d.bits(refDistExtra[ds]); err != nil {
			return err
		}
		back := refDistBase[ds] + x
		if back > len(d.out) {
			return fmt.Errorf("distance %d too far back: %d bytes of history and output", back, len(d.out))
		}
		for range n {
			if err := d.emit(d.out[len(d.out)-back]); err != nil {
				return err
			}
		}
	}
}
