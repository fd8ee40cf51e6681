package duplex

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// AcceptOptions configures Accept. A nil *AcceptOptions means the defaults
// each field documents.
type AcceptOptions struct {
	// Subprotocols the server speaks, most preferred first. The first one
	// the client also offers is selected. Default: none.
	Subprotocols []string

	// OriginPatterns lets browser pages from other origins connect. A
	// request whose Origin is not the server's own (same host and port;
	// over TLS, also the https scheme) is refused with 403 unless the
	// Origin matches a pattern, in path.Match syntax. A pattern with a
	// scheme ("https://app.example.com") matches the Origin's scheme, host
	// and port, a port not written being the scheme's default. A pattern
	// without a scheme ("*.example.com") matches the Origin's host, with
	// its port when the Origin writes one, whatever the scheme. Requests
	// without an Origin header (non-browser clients) are allowed; requests
	// with more than one are refused.
	OriginPatterns []string

	// InsecureSkipOriginCheck turns the origin check off, letting pages of
	// any site open sockets with the user's cookies. Default: false.
	InsecureSkipOriginCheck bool

	// ReadLimit is the largest message accepted, after decompression.
	// Default: 32 MiB; negative: no limit.
	ReadLimit int64

	// CloseTimeout bounds the close handshake. Default: 5s.
	CloseTimeout time.Duration

	// Compression enables permessage-deflate when the client offers it.
	// Default: nil, off (see CompressionOptions).
	Compression *CompressionOptions
}

// A refusal says what was wrong with the request: the status and the
// short text written in the response body.
type refusal struct {
	status int
	reason string
}

// checkRequest validates an HTTP/1.1 opening handshake (RFC 6455 §4.2.1).
// It returns the key, or the refusal to send.
func checkRequest(r *http.Request) (string, *refusal) {
	switch {
	case r.Method != http.MethodGet:
		return "", &refusal{http.StatusMethodNotAllowed, "WebSocket handshake must use GET"}
	case !r.ProtoAtLeast(1, 1):
		return "", &refusal{http.StatusBadRequest, "WebSocket handshake needs HTTP/1.1 or later"}
	case r.ContentLength != 0 || len(r.TransferEncoding) > 0:
		// The frames start where the request ends. A body makes a proxy
		// and the server disagree on where that is, and lets bytes
		// smuggled in it be read as frames (issue 15).
		return "", &refusal{http.StatusBadRequest, "WebSocket handshake must not have a body"}
	case !hasToken(r.Header, "Connection", "upgrade"):
		return "", &refusal{http.StatusBadRequest, `Connection header must contain "upgrade"`}
	case !hasToken(r.Header, "Upgrade", "websocket"):
		return "", &refusal{http.StatusBadRequest, `Upgrade header must contain "websocket"`}
	}
	if v := r.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		return "", &refusal{http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version: only 13 is supported"}
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 || !validKey(strings.TrimSpace(keys[0])) {
		return "", &refusal{http.StatusBadRequest, "Sec-WebSocket-Key must be base64 of 16 bytes"}
	}
	return strings.TrimSpace(keys[0]), nil
}

// checkOrigin applies the same-origin policy of AcceptOptions.
func checkOrigin(r *http.Request, patterns []string) *refusal {
	origins := r.Header.Values("Origin")
	switch {
	case len(origins) == 0, len(origins) == 1 && origins[0] == "":
		return nil
	case len(origins) > 1:
		// RFC 6454 §7.3: one Origin, holding one origin. A second could be
		// checked or ignored depending on who reads it (issue 15).
		return &refusal{http.StatusForbidden, "more than one Origin header"}
	}
	u, err := url.Parse(origins[0])
	if err != nil || u.Host == "" || u.Scheme == "" || u.User != nil || strings.ContainsAny(origins[0], ", \t") {
		return &refusal{http.StatusForbidden, "invalid Origin header"}
	}
	if sameOrigin(u, r) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if scheme, host, ok := strings.Cut(p, "://"); ok {
			// Scheme, host and port, with the default port left out on
			// both sides, so "https://a.example" and
			// "https://a.example:443" are one origin.
			p = scheme + "://" + withoutDefaultPort(scheme, host)
			target = u.Scheme + "://" + withoutDefaultPort(u.Scheme, u.Host)
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return nil
		}
	}
	return &refusal{http.StatusForbidden, fmt.Sprintf("origin %q not allowed", u.Scheme+"://"+u.Host)}
}

// sameOrigin reports whether the origin u is the server's own: the same
// host and port (RFC 6454 §5) as the request's Host, and, when the
// request came over TLS, the https scheme: a page served over plain HTTP
// is another origin, one a network attacker can write. Without TLS the
// server cannot tell whether a proxy in front of it took TLS off, so
// both schemes are taken, each with its own default port.
func sameOrigin(u *url.URL, r *http.Request) bool {
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme == "https":
	case scheme == "http" && r.TLS == nil:
	default:
		return false
	}
	host, port := splitHostPort(r.Host)
	if port == "" {
		port = defaultPort(scheme)
	}
	oport := u.Port()
	if oport == "" {
		oport = defaultPort(scheme)
	}
	return strings.EqualFold(u.Hostname(), host) && port == oport
}

