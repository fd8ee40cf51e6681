package duplex_test

// The opening handshake (RFC 6455 §4), on the wire: raw HTTP requests to
// Accept, and Dial against a raw server that answers by hand.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// hsRequest is the handshake of RFC 6455 §1.2, whose key has the accept
// value s3pPLMBiTxaQ9kYGzzhZRbK+xOo=. HOST is replaced by the server's
// address.
var hsRequest = []string{
	"GET /chat HTTP/1.1",
	"Host: HOST",
	"Upgrade: websocket",
	"Connection: Upgrade",
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
	"Sec-WebSocket-Version: 13",
}

// editRequest applies edits to hsRequest: "Name: value" replaces the
// header of that name (compared without case), "+Name: value" adds a
// line, "-Name" removes the header, and a line starting with a method
// replaces the request line.
func editRequest(host string, edits []string) string {
	lines := append([]string(nil), hsRequest...)
	name := func(l string) string { n, _, _ := strings.Cut(l, ":"); return strings.ToLower(n) }
	for _, e := range edits {
		switch {
		case strings.HasPrefix(e, "+"):
			lines = append(lines, e[1:])
		case strings.HasPrefix(e, "-"):
			var kept []string
			for _, l := range lines {
				if name(l) != strings.ToLower(e[1:]) {
					kept = append(kept, l)
				}
			}
			lines = kept
		case strings.Contains(e, " HTTP/"):
			lines[0] = e
		default:
			for i, l := range lines {
				if name(l) == name(e) {
					lines[i] = e
				}
			}
		}
	}
	return strings.ReplaceAll(strings.Join(lines, "\n"), "HOST", host) + "\n\n"
}

