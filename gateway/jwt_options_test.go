package gateway

import (
	"testing"
	"time"
)

// TestJWTFlags checks the token-lifetime and JWKS flags and their
// environment variables end up in the AuthConfig.
func TestJWTFlags(t *testing.T) {
	o, err := parse(t, map[string]string{"DUPLEX_JWT_ISSUER": "https://env.example", "DUPLEX_JWT_REQUIRE_EXP": "true"},
		"--jwt-audience", "duplex", "--jwt-jwks", "https://idp.example/jwks.json",
		"--jwt-jwks-refresh", "2m", "--jwt-jwks-timeout", "3s", "--jwt-jwks-max-size", "64KiB")
	if err != nil {
		t.Fatal(err)
	}
	if o.NeedsGeneratedToken() {
		t.Error("NeedsGeneratedToken with --jwt-jwks set")
	}
	cfg, err := o.authConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.JWTAudience != "duplex" || cfg.JWTIssuer != "https://env.example" || !cfg.JWTRequireExp ||
		cfg.JWKSURL != "https://idp.example/jwks.json" || cfg.JWKSRefresh != 2*time.Minute ||
		cfg.JWKSTimeout != 3*time.Second || cfg.JWKSMaxBytes != 64<<10 {
		t.Errorf("AuthConfig = %+v", cfg)
	}
	if _, err := parse(t, nil, "--jwt-jwks-timeout", "-1s"); err != nil {
		t.Fatal(err)
	}
	bad := Options{JWKSTimeout: -time.Second, NoAuth: true}
	if err := bad.Validate(); err == nil {
		t.Error("Validate accepted a negative --jwt-jwks-timeout")
	}
}
