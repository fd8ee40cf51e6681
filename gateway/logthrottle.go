package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Issue 15 item 7: a refused request costs the client one request and the
// server one log line, so without a bound a flood of refusals becomes a
// flood of logs (412 MB in 5 s with 60 KB User-Agents). Fields taken from
// the request are clipped (see clip), and each kind of line is limited.

// logLimiter passes at most rate lines of each kind per second to its
// logger and counts the rest; a second after the first line it held back,
// it logs how many it held back. A kind is a constant message of the
// code, so the set of kinds stays small whatever clients send.
type logLimiter struct {
	log  *slog.Logger
	rate int // lines per kind per second; negative: no limit

	mu     sync.Mutex
	kinds  map[string]*logWindow // guarded by mu
	closed bool                  // guarded by mu; set by stop
}

// logWindow is one kind's current second.
type logWindow struct {
	start      time.Time
	n          int         // lines passed since start
	suppressed int         // lines held back since start
	level      slog.Level  // of the lines held back
	flush      *time.Timer // set while lines are held back
}

func newLogLimiter(log *slog.Logger, rate int) *logLimiter {
	return &logLimiter{log: log, rate: rate, kinds: make(map[string]*logWindow)}
}

func (l *logLimiter) warn(msg string, args ...any) {
	if l.allow(msg, slog.LevelWarn) {
		l.log.Warn(msg, args...)
	}
}

func (l *logLimiter) info(msg string, args ...any) {
	if l.allow(msg, slog.LevelInfo) {
		l.log.Info(msg, args...)
	}
}

// allow reports whether a line of kind may be logged now, and counts it
// if not.
func (l *logLimiter) allow(kind string, level slog.Level) bool {
	if l.rate < 0 {
		return true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.kinds[kind]
	if w == nil {
		w = &logWindow{start: now}
		l.kinds[kind] = w
	}
	if w.flush == nil && now.Sub(w.start) >= time.Second {
		w.start, w.n = now, 0
	}
	if w.n < l.rate {
		w.n++
		return true
	}
	w.suppressed++
	w.level = max(w.level, level)
	if w.flush == nil && !l.closed {
		w.flush = time.AfterFunc(time.Until(w.start.Add(time.Second)), func() { l.report(kind) })
	}
	return false
}

// report logs how many lines of kind were held back, and starts a new
// second for it.
func (l *logLimiter) report(kind string) {
	l.mu.Lock()
	w := l.kinds[kind]
	n, level := w.suppressed, w.level
	w.suppressed, w.level, w.flush = 0, slog.LevelDebug, nil
	w.start, w.n = time.Now(), 0
	l.mu.Unlock()
	if n > 0 {
		l.log.Log(context.Background(), level, "log lines suppressed", "message", kind, "suppressed", n)
	}
}

// stop reports what is held back now, and schedules no more reports.
func (l *logLimiter) stop() {
	l.mu.Lock()
	l.closed = true
	var pending []string
	for kind, w := range l.kinds {
		if w.flush != nil && w.flush.Stop() {
			pending = append(pending, kind)
		}
	}
	l.mu.Unlock()
	for _, kind := range pending {
		l.report(kind)
	}
}

// throttledHandler is a slog.Handler that passes each record through a
// logLimiter under one kind; it bounds what http.Server's ErrorLog writes
// ("http: TLS handshake error from ..." for every bad client).
type throttledHandler struct {
	slog.Handler
	l    *logLimiter
	kind string
}

func (h *throttledHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.l.allow(h.kind, r.Level) {
		return nil
	}
	r.Message = clip(r.Message)
	return h.Handler.Handle(ctx, r)
}

func (h *throttledHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &throttledHandler{h.Handler.WithAttrs(as), h.l, h.kind}
}

func (h *throttledHandler) WithGroup(name string) slog.Handler {
	return &throttledHandler{h.Handler.WithGroup(name), h.l, h.kind}
}
