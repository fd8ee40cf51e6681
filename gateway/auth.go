package gateway

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// AuthConfig says who may open a WebSocket. Any mix of the credential kinds
// may be configured; a request passes if it matches any of them. With
// nothing configured and NoAuth false, every request is refused.
type AuthConfig struct {
	// Tokens are static bearer tokens. Empty strings are an error.
	Tokens []string

	// Basic holds "user:password" pairs for HTTP Basic auth (the seed's
	// ws://user:pass@host URLs). The password may contain ':'.
	Basic []string

	// JWTSecret is the HS256 key. Nil or empty turns HS256 off.
	JWTSecret []byte

	// JWTKeyPEM is a PEM public key (or certificate): RSA of at least 2048
	// bits enables RS256, EC P-256 enables ES256.
	JWTKeyPEM []byte

	// NoAuth lets everyone in as Method "none", ignoring any credentials.
	NoAuth bool

	// Now is the clock for JWT exp and nbf. Nil means time.Now.
	Now func() time.Time

	// JWTAudience, when set, must be one of a JWT's "aud" values
	// (RFC 7519 §4.1.3); a token without "aud" is refused.
	JWTAudience string

	// JWTIssuer, when set, must be a JWT's "iss" (RFC 7519 §4.1.1).
	JWTIssuer string

	// JWTRequireExp refuses JWTs without an "exp" claim, which would
	// otherwise never expire.
	JWTRequireExp bool

	// JWKSURL is a JSON Web Key Set (RFC 7517 §5) of RS256 and ES256
	// keys. An RS256 or ES256 JWT whose header names a "kid" is verified
	// with the key of that kid only; other JWTs with the static keys.
	// NewAuthenticator starts fetching the set in the background; it is
	// fetched again when it is older than JWKSRefresh, and when a token
	// names a kid it lacks (key rotation; at most once per 10s, or per
	// JWKSRefresh if shorter). A failed fetch keeps the keys held and is
	// logged.
	JWKSURL string

	// JWKSRefresh is the most a key set is used before it is fetched
	// again. Default DefaultJWKSRefresh (5m).
	JWKSRefresh time.Duration

	// JWKSTimeout bounds one fetch of the set. Default
	// DefaultJWKSTimeout (10s).
	JWKSTimeout time.Duration

	// JWKSMaxBytes bounds the size of the set; a larger one is refused.
	// Default DefaultJWKSMaxBytes (1 MiB).
	JWKSMaxBytes int64

	// JWKSClient fetches the set. Nil means a client with JWKSTimeout;
	// a given client's Timeout is lowered to JWKSTimeout.
	JWKSClient *http.Client

	// Logger receives JWKS fetch failures. Nil discards them.
	Logger *slog.Logger
}

// Identity is who authenticated and how.
type Identity struct {
	// User is the Basic user, the JWT "sub" claim (empty if the token has
	// none), "token:" plus the first 4 hex digits of the token's SHA-256
	// for static tokens (enough to tell tokens apart in logs, never the
	// token), or "anonymous" for NoAuth.
	User string

	// Method is "token", "basic", "jwt" or "none".
	Method string

	// Claims are the JWT claims, nil for other methods.
	Claims map[string]any

	// Expires is when the credential stops being valid: the JWT's "exp"
	// plus the leeway the gateway allows for clock skew. Zero means never
	// (static tokens, Basic, NoAuth, a JWT without "exp"). A session is
	// closed at Expires unless the client refreshes its token
	// (docs/protocol.md).
	Expires time.Time
}

// AuthError is returned by Authenticate when a request is refused. Reason is
// short and safe to send to the client: it never contains a credential.
type AuthError struct{ Reason string }

func (e *AuthError) Error() string { return "duplex: unauthorized: " + e.Reason }

// Reasons an AuthError carries.
const (
	reasonMissing        = "missing credentials"
	reasonInvalidToken   = "invalid token"
	reasonExpired        = "token expired"
	reasonNotYetValid    = "token not yet valid"
	reasonInvalidBasic   = "invalid basic credentials"
	reasonUnsupportedAlg = "unsupported jwt alg"
	reasonUnknownKey     = "unknown jwt key id"
	reasonMissingExp     = "token has no exp"
	reasonAudience       = "invalid audience"
	reasonIssuer         = "invalid issuer"
	reasonOtherUser      = "token for another user"
)

