package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// maxHead bounds the request head.
const maxHead = 8 << 10

var errBadRequest = errors.New("floor: bad handshake request")

// handshake parses the request head at the start of b and appends the 101
// response to dst. It returns the response and the head's length, or n == 0
// if the head is incomplete. It allocates nothing when dst has room, so
// that accepting connections leaves no garbage to inflate the resident
// size the idle scenario measures.
func handshake(dst, b []byte, compress bool) (resp []byte, n int, err error) {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		if len(b) > maxHead {
			return nil, 0, errBadRequest
		}
		return nil, 0, nil
	}
	var key []byte
	deflate := false
	for rest := b[:i]; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch {
		case asciiEqualFold(name, "sec-websocket-key"):
			key = bytes.TrimSpace(value)
		case asciiEqualFold(name, "sec-websocket-extensions"):
			deflate = deflate || bytes.Contains(value, []byte("permessage-deflate"))
		}
	}
	if len(key) == 0 || len(key) > 64 {
		return nil, 0, errBadRequest
	}
	var kb [64 + 36]byte
	sum := sha1.Sum(append(append(kb[:0], key...), "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"...))
	resp = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	resp = base64.StdEncoding.AppendEncode(resp, sum[:])
	if compress && deflate {
		resp = append(resp, "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"...)
	}
	resp = append(resp, "\r\n\r\n"...)
	return resp, i + 4, nil
}

// asciiEqualFold reports whether b equals the lower-case s, ignoring the
// case of b.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// echo turns the whole client frames at the start of b into server frames,
// in place: it unmasks each payload and drops the mask key from its header,
// so the output is never longer than the input and needs no buffer of its
// own. A ping becomes a pong, a pong is dropped, a close is echoed and
// reported. It returns the output (a slice of b), the input bytes used, and
// need: the size of the first incomplete frame, if its header is whole.
func echo(b []byte) (out []byte, used int, need int, closing bool) {
	start, w := -1, 0
	r := 0
	for r+2 <= len(b) && !closing {
		b0, b1 := b[r], b[r+1]
		hs, plen := 2, int(b1&0x7f)
		switch plen {
		case 126:
			hs += 2
		case 127:
			hs += 8
		}
		masked := b1&0x80 != 0
		if masked {
			hs += 4
		}
		if r+hs > len(b) {
			break
		}
		switch plen {
		case 126:
			plen = int(binary.BigEndian.Uint16(b[r+2:]))
		case 127:
			plen = int(binary.BigEndian.Uint64(b[r+2:]) & (1<<63 - 1))
		}
		if r+hs+plen > len(b) {
			need = hs + plen
			break
		}
		sh := hs
		if masked {
			sh -= 4
			unmask(b[r+hs:r+hs+plen], b[r+hs-4:r+hs])
		}
		switch b0 & 0x0f {
		case 0x8: // close
			closing = true
		case 0x9: // ping
			b0 = b0&0xf0 | 0xa
		case 0xa: // pong
			r += hs + plen
			continue
		}
		b[r], b[r+1] = b0, b1&0x7f
		if start < 0 {
			// The first frame stays where it is: its header moves up
			// over the mask key.
			start = r + hs - sh
			copy(b[start:], b[r:r+sh])
			w = r + hs + plen
		} else {
			copy(b[w:], b[r:r+sh])
			copy(b[w+sh:], b[r+hs:r+hs+plen])
			w += sh + plen
		}
		r += hs + plen
	}
	if start < 0 {
		return nil, r, need, closing
	}
	return b[start:w], r, need, closing
}

// unmask XORs p with the 4-byte key (RFC 6455 §5.3), eight bytes at a time.
func unmask(p, key []byte) {
	k := uint64(binary.LittleEndian.Uint32(key))
	k |= k << 32
	for len(p) >= 32 {
		binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^k)
		binary.LittleEndian.PutUint64(p[8:], binary.LittleEndian.Uint64(p[8:])^k)
		binary.LittleEndian.PutUint64(p[16:], binary.LittleEndian.Uint64(p[16:])^k)
		binary.LittleEndian.PutUint64(p[24:], binary.LittleEndian.Uint64(p[24:])^k)
		p = p[32:]
	}
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^k)
		p = p[8:]
	}
	for i := range p {
		p[i] ^= key[i&3]
	}
}
