package gateway

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/testkit"
)

// rawRequestFrom is testkit.RawRequest from the local address ip, so that
// a test can be several clients.
func rawRequestFrom(t *testing.T, ip, addr, requestText string) (int, http.Header) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: testkit.DefaultTimeout}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", ip, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testkit.DefaultTimeout))
	if _, err := c.Write([]byte(strings.ReplaceAll(requestText, "\n", "\r\n"))); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("request from %s: %v", ip, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestAuthFailureLimit guesses tokens from one address until it gets 429,
// then checks that the address is refused even with the right token (a
// guess must not be told apart), that another address is not affected,
// and that API keys share the count.
func TestAuthFailureLimit(t *testing.T) {
	const limit = 5
	ts := startGateway(t, Options{AuthFailureLimit: limit, APIKey: "api-key-1"})
	const attacker, other = "127.0.0.1", "127.0.0.2"
	guess := func(i int) string { return handshake("GET", "/ws?token=guess"+strconv.Itoa(i), ts.addr) }
	for i := 0; i < limit; i++ {
		if status, _ := rawRequestFrom(t, attacker, ts.addr, guess(i)); status != 401 {
			t.Fatalf("guess %d: status %d; want 401", i, status)
		}
	}
	status, hdr := rawRequestFrom(t, attacker, ts.addr, guess(limit))
	retry, err := strconv.Atoi(hdr.Get("Retry-After"))
	// 5 failures a minute: one comes back every 12 s.
	if status != 429 || err != nil || retry < 1 || retry > 12 {
		t.Fatalf("guess %d: status %d, Retry-After %q; want 429 with 1..12 s", limit, status, hdr.Get("Retry-After"))
	}
	good := handshake("GET", "/ws?token="+gwToken, ts.addr)
	if status, _ := rawRequestFrom(t, attacker, ts.addr, good); status != 429 {
		t.Errorf("right token from the limited address: status %d; want 429 (not a hint that it is right)", status)
	}
	apiReq := "POST /api/publish HTTP/1.1\nHost: x\nAuthorization: Bearer api-key-1\nContent-Length: 0\n\n"
	if status, _ := rawRequestFrom(t, attacker, ts.addr, apiReq); status != 429 {
		t.Errorf("API from the limited address: status %d; want 429", status)
	}

	// Another address: its own count, its own key.
	if status, _ := rawRequestFrom(t, other, ts.addr, good); status != 101 {
		t.Errorf("right token from another address: status %d; want 101", status)
	}
	if status, _ := rawRequestFrom(t, other, ts.addr, guess(99)); status != 401 {
		t.Errorf("wrong token from another address: status %d; want 401", status)
	}
	if got := ts.metric(t, `duplex_handshake_refusals_total{status="429"}`); got != 2 {
		t.Errorf(`duplex_handshake_refusals_total{status="429"} = %v; want 2`, got)
	}
	if got := ts.metric(t, "duplex_auth_rate_limited_total"); got != 3 {
		t.Errorf("duplex_auth_rate_limited_total = %v; want 3", got)
	}
}

// TestAuthFailureLimitMissing: requests without any credential are not
// guesses; a page without its token keeps getting 401, which says what to
// fix, not 429.
func TestAuthFailureLimitMissing(t *testing.T) {
	ts := startGateway(t, Options{AuthFailureLimit: 2})
	for i := 0; i < 5; i++ {
		status, _, _ := testkit.RawRequest(t, ts.addr, "GET /api/auth-check HTTP/1.1\nHost: x\n\n")
		if status != 401 {
			t.Fatalf("request %d without credentials: status %d; want 401", i, status)
		}
	}
}

func TestAuthLimiterRefill(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := newAuthLimiter(6, 100) // one failure back every 10 s
	l.now = func() time.Time { return now }
	for i := 0; i < 6; i++ {
		if _, ok := l.check("a"); !ok {
			t.Fatalf("check before failure %d refused", i)
		}
		l.fail("a")
	}
	wait, ok := l.check("a")
	if ok || !near(wait, 10*time.Second) {
		t.Fatalf("after 6 failures: check = %v, %v; want refused for 10s", wait, ok)
	}
	now = now.Add(4 * time.Second)
	if wait, ok := l.check("a"); ok || !near(wait, 6*time.Second) {
		t.Errorf("4 s later: check = %v, %v; want refused for 6s", wait, ok)
	}
	now = now.Add(6 * time.Second)
	if _, ok := l.check("a"); !ok {
		t.Errorf("10 s later: still refused")
	}
	l.fail("a")
	if _, ok := l.check("a"); ok {
		t.Errorf("a failure right after the refill: allowed; want refused again")
	}
}

// near reports whether d is want, give or take a millisecond of
// floating-point rounding.
func near(d, want time.Duration) bool { return (d - want).Abs() < time.Millisecond }

// TestAuthLimiterBounded: the table never holds more than its maximum;
// the address that failed least recently is forgotten first.
func TestAuthLimiterBounded(t *testing.T) {
	l := newAuthLimiter(1, 3)
	for i := 0; i < 10; i++ {
		l.fail("10.0.0." + strconv.Itoa(i))
		if n := l.size(); n > 3 {
			t.Fatalf("after %d addresses: %d remembered; want at most 3", i+1, n)
		}
	}
	for i := 0; i < 10; i++ {
		_, ok := l.check("10.0.0." + strconv.Itoa(i))
		if want := i < 7; ok != want {
			t.Errorf("10.0.0.%d allowed = %v; want %v", i, ok, want)
		}
	}
	if newAuthLimiter(-1, 3) != nil {
		t.Errorf("a negative limit gave a limiter; want none")
	}
}

func TestClientAddr(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:5000":                     "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443":         "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:ffff:ffff:1]:80": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:1":               "192.0.2.7",
		"@":                                  "@",
	} {
		if got := clientAddr(&http.Request{RemoteAddr: remote}); got != want {
			t.Errorf("clientAddr(%q) = %q; want %q", remote, got, want)
		}
	}
}
