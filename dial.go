package duplex

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/duplexws/duplex/internal/deflate"
)

// DialOptions configures Dial. A nil *DialOptions means the defaults each
// field documents.
type DialOptions struct {
	// HTTPHeader holds extra request headers (Authorization, Cookie, …).
	HTTPHeader http.Header

	// Host overrides the Host header. Default: the URL's host.
	Host string

	// Origin sets the Origin header. Default: none, as non-browser
	// clients send.
	Origin string

	// Subprotocols to offer, most preferred first.
	Subprotocols []string

	// TLSConfig for wss:// URLs. Default: the zero config, which verifies
	// the server against the system roots.
	TLSConfig *tls.Config

	// NetDialContext dials TCP. Default: a net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Proxy returns the HTTP or HTTPS proxy to tunnel through with
	// CONNECT, or nil for a direct connection. Default:
	// http.ProxyFromEnvironment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY; it
	// never proxies localhost).
	Proxy func(*http.Request) (*url.URL, error)

	// ReadLimit: see AcceptOptions.ReadLimit. Default: 32 MiB.
	ReadLimit int64

	// CloseTimeout bounds the close handshake. Default: 5s.
	CloseTimeout time.Duration

	// Compression offers permessage-deflate. Default: nil, off.
	Compression *CompressionOptions

	// HTTP2Transport, when set, opens the socket as a stream of an
	// HTTP/2 connection (RFC 8441 extended CONNECT) through it, so sockets
	// to one server share the transport's connection; Dial falls back to
	// HTTP/1.1 when the server does not advertise support. It must be an
	// HTTP/2 transport that sends the :protocol pseudo-header, such as
	// golang.org/x/net/http2.Transport: the standard library's client
	// refuses that header (Go 1.26). Over HTTP/2 a cancelled Read context
	// ends the connection, since a stream cannot interrupt one read.
	// Default: nil, HTTP/1.1 only.
	HTTP2Transport http.RoundTripper
}

var errUnofferedExtension = errors.New("duplex: server selected an extension that was not offered")

// Dial opens a WebSocket connection to rawURL (ws, wss, http or https).
// ctx bounds the whole handshake. Credentials in the URL
// (ws://user:pass@host) are sent as Basic authorization. When the server
// refuses, the error is a *HandshakeError carrying its status and the
// start of its body, and the response is returned too.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, *http.Response, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	u, err := parseWSURL(rawURL)
	if err != nil {
		return nil, nil, err
	}
	keyBytes := make([]byte, 16)
	rand.Read(keyBytes)
	key := base64.StdEncoding.EncodeToString(keyBytes)
	offer := o.Compression.offer()
	if o.HTTP2Transport != nil {
		c, resp, ok, err := dialHTTP2(ctx, u, &o, offer)
		if ok || err != nil {
			return c, resp, err
		}
	}
	req := buildRequest(u, key, &o, offer)

	nc, err := dialTransport(ctx, u, req, &o)
	if err != nil {
		return nil, nil, err
	}
	stop := interrupt(ctx, nc.SetDeadline)
	if d, ok := ctx.Deadline(); ok {
		nc.SetDeadline(d)
	}
	conn, resp, err := handshake(nc, req, key, &o, offer)
	stop()
	if err != nil {
		nc.Close()
		ctxErr := ctx.Err()
		if d, ok := ctx.Deadline(); ok && ctxErr == nil && !time.Now().Before(d) {
			ctxErr = context.DeadlineExceeded // the socket's deadline beat ctx's timer
		}
		if ctxErr != nil {
			err = fmt.Errorf("duplex: dial %s: %w (%v)", u.Redacted(), ctxErr, err)
		}
		return nil, resp, err
	}
	nc.SetDeadline(time.Time{})
	return conn, resp, nil
}

// parseWSURL accepts ws, wss, http and https URLs and maps them to the
// HTTP scheme the handshake uses.
func parseWSURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("duplex: parse URL: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "ws", "http":
		u.Scheme = "http"
	case "wss", "https":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("duplex: unsupported URL scheme %q (want ws, wss, http or https)", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("duplex: URL %q has no host", rawURL)
	}
	return u, nil
}