var acceptCases = []struct {
	name       string
	edits      []string
	opts       *duplex.AcceptOptions
	setCookie  bool              // the handler sets a cookie before Accept
	status     int               // want
	header     map[string]string // want; "" means absent
	bodyHas    string            // a refusal's body says this
	originHost string            // Origin: http://originHost, HOST for the server's own
	body       string            // bytes after the request head
}{
	{name: "RFC 6455 §1.2 example", status: 101, header: map[string]string{
		"Upgrade":                "websocket",
		"Connection":             "Upgrade",
		"Sec-WebSocket-Accept":   "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
		"Sec-WebSocket-Protocol": "",
	}},

	{name: "POST", edits: []string{"POST /chat HTTP/1.1", "+Content-Length: 0"}, status: 405, header: map[string]string{"Allow": "GET"}, bodyHas: "GET"},
	{name: "HTTP/1.0", edits: []string{"GET /chat HTTP/1.0"}, status: 400, bodyHas: "HTTP/1.1"},

	{name: "no Connection", edits: []string{"-Connection"}, status: 400, bodyHas: "Connection"},
	{name: "Connection without upgrade", edits: []string{"Connection: keep-alive"}, status: 400, bodyHas: "Connection"},
	{name: "Connection: upgraded", edits: []string{"Connection: upgraded"}, status: 400, bodyHas: "Connection"},
	{name: "no Upgrade", edits: []string{"-Upgrade"}, status: 400, bodyHas: "Upgrade"},
	{name: "Upgrade: h2c", edits: []string{"Upgrade: h2c"}, status: 400, bodyHas: "Upgrade"},
	{name: "Upgrade: websocket2", edits: []string{"Upgrade: websocket2"}, status: 400, bodyHas: "Upgrade"},
	{name: "Connection token in a list", edits: []string{"Connection: keep-alive, Upgrade"}, status: 101},
	{name: "Connection token in a second line", edits: []string{"Connection: keep-alive", "+Connection: Upgrade"}, status: 101},
	{name: "Upgrade token in a list", edits: []string{"Upgrade: foo/1, websocket"}, status: 101},
	{name: "names and tokens in mixed case", edits: []string{"-Connection", "-Upgrade", "+connection: UPGRADE", "+UPGRADE: WebSocket"}, status: 101},

	{name: "key not base64", edits: []string{"Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!=="}, status: 400, bodyHas: "Sec-WebSocket-Key"},
	{name: "key of 15 bytes", edits: []string{"Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0O"}, status: 400, bodyHas: "Sec-WebSocket-Key"},
	{name: "key of 17 bytes", edits: []string{"Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODxA="}, status: 400, bodyHas: "Sec-WebSocket-Key"},
	{name: "two key headers", edits: []string{"+Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODw=="}, status: 400, bodyHas: "Sec-WebSocket-Key"},
	{name: "no key", edits: []string{"-Sec-WebSocket-Key"}, status: 400, bodyHas: "Sec-WebSocket-Key"},

	{name: "version 8", edits: []string{"Sec-WebSocket-Version: 8"}, status: 426, header: map[string]string{"Sec-WebSocket-Version": "13"}, bodyHas: "13"},
	{name: "versions 13 and 8", edits: []string{"+Sec-WebSocket-Version: 8"}, status: 426, header: map[string]string{"Sec-WebSocket-Version": "13"}},

	{name: "cross-origin refused", originHost: "evil.example", status: 403, bodyHas: "evil.example"},
	{name: "same origin", originHost: "HOST", status: 101},
	{name: "Origin null refused", edits: []string{"+Origin: null"}, status: 403},
	{name: "OriginPatterns host match", edits: []string{"+Origin: https://app.example.com"}, opts: &duplex.AcceptOptions{OriginPatterns: []string{"*.example.com"}}, status: 101},
	{name: "OriginPatterns scheme mismatch", edits: []string{"+Origin: http://app.example.com"}, opts: &duplex.AcceptOptions{OriginPatterns: []string{"https://app.example.com"}}, status: 403},
	{name: "OriginPatterns no match", edits: []string{"+Origin: https://example.org"}, opts: &duplex.AcceptOptions{OriginPatterns: []string{"*.example.com"}}, status: 403},
	{name: "InsecureSkipOriginCheck", originHost: "evil.example", opts: &duplex.AcceptOptions{InsecureSkipOriginCheck: true}, status: 101},

	// Issue 15, item 5: one Origin, checked by scheme, host and port.
	{name: "two Origin headers, same origin first", edits: []string{"+Origin: http://HOST", "+Origin: http://evil.example"}, status: 403, bodyHas: "Origin"},
	{name: "two Origin headers, foreign first", edits: []string{"+Origin: http://evil.example", "+Origin: http://HOST"}, status: 403, bodyHas: "Origin"},
	{name: "two Origin headers, both allowed", edits: []string{"+Origin: http://HOST", "+Origin: http://HOST"}, status: 403, bodyHas: "Origin"},
	{name: "Origin with another port", edits: []string{"+Origin: http://127.0.0.1:1"}, status: 403},
	{name: "Origin with the default port written", edits: []string{"Host: example.com", "+Origin: http://example.com:80"}, status: 101},
	{name: "Origin with the other scheme's default port", edits: []string{"Host: example.com", "+Origin: http://example.com:443"}, status: 403},
	{name: "OriginPatterns scheme pattern, default port written", edits: []string{"+Origin: https://app.example.com:443"}, opts: &duplex.AcceptOptions{OriginPatterns: []string{"https://app.example.com"}}, status: 101},
	{name: "OriginPatterns scheme pattern, other port", edits: []string{"+Origin: https://app.example.com:8443"}, opts: &duplex.AcceptOptions{OriginPatterns: []string{"https://app.example.com"}}, status: 403},
	{name: "OriginPatterns scheme pattern with a port", edits: []string{"+Origin: https://app.example.com:8443"}, opts: &duplex.AcceptOptions{OriginPatterns: []string{"https://*.example.com:8443"}}, status: 101},
	{name: "OriginPatterns host pattern, any scheme", edits: []string{"+Origin: http://app.example.com"}, opts: &duplex.AcceptOptions{OriginPatterns: []string{"app.example.com"}}, status: 101},
	{name: "two Origin headers, both match a pattern", edits: []string{"+Origin: https://app.example.com", "+Origin: https://app.example.com"}, opts: &duplex.AcceptOptions{OriginPatterns: []string{"*.example.com"}}, status: 403},

	// Issue 15, item 4: no body, so bytes after the head are frames for
	// everyone. The frame (masked with key 0) would be echoed as
	// "smuggled" if the body were read as the WebSocket stream.
	{name: "Content-Length with a frame inside", edits: []string{"+Content-Length: 14"}, body: "\x81\x88\x00\x00\x00\x00smuggled", status: 400, bodyHas: "body"},
	{name: "chunked body", edits: []string{"+Transfer-Encoding: chunked"}, body: "0\n\n", status: 400, bodyHas: "body"},
	{name: "chunked body with Content-Length", edits: []string{"+Content-Length: 5", "+Transfer-Encoding: chunked"}, body: "0\n\n", status: 400},
	{name: "Content-Length: 0", edits: []string{"+Content-Length: 0"}, status: 101},

	{name: "subprotocol: the server's preference wins", edits: []string{"+Sec-WebSocket-Protocol: chat.v1, chat.v2"},
		opts: &duplex.AcceptOptions{Subprotocols: []string{"chat.v2", "chat.v1"}}, status: 101, header: map[string]string{"Sec-WebSocket-Protocol": "chat.v2"}},
	{name: "subprotocol offered on two lines", edits: []string{"+Sec-WebSocket-Protocol: other", "+Sec-WebSocket-Protocol: chat.v1"},
		opts: &duplex.AcceptOptions{Subprotocols: []string{"chat.v2", "chat.v1"}}, status: 101, header: map[string]string{"Sec-WebSocket-Protocol": "chat.v1"}},
	{name: "no common subprotocol", edits: []string{"+Sec-WebSocket-Protocol: other"},
		opts: &duplex.AcceptOptions{Subprotocols: []string{"chat.v1"}}, status: 101, header: map[string]string{"Sec-WebSocket-Protocol": ""}},

	{name: "handler header in the 101", setCookie: true, status: 101, header: map[string]string{"Set-Cookie": "session=1"}},
}

