package browser

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// TestCompression lets Chromium negotiate permessage-deflate (RFC 7692)
// with its own offer, then exchange 200 compressible text messages and a
// 1 MiB binary one, each echoed and checked by the page. The bytes on the
// wire show that both directions were compressed.
func TestCompression(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts duplex.CompressionOptions
		want []string // parameters the agreed extension must have
	}{
		{name: "context takeover", opts: duplex.CompressionOptions{}},
		{
			name: "no context takeover",
			opts: duplex.CompressionOptions{NoContextTakeover: true},
			want: []string{"server_no_context_takeover", "client_no_context_takeover"},
		},
		{
			// What duplex serve --compress-context-takeover
			// --compress-window-bits 10 answers. Chromium's offer carries
			// client_max_window_bits, so the server can bound the browser's
			// window; the server inflates strictly and would fail with 1007
			// a browser that reached further.
			name: "context takeover, 10-bit windows",
			opts: duplex.CompressionOptions{ClientMaxWindowBits: 10, ServerMaxWindowBits: 10},
			want: []string{"server_max_window_bits=10", "client_max_window_bits=10"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testkit.CheckNoGoroutineLeak(t)
			tb := newTab(t)
			echo := &echoServer{opts: &duplex.AcceptOptions{Compression: &tt.opts}}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /{$}", serveEchoPage)
			mux.Handle("/echo", echo)
			srv := httptest.NewUnstartedServer(mux)
			srv.Listener = countingListener{srv.Listener}
			srv.Config.ConnContext = withConn
			srv.Start()
			testkit.Serve(t, srv)

			const texts, binary = 200, 1 << 20
			tb.do("loading the page", chromedp.Navigate(fmt.Sprintf("%s/?texts=%d&binary=%d", srv.URL, texts, binary)))
			res := tb.resultOf(2 * (binary + texts*1000))
			recs := echo.wait(t)

			if !res.OK || res.Messages != texts+1 {
				t.Fatalf("page checked %d of %d echoes; errors: %q", res.Messages, texts+1, res.Errors)
			}
			if len(recs) != 1 {
				t.Fatalf("server saw %d sockets; want 1", len(recs))
			}
			rec := recs[0]
			t.Logf("Chromium offered %q; agreed %q", rec.offer, rec.extensions)
			if !strings.HasPrefix(rec.offer, "permessage-deflate") {
				t.Errorf("Chromium offered %q; want permessage-deflate", rec.offer)
			}
			if !strings.HasPrefix(rec.extensions, "permessage-deflate") {
				t.Fatalf("server agreed %q; want permessage-deflate", rec.extensions)
			}
			for _, p := range tt.want {
				if !strings.Contains(rec.extensions, p) {
					t.Errorf("server agreed %q; want %s in it", rec.extensions, p)
				}
			}
			if len(res.Extensions) != 1 || res.Extensions[0] != rec.extensions {
				t.Errorf("the page's ws.extensions is %q; the server agreed %q", res.Extensions, rec.extensions)
			}
			checkClosedNormally(t, rec)

			// Half of the binary message is noise, so the best ratio is a
			// little over 0.4; without compression it would be over 1.
			in, out := float64(rec.wireIn)/float64(res.Bytes), float64(rec.wireOut)/float64(res.Bytes)
			t.Logf("payload %d bytes each way; on the wire %d in (%.2f), %d out (%.2f)", res.Bytes, rec.wireIn, in, rec.wireOut, out)
			if in > 0.6 || out > 0.6 {
				t.Errorf("wire/payload ratio %.2f from the browser, %.2f to it; want both under 0.6: compression is not working", in, out)
			}
		})
	}
}
