package main

import (
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/loadgen"
)

// Issue 17: on an endpoint that does not echo (the gateway's /ws answers
// "received: …"), bench stops with a message instead of a table of
// percentiles of nothing.
func TestBenchNotAnEcho(t *testing.T) {
	url := wsServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			_, p, err := c.Read(r.Context())
			if err != nil {
				return
			}
			c.Write(r.Context(), duplex.MessageText, append([]byte("received: "), p...))
		}
	})
	code, out, errs := bench(t, "-c", "2", "-d", "5s", "--text", url)
	if code != exitError || out != "" {
		t.Errorf("exit %d, stdout %q; want 1 and no result", code, out)
	}
	if !strings.Contains(errs, "does not echo") || !strings.Contains(errs, `"received: `) || !strings.Contains(errs, "pubsub") {
		t.Errorf("stderr = %q; want why, what came back, and the mode to use", errs)
	}
}

// -H headers reach the handshake, and the URL printed hides the token.
func TestBenchHeadersAndRedaction(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" || r.Host != "bench.test" {
			http.Error(w, "missing header", http.StatusUnauthorized)
			return
		}
		echoServerHandler(w, r)
	}))
	t.Cleanup(srv.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/?token=s3cret"
	html := filepath.Join(t.TempDir(), "r.html")
	code, out, errs := bench(t, "-c", "1", "-d", "200ms", "--json", "--html", html, "-H", "Authorization: Bearer k", "-H", "Host: bench.test", url)
	if code != exitOK {
		t.Fatalf("exit %d; stderr %q", code, errs)
	}
	var res loadgen.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(html)
	if strings.Contains(out+errs+string(page), "s3cret") || !strings.Contains(res.URL, "token=REDACTED") {
		t.Errorf("the token shows in the output: url %q", res.URL)
	}
	if !strings.Contains(string(page), "<title>duplex bench ws://127.0.0.1:") || !strings.Contains(string(page), "token=REDACTED</title>") {
		t.Errorf("HTML title does not carry the redacted URL")
	}
	code, _, errs = bench(t, "-c", "1", "-d", "200ms", url)
	if code != exitError || !strings.Contains(errs, "401") || !strings.Contains(errs, "missing header") {
		t.Errorf("without -H: exit %d, stderr %q; want 1 and the 401 with its body", code, errs)
	}
	code, _, errs = bench(t, "-H", "bad header", url)
	if code != exitUsage {
		t.Errorf("-H 'bad header': exit %d; want 2 (stderr %q)", code, errs)
	}
}

func echoServerHandler(w http.ResponseWriter, r *http.Request) {
	c, err := duplex.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		typ, p, err := c.Read(r.Context())
		if err != nil || c.Write(r.Context(), typ, p) != nil {
			return
		}
	}
}

func TestBenchWSS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(echoServerHandler))
	srv.TLS = &tls.Config{NextProtos: []string{"http/1.1"}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	url := "wss" + strings.TrimPrefix(srv.URL, "https") + "/"
	ca := writePEM(t, t.TempDir(), "ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	for _, flags := range [][]string{{"--ca", ca}, {"--insecure"}} {
		args := append([]string{"-c", "2", "-d", "200ms", "--json"}, flags...)
		code, out, errs := bench(t, append(args, url)...)
		var res loadgen.Result
		if code != exitOK || json.Unmarshal([]byte(out), &res) != nil || res.Msgs == 0 || res.Errors != 0 {
			t.Errorf("%v: exit %d, msgs %d, errors %d; want echoes over TLS (stderr %q)", flags, code, res.Msgs, res.Errors, errs)
		}
	}
	code, _, errs := bench(t, "-c", "1", "-d", "200ms", url)
	if code != exitError || !strings.Contains(errs, "certificate") {
		t.Errorf("without --ca: exit %d, stderr %q; want 1 and a certificate error", code, errs)
	}
}
