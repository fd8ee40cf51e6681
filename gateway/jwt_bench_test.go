package gateway

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerifyJWT compares the hand-written verifier with golang-jwt
// v5 on the same tokens and keys, to decide whether the hand-written one
// is needed (issue 17): per alg, one valid token verified per iteration.
func BenchmarkVerifyJWT(b *testing.B) {
	rsaKey, ecKey := testKeys(b)
	secret := []byte("bench-secret-0123456789abcdef")
	now := time.Now()
	claims := map[string]any{"sub": "ada", "exp": float64(now.Add(time.Hour).Unix()), "channels": []string{"public/*"}}
	cases := []struct {
		alg string
		key any // signing key
		pub any // verification key
	}{
		{"HS256", secret, secret},
		{"RS256", rsaKey, &rsaKey.PublicKey},
		{"ES256", ecKey, &ecKey.PublicKey},
	}
	for _, c := range cases {
		tok := signJWT(b, c.alg, c.key, claims)
		v := jwtVerifier{secret: secret, rsa: &rsaKey.PublicKey, ec: &ecKey.PublicKey}
		b.Run(c.alg+"/handwritten", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t, err := parseJWT(tok)
				if err != nil {
					b.Fatal(err)
				}
				if err := v.verify(t, now); err != nil {
					b.Fatal(err)
				}
			}
		})
		p := jwt.NewParser(jwt.WithValidMethods([]string{c.alg}), jwt.WithLeeway(jwtLeeway))
		b.Run(c.alg+"/golang-jwt", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Parse(tok, func(*jwt.Token) (any, error) { return c.pub, nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
