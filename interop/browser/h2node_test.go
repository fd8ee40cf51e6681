package browser

// Node's built-in http2 module against duplex's server over HTTP/2
// (RFC 8441, issue 7): a peer that shares no code with duplex opens three
// WebSockets on one HTTP/2 connection. ../node/h2-client.mjs has the
// exchange; it needs only node, no npm package.

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// h2Recorder serves an echoServer at /echo over TLS with HTTP/2 and notes
// every request it gets, refused ones included.
type h2Recorder struct {
	url  string      // https://127.0.0.1:<port>/echo
	tls  *tls.Config // trusts the server's certificate
	echo *echoServer

	mu       sync.Mutex
	requests []string // guarded by mu; "<proto> <method> <remote>" per request
}

// startH2Recorder starts an h2Recorder; the server stops when the test
// ends. The server advertises extended CONNECT only if TestMain could
// restart the binary with xconnect, so a failed restart fails the test.
func startH2Recorder(t *testing.T, opts *duplex.AcceptOptions) *h2Recorder {
	t.Helper()
	if reexecErr != nil {
		t.Fatal(reexecErr)
	}
	s := &h2Recorder{echo: &echoServer{opts: opts}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Proto+" "+r.Method+" "+r.RemoteAddr)
		s.mu.Unlock()
		s.echo.ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	testkit.Serve(t, srv)
	s.url = srv.URL + "/echo"
	s.tls = &tls.Config{
		RootCAs:    srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs,
		NextProtos: []string{"h2"},
	}
	return s
}

// wait waits for every handler to return and gives what the server saw:
// one record per socket, the errors of refused handshakes, and the
// requests.
func (s *h2Recorder) wait(t *testing.T) (recs []socketRecord, refused []error, requests []string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		s.echo.active.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(testkit.Wait(t, 0)):
		t.Fatalf("echo handlers still running %v later", testkit.Timeout(0))
	}
	s.echo.mu.Lock()
	recs = append(recs, s.echo.records...)
	refused = append(refused, s.echo.refused...)
	s.echo.mu.Unlock()
	s.mu.Lock()
	requests = append(requests, s.requests...)
	s.mu.Unlock()
	return recs, refused, requests
}

// runNodeScript runs node with script (in ../node) and args, and fails the
// test with its output unless it exits 0 having printed OK. The script
// scales its waits as testkit.ScriptEnv says and is killed at
// testkit.Cutoff if it has not ended.
func runNodeScript(t *testing.T, script string, args ...string) {
	t.Helper()
	node := testkit.RequireTool(t, "node")
	ctx, cancel := context.WithDeadline(context.Background(), testkit.Cutoff(t).Add(5*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = "../node"
	cmd.Env = append(os.Environ(), testkit.ScriptEnv(t)...)
	cmd.WaitDelay = time.Second
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := strings.TrimSpace(stdout.String())
	if err != nil || out != "OK" {
		t.Fatalf("node %s %s: %v\nstdout:\n%s\nstderr:\n%s", script, strings.Join(args, " "), err, out, stderr.String())
	}
}

// TestNodeHTTP2 runs ../node/h2-client.mjs against the echo server: the
// script checks SETTINGS_ENABLE_CONNECT_PROTOCOL, a 426 for version 8,
// and three sockets on its one session, each with text, binary, the three
// length encodings, 100 KiB, a ping and a close 1000. The server must
// have seen four HTTP/2 extended CONNECTs from one remote address: the
// refused one and the three sockets, each ended by the client's close.
func TestNodeHTTP2(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	srv := startH2Recorder(t, nil)
	runNodeScript(t, "h2-client.mjs", srv.url)

	recs, refused, requests := srv.wait(t)
	t.Logf("requests: %q", requests)
	if len(requests) != 4 {
		t.Fatalf("server saw %d requests; want 4 (one refused, three sockets)", len(requests))
	}
	for _, r := range requests {
		if r != requests[0] || !strings.HasPrefix(r, "HTTP/2.0 CONNECT ") {
			t.Fatalf("requests %q; want four HTTP/2 CONNECTs from one remote address", requests)
		}
	}
	if len(refused) != 1 {
		t.Errorf("refused handshakes: %v; want one, for Sec-WebSocket-Version 8", refused)
	}
	if len(recs) != 3 {
		t.Fatalf("server served %d sockets; want 3", len(recs))
	}
	for _, rec := range recs {
		var ce *duplex.CloseError
		if !errors.As(rec.closeErr, &ce) || ce.Code != duplex.StatusNormalClosure || ce.Reason != "bye" || ce.Sent {
			t.Errorf("socket ended with %v; want the client's close 1000 \"bye\"", rec.closeErr)
		}
		if rec.extensions != "" {
			t.Errorf("extensions %q agreed; the script offers none", rec.extensions)
		}
	}
}
