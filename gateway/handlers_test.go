package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/testkit"
)

// handshake is a valid upgrade request for path on host, with extra
// header lines, in the plain-newline form testkit.RawRequest takes.
func handshake(method, path, host string, extra ...string) string {
	s := method + " " + path + " HTTP/1.1\n" +
		"Host: " + host + "\n" +
		"Upgrade: websocket\n" +
		"Connection: Upgrade\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n" +
		"Sec-WebSocket-Version: 13\n"
	for _, l := range extra {
		s += l + "\n"
	}
	return s + "\n"
}

// TestRefusals sends raw handshakes that must be refused before any
// upgrade, and checks the status, the headers that explain it, and that
// no connection was opened.
func TestRefusals(t *testing.T) {
	ts := startGateway(t, Options{})
	host := ts.addr
	tok := "?token=" + gwToken
	replace := func(req, old, new string) string { return strings.Replace(req, old, new, 1) }
	tests := []struct {
		name       string
		req        string
		status     int
		header     string // a response header that must be set
		headerWant string // ...to a value containing this
		body       string // the body must contain this
	}{
		{
			name:   "no token",
			req:    handshake("GET", "/ws", host),
			status: 401, header: "WWW-Authenticate", headerWant: `Bearer realm="duplex"`,
			body: "missing credentials",
		},
		{
			name:   "bad token",
			req:    handshake("GET", "/ws?token=wrong", host),
			status: 401, header: "WWW-Authenticate", headerWant: "Bearer",
			body: "invalid token",
		},
		{
			name:   "bad bearer on /echo",
			req:    handshake("GET", "/echo", host, "Authorization: Bearer wrong"),
			status: 401, header: "WWW-Authenticate", headerWant: "Bearer",
			body: "invalid token",
		},
		{
			name:   "cross-origin",
			req:    handshake("GET", "/ws"+tok, host, "Origin: https://evil.example"),
			status: 403, body: "evil.example",
		},
		{
			name:   "POST",
			req:    handshake("POST", "/ws"+tok, host, "Content-Length: 0"),
			status: 405, header: "Allow", headerWant: "GET",
		},
		{
			name:   "bad key",
			req:    replace(handshake("GET", "/ws"+tok, host), "dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
			status: 400, body: "Sec-WebSocket-Key",
		},
		{
			name:   "version 8",
			req:    replace(handshake("GET", "/echo"+tok, host), "Version: 13", "Version: 8"),
			status: 426, header: "Sec-WebSocket-Version", headerWant: "13",
		},
		{
			name:   "no upgrade header",
			req:    replace(handshake("GET", "/ws"+tok, host), "Upgrade: websocket\n", ""),
			status: 400,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := testkit.RawRequest(t, ts.addr, tt.req)
			if status != tt.status {
				t.Fatalf("status = %d (body %q); want %d", status, body, tt.status)
			}
			if tt.header != "" && !strings.Contains(hdr.Get(tt.header), tt.headerWant) {
				t.Errorf("%s = %q; want it to contain %q", tt.header, hdr.Get(tt.header), tt.headerWant)
			}
			if !strings.Contains(body, tt.body) {
				t.Errorf("body = %q; want it to contain %q", body, tt.body)
			}
			if hdr.Get("Sec-WebSocket-Accept") != "" || hdr.Get("Upgrade") != "" {
				t.Errorf("refusal carries upgrade headers: %v", hdr)
			}
		})
	}
	if n := ts.metric(t, "duplex_connections_total"); n != 0 {
		t.Errorf("duplex_connections_total = %v after refusals only; want 0", n)
	}
	for status, want := range map[string]float64{"401": 3, "403": 1, "405": 1, "400": 2, "426": 1} {
		series := `duplex_handshake_refusals_total{status="` + status + `"}`
		if got := ts.metric(t, series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}
	if strings.Contains(ts.logs.String(), "msg=connected") {
		t.Errorf("a refused request was logged as connected:\n%s", ts.logs)
	}
}

func TestAllowOrigin(t *testing.T) {
	ts := startGateway(t, Options{AllowOrigin: []string{"*.example.com"}})
	hdr := http.Header{"Origin": {"https://app.example.com"}}
	p, _ := testkit.DialRaw(t, ts.ws+"/ws?token="+gwToken, hdr)
	p.Close()
	status, _, _ := testkit.RawRequest(t, ts.addr,
		handshake("GET", "/ws?token="+gwToken, ts.addr, "Origin: https://example.org"))
	if status != 403 {
		t.Errorf("origin example.org: status %d; want 403", status)
	}
}

func TestMaxConnections(t *testing.T) {
	ts := startGateway(t, Options{MaxConnections: 1})
	first, _ := testkit.DialRaw(t, ts.ws+"/ws?token="+gwToken, nil)
	waitFor(t, 5*time.Second, "the first connection", func() bool { return ts.g.Connections() == 1 })

	status, hdr, body := testkit.RawRequest(t, ts.addr, handshake("GET", "/echo?token="+gwToken, ts.addr))
	if status != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "too many connections") {
		t.Errorf("second connection: %d %q, Retry-After %q; want 503 too many connections with Retry-After",
			status, body, hdr.Get("Retry-After"))
	}
	if got := ts.metric(t, `duplex_handshake_refusals_total{status="503"}`); got != 1 {
		t.Errorf("503 refusals = %v; want 1", got)
	}

	// The slot comes back when the first connection ends.
	first.Send("88 02 03e8") // close 1000
	first.ExpectClose(t, 1000)
	waitFor(t, 5*time.Second, "the slot to be released", func() bool { return ts.g.Connections() == 0 })
	p, _ := testkit.DialRaw(t, ts.ws+"/echo?token="+gwToken, nil)
	p.Close()
}

