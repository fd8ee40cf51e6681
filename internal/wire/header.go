// Package wire is the RFC 6455 frame codec: header encoding and decoding,
// masking and close payloads. It is pure: functions on bytes, no I/O policy,
// so the connection, the raw-frame test peer and the load generator share it
// and it can be fuzzed alone.
package wire

import (
	"encoding/binary"
	"errors"
)

// Opcode is a frame opcode (RFC 6455 §5.2).
type Opcode byte

// The opcodes RFC 6455 defines; 3-7 and 0xB-0xF are reserved.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (high bit set).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// IsReserved reports whether op is one RFC 6455 leaves undefined.
func (op Opcode) IsReserved() bool {
	switch op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
		return false
	}
	return true
}

// MaxHeaderSize is the longest header: 2 bytes, 8 of length, 4 of mask key.
const MaxHeaderSize = 14

// MaxControlPayload is the largest control frame payload (RFC 6455 §5.5).
const MaxControlPayload = 125

// Header is a decoded frame header.
type Header struct {
	Fin    bool
	RSV    byte // the three RSV bits, in the low bits: RSV1 = 4, RSV2 = 2, RSV3 = 1
	Opcode Opcode
	Masked bool
	Key    [4]byte
	Length int64
}

// RSV1 is the RSV1 bit in Header.RSV; permessage-deflate uses it.
const RSV1 = 4

// Errors returned by Parse. The connection maps each to a close code.
var (
	// ErrShortHeader means more bytes are needed; it is not a protocol error.
	ErrShortHeader = errors.New("duplex: short frame header")
	// ErrLengthOverflow means a 64-bit length has its most significant bit
	// set, which RFC 6455 §5.2 forbids.
	ErrLengthOverflow = errors.New("duplex: frame length has the most significant bit set")
	// ErrNonMinimalLength means a length used a longer encoding than needed.
	// RFC 6455 §5.2 says the minimal number of bytes MUST be used.
	ErrNonMinimalLength = errors.New("duplex: frame length not minimally encoded")
)

// HeaderSize returns the size of the header that starts with bytes b0 b1.
func HeaderSize(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// Parse decodes the header at the start of b and returns it with its size.
// It returns ErrShortHeader when b holds only part of a header.
func Parse(b []byte) (h Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, ErrShortHeader
	}
	n = HeaderSize(b[1])
	if len(b) < n {
		return h, 0, ErrShortHeader
	}
	h.Fin = b[0]&0x80 != 0
	h.RSV = (b[0] >> 4) & 0x7
	h.Opcode = Opcode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	p := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
		p = 4
		if h.Length < 126 {
			return h, n, ErrNonMinimalLength
		}
	case 127:
		u := binary.BigEndian.Uint64(b[2:])
		p = 10
		if u>>63 != 0 {
			return h, n, ErrLengthOverflow
		}
		h.Length = int64(u)
		if h.Length <= 0xffff {
			return h, n, ErrNonMinimalLength
		}
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		copy(h.Key[:], b[p:p+4])
	}
	return h, n, nil
}

// Append encodes h at the end of dst with the minimal length encoding.
func Append(dst []byte, h Header) []byte {
	b0 := byte(h.Opcode&0x0f) | h.RSV<<4
	if h.Fin {
		b0 |= 0x80
	}
	var m byte
	if h.Masked {
		m = 0x80
	}
	switch {
	case h.Length < 126:
		dst = append(dst, b0, m|byte(h.Length))
	case h.Length <= 0xffff:
		dst = append(dst, b0, m|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(h.Length))
	default:
		dst = append(dst, b0, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(h.Length))
	}
	if h.Masked {
		dst = append(dst, h.Key[:]...)
	}
	return dst
}
