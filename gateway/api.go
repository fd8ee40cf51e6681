package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The HTTP API lets backends publish and read history without a
// WebSocket (docs/protocol.md):
//
//	POST /api/publish  {"channel":C,"data":D}  → 200 {"offset":N}
//	GET  /api/history?channel=C&since=N&limit=L → 200 {"messages":[...],"recovered":B,"offset":N,"next":N,"more":B}
//
// Both need "Authorization: Bearer" with Options.APIKey, and answer 404
// when no key is configured. Errors are {"error":"..."} with 400 (bad
// request), 401 (no or wrong key), 413 (body over MaxMessageSize) or 503
// (broker unavailable, or "channel limit reached": MaxChannels).

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

// serveHistory handles GET /api/history: one page of the messages held
// after since (default 0, from the start), at most limit of them and
// HistoryPageBytes of data (but at least one message), and where the
// next page starts.
//
// The answer is written message by message: the data the broker holds is
// copied to the connection, never into a buffer of the whole answer, so
// concurrent reads of a large history cost little beyond the history
// itself (issue 15).
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
	limit := defaultHistoryLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxHistoryLimit {
			apiError(w, http.StatusBadRequest, "limit: want an integer from 1 to "+strconv.Itoa(maxHistoryLimit))
			return
		}
		limit = n
	}
	var (
		msgs      []Message
		recovered bool
		latest    uint64
		err       error
	)
	if hl, ok := g.channels.broker.(historyLimiter); ok {
		// One more than the page: whether it comes says "more".
		msgs, recovered, latest, err = hl.HistoryLimit(r.Context(), channel, since, limit+1)
	} else {
		msgs, recovered, latest, err = g.channels.broker.History(r.Context(), channel, since)
	}
	if err != nil {
		g.log.Warn("broker history failed", "channel", channel, "error", err)
		apiError(w, http.StatusServiceUnavailable, errBrokerUnavailable.Error())
		return
	}
	page := historyPage(msgs, limit, g.opts.HistoryPageBytes)
	more := len(page) < len(msgs)
	// Let the messages after the page go if the broker drops them while
	// a slow client reads this one.
	clear(msgs[len(page):])
	next := latest
	if len(page) > 0 {
		next = page[len(page)-1].Offset
	}
	// A client that reads slowly holds the page's data alive: bound how
	// long (not every ResponseWriter has a deadline to set).
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(historyWriteTimeout))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	writeHistory(w, page, recovered, latest, next, more)
}

// historyLimiter is a Broker that can read part of a channel's history:
// HistoryLimit is History returning only the oldest limit messages after
// since. GET /api/history uses it when the broker has it, so that a page
// costs what it holds rather than the whole history; the memory broker
// has it. (An optional interface, so that Broker stays as it is.)
type historyLimiter interface {
	HistoryLimit(ctx context.Context, channel string, since uint64, limit int) (msgs []Message, recovered bool, latest uint64, err error)
}

const (
	// defaultHistoryLimit and maxHistoryLimit bound the messages of one
	// GET /api/history response (its limit parameter).
	defaultHistoryLimit = 100
	maxHistoryLimit     = 1000

	// historyWriteTimeout bounds the writing of one history response.
	historyWriteTimeout = time.Minute
)

// historyPage returns the first messages of msgs, at most limit and as
// many as fit in maxBytes of data, but at least one.
func historyPage(msgs []Message, limit int, maxBytes int64) []Message {
	n, size := 0, int64(0)
	for n < len(msgs) && n < limit {
		size += int64(len(msgs[n].Data))
		if n > 0 && size > maxBytes {
			break
		}
		n++
	}
	return msgs[:n]
}

// writeHistory writes
// {"messages":[{"channel":C,"offset":N,"data":D},...],"recovered":B,"offset":N,"next":N,"more":B}
// to w, one message at a time. Channel names need no escaping
// (validChannel) and data is JSON, as in encodeMessage. It gives up at
// the first write that fails: the client is gone.
func writeHistory(w io.Writer, page []Message, recovered bool, latest, next uint64, more bool) {
	b := make([]byte, 0, 256)
	b = append(b, `{"messages":[`...)
	for i, m := range page {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"channel":"`...)
		b = append(b, m.Channel...)
		b = append(b, `","offset":`...)
		b = strconv.AppendUint(b, m.Offset, 10)
		b = append(b, `,"data":`...)
		if _, err := w.Write(b); err != nil {
			return
		}
		if _, err := w.Write(m.Data); err != nil {
			return
		}
		b = append(b[:0], '}')
	}
	b = append(b, `],"recovered":`...)
	b = strconv.AppendBool(b, recovered)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, latest, 10)
	b = append(b, `,"next":`...)
	b = strconv.AppendUint(b, next, 10)
	b = append(b, `,"more":`...)
	b = strconv.AppendBool(b, more)
	b = append(b, "}\n"...)
	w.Write(b)
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
