package gateway

import (
	"testing"
	"time"
)

// BenchmarkVerifyJWT measures the verification of one valid token per
// alg, as done at every upgrade and refresh. Commit e402ae4 ran it against
// the hand-written verifier golang-jwt replaced: within noise (issue 17).
func BenchmarkVerifyJWT(b *testing.B) {
	rsaKey, ecKey := testKeys(b)
	secret := []byte("bench-secret-0123456789abcdef")
	now := time.Now()
	claims := map[string]any{"sub": "ada", "exp": float64(now.Add(time.Hour).Unix()), "channels": []string{"public/*"}}
	a, err := NewAuthenticator(AuthConfig{JWTSecret: secret})
	if err != nil {
		b.Fatal(err)
	}
	a.jwt.rsa, a.jwt.ec = &rsaKey.PublicKey, &ecKey.PublicKey
	for _, c := range []struct {
		alg string
		key any
	}{{"HS256", secret}, {"RS256", rsaKey}, {"ES256", ecKey}} {
		tok := signJWT(b, c.alg, c.key, claims)
		b.Run(c.alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.checkToken(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
