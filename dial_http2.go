package duplex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/duplexws/duplex/internal/deflate"
)

// dialHTTP2 opens a WebSocket as an extended CONNECT stream (RFC 8441).
// ok is false when the server does not speak HTTP/2 or did not advertise
// SETTINGS_ENABLE_CONNECT_PROTOCOL; the caller then falls back to HTTP/1.1.
func dialHTTP2(ctx context.Context, u *url.URL, o *DialOptions, offer *deflate.Params) (c *Conn, resp *http.Response, ok bool, err error) {
	pr, pw := io.Pipe()
	// The stream outlives ctx, which bounds only the handshake.
	streamCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	clean := *u
	clean.User = nil
	req, err := http.NewRequestWithContext(streamCtx, http.MethodConnect, clean.String(), pr)
	if err != nil {
		cancel()
		return nil, nil, false, err
	}
	h1 := buildRequest(u, "", o, offer)
	for k, v := range h1.Header {
		switch k {
		case "Upgrade", "Connection", "Sec-Websocket-Key":
			continue
		}
		req.Header[k] = v
	}
	req.Header.Set(":protocol", "websocket")
	req.Host = h1.Host

	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		r, err := o.HTTP2Transport.RoundTrip(req)
		done <- result{r, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		cancel()
		pw.Close()
		return nil, nil, false, ctx.Err()
	}
	if res.err != nil {
		cancel()
		pw.Close()
		if ctx.Err() != nil {
			return nil, nil, false, fmt.Errorf("duplex: HTTP/2 dial %s: %w", u.Redacted(), ctx.Err())
		}
		// No HTTP/2 (ALPN refused), or no extended CONNECT advertised, or
		// no connection at all: the HTTP/1.1 attempt that follows reports
		// its own error if the server cannot be reached either.
		return nil, nil, false, nil
	}
	resp = res.resp
	fail := func(herr *HandshakeError) (*Conn, *http.Response, bool, error) {
		cancel()
		pw.Close()
		resp.Body.Close()
		return nil, resp, true, herr
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fail(&HandshakeError{StatusCode: resp.StatusCode, Body: body, Response: resp})
	}
	if err := checkSubprotocol(resp.Header, o.Subprotocols); err != nil {
		return fail(&HandshakeError{StatusCode: resp.StatusCode, Response: resp, Err: err})
	}
	ext, comp, decomp, threshold, err := o.Compression.agree(resp.Header, offer)
	if err != nil {
		return fail(&HandshakeError{StatusCode: resp.StatusCode, Response: resp, Err: err})
	}
	s := &h2ClientStream{body: resp.Body, pw: pw, cancel: cancel}
	return newConn(connConfig{
		tr:           s,
		client:       true,
		subprotocol:  resp.Header.Get("Sec-WebSocket-Protocol"),
		extensions:   ext,
		readLimit:    o.ReadLimit,
		closeTimeout: o.CloseTimeout,
		comp:         comp,
		decomp:       decomp,
		threshold:    threshold,
	}), resp, true, nil
}

// h2ClientStream is the transport of a client Conn over an HTTP/2 stream:
// the response body is read, the request body (a pipe) is written.
// Deadlines are emulated with timers that end the stream.
type h2ClientStream struct {
	body   io.ReadCloser
	pw     *io.PipeWriter
	cancel context.CancelFunc

	mu     sync.Mutex
	rTimer *time.Timer // guarded by mu
	wTimer *time.Timer // guarded by mu
}

func (s *h2ClientStream) Read(p []byte) (int, error)  { return s.body.Read(p) }
func (s *h2ClientStream) Write(p []byte) (int, error) { return s.pw.Write(p) }

// Close ends the stream: END_STREAM on our side, then RST_STREAM.
func (s *h2ClientStream) Close() error {
	s.pw.Close()
	s.body.Close()
	s.cancel()
	return nil
}

// deadline arms a timer that breaks the stream when t passes: a pipe and
// an HTTP/2 response body have no deadlines of their own, so a passed
// deadline ends the connection rather than one call.
func (s *h2ClientStream) deadline(tm **time.Timer, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *tm != nil {
		(*tm).Stop()
		*tm = nil
	}
	if t.IsZero() {
		return nil
	}
	*tm = time.AfterFunc(time.Until(t), func() {
		s.pw.CloseWithError(errDeadline)
		s.cancel()
	})
	return nil
}

func (s *h2ClientStream) SetReadDeadline(t time.Time) error  { return s.deadline(&s.rTimer, t) }
func (s *h2ClientStream) SetWriteDeadline(t time.Time) error { return s.deadline(&s.wTimer, t) }

var errDeadline = errors.New("duplex: HTTP/2 stream deadline exceeded")
