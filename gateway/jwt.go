package gateway

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWT algorithms the gateway verifies (RFC 7518 §3.1). Each key accepts
// exactly one of them, so a token can never pick how its own key is used:
// an HS256 token is never checked against an RSA public key taken as an
// HMAC secret (the key-confusion attack).
//
// Verification is golang-jwt/jwt/v5's: BenchmarkVerifyJWT measured the
// hand-written verifier it replaced within noise of it (issue 17).
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algES256 = "ES256"
)

const (
	// jwtLeeway absorbs clock skew between the issuer and the gateway when
	// checking exp and nbf, at the upgrade and during a session.
	jwtLeeway = 30 * time.Second

	// maxJWTLen bounds the work done on a credential before its signature
	// is checked. Real tokens are well under 4 KiB.
	maxJWTLen = 16 << 10

	// minRSABits is the smallest RSA key accepted for RS256
	// (RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used").
	minRSABits = 2048
)

// Errors the key lookup returns; reasonFor maps them to AuthError reasons.
var (
	errUnsupportedAlg = errors.New("unsupported jwt alg")
	errUnknownKey     = errors.New("unknown jwt key id")
	errCritical       = errors.New("jwt crit header")
)

// jwtVerifier holds the configured JWT keys and claim rules. A nil key is
// one that was not configured; no key at all means JWT is off.
type jwtVerifier struct {
	secret []byte
	rsa    *rsa.PublicKey
	ec     *ecdsa.PublicKey
	jwks   *jwks // keys named by kid, fetched from a URL

	parser   *jwt.Parser
	audience string // required in "aud" if set
	issuer   string // required as "iss" if set
}

func (v *jwtVerifier) enabled() bool {
	return v.secret != nil || v.rsa != nil || v.ec != nil || v.jwks != nil
}

// newParser returns the golang-jwt parser for cfg's claim rules. Every
// alg the gateway implements is listed; keyFor then decides which of them
// has a key.
func newParser(cfg AuthConfig, now func() time.Time) *jwt.Parser {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{algHS256, algRS256, algES256}),
		jwt.WithLeeway(jwtLeeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	}
	// aud and iss are checked by verify, which tells "absent" from
	// "wrong" the same way for both (golang-jwt calls an absent one a
	// missing required claim, like an absent exp).
	if cfg.JWTRequireExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	return jwt.NewParser(opts...)
}

// verify checks the syntax, signature and claims of s and returns its
// claims, or an AuthError whose reason says what failed.
func (v *jwtVerifier) verify(s string) (jwt.MapClaims, *AuthError) {
	if !jwtSyntax(s) {
		return nil, &AuthError{Reason: reasonInvalidToken}
	}
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(s, claims, v.keyFor); err != nil {
		return nil, &AuthError{Reason: reasonFor(err)}
	}
	// golang-jwt takes "exp":0 for no exp at all; it is 1970.
	if exp, ok := claims["exp"].(float64); ok && exp == 0 {
		return nil, &AuthError{Reason: reasonExpired}
	}
	if v.audience != "" {
		// RFC 7519 §4.1.3: "aud" is one string or an array of them.
		aud, _ := claims.GetAudience()
		if !slices.Contains(aud, v.audience) {
			return nil, &AuthError{Reason: reasonAudience}
		}
	}
	if v.issuer != "" {
		if iss, _ := claims.GetIssuer(); iss != v.issuer {
			return nil, &AuthError{Reason: reasonIssuer}
		}
	}
	return claims, nil
}

// jwtSyntax rejects what no valid token looks like before any decoding:
// an over-long string, or a byte outside the base64url alphabet and '.'
// (base64 decoders skip '\r' and '\n'; refusing them keeps one byte
// string mapping to one token).
func jwtSyntax(s string) bool {
	if len(s) > maxJWTLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	// RFC 7519 §7.2: the claims are a JSON object. golang-jwt takes a
	// "null" payload for an empty one.
	_, rest, _ := strings.Cut(s, ".")
	payload, _, _ := strings.Cut(rest, ".")
	p, err := b64.DecodeString(payload)
	if err != nil {
		return false
	}
	p = bytes.TrimLeft(p, " \t\r\n")
	return len(p) > 0 && p[0] == '{'
}