func TestAcceptHandshake(t *testing.T) {
	for _, tt := range acceptCases {
		t.Run(tt.name, func(t *testing.T) {
			accepted := make(chan error, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.setCookie {
					w.Header().Set("Set-Cookie", "session=1")
				}
				c, err := duplex.Accept(w, r, tt.opts)
				if err == nil {
					c.CloseNow()
				}
				accepted <- err
			}))
			defer testkit.CloseServer(t, srv)
			host := srv.Listener.Addr().String()
			edits := tt.edits
			if tt.originHost != "" {
				edits = append(edits, "+Origin: http://"+tt.originHost)
			}
			req := editRequest(host, edits) + tt.body
			status, header, body := testkit.RawRequest(t, host, req)
			if status != tt.status {
				t.Fatalf("status %d (%q); want %d\nrequest:\n%s", status, body, tt.status, req)
			}
			for k, want := range tt.header {
				if got := header.Get(k); got != want {
					t.Errorf("%s = %q; want %q", k, got, want)
				}
			}
			var err error
			select {
			case err = <-accepted:
			case <-time.After(testkit.Wait(t, 0)):
				t.Fatal("handler did not finish")
			}
			if status == 101 {
				if err != nil {
					t.Errorf("Accept = %v; want nil", err)
				}
				return
			}
			var he *duplex.HandshakeError
			if !errors.As(err, &he) || he.StatusCode != tt.status {
				t.Errorf("Accept = %v; want a *HandshakeError with status %d", err, tt.status)
			}
			// A refusal says why, briefly.
			body = strings.TrimSpace(body)
			if body == "" || len(body) > 200 || !strings.Contains(body, tt.bodyHas) {
				t.Errorf("body = %q; want a short reason mentioning %q", body, tt.bodyHas)
			}
		})
	}
}

// Dial checks the server's answer (RFC 6455 §4.1, the client's checks
// after "If the server's response is not 101") and reports a refusal as a
// *HandshakeError with the response.
func TestDialRefused(t *testing.T) {
	tests := []struct {
		name    string
		offer   []string // subprotocols offered
		respond func(key string) string
		status  int
		body    string
	}{
		{name: "wrong Sec-WebSocket-Accept", status: 101, respond: func(string) string {
			return "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\n\n"
		}},
		{name: "no Sec-WebSocket-Accept", status: 101, respond: func(string) string {
			return "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\n\n"
		}},
		{name: "no Upgrade", status: 101, respond: func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\nConnection: Upgrade\nSec-WebSocket-Accept: " + testkit.AcceptKey(key) + "\n\n"
		}},
		{name: "Upgrade: h2c", status: 101, respond: func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\nUpgrade: h2c\nConnection: Upgrade\nSec-WebSocket-Accept: " + testkit.AcceptKey(key) + "\n\n"
		}},
		{name: "no Connection", status: 101, respond: func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nSec-WebSocket-Accept: " + testkit.AcceptKey(key) + "\n\n"
		}},
		{name: "subprotocol when none was offered", status: 101, respond: func(key string) string {
			return testkit.Response101(key, "Sec-WebSocket-Protocol: chat")
		}},
		{name: "subprotocol not offered", offer: []string{"chat.v1"}, status: 101, respond: func(key string) string {
			return testkit.Response101(key, "Sec-WebSocket-Protocol: chat.v2")
		}},
		{name: "two subprotocols", offer: []string{"a", "b"}, status: 101, respond: func(key string) string {
			return testkit.Response101(key, "Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: b")
		}},
		{name: "permessage-deflate not offered", status: 101, respond: func(key string) string {
			return testkit.Response101(key, "Sec-WebSocket-Extensions: permessage-deflate")
		}},
		{name: "unknown extension", status: 101, respond: func(key string) string {
			return testkit.Response101(key, "Sec-WebSocket-Extensions: x-webkit-foo")
		}},
		{name: "401 with a body", status: 401, body: "token required", respond: func(string) string {
			return "HTTP/1.1 401 Unauthorized\nContent-Type: text/plain\nContent-Length: 14\n\ntoken required"
		}},
		{name: "200", status: 200, body: "hello", respond: func(string) string {
			return "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, peers := testkit.ServeHandshake(t, func(r *http.Request) string {
				return tt.respond(r.Header.Get("Sec-WebSocket-Key"))
			})
			ctx, cancel := testkit.Context(t, 0)
			defer cancel()
			c, resp, err := duplex.Dial(ctx, url, &duplex.DialOptions{Subprotocols: tt.offer})
			if err == nil {
				c.CloseNow()
				t.Fatal("Dial succeeded; want a *HandshakeError")
			}
			var he *duplex.HandshakeError
			if !errors.As(err, &he) {
				t.Fatalf("Dial error %v (%T); want a *HandshakeError", err, err)
			}
			if he.StatusCode != tt.status || string(he.Body) != tt.body {
				t.Errorf("HandshakeError{StatusCode: %d, Body: %q}; want %d, %q", he.StatusCode, he.Body, tt.status, tt.body)
			}
			if resp == nil || resp.StatusCode != tt.status || he.Response != resp {
				t.Errorf("response %v, HandshakeError.Response %v; want the %d response in both", resp, he.Response, tt.status)
			}
			// §4.1: the client fails the connection: it closes TCP and
			// sends no frame.
			(<-peers).ExpectEOF(t, 2*time.Second)
		})
	}
}

