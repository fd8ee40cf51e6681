package browser

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// TestHTTP2 serves a page and a duplex echo endpoint over TLS with HTTP/2
// and extended CONNECT (RFC 8441). Chromium, which opens WebSockets over
// an HTTP/2 connection it already has when the server sent
// SETTINGS_ENABLE_CONNECT_PROTOCOL, runs three compressed sockets from the
// page. The server must see three extended CONNECT requests on the one
// connection that carried the page.
func TestHTTP2(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	if reexecErr != nil {
		t.Fatal(reexecErr)
	}
	if !strings.Contains(os.Getenv("GODEBUG"), xconnect) {
		t.Fatalf("GODEBUG=%q lacks %s: net/http would not advertise extended CONNECT", os.Getenv("GODEBUG"), xconnect)
	}

	// httptest's certificate is for 127.0.0.1 but signed by a throwaway
	// authority, hence --ignore-certificate-errors.
	tb := newTab(t, chromedp.IgnoreCertErrors)

	echo := &echoServer{opts: &duplex.AcceptOptions{Compression: &duplex.CompressionOptions{}}}
	var mu sync.Mutex
	var pageRemote []string // guarded by mu; RemoteAddr of each page load
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		pageRemote = append(pageRemote, fmt.Sprintf("%s %s", r.Proto, r.RemoteAddr))
		mu.Unlock()
		serveEchoPage(w, r)
	})
	mux.Handle("/echo", echo)
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	// Chromium may open a second TLS connection and drop it unused; keep
	// the server's complaint about it out of the output unless we fail.
	serverLog := new(lockedBuffer)
	srv.Config.ErrorLog = log.New(serverLog, "", log.Lmicroseconds)
	t.Cleanup(func() {
		if t.Failed() && serverLog.Len() > 0 {
			t.Logf("server log:\n%s", serverLog)
		}
	})
	srv.StartTLS()
	testkit.Serve(t, srv)

	const sockets, texts, binary = 3, 50, 256 << 10
	tb.do("loading the page", chromedp.Navigate(fmt.Sprintf("%s/?n=%d&texts=%d&binary=%d", srv.URL, sockets, texts, binary)))
	res := tb.resultOf(2 * sockets * (binary + texts*1000))
	recs := echo.wait(t)

	mu.Lock()
	t.Logf("page loaded over %q", pageRemote)
	mu.Unlock()
	for _, rec := range recs {
		t.Logf("socket: HTTP/%d %s from %s, agreed %q", rec.proto, rec.method, rec.remote, rec.extensions)
	}
	if !res.OK || res.Messages != sockets*(texts+1) {
		t.Fatalf("page checked %d of %d echoes; errors: %q", res.Messages, sockets*(texts+1), res.Errors)
	}
	if len(recs) != sockets {
		t.Fatalf("server saw %d sockets; want %d", len(recs), sockets)
	}
	for _, rec := range recs {
		if rec.proto != 2 || rec.method != http.MethodConnect {
			t.Errorf("socket from %s came as HTTP/%d %s; want HTTP/2 CONNECT (RFC 8441)", rec.remote, rec.proto, rec.method)
		}
		if !strings.HasPrefix(rec.extensions, "permessage-deflate") {
			t.Errorf("socket from %s agreed %q; want permessage-deflate", rec.remote, rec.extensions)
		}
		if rec.remote != recs[0].remote {
			t.Errorf("sockets came from %s and %s; want one connection for all", recs[0].remote, rec.remote)
		}
		checkClosedNormally(t, rec)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pageRemote) != 1 || pageRemote[0] != "HTTP/2.0 "+recs[0].remote {
		t.Errorf("page loaded over %q, sockets from %s; want the page's HTTP/2 connection to carry the sockets", pageRemote, recs[0].remote)
	}
}
