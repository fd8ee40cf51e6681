package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	testToken  = "s3cret-static-token"
	testSecret = "hs256-test-secret"
)

var testNow = time.Unix(1_700_000_000, 0)

func bearer(tok string) *http.Request {
	r := httptest.NewRequest("GET", "/ws", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func withQuery(tok string) *http.Request {
	return httptest.NewRequest("GET", "/ws?x=1&token="+url.QueryEscape(tok), nil)
}

func withCookie(tok string) *http.Request {
	r := httptest.NewRequest("GET", "/ws", nil)
	r.AddCookie(&http.Cookie{Name: "duplex_token", Value: tok})
	return r
}

func withBasic(user, pass string) *http.Request {
	r := httptest.NewRequest("GET", "/ws", nil)
	r.SetBasicAuth(user, pass)
	return r
}

// assertReason fails unless err is nil (want == "") or an *AuthError with
// Reason want.
func assertReason(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("err = %v; want nil", err)
		}
		return
	}
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T); want *AuthError %q", err, err, want)
	}
	if ae.Reason != want {
		t.Fatalf("reason = %q; want %q", ae.Reason, want)
	}
}

func tokenUser(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return "token:" + hex.EncodeToString(sum[:])[:4]
}

func TestAuthenticate(t *testing.T) {
	rsaKey, ecKey := testKeys(t)
	secret := []byte(testSecret)
	future := float64(testNow.Add(time.Hour).Unix())
	past := float64(testNow.Add(-time.Hour).Unix())

	hsCfg := AuthConfig{Tokens: []string{"other-token", testToken}, Basic: []string{"ann:pa:ss", "bob:pw"}, JWTSecret: secret}
	rsCfg := AuthConfig{JWTKeyPEM: pemPublic(t, &rsaKey.PublicKey)}
	esCfg := AuthConfig{JWTKeyPEM: pemPublic(t, &ecKey.PublicKey)}

	hs := func(claims map[string]any) string { return signJWT(t, "HS256", secret, claims) }
	// The key-confusion attack: an HS256 token whose HMAC key is the
	// server's RSA public key, as a naive verifier would use it.
	confused := signJWT(t, "HS256", rsCfg.JWTKeyPEM, map[string]any{"sub": "mallory"})
	hsNoCrit := func(h map[string]any) string {
		return signJWTHeader(t, h, secret, map[string]any{"sub": "x"})
	}

	noHeader := httptest.NewRequest("GET", "/ws", nil)
	mixed := withQuery(testToken)
	mixed.Header.Set("Authorization", "Bearer wrong")
	queryBeatsCookie := withQuery("wrong")
	queryBeatsCookie.AddCookie(&http.Cookie{Name: "duplex_token", Value: testToken})
	lowerBearer := httptest.NewRequest("GET", "/ws", nil)
	lowerBearer.Header.Set("Authorization", "bearer "+testToken)
	basicBearer := withBasic("ann", "pa:ss")
	emptyQuery := httptest.NewRequest("GET", "/ws?token=", nil)
	emptyQuery.AddCookie(&http.Cookie{Name: "duplex_token", Value: testToken})

	tests := []struct {
		name       string
		cfg        AuthConfig
		req        *http.Request
		wantUser   string
		wantMethod string
		wantReason string
	}{
		// Where credentials are found.
		{"query token", hsCfg, withQuery(testToken), tokenUser(testToken), "token", ""},
		{"bearer token", hsCfg, bearer(testToken), tokenUser(testToken), "token", ""},
		{"bearer scheme case-insensitive", hsCfg, lowerBearer, tokenUser(testToken), "token", ""},
		{"cookie token", hsCfg, withCookie(testToken), tokenUser(testToken), "token", ""},
		{"basic", hsCfg, withBasic("bob", "pw"), "bob", "basic", ""},
		{"basic password with colon", hsCfg, basicBearer, "ann", "basic", ""},
		{"first token wins (query over bearer)", hsCfg, mixed, tokenUser(testToken), "token", ""},
		{"first token wins, no fallback (query over cookie)", hsCfg, queryBeatsCookie, "", "", reasonInvalidToken},
		{"empty query token is absent", hsCfg, emptyQuery, tokenUser(testToken), "token", ""},
		{"no credentials", hsCfg, noHeader, "", "", reasonMissing},

		// Static tokens and Basic.
		{"wrong token", hsCfg, bearer("nope"), "", "", reasonInvalidToken},
		{"token prefix", hsCfg, bearer(testToken[:5]), "", "", reasonInvalidToken},
		{"token no tokens configured", AuthConfig{Basic: []string{"a:b"}}, bearer(testToken), "", "", reasonInvalidToken},
		{"basic wrong password", hsCfg, withBasic("bob", "nope"), "", "", reasonInvalidBasic},
		{"basic password of other user", hsCfg, withBasic("bob", "pa:ss"), "", "", reasonInvalidBasic},
		{"basic unknown user", hsCfg, withBasic("eve", "pw"), "", "", reasonInvalidBasic},
		{"basic not configured", AuthConfig{Tokens: []string{testToken}}, withBasic("bob", "pw"), "", "", reasonInvalidBasic},
		{"nothing configured", AuthConfig{}, bearer(testToken), "", "", reasonInvalidToken},
		{"no auth", AuthConfig{NoAuth: true}, noHeader, "anonymous", "none", ""},
		{"no auth ignores bad credentials", AuthConfig{NoAuth: true, Tokens: []string{testToken}}, bearer("nope"), "anonymous", "none", ""},

		// HS256.
		{"jwt hs256 valid", hsCfg, bearer(hs(map[string]any{"sub": "ann", "exp": future})), "ann", "jwt", ""},
		{"jwt in query", hsCfg, withQuery(hs(map[string]any{"sub": "q"})), "q", "jwt", ""},
		{"jwt in cookie", hsCfg, withCookie(hs(map[string]any{"sub": "c"})), "c", "jwt", ""},
		{"jwt no sub", hsCfg, bearer(hs(map[string]any{})), "", "jwt", ""},
		{"jwt sub not string", hsCfg, bearer(hs(map[string]any{"sub": 7})), "", "", reasonInvalidToken},
		{"jwt bad signature", hsCfg, bearer(signJWT(t, "HS256", []byte("wrong key"), map[string]any{"sub": "ann"})), "", "", reasonInvalidToken},
		{"jwt tampered payload", hsCfg, bearer(tamper(t, hs(map[string]any{"sub": "ann"}))), "", "", reasonInvalidToken},
		{"jwt expired", hsCfg, bearer(hs(map[string]any{"sub": "ann", "exp": past})), "", "", reasonExpired},
		{"jwt nbf in future", hsCfg, bearer(hs(map[string]any{"sub": "ann", "nbf": future})), "", "", reasonNotYetValid},
		{"jwt alg none", hsCfg, bearer(signJWT(t, "none", nil, map[string]any{"sub": "ann"})), "", "", reasonUnsupportedAlg},
		{"jwt alg None", hsCfg, bearer(signJWT(t, "None", nil, map[string]any{"sub": "ann"})), "", "", reasonUnsupportedAlg},
		{"jwt alg HS512", hsCfg, bearer(signJWT(t, "HS512", secret, map[string]any{"sub": "ann"})), "", "", reasonUnsupportedAlg},
		{"jwt RS256 to HS256 config", hsCfg, bearer(signJWT(t, "RS256", rsaKey, map[string]any{"sub": "ann"})), "", "", reasonUnsupportedAlg},
		{"jwt crit header", hsCfg, bearer(hsNoCrit(map[string]any{"alg": "HS256", "crit": []string{"b64"}})), "", "", reasonInvalidToken},
		{"jwt malformed", hsCfg, bearer("a.b.c"), "", "", reasonInvalidToken},
		{"jwt two parts", hsCfg, bearer("eyJhbGciOiJIUzI1NiJ9.e30"), "", "", reasonInvalidToken},
		{"jwt not configured", AuthConfig{Tokens: []string{testToken}}, bearer(hs(map[string]any{"sub": "ann"})), "", "", reasonInvalidToken},

		// RS256.
		{"jwt rs256 valid", rsCfg, bearer(signJWT(t, "RS256", rsaKey, map[string]any{"sub": "rsa", "exp": future})), "rsa", "jwt", ""},
		{"jwt rs256 expired", rsCfg, bearer(signJWT(t, "RS256", rsaKey, map[string]any{"sub": "rsa", "exp": past})), "", "", reasonExpired},
		{"jwt rs256 bad signature", rsCfg, bearer(tamper(t, signJWT(t, "RS256", rsaKey, map[string]any{"sub": "rsa"}))), "", "", reasonInvalidToken},
		{"jwt key confusion HS256 to RS256 config", rsCfg, bearer(confused), "", "", reasonUnsupportedAlg},
		{"jwt ES256 to RS256 config", rsCfg, bearer(signJWT(t, "ES256", ecKey, map[string]any{"sub": "x"})), "", "", reasonUnsupportedAlg},
		{"jwt alg none to RS256 config", rsCfg, bearer(signJWT(t, "none", nil, map[string]any{"sub": "x"})), "", "", reasonUnsupportedAlg},

		// ES256.
		{"jwt es256 valid", esCfg, bearer(signJWT(t, "ES256", ecKey, map[string]any{"sub": "ec"})), "ec", "jwt", ""},
		{"jwt es256 nbf future", esCfg, bearer(signJWT(t, "ES256", ecKey, map[string]any{"sub": "ec", "nbf": future})), "", "", reasonNotYetValid},
		{"jwt es256 bad signature", esCfg, bearer(tamper(t, signJWT(t, "ES256", ecKey, map[string]any{"sub": "ec"}))), "", "", reasonInvalidToken},
		{"jwt RS256 to ES256 config", esCfg, bearer(signJWT(t, "RS256", rsaKey, map[string]any{"sub": "x"})), "", "", reasonUnsupportedAlg},
		{"jwt HS256 to ES256 config", esCfg, bearer(signJWT(t, "HS256", esCfg.JWTKeyPEM, map[string]any{"sub": "x"})), "", "", reasonUnsupportedAlg},

		// Secret and key together: each key keeps its own alg.
		{"both keys HS256", AuthConfig{JWTSecret: secret, JWTKeyPEM: rsCfg.JWTKeyPEM}, bearer(hs(map[string]any{"sub": "h"})), "h", "jwt", ""},
		{"both keys RS256", AuthConfig{JWTSecret: secret, JWTKeyPEM: rsCfg.JWTKeyPEM}, bearer(signJWT(t, "RS256", rsaKey, map[string]any{"sub": "r"})), "r", "jwt", ""},
		{"both keys confusion", AuthConfig{JWTSecret: secret, JWTKeyPEM: rsCfg.JWTKeyPEM}, bearer(confused), "", "", reasonInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Now = func() time.Time { return testNow }
			a, err := NewAuthenticator(cfg)
			if err != nil {
				t.Fatalf("NewAuthenticator: %v", err)
			}
			id, err := a.Authenticate(tt.req)
			assertReason(t, err, tt.wantReason)
			if err != nil {
				if id.Method != "" || id.User != "" || id.Claims != nil {
					t.Errorf("identity on failure = %+v; want zero", id)
				}
				if want := "duplex: unauthorized: " + tt.wantReason; err.Error() != want {
					t.Errorf("Error() = %q; want %q", err.Error(), want)
				}
				return
			}
			if id.User != tt.wantUser || id.Method != tt.wantMethod {
				t.Errorf("identity = {User:%q Method:%q}; want {User:%q Method:%q}", id.User, id.Method, tt.wantUser, tt.wantMethod)
			}
			if (id.Claims != nil) != (id.Method == "jwt") {
				t.Errorf("Claims = %v for method %q", id.Claims, id.Method)
			}
			if strings.Contains(id.User, testToken) {
				t.Errorf("identity user %q leaks the token", id.User)
			}
		})
	}
}

