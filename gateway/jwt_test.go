package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// Keys are generated once: RSA generation is slow under -race.
var (
	testKeysOnce sync.Once
	testRSAKey   *rsa.PrivateKey
	testECKey    *ecdsa.PrivateKey
)

func testKeys(t testing.TB) (*rsa.PrivateKey, *ecdsa.PrivateKey) {
	t.Helper()
	testKeysOnce.Do(func() {
		var err error
		if testRSAKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if testECKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
	return testRSAKey, testECKey
}

// pemPublic encodes pub as a PKIX "PUBLIC KEY" PEM block.
func pemPublic(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// signJWT builds a compact JWS with header {"alg":alg,"typ":"JWT"}. key is
// a []byte HMAC secret, an *rsa.PrivateKey or an *ecdsa.PrivateKey; it is
// used with alg's algorithm (or, for "none", not at all), whatever the
// header says, so tests can forge mismatched tokens.
func signJWT(t testing.TB, alg string, key any, claims map[string]any) string {
	t.Helper()
	return signJWTHeader(t, map[string]any{"alg": alg, "typ": "JWT"}, key, claims)
}

func signJWTHeader(t testing.TB, header map[string]any, key any, claims map[string]any) string {
	t.Helper()
	hb, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	digest := sha256.Sum256([]byte(signed))
	var sig []byte
	switch k := key.(type) {
	case nil:
	case []byte:
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(signed))
		sig = mac.Sum(nil)
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
	case *ecdsa.PrivateKey:
		// RFC 7518 §3.4: R || S, each left-padded to 32 bytes.
		r, s, err2 := ecdsa.Sign(rand.Reader, k, digest[:])
		err = err2
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	default:
		t.Fatalf("signJWT: key type %T", key)
	}
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + b64.EncodeToString(sig)
}

// TestJWTSyntax feeds malformed tokens to the verifier: each is refused
// as an invalid token before any key is used.
func TestJWTSyntax(t *testing.T) {
	secret := []byte("k")
	good := signJWT(t, "HS256", secret, map[string]any{"sub": "ann"})
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"valid", good, false},
		{"empty", "", true},
		{"one part", "abc", true},
		{"two parts", "eyJhbGciOiJIUzI1NiJ9.e30", true},
		{"four parts", good + ".x", true},
		{"padding", strings.Replace(good, ".", "=.", 1), true},
		{"std base64 chars", "eyJhbGciOiJIUzI1NiJ9+.e30.", true},
		{"newline inside part", good[:10] + "\n" + good[10:], true},
		{"header not json", b64.EncodeToString([]byte("nope")) + ".e30.", true},
		{"header array", b64.EncodeToString([]byte(`["HS256"]`)) + ".e30.", true},
		{"no alg", b64.EncodeToString([]byte(`{"typ":"JWT"}`)) + ".e30.", true},
		{"alg not string", b64.EncodeToString([]byte(`{"alg":1}`)) + ".e30.", true},
		{"payload not object", "eyJhbGciOiJIUzI1NiJ9." + b64.EncodeToString([]byte(`[1]`)) + ".", true},
		{"payload null", "eyJhbGciOiJIUzI1NiJ9." + b64.EncodeToString([]byte(`null`)) + ".", true},
		{"empty signature", "eyJhbGciOiJIUzI1NiJ9.e30.", true},
		{"too long", good + strings.Repeat("A", maxJWTLen), true},
	}
	a, err := NewAuthenticator(AuthConfig{JWTSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.checkToken(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("checkToken(%q) error = %v; want error %v", tt.in, err, tt.wantErr)
			}
		})
	}
}

