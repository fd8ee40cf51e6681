package deflate

// The alphabets and tables of DEFLATE (RFC 1951) that the encoder and the
// inflater share.

const (
	numLitLen   = 286 // literal/length symbols in use (286 and 287 never occur)
	numDist     = 30  // distance symbols in use (30 and 31 never occur)
	numCodegen  = 19  // code length symbols (§3.2.7)
	maxLitBits  = 15  // longest literal/length or distance code
	maxCodeBits = 7   // longest code length code
	maxMatch    = 258
	maxDistance = 1 << 15
	winSize     = maxDistance // the inflater's window
)

// Base values and extra bits of the length and distance codes (§3.2.5):
// length code 257+i stands for lengthBase[i] plus a number of
// lengthExtra[i] bits, distance code i for distBase[i] plus distExtra[i]
// bits.
var (
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	distExtra   = [numDist]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	distBase    = [numDist]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
)

// codegenOrder is the order in which a dynamic block's header sends the
// lengths of the code length code (§3.2.7), and codegenExtra the extra
// bits of its repeat symbols.
var (
	codegenOrder = [numCodegen]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	codegenExtra = [numCodegen]uint8{16: 2, 17: 3, 18: 7}
)