// tokenCookie is the cookie a browser page can carry its token in, since
// the browser WebSocket API cannot set an Authorization header.
const tokenCookie = "duplex_token"

// Authenticator checks requests against an AuthConfig. It is immutable
// after NewAuthenticator and safe for concurrent use.
type Authenticator struct {
	noAuth bool
	now    func() time.Time
	tokens []staticToken
	basic  []basicCred
	jwt    jwtVerifier
}

// staticToken keeps only a digest: comparing fixed-size digests makes the
// comparison time independent of the presented token's length.
type staticToken struct {
	sum  [sha256.Size]byte
	user string // "token:" + first 4 hex digits of sum
}

type basicCred struct {
	user    string
	userSum [sha256.Size]byte
	passSum [sha256.Size]byte
}

// NewAuthenticator checks cfg and returns an Authenticator for it. It
// returns an error for an empty token, a Basic entry that is not
// "user:password" with both parts non-empty, or a JWTKeyPEM that is not a
// supported public key. Error messages never include a secret.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	a := &Authenticator{noAuth: cfg.NoAuth, now: cfg.Now}
	if a.now == nil {
		a.now = time.Now
	}
	for i, t := range cfg.Tokens {
		if t == "" {
			return nil, fmt.Errorf("duplex: auth: token %d is empty", i)
		}
		sum := sha256.Sum256([]byte(t))
		a.tokens = append(a.tokens, staticToken{sum: sum, user: "token:" + hex.EncodeToString(sum[:2])})
	}
	for i, b := range cfg.Basic {
		// RFC 7617 §2: the user-id cannot contain ':', the password can.
		user, pass, ok := strings.Cut(b, ":")
		if !ok || user == "" || pass == "" {
			return nil, fmt.Errorf("duplex: auth: basic entry %d: want \"user:password\" with both parts non-empty", i)
		}
		a.basic = append(a.basic, basicCred{
			user:    user,
			userSum: sha256.Sum256([]byte(user)),
			passSum: sha256.Sum256([]byte(pass)),
		})
	}
	if len(cfg.JWTKeyPEM) > 0 {
		v, err := parsePublicKeyPEM(cfg.JWTKeyPEM)
		if err != nil {
			return nil, err
		}
		a.jwt = *v
	}
	if len(cfg.JWTSecret) > 0 {
		a.jwt.secret = append([]byte(nil), cfg.JWTSecret...)
	}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, errors.New("duplex: auth: JWKS URL: want an http:// or https:// URL")
		}
		a.jwt.jwks = newJWKS(cfg, a.now)
		a.jwt.jwks.prefetch()
	}
	a.jwt.parser = newParser(cfg, a.now)
	a.jwt.audience, a.jwt.issuer = cfg.JWTAudience, cfg.JWTIssuer
	return a, nil
}

// Authenticate checks r. It takes the first credential it finds, in this
// order: the "token" query parameter, "Authorization: Bearer", the
// duplex_token cookie, "Authorization: Basic". A later location is not
// tried when an earlier one fails.
//
// A token credential passes if it equals a static token or is a valid JWT
// (when a JWT key is configured). On failure the error is an *AuthError.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	if a.noAuth {
		return Identity{User: "anonymous", Method: "none"}, nil
	}
	if tok, ok := findToken(r); ok {
		return a.checkToken(tok)
	}
	if user, pass, ok := r.BasicAuth(); ok {
		return a.checkBasic(user, pass)
	}
	return Identity{}, &AuthError{Reason: reasonMissing}
}

// findToken returns the first non-empty token-like credential in r.
func findToken(r *http.Request) (string, bool) {
	if t := r.URL.Query().Get("token"); t != "" {
		return t, true
	}
	// RFC 7235 §2.1: the auth-scheme is case-insensitive.
	if scheme, t, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if t = strings.TrimSpace(t); t != "" {
			return t, true
		}
	}
	if c, err := r.Cookie(tokenCookie); err == nil && c.Value != "" {
		return c.Value, true
	}
	return "", false
}

