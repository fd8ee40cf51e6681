package duplex_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/duplexws/duplex"
)

// WebSockets over HTTP/2 (RFC 8441): Accept serves extended CONNECT with
// no change to the handler, except that over HTTP/2 the connection is a
// stream that lives in the handler, so the handler stays until it ends.
// Go's HTTP/2 server offers extended CONNECT only when the process starts
// with GODEBUG=http2xconnect=1 in its environment; without it, Dial falls
// back to HTTP/1.1 and this prints "HTTP/1.1 GET: hello". The client needs
// golang.org/x/net/http2's Transport: the standard library's refuses the
// :protocol pseudo-header.
func ExampleDialOptions_http2() {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, p, err := c.Read(r.Context())
		if err != nil {
			return
		}
		c.Write(r.Context(), duplex.MessageText, []byte(r.Proto+" "+r.Method+": "+string(p)))
		c.Read(r.Context()) // until the client closes
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	tlsConfig := srv.Client().Transport.(*http.Transport).TLSClientConfig // trusts srv's certificate

	tr := &http2.Transport{TLSClientConfig: tlsConfig} // sockets to one server share its connection
	defer tr.CloseIdleConnections()
	ctx := context.Background()
	c, _, err := duplex.Dial(ctx, "wss"+strings.TrimPrefix(srv.URL, "https"), &duplex.DialOptions{
		HTTP2Transport: tr,
		TLSConfig:      tlsConfig, // for the HTTP/1.1 fallback
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	c.Write(ctx, duplex.MessageText, []byte("hello"))
	_, p, err := c.Read(ctx)
	fmt.Println(string(p), err)
	fmt.Println(c.Close(duplex.StatusNormalClosure, ""))
	// With GODEBUG=http2xconnect=1, this prints:
	// HTTP/2.0 CONNECT: hello <nil>
	// <nil>
}

// ExampleDialOptions_http2 cannot state its output: it depends on the
// GODEBUG of the process, which net/http reads once as it starts. So this
// test runs it in two fresh processes of the test binary, with and without
// the setting, and checks both outputs.
func TestExampleDialOptionsHTTP2(t *testing.T) {
	if os.Getenv("DUPLEX_EXAMPLE_CHILD") != "" {
		ExampleDialOptions_http2()
		return
	}
	for _, tc := range []struct {
		godebug, want string
	}{
		{"http2xconnect=1", "HTTP/2.0 CONNECT: hello <nil>\n<nil>\n"},
		{"", "HTTP/1.1 GET: hello <nil>\n<nil>\n"},
	} {
		t.Run("GODEBUG="+tc.godebug, func(t *testing.T) {
			// Generous for a loaded machine, and the child is killed
			// after it, so a hang fails the test instead of the run.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestExampleDialOptionsHTTP2$", "-test.count=1")
			cmd.WaitDelay = 5 * time.Second
			cmd.Env = append(withoutGODEBUG(os.Environ()), "DUPLEX_EXAMPLE_CHILD=1", "GODEBUG="+tc.godebug)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil || !strings.HasPrefix(string(out), tc.want) {
				t.Fatalf("the example in a process with GODEBUG=%q: %v\nstdout:\n%s\nstderr:\n%s\nwant stdout to start with:\n%s",
					tc.godebug, err, out, stderr.String(), tc.want)
			}
		})
	}
}

func withoutGODEBUG(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			out = append(out, kv)
		}
	}
	return out
}
