package gateway

import (
	"net/http"
)

// health is what /healthz and /api/health answer. Error is set only on
// /api/health and on the internal address (MetricsAddr): a broker's error
// can name hosts, users or Redis' own messages ("WRONGPASS ..."), which
// strangers have no business reading (issue 15 item 9).
type health struct {
	Status      string `json:"status"`
	Error       string `json:"error,omitempty"`
	Connections int    `json:"connections"`
}

// checkHealth returns the status to answer, 200 or 503, and the broker's
// error if it has one.
func (g *Gateway) checkHealth() (health, int, error) {
	if g.hub.isClosing() {
		return health{"shutting down", "", g.hub.count()}, http.StatusServiceUnavailable, nil
	}
	if err := g.channels.broker.Healthy(); err != nil {
		return health{"broker unavailable", "", g.hub.count()}, http.StatusServiceUnavailable, err
	}
	return health{"ok", "", g.hub.count()}, http.StatusOK, nil
}

// serveHealthz answers load balancers: 503 once shutdown has begun, so
// they stop sending new clients here, and while the broker is unavailable.
// It says what is wrong, never why: see serveHealthDetails.
func (g *Gateway) serveHealthz(w http.ResponseWriter, r *http.Request) {
	h, code, _ := g.checkHealth()
	w.Header().Set("Cache-Control", "no-store")
	apiJSON(w, code, h)
}

// serveHealthDetails is /healthz with the broker's error, for operators:
// GET /api/health with the API key, or /healthz on MetricsAddr.
func (g *Gateway) serveHealthDetails(w http.ResponseWriter, r *http.Request) {
	h, code, err := g.checkHealth()
	if err != nil {
		h.Error = clip(err.Error())
	}
	w.Header().Set("Cache-Control", "no-store")
	apiJSON(w, code, h)
}

// serveAPIHealth handles GET /api/health.
func (g *Gateway) serveAPIHealth(w http.ResponseWriter, r *http.Request) {
	if !g.apiAuthorized(w, r) {
		return
	}
	g.serveHealthDetails(w, r)
}

// serveMetrics handles /metrics: open to all, or with MetricsAuth only
// with the API key.
func (g *Gateway) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if g.opts.MetricsAuth && !g.apiAuthorized(w, r) {
		return
	}
	g.metrics.handler().ServeHTTP(w, r)
}

// InternalHandler serves what MetricsAddr is for: /metrics (with the API
// key if MetricsAuth is set) and /healthz with the broker's error. Serve it
// on an address only operators reach; with MetricsAddr set, the Gateway
// itself answers 404 on /metrics.
func (g *Gateway) InternalHandler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /metrics", g.serveMetrics)
	m.HandleFunc("GET /healthz", g.serveHealthDetails)
	return m
}
