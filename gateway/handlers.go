package gateway

import (
	"bytes"
	"encoding/json"
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
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(g.page))
}

// serveClient serves duplex.js; the .js name gives it the JavaScript
// Content-Type browsers require for an ES module.
func (g *Gateway) serveClient(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "duplex.js", time.Time{}, bytes.NewReader(g.client))
}

// serveHealth answers load balancers: 503 once shutdown has begun, so
// they stop sending new clients here.
func (g *Gateway) serveHealth(w http.ResponseWriter, r *http.Request) {
	status, code := "ok", http.StatusOK
	if g.hub.isClosing() {
		status, code = "shutting down", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Status      string `json:"status"`
		Connections int    `json:"connections"`
	}{status, g.hub.count()})
}

// serveAuthCheck tells the page whether its token is good before it opens
// a WebSocket: browsers hide the status of a refused handshake, so a 401
// on the upgrade would look like a network error and be retried forever.
func (g *Gateway) serveAuthCheck(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if _, ok := g.authenticate(w, r); !ok {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// authenticate checks r's credentials. On failure it answers 401 with
// WWW-Authenticate and a short reason, counts and logs the failure (the
// URL redacted, never a credential), and returns false.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request) (Identity, bool) {
	id, err := g.auth.Authenticate(r)
	if err == nil {
		return id, true
	}
	reason := "unauthorized"
	var ae *AuthError
	if errors.As(err, &ae) {
		reason = ae.Reason
	}
	g.metrics.authFailures.WithLabelValues(reason).Inc()
	g.log.Warn("auth failed",
		"reason", reason,
		"remote", r.RemoteAddr,
		"method", r.Method,
		"url", RedactURL(r.URL),
		"user_agent", r.UserAgent())
	w.Header().Set("WWW-Authenticate", g.auth.Challenge())
	http.Error(w, "unauthorized: "+reason, http.StatusUnauthorized)
	return Identity{}, false
}

// serveWebSocket authenticates r, takes a connection slot, upgrades and
// runs the session with handle for each message. Every refusal happens
// before the handshake: 401 here, 503 for a full or closing gateway, and
// 400, 403, 405 or 426 from duplex.Accept.
func (g *Gateway) serveWebSocket(w http.ResponseWriter, r *http.Request, handle messageHandler) {
	id, ok := g.authenticate(w, r)
	if !ok {
		g.metrics.refused(http.StatusUnauthorized)
		return
	}
	if status, reason := g.hub.reserve(); status != 0 {
		g.metrics.refused(status)
		g.log.Warn("upgrade refused", "status", status, "reason", reason, "remote", r.RemoteAddr, "user", id.User)
		w.Header().Set("Retry-After", "5")
		http.Error(w, reason, status)
		return
	}
	defer g.hub.release()
	conn, err := duplex.Accept(w, r, &g.accept)
	if err != nil {
		var he *duplex.HandshakeError
		if errors.As(err, &he) && he.StatusCode != 0 {
			g.metrics.refused(he.StatusCode)
			g.log.Info("handshake refused", "status", he.StatusCode, "reason", string(he.Body), "remote", r.RemoteAddr, "user", id.User)
		} else {
			g.log.Warn("handshake failed", "error", err, "remote", r.RemoteAddr, "user", id.User)
		}
		return
	}
	g.newSession(conn, r, id, handle).run()
}
