package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// JWT algorithms the gateway verifies (RFC 7518 §3.1). Each configured key
// accepts exactly one of them, so a token can never pick how its own key is
// used: an HS256 token is never checked against an RSA public key taken as
// an HMAC secret (the key-confusion attack).
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algES256 = "ES256"
)

const (
	// jwtLeeway absorbs clock skew between the issuer and the gateway when
	// checking exp and nbf.
	jwtLeeway = 30 * time.Second

	// maxJWTLen bounds the work done on a credential before its signature
	// is checked. Real tokens are well under 4 KiB.
	maxJWTLen = 16 << 10

	// minRSABits is the smallest RSA key accepted for RS256
	// (RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used").
	minRSABits = 2048
)

var (
	errJWTMalformed = errors.New("malformed jwt")
	b64             = base64.RawURLEncoding.Strict()
)

// jwtToken is a JWS compact serialization split into its parts (RFC 7515
// §7.1). Nothing in it is trusted until jwtVerifier.verify returns nil.
type jwtToken struct {
	alg    string
	claims map[string]any
	signed string // header "." payload, the JWS signing input
	sig    []byte
}

// parseJWT splits and decodes s. It checks syntax only: three base64url
// parts without padding, a JSON object header with a string "alg", no
// "crit" (RFC 7515 §4.1.11: we understand no extensions, so we must reject
// any the token says are critical), and a JSON object payload.
func parseJWT(s string) (*jwtToken, error) {
	if len(s) > maxJWTLen {
		return nil, errJWTMalformed
	}
	// base64.Decode skips '\r' and '\n'; checking the alphabet first keeps
	// one byte string mapping to one token.
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return nil, errJWTMalformed
		}
	}
	h, rest, ok := strings.Cut(s, ".")
	if !ok {
		return nil, errJWTMalformed
	}
	p, sg, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sg, ".") {
		return nil, errJWTMalformed
	}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return nil, errJWTMalformed
	}
	pb, err := b64.DecodeString(p)
	if err != nil {
		return nil, errJWTMalformed
	}
	sig, err := b64.DecodeString(sg)
	if err != nil {
		return nil, errJWTMalformed
	}
	var hdr struct {
		Alg  *string         `json:"alg"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil || hdr.Alg == nil || hdr.Crit != nil {
		return nil, errJWTMalformed
	}
	var claims map[string]any
	if err := json.Unmarshal(pb, &claims); err != nil || claims == nil {
		return nil, errJWTMalformed
	}
	return &jwtToken{alg: *hdr.Alg, claims: claims, signed: s[:len(h)+1+len(p)], sig: sig}, nil
}

// jwtVerifier holds the configured JWT keys. A nil field is a key that was
// not configured; all nil means JWT is off.
type jwtVerifier struct {
	secret []byte
	rsa    *rsa.PublicKey
	ec     *ecdsa.PublicKey
}

func (v *jwtVerifier) enabled() bool {
	return v.secret != nil || v.rsa != nil || v.ec != nil
}

// verify checks the signature of t with the key its alg names, refusing
// algs whose key is not configured, and then the exp and nbf claims.
func (v *jwtVerifier) verify(t *jwtToken, now time.Time) *AuthError {
	digest := sha256.Sum256([]byte(t.signed))
	var ok bool
	switch {
	case t.alg == algHS256 && v.secret != nil:
		mac := hmac.New(sha256.New, v.secret)
		mac.Write([]byte(t.signed))
		ok = hmac.Equal(mac.Sum(nil), t.sig)
	case t.alg == algRS256 && v.rsa != nil:
		ok = rsa.VerifyPKCS1v15(v.rsa, crypto.SHA256, digest[:], t.sig) == nil
	case t.alg == algES256 && v.ec != nil:
		// RFC 7518 §3.4: the signature is R || S, each a 32-byte
		// big-endian integer, not the ASN.1 DER that ecdsa.SignASN1 makes.
		if len(t.sig) == 64 {
			r := new(big.Int).SetBytes(t.sig[:32])
			s := new(big.Int).SetBytes(t.sig[32:])
			ok = ecdsa.Verify(v.ec, digest[:], r, s)
		}
	default:
		// "none", an alg we do not implement, or one whose key is not
		// configured here.
		return &AuthError{Reason: reasonUnsupportedAlg}
	}
	if !ok {
		return &AuthError{Reason: reasonInvalidToken}
	}
	return checkTimes(t.claims, now)
}

// checkTimes enforces exp and nbf (RFC 7519 §4.1.4, §4.1.5) with
// jwtLeeway. Both are optional; present ones must be numbers.
func checkTimes(claims map[string]any, now time.Time) *AuthError {
	// Comparing float seconds avoids overflowing time.Time on absurd
	// values; float64 is exact to well under a microsecond for current
	// dates.
	t := float64(now.UnixMicro()) / 1e6
	leeway := jwtLeeway.Seconds()
	if v, ok := claims["exp"]; ok {
		exp, isNum := v.(float64)
		if !isNum {
			return &AuthError{Reason: reasonInvalidToken}
		}
		// "the current date/time MUST be before the expiration date/time"
		if t >= exp+leeway {
			return &AuthError{Reason: reasonExpired}
		}
	}
	if v, ok := claims["nbf"]; ok {
		nbf, isNum := v.(float64)
		if !isNum {
			return &AuthError{Reason: reasonInvalidToken}
		}
		if t < nbf-leeway {
			return &AuthError{Reason: reasonNotYetValid}
		}
	}
	return nil
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
