package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"sync"
	"time"
)

// Defaults of the JWKS settings (AuthConfig, Options).
const (
	DefaultJWKSRefresh  = 5 * time.Minute
	DefaultJWKSTimeout  = 10 * time.Second
	DefaultJWKSMaxBytes = 1 << 20

	// jwksMinInterval is the least time between two fetches that tokens
	// can cause: a token naming an unknown kid makes one fetch at most per
	// interval, however many such tokens arrive, so random kids cannot
	// turn the gateway into a flood against the key server.
	jwksMinInterval = 10 * time.Second
)

// jwk is one key of a JSON Web Key Set (RFC 7517 §4, RFC 7518 §6).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	// RSA (RFC 7518 §6.3.1)
	N string `json:"n"`
	E string `json:"e"`
	// EC (RFC 7518 §6.2.1)
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// jwksKey is a usable key of the set: its public key and the one alg it
// verifies.
type jwksKey struct {
	alg string
	pub any // *rsa.PublicKey or *ecdsa.PublicKey
}

// jwks is a cached JSON Web Key Set fetched from a URL. Keys are looked up
// by kid. The set is fetched again when it is older than refresh, and
// when a token names a kid the set lacks (key rotation), at most once per
// minInterval. A failed fetch keeps the keys already held, and is logged.
type jwks struct {
	url         string
	client      *http.Client
	maxBytes    int64
	refresh     time.Duration
	minInterval time.Duration
	now         func() time.Time
	log         *slog.Logger

	mu       sync.Mutex
	keys     map[string]jwksKey // guarded by mu; by kid
	fetched  time.Time          // guarded by mu; last successful fetch
	tried    time.Time          // guarded by mu; start of the last fetch
	inflight chan struct{}      // guarded by mu; closed when the running fetch ends
}

func newJWKS(cfg AuthConfig, now func() time.Time) *jwks {
	j := &jwks{
		url:         cfg.JWKSURL,
		client:      cfg.JWKSClient,
		maxBytes:    cfg.JWKSMaxBytes,
		refresh:     cfg.JWKSRefresh,
		minInterval: jwksMinInterval,
		now:         now,
		log:         cfg.Logger,
	}
	if j.maxBytes <= 0 {
		j.maxBytes = DefaultJWKSMaxBytes
	}
	if j.refresh <= 0 {
		j.refresh = DefaultJWKSRefresh
	}
	timeout := cfg.JWKSTimeout
	if timeout <= 0 {
		timeout = DefaultJWKSTimeout
	}
	if j.client == nil {
		j.client = &http.Client{Timeout: timeout}
	} else if j.client.Timeout == 0 || j.client.Timeout > timeout {
		c := *j.client
		c.Timeout = timeout
		j.client = &c
	}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	j.minInterval = min(j.minInterval, j.refresh)
	return j
}

// prefetch starts fetching the set in the background, so that the first
// token need not wait for it and a wrong URL is logged at startup.
func (j *jwks) prefetch() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.inflight == nil {
		j.inflight, j.tried = make(chan struct{}), j.now()
		go j.fetch(j.inflight)
	}
}

// key returns the public key of kid for alg. It fetches the set first if
// the set is stale, or lacks kid and no fetch was tried for minInterval;
// callers then wait for that fetch, which the client's timeout bounds.
func (j *jwks) key(kid, alg string) (any, error) {
	j.mu.Lock()
	now := j.now()
	k, ok := j.keys[kid]
	stale := now.Sub(j.fetched) >= j.refresh
	var wait chan struct{}
	switch {
	case j.inflight != nil && (stale || !ok):
		wait = j.inflight
	case (stale || !ok) && now.Sub(j.tried) >= j.minInterval:
		wait = make(chan struct{})
		j.inflight, j.tried = wait, now
		go j.fetch(wait)
	}
	j.mu.Unlock()
	if wait != nil {
		<-wait
		j.mu.Lock()
		k, ok = j.keys[kid]
		j.mu.Unlock()
	}
	if !ok {
		return nil, errUnknownKey
	}
	if k.alg != alg {
		return nil, errUnsupportedAlg
	}
	return k.pub, nil
}

// fetch loads the set and, if it parses, replaces the keys. It closes
// done when it ends.
func (j *jwks) fetch(done chan struct{}) {
	keys, err := j.load()
	j.mu.Lock()
	if err == nil {
		j.keys, j.fetched = keys, j.now()
	}
	j.inflight = nil
	j.mu.Unlock()
	close(done)
	if err != nil {
		j.log.Warn("jwks fetch failed; keeping the keys held", "url", j.url, "error", err)
	} else {
		j.log.Info("jwks fetched", "url", j.url, "keys", len(keys))
	}
}

func (j *jwks) load() (map[string]jwksKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), j.client.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, j.maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > j.maxBytes {
		return nil, fmt.Errorf("key set larger than %d bytes (--jwt-jwks-max-size)", j.maxBytes)
	}
	return parseJWKS(b)
}

// parseJWKS reads a JWK Set (RFC 7517 §5). Keys the gateway cannot use
// are skipped: another kty or curve, "use" other than "sig", an alg other
// than the one the key type implies, RSA under 2048 bits, a point off the
// curve, or no kid (tokens select JWKS keys by kid only). A set with no
// usable key is an error, so a broken set never replaces a good one.
func parseJWKS(b []byte) (map[string]jwksKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("key set is not JSON: %v", jsonProblem(err))
	}
	keys := make(map[string]jwksKey)
	var skipped []error
	for i, k := range set.Keys {
		pub, alg, err := k.public()
		if err == nil && k.Kid == "" {
			err = errors.New("no kid")
		}
		if err == nil {
			if _, dup := keys[k.Kid]; dup {
				err = errors.New("duplicate kid")
			}
		}
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		keys[k.Kid] = jwksKey{alg: alg, pub: pub}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no usable key in the set: %w", errors.Join(skipped...))
	}
	return keys, nil
}

var b64 = base64.RawURLEncoding.Strict()

// public returns k's public key and the alg it verifies.
func (k *jwk) public() (any, string, error) {
	if k.Use != "" && k.Use != "sig" {
		return nil, "", fmt.Errorf("use %q", k.Use)
	}
	var pub any
	var alg string
	switch k.Kty {
	case "RSA":
		n, err1 := b64.DecodeString(k.N)
		e, err2 := b64.DecodeString(k.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return nil, "", errors.New("bad RSA n or e")
		}
		exp := int(new(big.Int).SetBytes(e).Int64())
		key := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
		if key.N.BitLen() < minRSABits {
			return nil, "", fmt.Errorf("RSA key has %d bits; want at least %d", key.N.BitLen(), minRSABits)
		}
		if exp < 3 || exp%2 == 0 {
			return nil, "", errors.New("bad RSA exponent")
		}
		pub, alg = key, algRS256
	case "EC":
		if k.Crv != "P-256" {
			return nil, "", fmt.Errorf("curve %q; only P-256 (ES256) is supported", k.Crv)
		}
		x, err1 := b64.DecodeString(k.X)
		y, err2 := b64.DecodeString(k.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return nil, "", errors.New("bad EC x or y")
		}
		// ParseUncompressedPublicKey checks that the point is on the curve.
		key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, "", fmt.Errorf("bad EC point: %v", err)
		}
		pub, alg = key, algES256
	default:
		return nil, "", fmt.Errorf("kty %q", k.Kty)
	}
	if k.Alg != "" && k.Alg != alg {
		return nil, "", fmt.Errorf("alg %q for a %s key", k.Alg, k.Kty)
	}
	return pub, alg, nil
}
