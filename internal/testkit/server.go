package testkit

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// closeGrace is how long CloseServer lets httptest.Server.Close wait for
// requests in progress before it drops their connections, and then how
// long it waits again for the handlers to return.
var closeGrace = 3 * time.Second // shortened by its test

// CloseServer closes srv without the risk of waiting forever, which a bare
// srv.Close runs: it waits for every request in progress, and an HTTP/2
// WebSocket, or a handler whose client never closed, is a request that
// does not end (issue 17: a failed test's cleanup blocked there until go
// test's timeout, and its failure was never printed).
//
// CloseServer first closes srv as Close does. If requests are still going
// after closeGrace, it drops every client connection; if a handler still
// has not returned after another closeGrace, it fails t, naming the
// goroutines of this module that are left, and returns without waiting
// for them.
//
// Close the test's client connections before the server (register the
// server's cleanup first: cleanups run last-in first-out), so that
// nothing is cut short in the ordinary case.
func CloseServer(t testing.TB, srv *httptest.Server) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		srv.Close()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(closeGrace):
	}
	t.Logf("httptest server %s: requests still in progress %v after Close; dropping its client connections", srv.URL, closeGrace)
	srv.CloseClientConnections()
	select {
	case <-done:
		return
	case <-time.After(closeGrace):
	}
	var stuck []string
	for _, g := range goroutines()[1:] {
		if strings.Contains(g.stack, modulePath) || strings.Contains(g.stack, "net/http.(*conn).serve") ||
			strings.Contains(g.stack, "http2.(*serverConn)") {
			stuck = append(stuck, g.stack)
		}
	}
	t.Errorf("httptest server %s: Close still waiting %v after its client connections were dropped; "+
		"a handler does not return. Goroutines that may be it:\n\n%s", srv.URL, 2*closeGrace, strings.Join(stuck, "\n\n"))
}

// Serve registers CloseServer(t, srv) as a cleanup of t and returns srv,
// for a server started by the caller: t.Cleanup(srv.Close) in a form
// that cannot hang.
func Serve(t testing.TB, srv *httptest.Server) *httptest.Server {
	t.Helper()
	t.Cleanup(func() { CloseServer(t, srv) })
	return srv
}
