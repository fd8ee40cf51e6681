package wire

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// Errors returned by ParseClose.
var (
	// ErrCloseOneByte: RFC 6455 §5.5.1, a close body is empty or starts
	// with a two-byte code.
	ErrCloseOneByte = errors.New("duplex: close frame payload of one byte")
	// ErrCloseCode: the code is not one a peer may send (§7.4).
	ErrCloseCode = errors.New("duplex: invalid close code")
	// ErrCloseReason: the reason is not valid UTF-8 (§5.5.1).
	ErrCloseReason = errors.New("duplex: close reason is not valid UTF-8")
)

// NoStatus is the code reported when a close frame carries no code
// (1005, never sent on the wire).
const NoStatus = 1005

// ParseClose decodes a close frame payload. An empty payload gives code
// NoStatus.
func ParseClose(p []byte) (code uint16, reason string, err error) {
	switch {
	case len(p) == 0:
		return NoStatus, "", nil
	case len(p) == 1:
		return 0, "", ErrCloseOneByte
	}
	code = binary.BigEndian.Uint16(p)
	if !ValidCloseCode(code) {
		return code, "", ErrCloseCode
	}
	if !utf8.Valid(p[2:]) {
		return code, "", ErrCloseReason
	}
	return code, string(p[2:]), nil
}

// ValidCloseCode reports whether code may appear in a close frame
// (RFC 6455 §7.4.1 and the IANA registry): 1000-1003, 1007-1014 and
// 3000-4999. 1004, 1005, 1006 and 1015 are never sent.
func ValidCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// AppendClose appends a close payload. The caller keeps reason short
// enough that the payload fits in 125 bytes.
func AppendClose(dst []byte, code uint16, reason string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, code)
	return append(dst, reason...)
}
