package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// acceptGUID is the fixed string of RFC 6455 §1.3 that the server appends to
// our key before hashing it into Sec-WebSocket-Accept.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// deflateOffer asks for RFC 7692 permessage-deflate with no context takeover
// in either direction, so every message compresses alone and the load
// generator can send one precompressed payload over and over.
const deflateOffer = "permessage-deflate; client_no_context_takeover; server_no_context_takeover"

// target is a parsed ws:// or wss:// URL.
type target struct {
	addr   string      // host:port to dial
	host   string      // Host header
	path   string      // request-target
	tls    bool        // wss: TLS first
	header http.Header // more request headers (Config.Header)
}

func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("loadgen: parse URL: %w", err)
	}
	port := "80"
	t := target{}
	switch u.Scheme {
	case "ws", "http":
	case "wss", "https":
		t.tls, port = true, "443"
	default:
		return target{}, fmt.Errorf("loadgen: URL scheme %q: want ws or wss", u.Scheme)
	}
	if u.Host == "" {
		return target{}, fmt.Errorf("loadgen: URL %q has no host", raw)
	}
	t.addr, t.host, t.path = u.Host, u.Host, u.RequestURI()
	if u.Port() == "" {
		t.addr = net.JoinHostPort(u.Hostname(), port)
	}
	return t, nil
}

// handshake performs the opening handshake of RFC 6455 §4.1 on nc with a
// handwritten request, checks the 101 response and its Sec-WebSocket-Accept,
// and leaves any bytes the server sent after the response in fr.
// It reports whether the server agreed to permessage-deflate.
func handshake(ctx context.Context, nc net.Conn, fr *frameReader, t target, compress bool) (deflate bool, err error) {
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
		defer nc.SetDeadline(noDeadline)
	}
	var raw [16]byte
	rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])

	req := make([]byte, 0, 256)
	req = append(req, "GET "...)
	req = append(req, t.path...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, t.host...)
	req = append(req, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "...)
	req = append(req, key...)
	for name, values := range t.header {
		for _, v := range values {
			req = append(req, "\r\n"...)
			req = append(req, name...)
			req = append(req, ": "...)
			req = append(req, v...)
		}
	}
	if compress {
		req = append(req, "\r\nSec-WebSocket-Extensions: "...)
		req = append(req, deflateOffer...)
	}
	req = append(req, "\r\n\r\n"...)
	if _, err := nc.Write(req); err != nil {
		return false, fmt.Errorf("loadgen: write handshake: %w", err)
	}

	head, err := fr.readHead()
	if err != nil {
		return false, fmt.Errorf("loadgen: read handshake response: %w", err)
	}
	status, headers, _ := strings.Cut(string(head), "\r\n")
	if f := strings.Fields(status); len(f) < 2 || f[1] != "101" {
		return false, &RefusedError{Status: status, Body: fr.peekBody()}
	}
	var accept, exts string
	var upgrade, connection bool
	for _, line := range strings.Split(headers, "\r\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "sec-websocket-accept":
			accept = value
		case "sec-websocket-extensions":
			exts = joinHeader(exts, value)
		case "upgrade":
			upgrade = strings.EqualFold(value, "websocket")
		case "connection":
			connection = hasToken(value, "upgrade")
		}
	}
	// RFC 6455 §4.1, client requirements 2-4.
	if !upgrade || !connection {
		return false, errors.New("loadgen: handshake: response lacks Upgrade: websocket or Connection: Upgrade")
	}
	if want := acceptKey(key); accept != want {
		return false, fmt.Errorf("loadgen: handshake: Sec-WebSocket-Accept %q, want %q", accept, want)
	}
	if exts == "" {
		return false, nil
	}
	// RFC 6455 §4.1 item 5: the server may only agree to what we offered.
	if !compress {
		return false, fmt.Errorf("loadgen: handshake: server chose extensions %q that were not offered", exts)
	}
	ext, params, _ := strings.Cut(exts, ";")
	if strings.TrimSpace(ext) != "permessage-deflate" || strings.Contains(exts, ",") {
		return false, fmt.Errorf("loadgen: handshake: unexpected extensions %q", exts)
	}
	// RFC 7692 §7.1.1.1: a server accepting server_no_context_takeover
	// must say so; without it the echoes could refer to earlier messages.
	if !hasToken(strings.ReplaceAll(params, ";", ","), "server_no_context_takeover") {
		return false, fmt.Errorf("loadgen: handshake: server accepted %q without server_no_context_takeover", exts)
	}
	return true, nil
}

// RefusedError is a handshake the server answered with another status
// than 101: a wrong path, missing credentials.
type RefusedError struct {
	Status string // the status line: "HTTP/1.1 401 Unauthorized"
	Body   string // the start of the body, if it came with the head
}

func (e *RefusedError) Error() string {
	msg := fmt.Sprintf("loadgen: handshake: server answered %q, want 101", e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

func joinHeader(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

// hasToken reports whether the comma-separated list v holds tok, ignoring
// case and surrounding space.
func hasToken(v, tok string) bool {
	for _, f := range strings.Split(v, ",") {
		if strings.EqualFold(strings.TrimSpace(f), tok) {
			return true
		}
	}
	return false
}

// headEnd finds the blank line that ends an HTTP head.
func headEnd(b []byte) int {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return -1
	}
	return i + 4
}
