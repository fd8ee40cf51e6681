package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/wire"
)

const lifeSecret = "token-lifetime-secret"

// shortLived returns an HS256 token for sub whose session runs out about
// `left` from now: its exp is that far in the past of the leeway, so the
// upgrade still accepts it. golang-jwt keeps whole seconds, so the
// session ends between left-1s and left from now.
func shortLived(t *testing.T, sub string, left time.Duration) (tok string, ends time.Time) {
	t.Helper()
	exp := time.Now().Add(left - jwtLeeway).Unix()
	tok = signJWT(t, "HS256", []byte(lifeSecret), map[string]any{"sub": sub, "exp": exp})
	return tok, time.Unix(exp, 0).Add(jwtLeeway)
}

func longLived(t *testing.T, sub string, extra map[string]any) (string, int64) {
	t.Helper()
	exp := time.Now().Add(time.Hour).Unix()
	claims := map[string]any{"sub": sub, "exp": exp}
	for k, v := range extra {
		claims[k] = v
	}
	return signJWT(t, "HS256", []byte(lifeSecret), claims), exp
}

// readClose reads frames (skipping pings and data) until the close frame
// and returns its code and reason.
func readClose(t *testing.T, p *testkit.RawPeer) (uint16, string) {
	t.Helper()
	for {
		h, payload, err := p.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for a close frame: %v", err)
		}
		if h.Opcode != wire.OpClose {
			continue
		}
		code, reason, err := wire.ParseClose(payload)
		if err != nil {
			t.Fatalf("close frame % x: %v", payload, err)
		}
		p.WriteFrame(true, 0, wire.OpClose, true, wire.AppendClose(nil, code, ""))
		return code, reason
	}
}

// TestTokenExpiryCloses: a session whose JWT expires (after the leeway)
// is closed with 4401 "token expired", on /ws and /echo, and not before.
func TestTokenExpiryCloses(t *testing.T) { forEachKind(t, testTokenExpiryCloses) }

func testTokenExpiryCloses(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	ts := k.start(t, Options{JWTSecret: lifeSecret})
	t.Run("paths", func(t *testing.T) {
		for _, path := range []string{"/ws", "/echo"} {
			t.Run(path, func(t *testing.T) {
				t.Parallel()
				tok, ends := shortLived(t, "ada", 3*time.Second)
				p, _ := testkit.DialRaw(t, ts.ws+path+"?token="+tok, nil)
				// Alive before expiry.
				if err := p.WriteFrame(true, 0, wire.OpText, true, []byte("hi")); err != nil {
					t.Fatal(err)
				}
				if _, payload, err := p.ReadFrame(); err != nil || !strings.HasSuffix(string(payload), "hi") {
					t.Fatalf("before expiry: %q, %v", payload, err)
				}
				p.Timeout = time.Until(ends) + 5*time.Second // slack for a loaded machine
				code, reason := readClose(t, p)
				closed := time.Now()
				if code != uint16(StatusTokenExpired) || reason != "token expired" {
					t.Errorf("closed with %d %q; want 4401 %q", code, reason, "token expired")
				}
				if closed.Before(ends) {
					t.Errorf("closed %v before the token ran out (exp + leeway)", ends.Sub(closed))
				}
				p.ExpectEOF(t, testkit.CloseWait)
			})
		}
	})
	waitFor(t, 5*time.Second, "the sessions to end", func() bool { return ts.g.Connections() == 0 })
	if !strings.Contains(ts.logs.String(), "token expired, closing") {
		t.Errorf("no log line for the expiry:\n%s", ts.logs)
	}
}

// TestTokenRefreshKeepsSession: a refresh with a new token of the same
// user before expiry is answered with "refreshed" and the new exp, and
// the session outlives the first token. The new token's claims replace
// the old ones: here it may publish where the first could not.
func TestTokenRefreshKeepsSession(t *testing.T) { forEachKind(t, testTokenRefreshKeepsSession) }

