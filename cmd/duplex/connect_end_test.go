package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexws/duplex"
)

// Issue 17: a 2.67 MB line to a server with a 1 MiB limit exited 0 with
// nothing printed; the server had closed with 1009.
func TestConnectReportsRefusedMessage(t *testing.T) {
	// Like duplex serve, the server lets the library finish the close
	// after a refused message instead of resetting the connection.
	url := wsServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, &duplex.AcceptOptions{ReadLimit: 1 << 20})
		if err != nil {
			return
		}
		for {
			typ, p, err := c.Read(context.Background())
			if err != nil {
				return // the library answers our close, or times out
			}
			if err := c.Write(context.Background(), typ, p); err != nil {
				return
			}
		}
	})
	big := strings.Repeat("x", 2_670_000) + "\n"
	for i := range 3 { // it was a race: run it a few times
		res := runDuplex(t, strings.NewReader(big), "connect", url)
		if res.code != exitPeerClosed || !strings.Contains(res.stderr, "1009") {
			t.Fatalf("run %d: exit %d, stderr %q; want %d and the server's 1009", i, res.code, res.stderr, exitPeerClosed)
		}
	}
	// Lines within the limit still end with exit 0 and every echo.
	res := runDuplex(t, strings.NewReader("a\nb\n"), "connect", url)
	if res.code != exitOK || res.stdout != "a\nb\n" {
		t.Errorf("small lines: exit %d, stdout %q; want 0, %q (stderr %q)", res.code, res.stdout, "a\nb\n", res.stderr)
	}
}

func TestConnectReconnectPipedStdin(t *testing.T) {
	url := wsServer(t, echoHandler(nil))
	for i := range 3 {
		res := runDuplex(t, strings.NewReader("one\ntwo\n"), "connect", "--reconnect", url)
		if res.code != exitOK || res.stdout != "one\ntwo\n" {
			t.Fatalf("run %d: exit %d, stdout %q; want 0 and both echoes (stderr %q)", i, res.code, res.stdout, res.stderr)
		}
	}
}

func TestConnectReconnectRefusedEmptyStdin(t *testing.T) {
	var requests atomic.Int32
	url := wsServer(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "invalid token", http.StatusUnauthorized)
	})
	res := runDuplex(t, strings.NewReader(""), "connect", "--reconnect", url)
	if res.code != exitRefused || requests.Load() != 1 {
		t.Errorf("exit %d after %d requests; want %d after 1 (stderr %q)", res.code, requests.Load(), exitRefused, res.stderr)
	}
}

func TestConnectReconnectGivesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, stdin := range []string{"", "queued\n"} {
		res := runDuplex(t, strings.NewReader(stdin), "connect", "--reconnect", "ws://"+addr+"/")
		if res.code != exitError {
			t.Errorf("stdin %q: exit %d; want %d (stderr %q)", stdin, res.code, exitError, res.stderr)
		}
		if n := strings.Count(res.stderr, "connection refused"); n != giveUpAfter || !strings.Contains(res.stderr, "never connected") {
			t.Errorf("stdin %q: stderr has %d refusals; want %d and never connected:\n%s", stdin, n, giveUpAfter, res.stderr)
		}
	}
}

// --no-close keeps the connection after stdin ends: the server, which
// waits to see whether the client closes, gets to send more.
func TestConnectNoClose(t *testing.T) {
	clientClosed := make(chan bool, 1)
	url := wsServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		if _, _, err := c.Read(r.Context()); err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 300*time.Millisecond)
		_, _, err = c.Read(ctx)
		cancel()
		clientClosed <- duplex.CloseStatus(err) == duplex.StatusNormalClosure
		c.Write(r.Context(), duplex.MessageText, []byte("still here"))
		c.Close(duplex.StatusNormalClosure, "")
	})
	res := runDuplex(t, strings.NewReader("hi\n"), "connect", "--no-close", url)
	select {
	case closed := <-clientClosed:
		if closed {
			t.Fatal("the client closed at the end of stdin despite --no-close")
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the server never got to wait for a close; exit %d, stderr %q", res.code, res.stderr)
	}
	if res.code != exitOK || !strings.Contains(res.stdout, "still here") {
		t.Errorf("exit %d, stdout %q; want 0 and the late message (stderr %q)", res.code, res.stdout, res.stderr)
	}
}

