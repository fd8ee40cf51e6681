package duplex

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// checkRequestHTTP2 validates an extended CONNECT request (RFC 8441 §4,
// §5): method CONNECT, :protocol websocket, version 13. There is no key
// and no Upgrade or Connection header over HTTP/2.
func checkRequestHTTP2(r *http.Request) *refusal {
	switch {
	case r.Method != http.MethodConnect:
		return &refusal{http.StatusMethodNotAllowed, "WebSocket over HTTP/2 must use extended CONNECT (RFC 8441)"}
	case !strings.EqualFold(r.Header.Get(":protocol"), "websocket"):
		return &refusal{http.StatusBadRequest, `extended CONNECT :protocol must be "websocket"`}
	}
	if v := r.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		return &refusal{http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version: only 13 is supported"}
	}
	return nil
}

// acceptHTTP2 ends the handshake of RFC 8441 over an HTTP/2 stream (200,
// where HTTP/1.1 has 101) and returns a Conn whose transport is the stream: the request body is read,
// the response is written and flushed. The handler must not return before
// the Conn is closed, because returning ends the stream.
func acceptHTTP2(w http.ResponseWriter, r *http.Request, cfg connConfig) (*Conn, error) {
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil, err
	}
	s := &h2Stream{body: r.Body, w: w, rc: rc}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		s.local = a
	}
	cfg.tr = s
	return newConn(cfg), nil
}

// h2Stream is the transport of a server-side Conn over an HTTP/2 stream.
// Once the handler returns, net/http's ResponseWriter must not be touched
// (its methods dereference freed state), so every use of w and rc ends
// before Close returns, and none starts after.
type h2Stream struct {
	body  io.ReadCloser
	w     http.ResponseWriter
	rc    *http.ResponseController
	local net.Addr

	wmu sync.Mutex // held by Write for the write and its flush

	mu     sync.Mutex
	closed bool // guarded by mu; after Close the ResponseWriter is not touched
}

func (s *h2Stream) Read(p []byte) (int, error) { return s.body.Read(p) }

func (s *h2Stream) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}
	n, err := s.w.Write(p)
	if err == nil {
		err = s.rc.Flush()
	}
	return n, err
}

// Close ends our side. The stream itself ends (END_STREAM, or RST_STREAM
// if the peer is still sending) when the handler returns.
func (s *h2Stream) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if !s.wmu.TryLock() {
		// A Write is blocked, on flow control: a past write deadline
		// resets the stream (RST_STREAM INTERNAL_ERROR), which is the abort
		// we want. Only then: it would turn a clean close into a reset.
		s.rc.SetWriteDeadline(time.Unix(1, 0))
		s.wmu.Lock()
	}
	s.wmu.Unlock()
	return s.body.Close()
}

func (s *h2Stream) SetReadDeadline(t time.Time) error  { return s.deadline(s.rc.SetReadDeadline, t) }
func (s *h2Stream) SetWriteDeadline(t time.Time) error { return s.deadline(s.rc.SetWriteDeadline, t) }
func (s *h2Stream) LocalAddr() net.Addr                { return s.local }

func (s *h2Stream) deadline(set func(time.Time) error, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	return set(t)
}