// keyFor is the jwt.Keyfunc: it returns the one key t's header selects.
// With a JWKS, an RS256 or ES256 token that names a kid is checked only
// against the JWKS key of that kid, whose alg must be t's; any other token
// (HS256 ones included: a JWKS holds no secret) is checked against the
// static key of its alg.
func (v *jwtVerifier) keyFor(t *jwt.Token) (any, error) {
	// RFC 7515 §4.1.11: we understand no extension, so we must reject any
	// the token says is critical.
	if _, ok := t.Header["crit"]; ok {
		return nil, errCritical
	}
	alg := t.Method.Alg()
	if kid, ok := t.Header["kid"]; ok && v.jwks != nil && alg != algHS256 {
		s, isStr := kid.(string)
		if !isStr {
			return nil, jwt.ErrTokenMalformed
		}
		return v.jwks.key(s, alg)
	}
	switch {
	case alg == algHS256 && v.secret != nil:
		return v.secret, nil
	case alg == algRS256 && v.rsa != nil:
		return v.rsa, nil
	case alg == algES256 && v.ec != nil:
		return v.ec, nil
	}
	// "none", or an alg whose key is not configured here.
	return nil, errUnsupportedAlg
}

// reasonFor turns a golang-jwt error into an AuthError reason, safe to
// send to the client.
func reasonFor(err error) string {
	switch {
	case errors.Is(err, errUnsupportedAlg):
		return reasonUnsupportedAlg
	case errors.Is(err, errUnknownKey):
		return reasonUnknownKey
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return reasonMissingExp // exp is the only claim we require
	case errors.Is(err, jwt.ErrTokenExpired):
		return reasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return reasonNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return reasonAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return reasonIssuer
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && strings.Contains(err.Error(), "signing method"):
		// WithValidMethods refused the alg before any key was looked up.
		return reasonUnsupportedAlg
	case errors.Is(err, jwt.ErrTokenUnverifiable) && strings.Contains(err.Error(), "signing method"):
		// An alg golang-jwt does not know at all.
		return reasonUnsupportedAlg
	}
	return reasonInvalidToken
}

// expiry returns the exp claim of verified claims as a time, and false if
// there is none. golang-jwt has checked its type already.
func expiry(claims map[string]any) (time.Time, bool) {
	exp, err := jwt.MapClaims(claims).GetExpirationTime()
	if err != nil || exp == nil {
		return time.Time{}, false
	}
	return exp.Time, true
}

// parsePublicKeyPEM reads the first PEM block of b as an RSA or P-256
// public key. It takes a PKIX "PUBLIC KEY", a PKCS #1 "RSA PUBLIC KEY" or a
// "CERTIFICATE". Private keys are refused rather than reduced to their
// public half: the gateway has no use for one and should not hold it.
func parsePublicKeyPEM(b []byte) (*jwtVerifier, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("duplex: auth: JWT key: no PEM block found")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			pub = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("duplex: auth: JWT key: got a %s; give the public key", block.Type)
		}
		return nil, fmt.Errorf("duplex: auth: JWT key: unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("duplex: auth: JWT key: %w", err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("duplex: auth: JWT key: RSA key has %d bits; want at least %d", k.N.BitLen(), minRSABits)
		}
		return &jwtVerifier{rsa: k}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("duplex: auth: JWT key: EC curve %s; only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return &jwtVerifier{ec: k}, nil
	default:
		return nil, fmt.Errorf("duplex: auth: JWT key: unsupported key type %T; want RSA or EC P-256", pub)
	}
}
