package duplex

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
)

// parseRequest parses a request head with net/http's parser, with the
// refusal net/http's server would send for a malformed one.
func parseRequest(req []byte) (*http.Request, *refusal) {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(req)))
	if err != nil {
		return nil, &refusal{http.StatusBadRequest, "malformed HTTP request"}
	}
	// net/http keeps the Host header in r.Host alone; its server refuses
	// a request without one, or with several, and so does this one.
	if r.ProtoAtLeast(1, 1) && r.Host == "" || hostLines(req) > 1 {
		return nil, &refusal{http.StatusBadRequest, "missing or repeated Host header"}
	}
	return r, nil
}

// hostLines counts the Host header lines of a request head.
func hostLines(req []byte) int {
	n := 0
	for line := range bytes.Lines(req) {
		if len(line) >= 5 && bytes.EqualFold(line[:5], []byte("host:")) {
			n++
		}
	}
	return n
}

// appendResponse appends the 101 response for key.
func appendResponse(b, key []byte, subprotocol, extensions string) []byte {
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	var in [24 + len(keyGUID)]byte
	copy(in[copy(in[:], key):], keyGUID)
	sum := sha1.Sum(in[:len(key)+len(keyGUID)])
	b = base64.StdEncoding.AppendEncode(b, sum[:])
	if subprotocol != "" {
		b = append(append(b, "\r\nSec-WebSocket-Protocol: "...), subprotocol...)
	}
	if extensions != "" {
		b = append(append(b, "\r\nSec-WebSocket-Extensions: "...), extensions...)
	}
	return append(b, "\r\n\r\n"...)
}

// fastHandshake checks the common handshake request without allocating:
// a GET with a plain path, HTTP/1.1, CRLF line ends, one Host, the
// Connection and Upgrade tokens, version 13, one valid key, and nothing
// that needs a choice (an Origin to check, a subprotocol or extension to
// negotiate when opts has them). It returns the key and true for such a
// request, and false for every other, which goes to net/http's parser
// and Accept's checks: the fast path never decides a refusal, and when it
// accepts, the slow path would have accepted with the same key
// (FuzzFastHandshake checks this).
func fastHandshake(req []byte, opts *AcceptOptions) (key []byte, ok bool) {
	line, rest, found := bytes.Cut(req, []byte("\r\n"))
	if !found || !bytes.HasPrefix(line, []byte("GET /")) || !bytes.HasSuffix(line, []byte(" HTTP/1.1")) {
		return nil, false
	}
	for _, b := range line[len("GET ") : len(line)-len(" HTTP/1.1")] {
		if !isPathByte(b) {
			return nil, false
		}
	}
	var hosts, versions, keys int
	var conn, upgrade bool
	for {
		line, rest, found = bytes.Cut(rest, []byte("\r\n"))
		if !found {
			return nil, false
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil, false
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		for _, b := range name {
			if !isTokenByte(b) {
				return nil, false
			}
		}
		for _, b := range value {
			if b < 0x20 && b != '\t' || b >= 0x7f {
				return nil, false
			}
		}
		switch {
		case bytes.EqualFold(name, []byte("Host")):
			if len(value) == 0 {
				return nil, false
			}
			hosts++
		case bytes.EqualFold(name, []byte("Connection")):
			conn = conn || hasTokenBytes(value, "upgrade")
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = upgrade || hasTokenBytes(value, "websocket")
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Version")):
			versions++
			if string(value) != "13" {
				return nil, false
			}
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Key")):
			keys++
			key = value
		case bytes.EqualFold(name, []byte("Origin")):
			if !opts.InsecureSkipOriginCheck {
				return nil, false
			}
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Protocol")):
			if len(opts.Subprotocols) > 0 {
				return nil, false
			}
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Extensions")):
			if opts.Compression != nil {
				return nil, false
			}
		case bytes.EqualFold(name, []byte("Content-Length")), bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return nil, false
		}
	}
	if len(rest) != 0 || hosts != 1 || versions != 1 || keys != 1 || !conn || !upgrade || !validKeyBytes(key) {
		return nil, false
	}
	return key, true
}

// isPathByte: the bytes of a plain request path and query, which every
// URL parser takes as they are.
func isPathByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '-', '.', '_', '~', '/', '?', '=', '&', '+', ':', '@', '!', '$', '\'', '(', ')', '*', ',', ';':
		return true
	}
	return false
}

// isTokenByte: the bytes of an HTTP token (RFC 9110 §5.6.2).
func isTokenByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// hasTokenBytes reports whether the comma-separated list v holds token,
// compared without case.
func hasTokenBytes(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		if bytes.EqualFold(trimOWS(t), []byte(token)) {
			return true
		}
	}
	return false
}

// validKeyBytes is validKey without allocating.
func validKeyBytes(key []byte) bool {
	if len(key) != 24 {
		return false
	}
	var dst [18]byte
	n, err := base64.StdEncoding.Decode(dst[:], key)
	return err == nil && n == 16
}

// requestEnd returns the length of the request head at the start of b, up
// to and including its empty line, or -1 while it is incomplete.
func requestEnd(b []byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
	}
	return -1
}
