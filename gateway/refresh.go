package gateway

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/duplexws/duplex"
)

// minRefreshInterval is the least time between two refreshes of one
// session; a refresh sooner is answered errRefreshTooSoon and ignored.
const minRefreshInterval = time.Second

var errRefreshTooSoon = errors.New("refresh too soon: at most one a second")

// refreshRequest is {"type":"refresh","token":T}.
type refreshRequest struct {
	Token string `json:"token"`
}

// refreshedReply is {"type":"refreshed","exp":E}: E is the new token's
// exp in Unix seconds, 0 if it has none (the session no longer expires).
type refreshedReply struct {
	Type string `json:"type"`
	Exp  int64  `json:"exp"`
}

// onRefresh handles a refresh on /ws: a new token of the same user moves
// the session's expiry and its channel permissions to the new token's.
// Any other token (malformed, invalid, expired, another user's) is
// answered with an error, then the session closes with 4401, since the
// client has shown it holds no good credential.
//
// It runs on the session's handler, which is what reads the claims (for
// ChannelAllowed); other goroutines read only the user and the method.
func (g *Gateway) onRefresh(s *session, p []byte) {
	// A refresh costs a signature check, tens of times a message's work:
	// one a second is plenty for any token lifetime.
	now := time.Now().UnixNano()
	if now-s.lastRefresh < int64(minRefreshInterval) {
		g.replyError(s, "", errRefreshTooSoon)
		return
	}
	s.lastRefresh = now
	var req refreshRequest
	var id Identity
	err := json.Unmarshal(p, &req)
	if err != nil {
		err = &AuthError{Reason: "bad request: " + jsonProblem(err)}
	} else {
		id, err = g.auth.Refresh(*s.identity(), req.Token)
	}
	if err != nil {
		reason := "unauthorized"
		var ae *AuthError
		if errors.As(err, &ae) {
			reason = ae.Reason
		}
		g.metrics.authFailures.WithLabelValues(reason).Inc()
		g.log.Warn("refresh refused, closing", "conn", s.id, "remote", s.remote,
			"user", s.user(), "reason", reason)
		g.replyError(s, "", errors.New(refusedPrefix+reason))
		// The error must reach the client before the close frame, which
		// would drop it from the queue.
		s.drain()
		s.closeWith(StatusTokenExpired, refusedPrefix+reason)
		return
	}
	// Identities may be shared between sessions: the refreshed one is a
	// copy with the new claims.
	next := *s.identity()
	next.Claims = id.Claims
	next.Expires = id.Expires
	s.ident.Store(&next)
	s.setExpiry(id.Expires)
	var exp int64
	if t, ok := expiry(id.Claims); ok {
		exp = t.Unix()
	}
	b, _ := json.Marshal(refreshedReply{Type: "refreshed", Exp: exp})
	s.send(duplex.MessageText, b)
}