func (a *Authenticator) checkToken(tok string) (Identity, error) {
	// Compare against every token, whatever matched, so the time taken
	// says nothing about which token (or whether an early one) matched.
	sum := sha256.Sum256([]byte(tok))
	match := -1
	for i := range a.tokens {
		eq := subtle.ConstantTimeCompare(sum[:], a.tokens[i].sum[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match >= 0 {
		return Identity{User: a.tokens[match].user, Method: "token"}, nil
	}
	if !a.jwt.enabled() {
		return Identity{}, &AuthError{Reason: reasonInvalidToken}
	}
	claims, aerr := a.jwt.verify(tok)
	if aerr != nil {
		return Identity{}, aerr
	}
	var sub string
	if v, ok := claims["sub"]; ok {
		if sub, ok = v.(string); !ok {
			return Identity{}, &AuthError{Reason: reasonInvalidToken}
		}
	}
	id := Identity{User: sub, Method: "jwt", Claims: claims}
	if exp, ok := expiry(claims); ok {
		id.Expires = exp.Add(jwtLeeway)
	}
	return id, nil
}

// Refresh checks token, sent by the session of cur to extend it
// (docs/protocol.md, "Token lifetime"). It returns the identity the token
// proves, which must be cur's: same method and same user. Otherwise the
// error is an *AuthError whose reason is reasonOtherUser.
func (a *Authenticator) Refresh(cur Identity, token string) (Identity, error) {
	if token == "" {
		return Identity{}, &AuthError{Reason: reasonMissing}
	}
	id, err := a.checkToken(token)
	if err != nil {
		return Identity{}, err
	}
	if id.Method != cur.Method || id.User != cur.User {
		return Identity{}, &AuthError{Reason: reasonOtherUser}
	}
	return id, nil
}

func (a *Authenticator) checkBasic(user, pass string) (Identity, error) {
	us := sha256.Sum256([]byte(user))
	ps := sha256.Sum256([]byte(pass))
	match := -1
	for i := range a.basic {
		eq := subtle.ConstantTimeCompare(us[:], a.basic[i].userSum[:]) &
			subtle.ConstantTimeCompare(ps[:], a.basic[i].passSum[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return Identity{}, &AuthError{Reason: reasonInvalidBasic}
	}
	return Identity{User: a.basic[match].user, Method: "basic"}, nil
}

// Challenge returns the WWW-Authenticate value to send with a 401
// (RFC 7235 §4.1).
func (a *Authenticator) Challenge() string {
	if len(a.basic) > 0 {
		return `Bearer realm="duplex", Basic realm="duplex"`
	}
	return `Bearer realm="duplex"`
}

// GenerateToken returns a random 128-bit token in unpadded base64url (22
// characters), safe in a URL query without escaping. It is used when
// "duplex serve" starts with no auth flags.
func GenerateToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("duplex: generate token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ChannelAllowed reports whether id may subscribe to channel, or publish
// to it when publish is true.
//
// A JWT identity is limited by its claims: "channels" (subscribe) and
// "publish" each hold a list of path.Match patterns, or one pattern as a
// string; "*" matches every channel, including ones with '/'. An absent
// "channels" allows every subscription, an absent "publish" allows no
// publishing. A claim of any other type allows nothing.
//
// Token, Basic and NoAuth identities may do everything. Any other identity,
// including the zero Identity, may do nothing.
func (id Identity) ChannelAllowed(channel string, publish bool) bool {
	switch id.Method {
	case "token", "basic", "none":
		return true
	case "jwt", "hook": // hook: the connect hook's answer (hooks_connect.go)
	default:
		return false
	}
	claim := "channels"
	if publish {
		claim = "publish"
	}
	v, ok := id.Claims[claim]
	if !ok {
		return !publish
	}
	switch v := v.(type) {
	case string:
		return matchChannel(v, channel)
	case []string:
		for _, p := range v {
			if matchChannel(p, channel) {
				return true
			}
		}
	case []any:
		for _, p := range v {
			if s, ok := p.(string); ok && matchChannel(s, channel) {
				return true
			}
		}
	}
	return false
}

func matchChannel(pattern, channel string) bool {
	if pattern == "*" {
		return true
	}
	ok, err := path.Match(pattern, channel)
	return err == nil && ok
}