func TestConnectWithoutScheme(t *testing.T) {
	url := wsServer(t, echoHandler(nil))
	res := runDuplex(t, strings.NewReader("bare\n"), "connect", strings.TrimPrefix(url, "ws://")+"/path")
	if res.code != exitOK || res.stdout != "bare\n" {
		t.Errorf("exit %d, stdout %q; want 0, %q (stderr %q)", res.code, res.stdout, "bare\n", res.stderr)
	}
}

func TestConnectVerboseRedactsToken(t *testing.T) {
	url := wsServer(t, echoHandler(nil))
	res := runDuplex(t, strings.NewReader("x\n"), "connect", "-v", url+"/?token=s3cret&room=1")
	if res.code != exitOK || !strings.Contains(res.stderr, "token=REDACTED&room=1") || strings.Contains(res.stderr, "s3cret") {
		t.Errorf("exit %d, stderr %q; want the URL with its token redacted", res.code, res.stderr)
	}
	res = runDuplex(t, strings.NewReader("x\n"), "connect", "--reconnect", url+"/?access_token=s3cret")
	if res.code != exitOK || strings.Contains(res.stderr, "s3cret") || !strings.Contains(res.stderr, "REDACTED") {
		t.Errorf("--reconnect: exit %d, stderr %q; want the URL with its token redacted", res.code, res.stderr)
	}
}

// writePEM writes blocks to a file in dir and returns its name.
func writePEM(t *testing.T, dir, name string, blocks ...*pem.Block) string {
	t.Helper()
	var b []byte
	for _, blk := range blocks {
		b = append(b, pem.EncodeToMemory(blk)...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientCert makes a self-signed client certificate and returns its PEM
// files and the pool that trusts it.
func clientCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "duplex test client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, "client.pem", &pem.Block{Type: "CERTIFICATE", Bytes: der}),
		writePEM(t, dir, "client-key.pem", &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), pool
}

func TestConnectCAAndClientCert(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, clients := clientCert(t, dir)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(echoHandler(nil)))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	url := "wss" + strings.TrimPrefix(srv.URL, "https") + "/"
	ca := writePEM(t, dir, "ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	res := runDuplex(t, strings.NewReader("tls\n"), "connect", "--ca", ca, "--cert", certFile, "--key", keyFile, url)
	if res.code != exitOK || res.stdout != "tls\n" {
		t.Errorf("--ca --cert --key: exit %d, stdout %q; want 0, %q (stderr %q)", res.code, res.stdout, "tls\n", res.stderr)
	}
	res = runDuplex(t, strings.NewReader("tls\n"), "connect", "--cert", certFile, "--key", keyFile, url)
	if res.code != exitError || !strings.Contains(res.stderr, "certificate") {
		t.Errorf("without --ca: exit %d, stderr %q; want 1 and an unknown authority", res.code, res.stderr)
	}
	res = runDuplex(t, strings.NewReader("tls\n"), "connect", "--ca", ca, url)
	if res.code == exitOK {
		t.Errorf("without a client certificate: exit 0; want the server's refusal")
	}
	for _, args := range [][]string{
		{"--cert", certFile, url},
		{"--ca", filepath.Join(dir, "missing.pem"), url},
		{"--ca", keyFile, url},
	} {
		res := runDuplex(t, strings.NewReader(""), append([]string{"connect"}, args...)...)
		if res.code != exitUsage {
			t.Errorf("connect %q: exit %d; want %d (stderr %q)", args, res.code, exitUsage, res.stderr)
		}
	}
}

// The issue's own case, against duplex serve.
func TestConnectReportsRefusedMessageByServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, done := startServe(t, ctx, "--addr", "127.0.0.1:0", "--no-auth", "--max-message-size", "1MiB")
	url := "ws" + strings.TrimPrefix(base, "http") + "/echo"
	res := runDuplex(t, strings.NewReader(strings.Repeat("y", 2_670_000)+"\n"), "connect", url)
	if res.code != exitPeerClosed || !strings.Contains(res.stderr, "1009") {
		t.Errorf("exit %d, stderr %q; want %d and 1009", res.code, res.stderr, exitPeerClosed)
	}
	cancel()
	waitServe(t, done)
}