// buildRequest makes the opening handshake (RFC 6455 §4.1).
func buildRequest(u *url.URL, key string, o *DialOptions, offer *deflate.Params) *http.Request {
	h := make(http.Header)
	for k, v := range o.HTTPHeader {
		h[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
	}
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Key", key)
	h.Set("Sec-WebSocket-Version", "13")
	if o.Origin != "" {
		h.Set("Origin", o.Origin)
	}
	if len(o.Subprotocols) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(o.Subprotocols, ", "))
	}
	if offer != nil {
		h.Set("Sec-WebSocket-Extensions", offer.String())
	}
	if u.User != nil && h.Get("Authorization") == "" {
		pass, _ := u.User.Password()
		cred := base64.StdEncoding.EncodeToString([]byte(u.User.Username() + ":" + pass))
		h.Set("Authorization", "Basic "+cred)
	}
	clean := *u
	clean.User = nil
	host := u.Host
	if v := h.Get("Host"); v != "" {
		host = v // net/http's convention: Host is not an ordinary header
		h.Del("Host")
	}
	if o.Host != "" {
		host = o.Host
	}
	return &http.Request{
		Method: http.MethodGet, URL: &clean, Header: h, Host: host,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// dialTransport opens TCP (through a proxy if one applies) and TLS.
func dialTransport(ctx context.Context, u *url.URL, req *http.Request, o *DialOptions) (net.Conn, error) {
	dial := o.NetDialContext
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	proxy := o.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	proxyURL, err := proxy(req)
	if err != nil {
		return nil, fmt.Errorf("duplex: proxy: %w", err)
	}
	var nc net.Conn
	if proxyURL != nil {
		nc, err = dialProxy(ctx, dial, proxyURL, hostPort(u), o.TLSConfig)
	} else {
		nc, err = dial(ctx, "tcp", hostPort(u))
	}
	if err != nil {
		return nil, fmt.Errorf("duplex: dial %s: %w", u.Host, err)
	}
	if u.Scheme != "https" {
		return nc, nil
	}
	cfg := &tls.Config{}
	if o.TLSConfig != nil {
		cfg = o.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	cfg.NextProtos = []string{"http/1.1"}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("duplex: TLS handshake with %s: %w", u.Host, err)
	}
	return tc, nil
}

// handshake writes the request, reads the response and verifies it.
func handshake(nc net.Conn, req *http.Request, key string, o *DialOptions, offer *deflate.Params) (*Conn, *http.Response, error) {
	bw := bufio.NewWriter(nc)
	fmt.Fprintf(bw, "GET %s HTTP/1.1\r\nHost: %s\r\n", req.URL.RequestURI(), req.Host)
	req.Header.Write(bw)
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		return nil, nil, fmt.Errorf("duplex: write handshake: %w", err)
	}
	br := bufio.NewReaderSize(nc, readBufSize)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, fmt.Errorf("duplex: read handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		return nil, resp, &HandshakeError{StatusCode: resp.StatusCode, Body: body, Response: resp}
	}
	if err := checkResponse(resp, key, o.Subprotocols); err != nil {
		return nil, resp, &HandshakeError{StatusCode: resp.StatusCode, Response: resp, Err: err}
	}
	ext, comp, decomp, threshold, err := o.Compression.agree(resp.Header, offer)
	if err != nil {
		return nil, resp, &HandshakeError{StatusCode: resp.StatusCode, Response: resp, Err: err}
	}
	return newConn(connConfig{
		tr:           nc,
		client:       true,
		leftover:     buffered(br),
		subprotocol:  resp.Header.Get("Sec-WebSocket-Protocol"),
		extensions:   ext,
		readLimit:    o.ReadLimit,
		closeTimeout: o.CloseTimeout,
		comp:         comp,
		decomp:       decomp,
		threshold:    threshold,
	}), resp, nil
}

// checkResponse verifies a 101 response (RFC 6455 §4.1, the client's
// checks 1-6).
func checkResponse(resp *http.Response, key string, protocols []string) error {
	switch {
	case !hasToken(resp.Header, "Upgrade", "websocket"):
		return errors.New(`duplex: response Upgrade header is not "websocket"`)
	case !hasToken(resp.Header, "Connection", "upgrade"):
		return errors.New(`duplex: response Connection header lacks "upgrade"`)
	case resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key):
		return errors.New("duplex: response Sec-WebSocket-Accept does not match the key")
	}
	return checkSubprotocol(resp.Header, protocols)
}

// checkSubprotocol verifies that the server picked at most one of the
// subprotocols offered.
func checkSubprotocol(h http.Header, protocols []string) error {
	got := h.Values("Sec-WebSocket-Protocol")
	if len(got) > 1 {
		return errors.New("duplex: response selects more than one subprotocol")
	}
	if len(got) == 1 {
		for _, p := range protocols {
			if p == got[0] {
				return nil
			}
		}
		return fmt.Errorf("duplex: server selected subprotocol %q that was not offered", got[0])
	}
	return nil
}