// tamper changes a JWT's payload bytes but keeps it valid JSON, so only the
// signature check can catch it.
func tamper(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	// Append a space: still valid JSON, different bytes.
	parts[1] = b64.EncodeToString(append(payload, ' '))
	return strings.Join(parts, ".")
}

func TestAuthenticateClaims(t *testing.T) {
	a, err := NewAuthenticator(AuthConfig{JWTSecret: []byte(testSecret), Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	tok := signJWT(t, "HS256", []byte(testSecret), map[string]any{"sub": "ann", "channels": []string{"news/*"}, "role": "admin"})
	id, err := a.Authenticate(bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	if id.Claims["role"] != "admin" {
		t.Errorf("Claims[role] = %v; want admin", id.Claims["role"])
	}
	if !id.ChannelAllowed("news/today", false) || id.ChannelAllowed("sports", false) {
		t.Errorf("channels claim not applied: %+v", id.Claims)
	}
}

func TestNewAuthenticatorErrors(t *testing.T) {
	tests := []struct {
		name   string
		cfg    AuthConfig
		secret string // must not appear in the error
	}{
		{"basic without colon", AuthConfig{Basic: []string{"annhunter2"}}, "annhunter2"},
		{"basic empty user", AuthConfig{Basic: []string{":hunter2"}}, "hunter2"},
		{"basic empty password", AuthConfig{Basic: []string{"ann:"}}, ""},
		{"empty token", AuthConfig{Tokens: []string{"ok", ""}}, ""},
		{"bad PEM", AuthConfig{JWTKeyPEM: []byte("-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n")}, ""},
		{"not PEM", AuthConfig{JWTKeyPEM: []byte("hunter2")}, "hunter2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewAuthenticator(tt.cfg)
			if err == nil {
				t.Fatal("NewAuthenticator succeeded; want error")
			}
			if !strings.HasPrefix(err.Error(), "duplex: ") {
				t.Errorf("error %q lacks the duplex: prefix", err)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q leaks %q", err, tt.secret)
			}
		})
	}
}

func TestChallenge(t *testing.T) {
	tests := []struct {
		cfg  AuthConfig
		want string
	}{
		{AuthConfig{Tokens: []string{"t"}}, `Bearer realm="duplex"`},
		{AuthConfig{JWTSecret: []byte("k")}, `Bearer realm="duplex"`},
		{AuthConfig{Basic: []string{"a:b"}}, `Bearer realm="duplex", Basic realm="duplex"`},
	}
	for _, tt := range tests {
		a, err := NewAuthenticator(tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Challenge(); got != tt.want {
			t.Errorf("Challenge() = %q; want %q", got, tt.want)
		}
	}
}

func TestGenerateToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, err := GenerateToken()
		if err != nil {
			t.Fatal(err)
		}
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(b) != 16 {
			t.Fatalf("GenerateToken() = %q: want 16 bytes of base64url (err %v)", tok, err)
		}
		if url.QueryEscape(tok) != tok {
			t.Fatalf("GenerateToken() = %q needs escaping in a URL", tok)
		}
		if seen[tok] {
			t.Fatalf("GenerateToken() repeated %q", tok)
		}
		seen[tok] = true
	}
	// A generated token works as a static token.
	tok, _ := GenerateToken()
	a, err := NewAuthenticator(AuthConfig{Tokens: []string{tok}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(withQuery(tok)); err != nil {
		t.Fatal(err)
	}
}

func TestChannelAllowed(t *testing.T) {
	jwt := func(claims map[string]any) Identity { return Identity{User: "u", Method: "jwt", Claims: claims} }
	tests := []struct {
		name    string
		id      Identity
		channel string
		publish bool
		want    bool
	}{
		{"token subscribe", Identity{Method: "token"}, "any", false, true},
		{"token publish", Identity{Method: "token"}, "any", true, true},
		{"basic publish", Identity{Method: "basic"}, "a/b", true, true},
		{"none publish", Identity{Method: "none"}, "x", true, true},
		{"zero identity", Identity{}, "x", false, false},
		{"unknown method", Identity{Method: "magic"}, "x", true, false},

		{"jwt no claims subscribe", jwt(map[string]any{}), "x", false, true},
		{"jwt no claims publish", jwt(map[string]any{}), "x", true, false},
		{"jwt star subscribe", jwt(map[string]any{"channels": []any{"*"}}), "a/b/c", false, true},
		{"jwt star publish", jwt(map[string]any{"publish": []any{"*"}}), "a/b", true, true},
		{"jwt glob match", jwt(map[string]any{"channels": []any{"room-*"}}), "room-7", false, true},
		{"jwt glob no match", jwt(map[string]any{"channels": []any{"room-*"}}), "lobby", false, false},
		{"jwt glob does not cross /", jwt(map[string]any{"channels": []any{"news/*"}}), "news/a/b", false, false},
		{"jwt glob one segment", jwt(map[string]any{"channels": []any{"news/*"}}), "news/a", false, true},
		{"jwt char class", jwt(map[string]any{"publish": []any{"ch[0-9]"}}), "ch5", true, true},
		{"jwt second pattern", jwt(map[string]any{"publish": []any{"a", "b"}}), "b", true, true},
		{"jwt channels does not grant publish", jwt(map[string]any{"channels": []any{"*"}}), "x", true, false},
		{"jwt publish does not limit subscribe", jwt(map[string]any{"publish": []any{"a"}}), "x", false, true},
		{"jwt empty list", jwt(map[string]any{"channels": []any{}}), "x", false, false},
		{"jwt string claim", jwt(map[string]any{"channels": "room-*"}), "room-1", false, true},
		{"jwt []string claim", jwt(map[string]any{"publish": []string{"room-*"}}), "room-1", true, true},
		{"jwt bad pattern", jwt(map[string]any{"channels": []any{"[", "x"}}), "[", false, false},
		{"jwt non-string entries ignored", jwt(map[string]any{"channels": []any{1.0, nil, "x"}}), "x", false, true},
		{"jwt wrong claim type", jwt(map[string]any{"channels": 5.0}), "x", false, false},
		{"jwt null claim", jwt(map[string]any{"channels": nil}), "x", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.id.ChannelAllowed(tt.channel, tt.publish); got != tt.want {
				t.Errorf("ChannelAllowed(%q, %v) with %+v = %v; want %v", tt.channel, tt.publish, tt.id.Claims, got, tt.want)
			}
		})
	}
}
