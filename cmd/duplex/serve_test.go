package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex"
)

// startServe runs "duplex serve args..." until the test ends and returns
// the base URL it printed, the stderr it writes and a channel with
// runServe's result.
func startServe(t *testing.T, ctx context.Context, args ...string) (string, *syncBuffer, <-chan error) {
	t.Helper()
	stderr := newSyncBuffer()
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, args, io.Discard, stderr) }()
	stderr.waitFor(t, "duplex: serving ", 1)
	stderr.waitFor(t, "\n", 1)
	m := regexp.MustCompile(`duplex: serving (http://[^/ \n]+)/(\?token=[^ \n]+)?\n`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no serving line in:\n%s", stderr.String())
	}
	return m[1], stderr, done
}

func TestServeEchoAndShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, done := startServe(t, ctx, "--addr", "127.0.0.1:0", "--no-auth")
	url := "ws" + strings.TrimPrefix(base, "http") + "/echo"

	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	c, _, err := duplex.Dial(dctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, m := range []struct {
		typ duplex.MessageType
		p   string
	}{{duplex.MessageText, "hello"}, {duplex.MessageBinary, "\x00\xff"}} {
		if err := c.Write(dctx, m.typ, []byte(m.p)); err != nil {
			t.Fatal(err)
		}
		typ, p, err := c.Read(dctx)
		if err != nil || typ != m.typ || string(p) != m.p {
			t.Fatalf("echo of %v %q = %v %q, %v", m.typ, m.p, typ, p, err)
		}
	}

	// The command line client against the command line server.
	res := runDuplex(t, strings.NewReader("from connect\n"), "connect", url)
	if res.code != exitOK || res.stdout != "from connect\n" {
		t.Errorf("connect: exit %d, stdout %q; stderr %q", res.code, res.stdout, res.stderr)
	}

	cancel()
	_, _, err = c.Read(dctx)
	var ce *duplex.CloseError
	if !errors.As(err, &ce) || ce.Code != duplex.StatusGoingAway || ce.Sent {
		t.Errorf("read during shutdown = %v; want the server's 1001", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runServe = %v; want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("runServe did not return after its context ended")
	}
}

// With no auth flag, serve generates a token, prints the page URL with it,
// and refuses WebSocket upgrades without it.
func TestServeGeneratesToken(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, stderr, done := startServe(t, ctx, "--addr", "127.0.0.1:0")
	stderr.waitFor(t, "?token=", 1)
	m := regexp.MustCompile(`\?token=([A-Za-z0-9_-]+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no token URL printed:\n%s", stderr.String())
	}
	token := m[1]
	ws := "ws" + strings.TrimPrefix(base, "http")

	res := runDuplex(t, strings.NewReader("hi\n"), "connect", ws+"/echo")
	if res.code != exitRefused || !strings.Contains(res.stderr, "401") {
		t.Errorf("connect without token: exit %d, stderr %q; want %d and 401", res.code, res.stderr, exitRefused)
	}
	res = runDuplex(t, strings.NewReader("hi\n"), "connect", ws+"/echo?token="+token)
	if res.code != exitOK || res.stdout != "hi\n" {
		t.Errorf("connect with token: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	res = runDuplex(t, strings.NewReader("hi\n"), "connect", ws+"/ws?token="+token)
	if res.code != exitOK || !strings.Contains(res.stdout, "received: hi") {
		t.Errorf("connect to /ws: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "duplex.js") {
		t.Errorf("GET / = %d; want the demo page", resp.StatusCode)
	}
	if strings.Count(stderr.String(), token) != 1 {
		t.Errorf("the token appears %d times in the logs; want once, in the printed URL:\n%s", strings.Count(stderr.String(), token), stderr.String())
	}
	cancel()
	<-done
}

func TestServeAddrInUse(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, done := startServe(t, ctx, "--addr", "127.0.0.1:0", "--no-auth")
	addr := strings.TrimPrefix(base, "http://")
	res := runDuplex(t, strings.NewReader(""), "serve", "--no-auth", "--addr", addr)
	if res.code != exitError || !strings.Contains(res.stderr, "address already in use") {
		t.Errorf("exit %d, stderr %q; want 1 and address already in use", res.code, res.stderr)
	}
	cancel()
	<-done
}

// Issue 17: the development token survives a restart, in a file only the
// user can read, and the only URL printed carries it.
func TestServeKeepsDevToken(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	tokenRE := regexp.MustCompile(`duplex: serving (http://\S+/\?token=([A-Za-z0-9_-]+))\n`)
	serveOnce := func() (pageURL, token, logs string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, stderr, done := startServe(t, ctx, "--addr", "127.0.0.1:0")
		stderr.waitFor(t, "dev-token", 1)
		m := tokenRE.FindStringSubmatch(stderr.String())
		if m == nil {
			t.Fatalf("no serving line with the token:\n%s", stderr)
		}
		resp, err := http.Get(strings.Replace(m[1], "/?", "/api/auth-check?", 1))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("the printed URL's token: auth-check says %d; want 204", resp.StatusCode)
		}
		cancel()
		waitServe(t, done)
		return m[1], m[2], stderr.String()
	}
	_, first, logs := serveOnce()
	path := filepath.Join(dir, "duplex", "dev-token")
	if !strings.Contains(logs, path) {
		t.Errorf("the logs do not say where the token is kept (%s):\n%s", path, logs)
	}
	if n := strings.Count(logs, "http://"); n != 1 {
		t.Errorf("%d URLs printed; want only the one with the token:\n%s", n, logs)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v; want 0600", path, st.Mode().Perm())
	}
	if _, second, _ := serveOnce(); second != first {
		t.Errorf("after a restart the token is %q; want %q again", second, first)
	}

	// A token file others can read is not used.
	os.Chmod(path, 0o644)
	_, third, logs := serveOnce()
	if third == first || !strings.Contains(logs, "readable by other users") {
		t.Errorf("with a world-readable token file: token %q (was %q), logs:\n%s", third, first, logs)
	}
}
