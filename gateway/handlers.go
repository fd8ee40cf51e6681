package gateway

import (
	"bytes"
	"errors"
	"net/http"
	"time"

	"github.com/duplexws/duplex"
)

// servePage serves the demo page. Its URL carries the token
// (/?token=...), so the page must not hand it on in a Referer.
func (g *Gateway) servePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", connectSources(g.pageCSP, r))
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(g.page))
}

// serveClient serves duplex.js; the .js name gives it the JavaScript
// Content-Type browsers require for an ES module.
func (g *Gateway) serveClient(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "duplex.js", time.Time{}, bytes.NewReader(g.client))
}

// serveAuthCheck tells the page whether its token is good before it opens
// a WebSocket: browsers hide the status of a refused handshake, so a 401
// on the upgrade would look like a network error and be retried forever.
func (g *Gateway) serveAuthCheck(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if _, status := g.admit(w, r); status != 0 { // the connect hook too
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// authenticate checks r's credentials. On failure it answers 401 with
// WWW-Authenticate and a short reason, counts and logs the failure (the
// URL redacted, never a credential), and returns the status it answered;
// it returns 0 for good credentials.
//
// An address that failed too often (AuthFailureLimit) gets 429 with
// Retry-After instead, before its credentials are looked at. Requests
// that carry no credential at all are not guesses and are not counted.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request) (Identity, int) {
	addr := clientAddr(r)
	if wait, ok := g.authLimit.check(addr); !ok {
		g.refuseRateLimited(w, r, wait)
		http.Error(w, "too many failed authentications: retry later", http.StatusTooManyRequests)
		return Identity{}, http.StatusTooManyRequests
	}
	id, err := g.auth.Authenticate(r)
	if err == nil {
		return id, 0
	}
	reason := "unauthorized"
	var ae *AuthError
	if errors.As(err, &ae) {
		reason = ae.Reason
	}
	if reason != reasonMissing {
		g.authLimit.fail(addr)
	}
	g.metrics.authFailures.WithLabelValues(reason).Inc()
	g.logs.warn("auth failed",
		"reason", reason,
		"remote", r.RemoteAddr,
		"method", r.Method,
		"url", clip(RedactURL(r.URL)),
		"user_agent", clip(r.UserAgent()))
	w.Header().Set("WWW-Authenticate", g.auth.Challenge())
	http.Error(w, "unauthorized: "+reason, http.StatusUnauthorized)
	return Identity{}, http.StatusUnauthorized
}

// refuseRateLimited counts and logs a request refused for its address's
// failed authentications, and sets the headers of the 429; the caller
// writes the status and body.
func (g *Gateway) refuseRateLimited(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	g.metrics.authRateLimited.Inc()
	g.logs.warn("auth rate limited",
		"remote", r.RemoteAddr,
		"method", r.Method,
		"path", clip(r.URL.Path),
		"retry_after", wait.Round(time.Second))
	tooManyFailures(w, wait)
}

// serveWebSocket authenticates r, takes a connection slot, upgrades and
// runs the session with handle for each message. Every refusal happens
// before the handshake: 401 here (or 401, 403 or 503 from the connect
// hook), 400 for bad since parameters, 503 for a full or closing gateway,
// and 400, 403, 405 or 426 from duplex.Accept.
//
// A connection the event loop can take (plain TCP) becomes an event
// session and this handler returns; the session gives its slot back when
// it ends. Any other (TLS served here, HTTP/2, Options.NoEventLoop) runs
// as a goroutine session on this handler's goroutine.
func (g *Gateway) serveWebSocket(w http.ResponseWriter, r *http.Request, onWS bool) {
	ident, status := g.admit(w, r) // authenticate, or the connect hook (hooks_connect.go)
	if status != 0 {
		g.metrics.refused(status)
		return
	}
	since, err := parseSince(r)
	if err != nil {
		g.metrics.refused(http.StatusBadRequest)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if status, reason := g.hub.reserve(); status != 0 {
		g.metrics.refused(status)
		g.logs.warn("upgrade refused", "status", status, "reason", reason, "remote", r.RemoteAddr, "user", clip(ident.User))
		w.Header().Set("Retry-After", "5")
		http.Error(w, reason, status)
		return
	}
	detached := false
	defer func() {
		if !detached {
			g.hub.release()
		}
	}()
	conn, err := duplex.Accept(w, r, &g.accept)
	if err != nil {
		var he *duplex.HandshakeError
		if errors.As(err, &he) && he.StatusCode != 0 {
			g.metrics.refused(he.StatusCode)
			g.logs.info("handshake refused", "status", he.StatusCode, "reason", clip(string(he.Body)), "remote", r.RemoteAddr, "user", clip(ident.User))
		} else {
			g.logs.warn("handshake failed", "error", clip(err.Error()), "remote", r.RemoteAddr, "user", clip(ident.User))
		}
		return
	}
	id := g.shareIdentity(ident)
	// Server-side subscriptions resume after since (control.go).
	if !g.opts.NoEventLoop && g.detach(conn, r, id, onWS, since) {
		detached = true
		return
	}
	g.newGoSession(conn, r, id, onWS).run(since)
}