// TestES256RawSignature pins RFC 7518 §3.4: an ES256 signature is R || S
// (64 bytes). The same signature in ASN.1 DER, as ecdsa.SignASN1 makes and
// some libraries wrongly send, must be refused.
func TestES256RawSignature(t *testing.T) {
	_, ecKey := testKeys(t)
	a, err := NewAuthenticator(AuthConfig{JWTKeyPEM: pemPublic(t, &ecKey.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	raw := signJWT(t, "ES256", ecKey, map[string]any{"sub": "ec"})
	if _, err := a.Authenticate(bearer(raw)); err != nil {
		t.Fatalf("raw R||S signature: %v", err)
	}

	signed := raw[:strings.LastIndexByte(raw, '.')]
	digest := sha256.Sum256([]byte(signed))
	der, err := ecdsa.SignASN1(rand.Reader, ecKey, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(bearer(signed + "." + b64.EncodeToString(der)))
	assertReason(t, err, reasonInvalidToken)
}

// TestJWTClaimRules pins exp and nbf with the leeway (RFC 7519 §4.1.4,
// §4.1.5), and the aud, iss and required-exp options, on HS256 tokens.
func TestJWTClaimRules(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	n := float64(now.Unix())
	secret := []byte("claims-secret")
	base := AuthConfig{JWTSecret: secret, Now: func() time.Time { return now }}
	strict := base
	strict.JWTAudience, strict.JWTIssuer, strict.JWTRequireExp = "duplex", "https://issuer.example", true
	ok := map[string]any{"aud": "duplex", "iss": "https://issuer.example", "exp": n + 60}
	with := func(k string, v any) map[string]any {
		c := maps.Clone(ok)
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name   string
		cfg    AuthConfig
		claims map[string]any
		want   string // reason, "" for success
	}{
		{"no times", base, map[string]any{}, ""},
		{"exp future", base, map[string]any{"exp": n + 60}, ""},
		{"exp past within leeway", base, map[string]any{"exp": n - 29}, ""},
		{"exp past leeway", base, map[string]any{"exp": n - 30}, reasonExpired},
		{"exp long past", base, map[string]any{"exp": n - 3600}, reasonExpired},
		// golang-jwt truncates times to the second.
		{"exp fractional", base, map[string]any{"exp": n - 28.5}, ""},
		{"exp fractional truncated", base, map[string]any{"exp": n - 29.5}, reasonExpired},
		{"exp zero is 1970", base, map[string]any{"exp": 0}, reasonExpired},
		{"exp year 33658", base, map[string]any{"exp": 1e12}, ""},
		{"exp negative huge", base, map[string]any{"exp": -1e300}, reasonExpired},
		{"exp string", base, map[string]any{"exp": "tomorrow"}, reasonInvalidToken},
		{"nbf past", base, map[string]any{"nbf": n - 60}, ""},
		{"nbf future within leeway", base, map[string]any{"nbf": n + 30}, ""},
		{"nbf future past leeway", base, map[string]any{"nbf": n + 31}, reasonNotYetValid},
		{"nbf null", base, map[string]any{"nbf": nil}, reasonInvalidToken},
		{"both ok", base, map[string]any{"nbf": n - 1, "exp": n + 1}, ""},
		{"aud and iss ignored by default", base, map[string]any{"aud": "other", "iss": "eve"}, ""},

		{"strict ok", strict, ok, ""},
		{"aud in a list", strict, with("aud", []string{"x", "duplex"}), ""},
		{"aud other", strict, with("aud", "other"), reasonAudience},
		{"aud list without ours", strict, with("aud", []string{"x", "y"}), reasonAudience},
		{"aud absent", strict, with("aud", nil), reasonAudience},
		{"aud not string", strict, with("aud", 7), reasonAudience},
		{"iss other", strict, with("iss", "https://evil.example"), reasonIssuer},
		{"iss absent", strict, with("iss", nil), reasonIssuer},
		{"exp required, absent", strict, with("exp", nil), reasonMissingExp},
		{"exp required, expired", strict, with("exp", n-3600), reasonExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAuthenticator(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			id, err := a.Authenticate(bearer(signJWT(t, "HS256", secret, tt.claims)))
			assertReason(t, err, tt.want)
			if err != nil {
				return
			}
			exp, hasExp := tt.claims["exp"].(float64)
			if want := time.Unix(int64(math.Floor(exp)), 0).Add(jwtLeeway); hasExp && id.Expires.Unix() != want.Unix() {
				t.Errorf("Expires = %v; want exp + leeway = %v", id.Expires, want)
			}
			if !hasExp && !id.Expires.IsZero() {
				t.Errorf("Expires = %v without exp; want zero", id.Expires)
			}
		})
	}
}

func TestParsePublicKeyPEM(t *testing.T) {
	rsaKey, ecKey := testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pem     []byte
		wantAlg string // "" = error
	}{
		{"RSA PKIX", pemPublic(t, &rsaKey.PublicKey), algRS256},
		{"RSA PKCS1", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)}), algRS256},
		{"EC P-256", pemPublic(t, &ecKey.PublicKey), algES256},
		{"RSA 1024 too small", pemPublic(t, &small.PublicKey), ""},
		{"EC P-384", pemPublic(t, &p384.PublicKey), ""},
		{"private key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), ""},
		{"not PEM", []byte("hello"), ""},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := parsePublicKeyPEM(tt.pem)
			if tt.wantAlg == "" {
				if err == nil {
					t.Fatal("parsePublicKeyPEM succeeded; want error")
				}
				if !strings.HasPrefix(err.Error(), "duplex: ") {
					t.Errorf("error %q lacks the duplex: prefix", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := (v.rsa != nil); got != (tt.wantAlg == algRS256) {
				t.Errorf("rsa key set = %v; want alg %s", got, tt.wantAlg)
			}
			if got := (v.ec != nil); got != (tt.wantAlg == algES256) {
				t.Errorf("ec key set = %v; want alg %s", got, tt.wantAlg)
			}
		})
	}
}

// FuzzParseJWT checks that verification never panics on any input and
// passes nothing but a JWT identity.
func FuzzParseJWT(f *testing.F) {
	secret := []byte("fuzz-secret")
	f.Add(signJWT(f, "HS256", secret, map[string]any{"sub": "a", "exp": 1e10}))
	f.Add(signJWT(f, "none", nil, map[string]any{"sub": "a"}))
	f.Add(signJWT(f, "RS256", secret, map[string]any{"nbf": "x"}))
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("")
	a, err := NewAuthenticator(AuthConfig{JWTSecret: secret, Now: func() time.Time { return time.Unix(1e9, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := a.checkToken(s)
		if err == nil && id.Method != "jwt" {
			t.Fatalf("checkToken(%q) = %+v without error", s, id)
		}
	})
}

// FuzzVerifyJWTPayload signs arbitrary payload bytes with the right key, so
// the checks after the signature (claims shape, exp, nbf, sub) see any JSON.
// A token either passes with exactly the payload's claims or fails with an
// AuthError; it never panics.
func FuzzVerifyJWTPayload(f *testing.F) {
	secret := []byte("fuzz-secret")
	f.Add([]byte(`{"sub":"a","exp":1e10,"nbf":0}`))
	f.Add([]byte(`{"exp":"soon"}`))
	f.Add([]byte(`{"sub":1}`))
	f.Add([]byte(`{"exp":-1e308}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	now := time.Unix(1e9, 0)
	a, err := NewAuthenticator(AuthConfig{JWTSecret: secret, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		signed := "eyJhbGciOiJIUzI1NiJ9." + b64.EncodeToString(payload)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(signed))
		tok := signed + "." + b64.EncodeToString(mac.Sum(nil))

		id, err := a.checkToken(tok)
		if err != nil {
			var ae *AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("checkToken error %v is not an *AuthError", err)
			}
			return
		}
		var want map[string]any
		if json.Unmarshal(payload, &want) != nil || want == nil {
			t.Fatalf("payload %q is not a JSON object but passed", payload)
		}
		if id.Method != "jwt" || len(id.Claims) != len(want) {
			t.Fatalf("identity %+v; want jwt with %d claims", id, len(want))
		}
		if exp, ok := want["exp"].(float64); ok && float64(now.Unix()) >= exp+jwtLeeway.Seconds() {
			t.Fatalf("payload %q passed but expired", payload)
		}
	})
}
