package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// connectHookRequest is what --connect-hook receives (docs/protocol.md).
type connectHookRequest struct {
	Remote  string      `json:"remote"`  // the client's address, as the server saw it
	Path    string      `json:"path"`    // /ws or /echo
	Headers http.Header `json:"headers"` // the upgrade request's, cookies included
	Token   string      `json:"token,omitempty"`

	// User and Auth are the identity of a valid credential, with
	// ConnectHookAlways.
	User string `json:"user,omitempty"`
	Auth string `json:"auth,omitempty"`
}

// connectHookReply is the connect hook's 200 answer: the same permissions
// as a JWT's claims, each a list of names or patterns or one as a string.
// An absent Channels allows every subscription, an absent Publish no
// publishing.
type connectHookReply struct {
	User     string `json:"user"`
	Subs     any    `json:"subs"`
	Channels any    `json:"channels"`
	Publish  any    `json:"publish"`
}

// admit authenticates an upgrade, asking the connect hook when there is
// one and the request brings no valid credential (or always, with
// ConnectHookAlways). Like authenticate, it answers the refusals itself
// and returns their status: 401 or 403 as the hook said, 429 for an
// address that failed too often, 503 when the hook failed.
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request) (Identity, int) {
	if g.opts.ConnectHook == "" {
		return g.authenticate(w, r)
	}
	addr := clientAddr(r)
	if wait, ok := g.authLimit.check(addr); !ok {
		g.refuseRateLimited(w, r, wait)
		http.Error(w, "too many failed authentications: retry later", http.StatusTooManyRequests)
		return Identity{}, http.StatusTooManyRequests
	}
	id, err := g.auth.Authenticate(r)
	if err == nil && !g.opts.ConnectHookAlways {
		return id, 0
	}
	req := connectHookRequest{Remote: r.RemoteAddr, Path: r.URL.Path, Headers: r.Header}
	req.Token, _ = findToken(r)
	if err == nil {
		req.User, req.Auth = id.User, id.Method
	}
	var reply connectHookReply
	status, err := g.hooks.call(r.Context(), "connect", req, &reply)
	switch {
	case errors.Is(err, errHookDenied):
		g.authLimit.fail(addr)
		g.metrics.authFailures.WithLabelValues("refused by connect hook").Inc()
		g.logs.warn("connect hook refused", "status", status, "remote", r.RemoteAddr)
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", g.auth.Challenge())
			http.Error(w, "unauthorized: refused by connect hook", status)
		} else {
			http.Error(w, "forbidden: refused by connect hook", status)
		}
		return Identity{}, status
	case err != nil:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "connect hook unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return Identity{}, http.StatusServiceUnavailable
	}
	return reply.identity(), 0
}

// identity turns the hook's answer into the session's Identity, with
// Method "hook": its permissions work like a JWT's claims
// (Identity.ChannelAllowed), and it does not expire.
func (rep connectHookReply) identity() Identity {
	claims := map[string]any{}
	for k, v := range map[string]any{"channels": rep.Channels, "publish": rep.Publish, "subs": rep.Subs} {
		if v != nil {
			claims[k] = v
		}
	}
	return Identity{User: rep.User, Method: "hook", Claims: claims}
}

// serverSubs returns the channels id is subscribed to at connect: the
// "subs" claim of a JWT or of the connect hook's answer, a list of
// channel names (or one name as a string). Names that are not valid are
// skipped.
func serverSubs(id Identity) []string {
	var out []string
	add := func(v any) {
		if s, ok := v.(string); ok && validChannel(s) {
			out = append(out, s)
		}
	}
	switch v := id.Claims["subs"].(type) {
	case string:
		add(v)
	case []string:
		for _, s := range v {
			add(s)
		}
	case []any:
		for _, s := range v {
			add(s)
		}
	}
	return out
}

// maxSinceParams bounds the since parameters of one upgrade.
const maxSinceParams = 1000

// parseSince reads the "since" query parameters of an upgrade: each is
// CHANNEL:OFFSET, the offset to resume a server-side subscription after
// (docs/protocol.md, "Server-side subscriptions"). Channel names may hold
// ':', offsets not, so the last ':' splits them.
func parseSince(r *http.Request) (map[string]uint64, error) {
	vals := r.URL.Query()["since"]
	if len(vals) == 0 {
		return nil, nil
	}
	if len(vals) > maxSinceParams {
		return nil, errors.New("too many since parameters")
	}
	out := make(map[string]uint64, len(vals))
	for _, v := range vals {
		i := strings.LastIndexByte(v, ':')
		if i < 0 {
			return nil, errors.New("since: want CHANNEL:OFFSET")
		}
		off, err := strconv.ParseUint(v[i+1:], 10, 64)
		if err != nil || !validChannel(v[:i]) {
			return nil, errors.New("since: want CHANNEL:OFFSET")
		}
		out[v[:i]] = off
	}
	return out, nil
}
