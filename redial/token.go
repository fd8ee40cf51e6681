package redial

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/duplexws/duplex"
)

// statusTokenExpired is the duplex gateway's close code for a session
// whose token expired or whose refresh was refused (docs/protocol.md).
const statusTokenExpired duplex.StatusCode = 4401

// refreshedPrefix starts the gateway's answer to a refresh, which the
// client consumes.
var refreshedPrefix = []byte(`{"type":"refreshed"`)

// dialToken returns the token to dial with, calling Options.Token when
// there is none yet, the server refused the last one, or it is about to
// expire.
// fresh says the token came from Token just now.
func (c *Client) dialToken(ctx context.Context) (tok string, fresh bool, err error) {
	c.tokenMu.Lock()
	tok, exp, need := c.token, c.tokenExp, c.needToken
	c.tokenMu.Unlock()
	if tok != "" && !need && (exp.IsZero() || time.Until(exp) > c.opts.RefreshBefore) {
		return tok, false, nil
	}
	tok, err = c.newToken(ctx)
	return tok, true, err
}

// retryWithNewToken reports whether a dial refused with 401 or 403 is
// worth one more try: the token was kept from an earlier dial, so a new
// one from Token may pass. It makes the next dial ask for one.
func (c *Client) retryWithNewToken() bool {
	if c.opts.Token == nil || c.dialedFresh {
		return false
	}
	c.tokenMu.Lock()
	c.needToken = true
	c.tokenMu.Unlock()
	return true
}

// newToken calls Options.Token and keeps its token.
func (c *Client) newToken(ctx context.Context) (string, error) {
	tok, err := c.opts.Token(ctx)
	if err == nil && tok == "" {
		err = errors.New("empty token")
	}
	if err != nil {
		return "", fmt.Errorf("redial: Token: %w", err)
	}
	exp, _ := jwtExpiry(tok)
	c.tokenMu.Lock()
	c.token, c.tokenExp, c.needToken = tok, exp, false
	c.tokenMu.Unlock()
	return tok, nil
}

// refresh sends a new token RefreshBefore before the current one's exp,
// until ctx ends. Without an exp there is nothing to refresh.
func (c *Client) refresh(ctx context.Context, conn *duplex.Conn) {
	floor := time.Second // a token already inside the window cannot make a loop
	for {
		c.tokenMu.Lock()
		exp := c.tokenExp
		c.tokenMu.Unlock()
		if exp.IsZero() {
			return
		}
		t := time.NewTimer(max(time.Until(exp)-c.opts.RefreshBefore, floor))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		tctx, cancel := context.WithTimeout(ctx, c.opts.HandshakeTimeout)
		tok, err := c.newToken(tctx)
		if err == nil {
			msg, _ := json.Marshal(struct {
				Type  string `json:"type"`
				Token string `json:"token"`
			}{"refresh", tok})
			err = conn.Write(tctx, duplex.MessageText, msg)
		}
		cancel()
		floor = time.Second
		if err != nil {
			floor = 5 * time.Second
		}
	}
}

// withToken puts tok in u's "token" query parameter if it has one, else in
// an Authorization header of a copy of opts.
func withToken(u string, opts *duplex.DialOptions, tok string) (string, *duplex.DialOptions) {
	if pu, err := url.Parse(u); err == nil && pu.Query().Has("token") {
		q := pu.Query()
		q.Set("token", tok)
		pu.RawQuery = q.Encode()
		return pu.String(), opts
	}
	var o duplex.DialOptions
	if opts != nil {
		o = *opts
	}
	o.HTTPHeader = o.HTTPHeader.Clone()
	if o.HTTPHeader == nil {
		o.HTTPHeader = http.Header{}
	}
	o.HTTPHeader.Set("Authorization", "Bearer "+tok)
	return u, &o
}

// jwtExpiry returns the exp claim of a JWT, unverified.
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Exp == nil ||
		math.IsNaN(*claims.Exp) || *claims.Exp <= 0 || *claims.Exp > 253402300799 { // up to 9999-12-31
		return time.Time{}, false
	}
	return time.Unix(int64(*claims.Exp), 0), true
}
