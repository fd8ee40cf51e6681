package wire

import (
	"encoding/binary"
	"math/bits"
)

// Mask XORs b in place with key, starting pos bytes into the key stream
// (RFC 6455 §5.3), and returns the position after b, so a payload can be
// masked in pieces as it streams. Masking twice with the same key and
// position restores the input.
func Mask(key [4]byte, pos int, b []byte) int {
	pos &= 3
	if len(b) < 16 {
		for i := range b {
			b[i] ^= key[(pos+i)&3]
		}
		return (pos + len(b)) & 3
	}
	// Rotate the key so that byte 0 of b lines up with key[pos], then work
	// a machine word at a time.
	k32 := binary.LittleEndian.Uint32(key[:])
	k32 = bits.RotateLeft32(k32, -8*pos)
	k64 := uint64(k32) | uint64(k32)<<32
	for len(b) >= 64 {
		v := binary.LittleEndian.Uint64(b[0:])
		binary.LittleEndian.PutUint64(b[0:], v^k64)
		v = binary.LittleEndian.Uint64(b[8:])
		binary.LittleEndian.PutUint64(b[8:], v^k64)
		v = binary.LittleEndian.Uint64(b[16:])
		binary.LittleEndian.PutUint64(b[16:], v^k64)
		v = binary.LittleEndian.Uint64(b[24:])
		binary.LittleEndian.PutUint64(b[24:], v^k64)
		v = binary.LittleEndian.Uint64(b[32:])
		binary.LittleEndian.PutUint64(b[32:], v^k64)
		v = binary.LittleEndian.Uint64(b[40:])
		binary.LittleEndian.PutUint64(b[40:], v^k64)
		v = binary.LittleEndian.Uint64(b[48:])
		binary.LittleEndian.PutUint64(b[48:], v^k64)
		v = binary.LittleEndian.Uint64(b[56:])
		binary.LittleEndian.PutUint64(b[56:], v^k64)
		b = b[64:]
	}
	for len(b) >= 8 {
		v := binary.LittleEndian.Uint64(b)
		binary.LittleEndian.PutUint64(b, v^k64)
		b = b[8:]
	}
	// Whole words keep the key position; finish byte by byte.
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}
