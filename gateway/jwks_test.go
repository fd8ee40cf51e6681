package gateway

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// keyServer is a local JWKS endpoint whose key set a test replaces, as an
// identity provider does when it rotates keys.
type keyServer struct {
	srv     *httptest.Server
	fetches atomic.Int64

	mu   sync.Mutex
	body []byte
}

func newKeyServer(t *testing.T, keys ...map[string]any) *keyServer {
	t.Helper()
	ks := &keyServer{}
	ks.set(t, keys...)
	ks.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.fetches.Add(1)
		ks.mu.Lock()
		b := ks.body
		ks.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(b)
	}))
	t.Cleanup(ks.srv.Close)
	return ks
}

func (ks *keyServer) set(t *testing.T, keys ...map[string]any) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	ks.setRaw(b)
}

func (ks *keyServer) setRaw(b []byte) {
	ks.mu.Lock()
	ks.body = b
	ks.mu.Unlock()
}

func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64.EncodeToString(k.N.Bytes()),
		"e": b64.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
	}
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]any {
	b, err := k.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	return map[string]any{
		"kty": "EC", "kid": kid, "crv": "P-256",
		"x": b64.EncodeToString(b[1:33]), "y": b64.EncodeToString(b[33:]),
	}
}

// signKid signs claims with key under alg, naming kid in the header.
func signKid(t testing.TB, alg, kid string, key any, claims map[string]any) string {
	t.Helper()
	return signJWTHeader(t, map[string]any{"alg": alg, "typ": "JWT", "kid": kid}, key, claims)
}

func newTestLogger(w *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}

// fakeClock is a settable time for tests that age a key set.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestJWKSKidSelection checks that a token is verified with the key its
// kid names and no other, and that the key's alg binds the token's.
func TestJWKSKidSelection(t *testing.T) {
	rsaKey, ecKey := testKeys(t)
	rsa2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ks := newKeyServer(t, rsaJWK("r1", &rsaKey.PublicKey), rsaJWK("r2", &rsa2.PublicKey), ecJWK("e1", &ecKey.PublicKey))
	secret := []byte("static-hs-secret")
	a, err := NewAuthenticator(AuthConfig{JWKSURL: ks.srv.URL, JWTSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"sub": "kid-user"}
	tests := []struct {
		name, tok, want string
	}{
		{"r1 by r1", signKid(t, "RS256", "r1", rsaKey, claims), ""},
		{"r2 by r2", signKid(t, "RS256", "r2", rsa2, claims), ""},
		{"e1 by e1", signKid(t, "ES256", "e1", ecKey, claims), ""},
		{"r1 signed by r2's key", signKid(t, "RS256", "r1", rsa2, claims), reasonInvalidToken},
		{"r2 signed by r1's key", signKid(t, "RS256", "r2", rsaKey, claims), reasonInvalidToken},
		{"kid of an RSA key, ES256 token", signKid(t, "ES256", "r1", ecKey, claims), reasonUnsupportedAlg},
		// The classic confusion: the RSA public key's bytes as an HMAC
		// secret. HS256 is checked with the static secret only.
		{"kid of an RSA key, HS256 token", signKid(t, "HS256", "r1", rsaKey.N.Bytes(), claims), reasonInvalidToken},
		{"HS256 with a kid, static secret", signKid(t, "HS256", "any", secret, claims), ""},
		{"unknown kid", signKid(t, "RS256", "nope", rsaKey, claims), reasonUnknownKey},
		{"kid not a string", signJWTHeader(t, map[string]any{"alg": "RS256", "kid": 1}, rsaKey, claims), reasonInvalidToken},
		// Without kid, the static keys apply, as before JWKS.
		{"no kid, static HS256", signJWT(t, "HS256", secret, claims), ""},
		{"no kid, RS256 without static key", signJWT(t, "RS256", rsaKey, claims), reasonUnsupportedAlg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := a.Authenticate(bearer(tt.tok))
			assertReason(t, err, tt.want)
			if err == nil && id.User != "kid-user" {
				t.Errorf("User = %q; want kid-user", id.User)
			}
		})
	}
	// One fetch served them all; the unknown kid asked for one more at most
	// (the set was fetched less than jwksMinInterval before).
	if n := ks.fetches.Load(); n != 1 {
		t.Errorf("key server fetched %d times; want 1", n)
	}
}

