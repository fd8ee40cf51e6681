package gateway

import (
	"container/list"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Issue 15 item 1: without a bound, plain keep-alive connections (after a
// GET /healthz or a 401) can use every file descriptor of the process; then
// accept fails with EMFILE and real clients wait forever. The bound counts
// the connections http.Server owns: accepted, minus those hijacked by a
// WebSocket upgrade (MaxConnections counts those).

// reserveFiles is what the derived MaxHTTPConnections leaves to the rest of
// the process (listeners, log files, the broker's connections, the Go
// runtime) out of a file limit of n.
func reserveFiles(n int) int { return 64 + n/50 }

// httpConnLimit returns the bound on non-WebSocket connections for opts
// (with defaults applied) and a warning to log, or "". nofile is the file
// limit, or 0 when it cannot be read. A negative result means no limit.
func httpConnLimit(opts Options, nofile int) (limit int, warning string) {
	if opts.MaxHTTPConnections != 0 {
		return opts.MaxHTTPConnections, ""
	}
	if nofile <= 0 {
		return 4096, ""
	}
	ws := opts.MaxConnections
	limit = nofile - reserveFiles(nofile) - max(ws, 0)
	if ws < 0 || limit < nofile/4 {
		// WebSockets alone can use up the file limit: keep a quarter of
		// it for plain HTTP, so /healthz and handshakes still get in.
		limit = nofile / 4
		warning = "--max-connections is unlimited or above what the file limit allows: WebSockets can exhaust file descriptors; raise the file limit (ulimit -n, LimitNOFILE=) or lower --max-connections"
	}
	return max(limit, 16), warning
}

// LimitListener returns ln bounded to MaxHTTPConnections connections that
// are not WebSockets, for srv, the server that will Serve it: it sets
// srv.ConnState (calling the hook already there, if any), so call it once,
// after setting srv up and before Serve.
//
// When a connection arrives and the bound is reached, the connection that
// has waited longest for a request (an idle keep-alive connection, or one
// that has not finished sending its first request) is closed to make room:
// idle sockets, however many, cannot keep a real client out. Only when
// every connection is busy with a request is the new one refused, with a
// 503. Upgraded WebSockets leave the count (MaxConnections bounds them).
// The connections are handed to srv as accepted, not wrapped.
func (g *Gateway) LimitListener(ln net.Listener, srv *http.Server) net.Listener {
	limit, warning := httpConnLimit(g.opts, fileLimit())
	if warning != "" {
		g.log.Warn(warning, "max_connections", g.opts.MaxConnections, "file_limit", fileLimit())
	}
	if limit < 0 {
		return ln
	}
	g.log.Info("connection limits", "max_http_connections", limit, "max_connections", g.opts.MaxConnections,
		"file_limit", fileLimit(), "http_idle_timeout", srv.IdleTimeout)
	t := &connTracker{g: g, max: limit, conns: make(map[net.Conn]*trackedConn)}
	g.conns = t
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		t.setState(c, s)
		if prev != nil {
			prev(c, s)
		}
	}
	return &limitListener{Listener: ln, t: t}
}

// limitListener makes room in its tracker for every connection it accepts.
type limitListener struct {
	net.Listener
	t *connTracker
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.t.add(c) {
			return c, nil
		}
		refuseBusy(c)
	}
}

// refuseBusy answers a connection there is no room for. The socket's send
// buffer is empty, so the write does not block; the deadline is a guard.
func refuseBusy(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\n\r\ntoo many connections\n")
	c.Close()
}

// connTracker knows every connection srv owns and, among them, those
// waiting for a request, least recently active first.
type connTracker struct {
	g   *Gateway
	max int

	mu      sync.Mutex
	conns   map[net.Conn]*trackedConn // guarded by mu
	waiting list.List                 // guarded by mu; of *trackedConn, longest waiting at Front
}

type trackedConn struct {
	c       net.Conn
	waiting *list.Element // in connTracker.waiting, or nil while a request runs
}

// add tracks c, closing the longest waiting connection if the tracker is
// full. It returns false when it is full of busy connections.
func (t *connTracker) add(c net.Conn) bool {
	t.mu.Lock()
	var evicted net.Conn
	if len(t.conns) >= t.max {
		e := t.waiting.Front()
		if e == nil {
			t.mu.Unlock()
			t.g.metrics.httpRefused.Inc()
			t.g.logs.warn("connection refused: every HTTP connection is busy", "limit", t.max, "remote", c.RemoteAddr().String())
			return false
		}
		tc := e.Value.(*trackedConn)
		t.remove(tc)
		evicted = tc.c
	}
	tc := &trackedConn{c: c}
	tc.waiting = t.waiting.PushBack(tc)
	t.conns[c] = tc
	t.g.metrics.httpConnections.Set(float64(len(t.conns)))
	t.mu.Unlock()
	if evicted != nil {
		evicted.Close()
		t.g.metrics.httpEvicted.Inc()
		t.g.logs.info("HTTP connection limit reached: closed the connection idle the longest", "limit", t.max)
	}
	return true
}

// remove forgets tc; t.mu is held.
func (t *connTracker) remove(tc *trackedConn) {
	if tc.waiting != nil {
		t.waiting.Remove(tc.waiting)
		tc.waiting = nil
	}
	delete(t.conns, tc.c)
}

// setState is srv's ConnState hook.
func (t *connTracker) setState(c net.Conn, s http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	t.mu.Lock()
	tc := t.conns[c]
	if tc == nil { // evicted, or not from our listener
		t.mu.Unlock()
		return
	}
	switch s {
	case http.StateActive:
		if tc.waiting != nil {
			t.waiting.Remove(tc.waiting)
			tc.waiting = nil
		}
	case http.StateIdle:
		if tc.waiting != nil {
			t.waiting.MoveToBack(tc.waiting)
		} else {
			tc.waiting = t.waiting.PushBack(tc)
		}
	case http.StateHijacked, http.StateClosed:
		t.remove(tc)
		t.g.metrics.httpConnections.Set(float64(len(t.conns)))
	}
	t.mu.Unlock()
}

// boundBodyTime gives r's body d to arrive, on HTTP/1. A connection busy
// with a request is never closed to make room (LimitListener), and
// http.Server reads what a handler left of a body before the next request,
// so without a bound a client trickling a body (even to a 405 or a 401)
// would hold its connection for ever. The deadline is lifted when the body
// ends: after that, net/http watches the connection for the client going
// away, and a deadline would end the request's context. An upgrade clears
// it too (duplex.Accept does).
func boundBodyTime(w http.ResponseWriter, r *http.Request, d time.Duration) {
	if r.ProtoMajor != 1 || d <= 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(d)) != nil {
		return
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
}

// deadlineBody lifts its connection's read deadline at the end of the body.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