func testTokenRefreshKeepsSession(t *testing.T, k sessionKindCase) {
	ts := k.start(t, Options{JWTSecret: lifeSecret})
	tok, ends := shortLived(t, "ada", 3*time.Second)
	cc := ts.connect(t, tok)
	cc.sendJSON(`{"type":"publish","channel":"news","data":1}`)
	if m := cc.expect("error"); m.Error != "forbidden" {
		t.Fatalf("publish with the first token: %v; want forbidden", m)
	}

	next, exp := longLived(t, "ada", map[string]any{"publish": "news"})
	cc.sendJSON(`{"type":"refresh","token":"` + next + `"}`)
	_, p, err := cc.c.Read(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Type string `json:"type"`
		Exp  int64  `json:"exp"`
	}
	if err := json.Unmarshal(p, &got); err != nil || got.Type != "refreshed" || got.Exp != exp {
		t.Fatalf("refresh answered %s; want {\"type\":\"refreshed\",\"exp\":%d}", p, exp)
	}

	// A second refresh within a second is not checked, only refused.
	cc.sendJSON(`{"type":"refresh","token":"` + next + `"}`)
	if m := cc.expect("error"); m.Error != "refresh too soon: at most one a second" {
		t.Errorf("second refresh at once: %v", m)
	}

	// Past the first token's end, the session is still up.
	time.Sleep(time.Until(ends) + 500*time.Millisecond)
	cc.sendJSON(`{"type":"subscribe","channel":"news"}`)
	cc.expect("subscribed")
	cc.sendJSON(`{"type":"publish","channel":"news","data":2}`)
	if m := cc.expect("message"); string(m.Data) != "2" {
		t.Errorf("after the refresh, publish delivered %v", m)
	}
	if n := ts.g.Connections(); n != 1 {
		t.Errorf("Connections() = %d; want 1", n)
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestTokenRefreshRefused: a refresh with anything but a valid token of
// the same user gets an error, then a 4401 close with the same reason.
func TestTokenRefreshRefused(t *testing.T) { forEachKind(t, testTokenRefreshRefused) }

func testTokenRefreshRefused(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	ts := k.start(t, Options{JWTSecret: lifeSecret, Tokens: []string{gwToken}})
	ada, _ := longLived(t, "ada", nil)
	bob, _ := longLived(t, "bob", nil)
	expired := signJWT(t, "HS256", []byte(lifeSecret), map[string]any{"sub": "ada", "exp": time.Now().Add(-time.Hour).Unix()})
	forged := signJWT(t, "HS256", []byte("not the secret"), map[string]any{"sub": "ada"})
	tests := []struct {
		name, session, msg, reason string
	}{
		{"other user", ada, `{"type":"refresh","token":"` + bob + `"}`, "token for another user"},
		{"expired", ada, `{"type":"refresh","token":"` + expired + `"}`, "token expired"},
		{"bad signature", ada, `{"type":"refresh","token":"` + forged + `"}`, "invalid token"},
		{"garbage", ada, `{"type":"refresh","token":"x.y.z"}`, "invalid token"},
		{"no token", ada, `{"type":"refresh"}`, "missing credentials"},
		{"token not a string", ada, `{"type":"refresh","token":7}`, "bad request: token: want string"},
		{"static-token session, JWT refresh", gwToken, `{"type":"refresh","token":"` + ada + `"}`, "token for another user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := testkit.DialRaw(t, ts.ws+"/ws?token="+tt.session, nil)
			if err := p.WriteFrame(true, 0, wire.OpText, true, []byte(tt.msg)); err != nil {
				t.Fatal(err)
			}
			h, payload, err := p.ReadFrame()
			if err != nil || h.Opcode != wire.OpText {
				t.Fatalf("want an error message first; got %v % q, %v", h.Opcode, payload, err)
			}
			var m errorReply
			if err := json.Unmarshal(payload, &m); err != nil || m.Type != "error" || m.Error != "refresh refused: "+tt.reason {
				t.Errorf("got %s; want error %q", payload, "refresh refused: "+tt.reason)
			}
			code, reason := readClose(t, p)
			if code != uint16(StatusTokenExpired) || reason != "refresh refused: "+tt.reason {
				t.Errorf("closed with %d %q; want 4401 %q", code, reason, "refresh refused: "+tt.reason)
			}
			p.ExpectEOF(t, testkit.CloseWait)
		})
	}
}

// TestJWTClaimRulesAtUpgrade: --jwt-audience, --jwt-issuer and
// --jwt-require-exp refuse the upgrade with 401 and say why.
func TestJWTClaimRulesAtUpgrade(t *testing.T) {
	ts := startGateway(t, Options{JWTSecret: lifeSecret, JWTAudience: "duplex", JWTIssuer: "https://idp.example", JWTRequireExp: true})
	exp := time.Now().Add(time.Hour).Unix()
	good := map[string]any{"sub": "ada", "aud": "duplex", "iss": "https://idp.example", "exp": exp}
	tests := []struct {
		name   string
		change map[string]any // nil value deletes
		reason string
	}{
		{"all good", nil, ""},
		{"other audience", map[string]any{"aud": "other"}, "invalid audience"},
		{"no audience", map[string]any{"aud": nil}, "invalid audience"},
		{"other issuer", map[string]any{"iss": "https://evil.example"}, "invalid issuer"},
		{"no exp", map[string]any{"exp": nil}, "token has no exp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := map[string]any{}
			for k, v := range good {
				claims[k] = v
			}
			for k, v := range tt.change {
				if v == nil {
					delete(claims, k)
				} else {
					claims[k] = v
				}
			}
			tok := signJWT(t, "HS256", []byte(lifeSecret), claims)
			c, _, err := duplex.Dial(ctxFor(t, 5*time.Second), ts.ws+"/ws?token="+tok, nil)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				c.CloseNow()
				return
			}
			var he *duplex.HandshakeError
			if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized {
				t.Fatalf("Dial error %v; want a 401", err)
			}
			if body := string(he.Body); !strings.Contains(body, tt.reason) {
				t.Errorf("401 body %q; want it to say %q", body, tt.reason)
			}
		})
	}
}

// TestExpireIfDue pins the one function an event loop would call.
func TestExpireIfDue(t *testing.T) {
	ts := startGateway(t, Options{})
	s := ts.g.newGoSession(nil, httptestRequest(), &Identity{User: "u"}, false)
	now := time.Now()
	if got := s.expireIfDue(now); !got.IsZero() {
		t.Errorf("no expiry: expireIfDue = %v; want zero", got)
	}
	s.setExpiry(now.Add(time.Minute))
	if got := s.expireIfDue(now); got.UnixMilli() != now.Add(time.Minute).UnixMilli() {
		t.Errorf("expireIfDue = %v; want %v", got, now.Add(time.Minute))
	}
	if s.ending() {
		t.Fatal("session ended before its expiry")
	}
	s.setExpiry(time.Unix(1e15, 0)) // beyond year 9999: never
	if got := s.expireIfDue(now); !got.IsZero() {
		t.Errorf("far future: expireIfDue = %v; want zero (never)", got)
	}
	s.setExpiry(now.Add(-time.Millisecond))
	s.expireIfDue(now)
	if code, reason := s.closeCode(); code != StatusTokenExpired || reason != "token expired" {
		t.Errorf("after expiry: close %d %q; want 4401 token expired", code, reason)
	}
}

func httptestRequest() *http.Request {
	r, _ := http.NewRequest("GET", "/ws", nil)
	r.RemoteAddr = "192.0.2.1:" + strconv.Itoa(1234)
	return r
}
