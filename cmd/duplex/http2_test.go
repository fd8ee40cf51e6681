package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestMain gives the test binary what duplex serve gives itself: Go's
// HTTP/2 server advertises extended CONNECT only with this GODEBUG.
func TestMain(m *testing.M) {
	reexecWithExtendedConnect()
	// duplex serve keeps its development token in the user's
	// configuration directory: the tests get one of their own.
	dir, err := os.MkdirTemp("", "duplex-cmd-test")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// connect --http2 against a cleartext HTTP/2 (h2c) server opens the socket
// as an extended CONNECT stream, and the exchange works as over HTTP/1.1.
func TestConnectHTTP2(t *testing.T) {
	if !extendedConnectEnabled() {
		t.Fatal("TestMain did not enable extended CONNECT")
	}
	var mu sync.Mutex
	var protos []string
	echo := echoHandler(nil)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos = append(protos, r.Proto+" "+r.Method)
		mu.Unlock()
		echo(w, r)
	})}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "ws://" + ln.Addr().String() + "/echo"

	res := runDuplex(t, strings.NewReader("over h2\n"), "connect", "--http2", url)
	if res.code != exitOK || res.stdout != "over h2\n" {
		t.Fatalf("connect --http2: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	res = runDuplex(t, strings.NewReader("over h1\n"), "connect", url)
	if res.code != exitOK || res.stdout != "over h1\n" {
		t.Fatalf("connect: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(protos) != 2 || protos[0] != "HTTP/2.0 CONNECT" || protos[1] != "HTTP/1.1 GET" {
		t.Fatalf("server saw %q; want an HTTP/2 CONNECT, then an HTTP/1.1 GET", protos)
	}
}

// serve --h2c accepts WebSockets over cleartext HTTP/2, and connect --http2
// uses them.
func TestServeH2C(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, done := startServe(t, ctx, "--addr", "127.0.0.1:0", "--no-auth", "--h2c")
	url := "ws" + strings.TrimPrefix(base, "http") + "/echo"
	res := runDuplex(t, strings.NewReader("h2c\n"), "connect", "-v", "--http2", url)
	if res.code != exitOK || res.stdout != "h2c\n" || !strings.Contains(res.stderr, "over HTTP/2.0") {
		t.Fatalf("connect --http2: exit %d, stdout %q, stderr %q; want the echo over HTTP/2.0", res.code, res.stdout, res.stderr)
	}
	cancel()
	<-done
}
