package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"path"
	"sort"
)

// The server API of issue 16 (docs/protocol.md, "HTTP API"), with the
// conventions of /api/publish (apiAuthorized, JSON errors):
//
//	GET  /api/presence?channel=C        → 200 {"clients":[{"client":ID,"user":U,"node":N},...]}
//	GET  /api/channels?pattern=P        → 200 {"channels":[{"channel":C,"subscribers":N},...]}
//	POST /api/disconnect  {"user":U}            → 200 {}
//	POST /api/subscribe   {"user":U,"channel":C} → 200 {}
//	POST /api/unsubscribe {"user":U,"channel":C} → 200 {}
//
// The commands reach every node over the broker's control bus; they are
// carried out asynchronously, so a 200 says the command was sent, not that
// a session was found.

// maxCommandBody bounds the body of a command.
const maxCommandBody = 64 << 10

func (g *Gateway) serveAPIPresence(w http.ResponseWriter, r *http.Request) {
	if !g.apiAuthorized(w, r) {
		return
	}
	channel := r.URL.Query().Get("channel")
	if !validChannel(channel) {
		apiError(w, http.StatusBadRequest, errInvalidChannel.Error())
		return
	}
	ms, err := g.presence.members(r.Context(), channel)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if ms == nil {
		ms = []Member{}
	}
	apiJSON(w, http.StatusOK, struct {
		Clients []Member `json:"clients"`
	}{ms})
}

// channelCount is one entry of GET /api/channels.
type channelCount struct {
	Channel     string `json:"channel"`
	Subscribers int    `json:"subscribers"`
}

func (g *Gateway) serveAPIChannels(w http.ResponseWriter, r *http.Request) {
	if !g.apiAuthorized(w, r) {
		return
	}
	pattern := r.URL.Query().Get("pattern")
	if pattern != "" {
		if _, err := path.Match(pattern, ""); err != nil {
			apiError(w, http.StatusBadRequest, "pattern: not a path.Match pattern")
			return
		}
	}
	counts, err := g.presence.channelCounts(r.Context())
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	out := []channelCount{}
	for ch, n := range counts {
		if n > 0 && (pattern == "" || matchChannel(pattern, ch)) {
			out = append(out, channelCount{ch, n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	apiJSON(w, http.StatusOK, struct {
		Channels []channelCount `json:"channels"`
	}{out})
}

// serveAPICommand handles POST /api/disconnect, /api/subscribe and
// /api/unsubscribe: op is the command.
func (g *Gateway) serveAPICommand(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !g.apiAuthorized(w, r) {
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxCommandBody)
		var req struct {
			User    string `json:"user"`
			Channel string `json:"channel"`
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
		if req.User == "" {
			apiError(w, http.StatusBadRequest, "user: want a user name")
			return
		}
		if op != "disconnect" && !validChannel(req.Channel) {
			apiError(w, http.StatusBadRequest, errInvalidChannel.Error())
			return
		}
		if op == "disconnect" {
			req.Channel = ""
		}
		if err := g.presence.command(controlMsg{Op: op, User: req.User, Channel: req.Channel}); err != nil {
			apiError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		apiJSON(w, http.StatusOK, struct{}{})
	}
}