// splitHostPort splits a Host header value; port is "" when it has none.
func splitHostPort(hostport string) (host, port string) {
	u := url.URL{Host: hostport}
	return u.Hostname(), u.Port()
}

func defaultPort(scheme string) string {
	switch strings.ToLower(scheme) {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}

// withoutDefaultPort drops the port from hostport when it is scheme's
// default.
func withoutDefaultPort(scheme, hostport string) string {
	host, port := splitHostPort(hostport)
	if port != "" && port == defaultPort(scheme) {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return hostport
}

// checkHandshake runs every check of the opening handshake that Accept
// and ServeEvents share, HTTP/1.1 (RFC 6455 §4.2.1) or HTTP/2 (RFC 8441),
// and the origin policy. It returns the key (none over HTTP/2) or the
// refusal.
func checkHandshake(r *http.Request, o *AcceptOptions) (string, *refusal) {
	var key string
	var ref *refusal
	if r.ProtoMajor == 2 {
		ref = checkRequestHTTP2(r)
	} else {
		key, ref = checkRequest(r)
	}
	if ref == nil && !o.InsecureSkipOriginCheck {
		ref = checkOrigin(r, o.OriginPatterns)
	}
	return key, ref
}

// negotiate settles the subprotocol and the extensions of an accepted
// handshake, for Accept and ServeEvents alike.
func negotiate(r *http.Request, o *AcceptOptions) connConfig {
	cfg := connConfig{
		subprotocol:  selectSubprotocol(r, o.Subprotocols),
		readLimit:    o.ReadLimit,
		closeTimeout: o.CloseTimeout,
	}
	cfg.extensions, cfg.comp, cfg.decomp, cfg.threshold = o.Compression.accept(r.Header)
	return cfg
}

// selectSubprotocol picks the server's most preferred protocol that the
// client offered.
func selectSubprotocol(r *http.Request, ours []string) string {
	offered := headerTokens(r.Header, "Sec-WebSocket-Protocol")
	for _, p := range ours {
		for _, o := range offered {
			if o == p {
				return p
			}
		}
	}
	return ""
}

// Accept upgrades r to a WebSocket connection. On a bad handshake it
// replies with an HTTP error (400, 403, 405 or 426) whose body says why and
// returns an error; the caller writes nothing more. Headers the handler set
// on w before calling Accept go out with the 101 response.
//
// To authenticate, check the request (token, header, cookie) before
// calling Accept and answer 401 yourself: nothing is upgraded until Accept.
//
// Over HTTP/2 (RFC 8441 extended CONNECT) the connection is a stream that
// lives in the handler: the handler must not return before the Conn is
// closed, and a Read cancelled by its context ends the stream.
func Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	var o AcceptOptions
	if opts != nil {
		o = *opts
	}
	key, ref := checkHandshake(r, &o)
	if ref != nil {
		return nil, refuse(w, ref)
	}
	cfg := negotiate(r, &o)
	hdr := w.Header()
	if cfg.subprotocol != "" {
		hdr.Set("Sec-WebSocket-Protocol", cfg.subprotocol)
	}
	if cfg.extensions != "" {
		hdr.Set("Sec-WebSocket-Extensions", cfg.extensions)
	}
	if r.ProtoMajor == 2 {
		return acceptHTTP2(w, r, cfg)
	}

	netConn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "WebSocket upgrade not supported by this server", http.StatusInternalServerError)
		return nil, fmt.Errorf("duplex: hijack: %w", err)
	}
	// Undo any deadline the HTTP server set for the request.
	netConn.SetDeadline(time.Time{})

	hdr.Set("Upgrade", "websocket")
	hdr.Set("Connection", "Upgrade")
	hdr.Set("Sec-WebSocket-Accept", acceptKey(key))
	bw := brw.Writer
	bw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	hdr.Write(bw)
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		netConn.Close()
		return nil, fmt.Errorf("duplex: write handshake response: %w", err)
	}
	cfg.tr = netConn
	cfg.leftover = buffered(brw.Reader)
	return newConn(cfg), nil
}

// refuse writes the HTTP error for a failed handshake.
func refuse(w http.ResponseWriter, ref *refusal) error {
	if name, value := ref.header(); name != "" {
		w.Header().Set(name, value)
	}
	http.Error(w, ref.reason, ref.status)
	return ref.err()
}

// header is the header a refusal of this status must carry, if any.
func (ref *refusal) header() (name, value string) {
	switch ref.status {
	case http.StatusUpgradeRequired:
		// RFC 6455 §4.4: the versions the server speaks.
		return "Sec-WebSocket-Version", "13"
	case http.StatusMethodNotAllowed:
		return "Allow", http.MethodGet
	}
	return "", ""
}

// err is the error the server side returns for a refusal.
func (ref *refusal) err() *HandshakeError {
	return &HandshakeError{StatusCode: ref.status, Body: []byte(ref.reason)}
}

// buffered returns a copy of the bytes a bufio.Reader read past the
// handshake: frames a client sent without waiting for the response.
func buffered(br *bufio.Reader) []byte {
	if br == nil || br.Buffered() == 0 {
		return nil
	}
	p, _ := br.Peek(br.Buffered())
	return append([]byte(nil), p...)
}
