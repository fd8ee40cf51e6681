package gateway

import (
	"time"

	"github.com/duplexws/duplex"
)

// StatusTokenExpired closes a session whose credential ran out: its JWT's
// exp passed (after the leeway) without a refresh, or a refresh was
// refused (docs/protocol.md, "Token lifetime"). It is in the range RFC
// 6455 §7.4.2 leaves to applications; 4401 echoes HTTP's 401, which is
// what the client gets if it reconnects with the same token.
const StatusTokenExpired duplex.StatusCode = 4401

// Close reasons sent with StatusTokenExpired.
const (
	reasonTokenExpired = "token expired"
	refusedPrefix      = "refresh refused: "
)

// farFuture bounds an expiry kept in milliseconds: a JWT whose exp lies
// beyond it is taken as never expiring, and the arithmetic cannot
// overflow.
var farFuture = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// setExpiry records when the session's credential runs out (zero: never)
// and wakes a goroutine session's keeper, whose timer may now be too late
// (the sweep reads it on its next tick). Any goroutine
// may call it.
func (s *session) setExpiry(at time.Time) {
	var ms int64
	if !at.IsZero() && at.Before(farFuture) {
		ms = max(at.UnixMilli(), 1) // 0 means never
	}
	s.expires.Store(ms)
	s.kind.expiryChanged()
}

// expireIfDue is the whole of token expiry: when the credential has run
// out at now it closes the session with 4401 "token expired"; otherwise
// it returns when the credential will run out, zero for never. The keeper
// calls it whenever its timer fires; the sweep calls it for event
// sessions on every tick. It costs an atomic load.
func (s *session) expireIfDue(now time.Time) time.Time {
	ms := s.expires.Load()
	if ms == 0 {
		return time.Time{}
	}
	at := time.UnixMilli(ms)
	if now.Before(at) {
		return at
	}
	s.closeAfter(StatusTokenExpired, reasonTokenExpired, func() {
		s.g.log.Info("token expired, closing", "conn", s.id, "remote", s.remote,
			"user", s.user(), "expired", at.UTC().Format(time.RFC3339))
	})
	return time.Time{}
}