func TestAuthCheck(t *testing.T) {
	ts := startGateway(t, Options{})
	if resp, _ := ts.get(t, "/api/auth-check?token="+gwToken, nil); resp.StatusCode != 204 {
		t.Errorf("good token: %d; want 204", resp.StatusCode)
	}
	if resp, _ := ts.get(t, "/api/auth-check", http.Header{"Authorization": {"Bearer " + gwToken}}); resp.StatusCode != 204 {
		t.Errorf("good bearer: %d; want 204", resp.StatusCode)
	}
	resp, body := ts.get(t, "/api/auth-check?token=nope", nil)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" || !strings.Contains(body, "invalid token") {
		t.Errorf("bad token: %d %q, WWW-Authenticate %q; want 401 invalid token with a challenge",
			resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
	}
	if got := ts.metric(t, `duplex_auth_failures_total{reason="invalid token"}`); got != 1 {
		t.Errorf("auth failures = %v; want 1", got)
	}

	open := startGateway(t, Options{NoAuth: true})
	if resp, _ := open.get(t, "/api/auth-check", nil); resp.StatusCode != 204 {
		t.Errorf("--no-auth: %d; want 204", resp.StatusCode)
	}
	if !strings.Contains(open.logs.String(), "level=WARN") || !strings.Contains(open.logs.String(), "no-auth") {
		t.Errorf("--no-auth logged no warning:\n%s", open.logs)
	}
}

func TestStaticRoutes(t *testing.T) {
	ts := startGateway(t, Options{})
	tests := []struct {
		path, ctype, contains string
		status                int
	}{
		{"/", "text/html", "/duplex.js", 200},
		{"/?token=abc", "text/html", "<title>", 200},
		{"/duplex.js", "javascript", "export function connect", 200},
		{"/healthz", "application/json", `"status":"ok"`, 200},
		{"/nope", "", "", 404},
	}
	for _, tt := range tests {
		resp, body := ts.get(t, tt.path, nil)
		if resp.StatusCode != tt.status || !strings.Contains(resp.Header.Get("Content-Type"), tt.ctype) || !strings.Contains(body, tt.contains) {
			t.Errorf("GET %s = %d %q (%.40q…); want %d, %q, containing %q",
				tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.status, tt.ctype, tt.contains)
		}
	}
	if resp, _ := ts.get(t, "/", nil); resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("page Referrer-Policy = %q; want no-referrer (its URL holds the token)", resp.Header.Get("Referrer-Policy"))
	}
	var h struct{ Status string }
	_, body := ts.get(t, "/healthz", nil)
	if err := json.Unmarshal([]byte(body), &h); err != nil || h.Status != "ok" {
		t.Errorf("/healthz body %q: %v", body, err)
	}
}