// TestJWKSRotation rotates the keys of a local key server: a token signed
// with a new key is accepted as soon as it is seen (its unknown kid makes
// the gateway fetch the set again), and a key the server dropped stops
// working once the set is older than JWKSRefresh.
func TestJWKSRotation(t *testing.T) {
	rsaKey, ecKey := testKeys(t)
	ks := newKeyServer(t, rsaJWK("old", &rsaKey.PublicKey))
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	a, err := NewAuthenticator(AuthConfig{JWKSURL: ks.srv.URL, JWKSRefresh: time.Minute, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"sub": "rot"}
	oldTok := signKid(t, "RS256", "old", rsaKey, claims)
	newTok := signKid(t, "ES256", "new", ecKey, claims)
	check := func(step, tok, want string) {
		t.Helper()
		_, err := a.Authenticate(bearer(tok))
		if err != nil && want == "" || err == nil && want != "" {
			t.Fatalf("%s: err = %v; want reason %q", step, err, want)
		}
		assertReason(t, err, want)
	}

	check("before rotation, old key", oldTok, "")
	check("before rotation, new key", newTok, reasonUnknownKey)

	// The provider publishes the new key next to the old one. The last
	// fetch was just now: an unknown kid waits for jwksMinInterval.
	ks.set(t, rsaJWK("old", &rsaKey.PublicKey), ecJWK("new", &ecKey.PublicKey))
	check("new key within the fetch interval", newTok, reasonUnknownKey)
	clock.advance(a.jwt.jwks.minInterval)
	check("new key after the fetch interval", newTok, "")
	check("old key still published", oldTok, "")
	fetches := ks.fetches.Load()

	// The provider drops the old key: it works until the set is stale.
	ks.set(t, ecJWK("new", &ecKey.PublicKey))
	check("old key, set still fresh", oldTok, "")
	if n := ks.fetches.Load(); n != fetches {
		t.Errorf("a known kid in a fresh set fetched the set (%d fetches, want %d)", n, fetches)
	}
	clock.advance(time.Minute)
	check("old key, set stale", oldTok, reasonUnknownKey)
	check("new key", newTok, "")

	// A broken set never replaces a good one.
	ks.setRaw([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	clock.advance(time.Minute)
	check("new key, bad set served", newTok, "")
}

// TestJWKSFetchBounds checks the size and time bounds of a fetch and
// what a failed fetch leaves: no key, a logged reason, the process up.
func TestJWKSFetchBounds(t *testing.T) {
	_, ecKey := testKeys(t)
	tok := signKid(t, "ES256", "e", ecKey, map[string]any{"sub": "b"})
	t.Run("too large", func(t *testing.T) {
		ks := newKeyServer(t, ecJWK("e", &ecKey.PublicKey))
		ks.setRaw([]byte(`{"keys":[` + strings.Repeat(" ", 4096) + `]}`))
		logs := &logBuffer{}
		a, err := NewAuthenticator(AuthConfig{JWKSURL: ks.srv.URL, JWKSMaxBytes: 1024, Logger: newTestLogger(logs)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Authenticate(bearer(tok))
		assertReason(t, err, reasonUnknownKey)
		// The fetch that fails may be the one New starts in the
		// background, which logs after Authenticate has returned.
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(logs.String(), "larger than 1024 bytes") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(logs.String(), "larger than 1024 bytes") {
			t.Errorf("log lacks the size bound:\n%s", logs)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		timeout := 200 * time.Millisecond
		a, err := NewAuthenticator(AuthConfig{JWKSURL: srv.URL, JWKSTimeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := a.Authenticate(bearer(tok))
			done <- err
		}()
		// The bound is the timeout; the wait below only keeps a broken
		// bound from hanging the test.
		select {
		case err := <-done:
			assertReason(t, err, reasonUnknownKey)
		case <-time.After(timeout + 10*time.Second):
			t.Fatal("Authenticate still waiting for a key server that never answers")
		}
	})
	t.Run("bad URL", func(t *testing.T) {
		for _, u := range []string{"ftp://x/keys", "keys.json", "http://"} {
			if _, err := NewAuthenticator(AuthConfig{JWKSURL: u}); err == nil {
				t.Errorf("JWKSURL %q accepted", u)
			}
		}
	})
}

func TestParseJWKS(t *testing.T) {
	rsaKey, ecKey := testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	offCurve := ecJWK("off", &ecKey.PublicKey)
	offCurve["y"] = offCurve["x"]
	noKid := rsaJWK("", &rsaKey.PublicKey)
	enc := rsaJWK("enc", &rsaKey.PublicKey)
	enc["use"] = "enc"
	wrongAlg := rsaJWK("ps", &rsaKey.PublicKey)
	wrongAlg["alg"] = "PS256"
	p384JWK := map[string]any{"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"}
	tests := []struct {
		name string
		keys []map[string]any
		want []string // kids kept; nil: error
	}{
		{"rsa and ec", []map[string]any{rsaJWK("r", &rsaKey.PublicKey), ecJWK("e", &ecKey.PublicKey)}, []string{"r", "e"}},
		{"unusable skipped", []map[string]any{rsaJWK("small", &small.PublicKey), offCurve, noKid, enc, wrongAlg, p384JWK, ecJWK("e", &ecKey.PublicKey)}, []string{"e"}},
		{"nothing usable", []map[string]any{rsaJWK("small", &small.PublicKey), p384JWK}, nil},
		{"duplicate kid: first wins", []map[string]any{ecJWK("e", &ecKey.PublicKey), rsaJWK("e", &rsaKey.PublicKey)}, []string{"e"}},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(map[string]any{"keys": tt.keys})
			keys, err := parseJWKS(b)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("parseJWKS kept %d keys; want an error", len(keys))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != len(tt.want) {
				t.Errorf("kept %d keys; want %v", len(keys), tt.want)
			}
			for _, kid := range tt.want {
				if _, ok := keys[kid]; !ok {
					t.Errorf("kid %q missing", kid)
				}
			}
		})
	}
	if _, err := parseJWKS([]byte("not json")); err == nil {
		t.Error("parseJWKS accepted non-JSON")
	}
}

// TestJWKSGateway: --jwt-jwks reaches the gateway: a token whose kid the
// key server holds opens a WebSocket, one it does not hold gets 401
// "unknown jwt key id".
func TestJWKSGateway(t *testing.T) {
	_, ecKey := testKeys(t)
	ks := newKeyServer(t, ecJWK("k1", &ecKey.PublicKey))
	ts := startGateway(t, Options{JWKSURL: ks.srv.URL})
	claims := map[string]any{"sub": "jwks-user", "exp": time.Now().Add(time.Hour).Unix()}
	c := dial(t, ts.ws+"/ws?token="+signKid(t, "ES256", "k1", ecKey, claims), nil)
	c.CloseNow()
	resp, body := ts.get(t, "/api/auth-check?token="+signKid(t, "ES256", "k2", ecKey, claims), nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "unknown jwt key id") {
		t.Errorf("unknown kid: %d %q; want 401 unknown jwt key id", resp.StatusCode, body)
	}
}