// What Dial sends, and a successful subprotocol agreement.
func TestDialRequest(t *testing.T) {
	url, peers := testkit.ServeHandshake(t, func(r *http.Request) string {
		return testkit.Response101(r.Header.Get("Sec-WebSocket-Key"), "Sec-WebSocket-Protocol: chat.v1")
	})
	u := strings.Replace(url, "ws://", "ws://user:pa%3Ass@", 1) + "/chat?room=1"
	ctx, cancel := testkit.Context(t, 0)
	defer cancel()
	c, _, err := duplex.Dial(ctx, u, &duplex.DialOptions{
		Subprotocols: []string{"chat.v2", "chat.v1"},
		HTTPHeader:   http.Header{"X-Trace": {"abc"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if got := c.Subprotocol(); got != "chat.v1" {
		t.Errorf("Subprotocol() = %q; want chat.v1", got)
	}
	peer := <-peers
	r := peer.Request
	if r.Method != "GET" || r.RequestURI != "/chat?room=1" || r.Proto != "HTTP/1.1" {
		t.Errorf("request line %s %s %s; want GET /chat?room=1 HTTP/1.1", r.Method, r.RequestURI, r.Proto)
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	for name, want := range map[string]string{
		"Upgrade":                "websocket",
		"Connection":             "Upgrade",
		"Sec-WebSocket-Version":  "13",
		"Sec-WebSocket-Protocol": "chat.v2, chat.v1",
		// base64("user:pa:ss"): the password is unescaped.
		"Authorization": "Basic dXNlcjpwYTpzcw==",
		"X-Trace":       "abc",
	} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s = %q; want %q", name, got, want)
		}
	}
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		t.Errorf("Sec-WebSocket-Key = %q; want base64 of 16 bytes", key)
	}
	if strings.Contains(r.Host, "user") || strings.Contains(r.RequestURI, "user") {
		t.Errorf("credentials leaked into Host %q or request URI %q", r.Host, r.RequestURI)
	}
}

// Dial gives up when its context ends, even if the server never answers,
// and says why with the context's error.
func TestDialContext(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.CheckNoGoroutineLeak(t)
			url, _ := testkit.ServeHandshake(t, func(*http.Request) string { return "" })
			ctx, cancel := tt.ctx()
			defer cancel()
			done := make(chan error, 1)
			go func() {
				c, _, err := duplex.Dial(ctx, url, nil)
				if err == nil {
					c.CloseNow()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) {
					t.Errorf("Dial = %v; want %v", err, tt.want)
				}
			case <-time.After(testkit.Wait(t, 0)):
				t.Fatalf("Dial still waiting %v after its context ended at 200ms", testkit.Timeout(0))
			}
		})
	}
}

// Over TLS the server's own origin is https: a page served over plain
// HTTP from the same host and port is another origin, one a network
// attacker can write, and is refused (issue 15, item 5).
func TestAcceptOriginSchemeOverTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := duplex.Accept(w, r, nil); err == nil {
			c.CloseNow()
		}
	}))
	defer srv.Close()
	host := srv.Listener.Addr().String()
	for _, tt := range []struct {
		origin string
		status int
	}{
		{"https://" + host, 101},
		{"http://" + host, 403},
		{"wss://" + host, 403},
	} {
		t.Run(tt.origin, func(t *testing.T) {
			nc, err := tls.Dial("tcp", host, &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(testkit.DefaultTimeout))
			req := strings.ReplaceAll(editRequest(host, []string{"+Origin: " + tt.origin}), "\n", "\r\n")
			if _, err := io.WriteString(nc, req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("Origin %s over TLS: status %d; want %d", tt.origin, resp.StatusCode, tt.status)
			}
		})
	}
}
