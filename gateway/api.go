package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// The HTTP API lets backends publish and read history without a
// WebSocket (docs/protocol.md):
//
//	POST /api/publish  {"channel":C,"data":D}  → 200 {"offset":N}
//	GET  /api/history?channel=C&since=N        → 200 {"messages":[...],"recovered":B,"offset":N}
//
// Both need "Authorization: Bearer" with Options.APIKey, and answer 404
// when no key is configured. Errors are {"error":"..."} with 400 (bad
// request), 401 (no or wrong key), 413 (body over MaxMessageSize) or 503
// (broker unavailable).

// apiMessage is a message as the API returns it.
type apiMessage struct {
	Channel string          `json:"channel"`
	Offset  uint64          `json:"offset"`
	Data    json.RawMessage `json:"data"`
}

// servePublish handles POST /api/publish.
func (g *Gateway) servePublish(w http.ResponseWriter, r *http.Request) {
	if !g.apiAuthorized(w, r) {
		return
	}
	limit := g.opts.MaxMessageSize
	if limit < 0 {
		limit = DefaultMaxMessageSize
	}
	// Room for the envelope around data, which MaxMessageSize bounds.
	r.Body = http.MaxBytesReader(w, r.Body, limit+1024)
	var req struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			apiError(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		apiError(w, http.StatusBadRequest, "bad request: "+jsonProblem(err))
		return
	}
	if !validChannel(req.Channel) {
		apiError(w, http.StatusBadRequest, errInvalidChannel.Error())
		return
	}
	if len(req.Data) == 0 {
		apiError(w, http.StatusBadRequest, errMissingData.Error())
		return
	}
	if int64(len(req.Data)) > limit {
		apiError(w, http.StatusRequestEntityTooLarge, "data too large")
		return
	}
	off, err := g.publishOffset(r.Context(), "api", req.Channel, req.Data)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	apiJSON(w, http.StatusOK, struct {
		Offset uint64 `json:"offset"`
	}{off})
}

// serveHistory handles GET /api/history. Without since it returns every
// message held ("from the start", since=0).
func (g *Gateway) serveHistory(w http.ResponseWriter, r *http.Request) {
	if !g.apiAuthorized(w, r) {
		return
	}
	q := r.URL.Query()
	channel := q.Get("channel")
	if !validChannel(channel) {
		apiError(w, http.StatusBadRequest, errInvalidChannel.Error())
		return
	}
	var since uint64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			apiError(w, http.StatusBadRequest, "since: want an offset, a non-negative integer")
			return
		}
		since = n
	}
	msgs, recovered, latest, err := g.channels.broker.History(r.Context(), channel, since)
	if err != nil {
		g.log.Warn("broker history failed", "channel", channel, "error", err)
		apiError(w, http.StatusServiceUnavailable, errBrokerUnavailable.Error())
		return
	}
	out := struct {
		Messages  []apiMessage `json:"messages"`
		Recovered bool         `json:"recovered"`
		Offset    uint64       `json:"offset"`
	}{Messages: make([]apiMessage, len(msgs)), Recovered: recovered, Offset: latest}
	for i, m := range msgs {
		out.Messages[i] = apiMessage{m.Channel, m.Offset, m.Data}
	}
	apiJSON(w, http.StatusOK, out)
}

// apiAuthorized checks the API key, answering 404 when the API is off,
// 401 for a missing or wrong key, and 429 for an address that presented
// wrong keys too often (AuthFailureLimit, shared with the WebSocket
// endpoints). The comparison takes the same time whatever the key
// presented.
func (g *Gateway) apiAuthorized(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Set("Cache-Control", "no-store")
	if g.opts.APIKey == "" {
		apiError(w, http.StatusNotFound, "the HTTP API is off: start the server with --api-key")
		return false
	}
	addr := clientAddr(r)
	if wait, ok := g.authLimit.check(addr); !ok {
		g.refuseRateLimited(w, r, wait)
		apiError(w, http.StatusTooManyRequests, "too many failed authentications: retry later")
		return false
	}
	auth := r.Header.Get("Authorization")
	scheme, key, _ := strings.Cut(auth, " ")
	want := sha256.Sum256([]byte(g.opts.APIKey))
	got := sha256.Sum256([]byte(strings.TrimSpace(key)))
	// RFC 7235 §2.1: the auth-scheme is case-insensitive.
	if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		if auth != "" {
			g.authLimit.fail(addr)
		}
		g.metrics.authFailures.WithLabelValues("invalid api key").Inc()
		g.logs.warn("api auth failed", "remote", r.RemoteAddr, "method", r.Method, "path", clip(r.URL.Path))
		w.Header().Set("WWW-Authenticate", `Bearer realm="duplex-api"`)
		apiError(w, http.StatusUnauthorized, "unauthorized")
		return false
	}
	return true
}

func apiError(w http.ResponseWriter, code int, msg string) {
	apiJSON(w, code, struct {
		Error string `json:"error"`
	}{msg})
}

func apiJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
