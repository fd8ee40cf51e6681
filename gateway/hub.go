package gateway

import (
	"net/http"
	"sync"
)

// hub keeps the sessions of a Gateway and the connection slots.
//
// A slot is taken before the handshake and given back when the session
// is over (a goroutine session's goroutines are gone, an event session's
// OnClose has run), so MaxConnections also counts upgrades in progress
// and Shutdown can wait for every connection by waiting for the slots.
//
// Lock order: hub.mu, then (issue 6) a channel's lock, then
// eventSession.mu. eventSession.mu is a leaf, held only to queue a
// message or take the queue; how a session ends is an atomic pointer.
// session.send never blocks (a full queue closes the session instead), so
// fan-out may run under a channel's lock without a slow client stalling
// the publisher or the other subscribers.
type hub struct {
	max int // MaxConnections; negative: no limit

	mu       sync.Mutex
	sessions []*session // guarded by mu; session.hubIndex is each one's index
	slots    int        // guarded by mu; upgrades in progress plus sessions
	closing  bool       // guarded by mu; set once by Shutdown
	events   int        // guarded by mu; event sessions in sessions
	sweeping bool       // guarded by mu; the sweep goroutine runs

	sweep func() // runs the sweep (Gateway.sweepLoop)

	// wg counts slots. Add happens under mu while !closing, so no Add can
	// race with Shutdown's Wait starting from zero.
	wg sync.WaitGroup
}

func newHub(max int, sweep func()) *hub {
	return &hub{max: max, sweep: sweep}
}

// reserve takes a slot for an upgrade. It returns 0, or the HTTP status
// (503) and the reason to refuse the upgrade with.
func (h *hub) reserve() (status int, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closing:
		return http.StatusServiceUnavailable, "server shutting down"
	case h.max >= 0 && h.slots >= h.max:
		return http.StatusServiceUnavailable, "too many connections"
	}
	h.slots++
	h.wg.Add(1)
	return 0, ""
}

// release gives back a slot taken by reserve.
func (h *hub) release() {
	h.mu.Lock()
	h.slots--
	h.mu.Unlock()
	h.wg.Done()
}

// add registers s. It returns false when the hub is shutting down: the
// caller closes s with 1001 at once.
func (h *hub) add(s *session) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	s.hubIndex = int32(len(h.sessions))
	h.sessions = append(h.sessions, s)
	if _, ok := s.kind.(*eventSession); ok {
		h.events++
		if !h.sweeping {
			h.sweeping = true
			go h.sweep()
		}
	}
	return true
}

func (h *hub) remove(s *session) {
	h.mu.Lock()
	if i := int(s.hubIndex); i < len(h.sessions) && h.sessions[i] == s {
		last := len(h.sessions) - 1
		h.sessions[i] = h.sessions[last]
		h.sessions[i].hubIndex = int32(i)
		h.sessions[last] = nil
		h.sessions = h.sessions[:last]
		if c := cap(h.sessions); c > 1024 && last < c/4 {
			// After a wave of disconnections, give the array back.
			h.sessions = append([]*session(nil), h.sessions...)
		}
		if _, ok := s.kind.(*eventSession); ok {
			h.events--
		}
	}
	h.mu.Unlock()
}

// eventSessions appends the event sessions open now to buf. When there
// are none it returns false, and the sweep must end: the next add starts
// another.
func (h *hub) eventSessions(buf []*eventSession) ([]*eventSession, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.events == 0 {
		h.sweeping = false
		return buf, false
	}
	for _, s := range h.sessions {
		if es, ok := s.kind.(*eventSession); ok {
			buf = append(buf, es)
		}
	}
	return buf, true
}

// snapshot returns the sessions open now.
func (h *hub) snapshot() []*session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*session(nil), h.sessions...)
}

// startShutdown refuses every later reserve and add, and returns the
// sessions open now.
func (h *hub) startShutdown() []*session {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	return h.snapshot()
}

func (h *hub) isClosing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closing
}

// count returns the number of open sessions.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}
