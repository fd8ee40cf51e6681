package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// wsServer serves handle over HTTP and returns its ws:// URL.
func wsServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(handle))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// echoHandler echoes every message with its type.
func echoHandler(opts *duplex.AcceptOptions) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, p, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if err := c.Write(context.Background(), typ, p); err != nil {
				return
			}
		}
	}
}

// syncBuffer is an output that tests can read while a command writes it.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until sub occurs n times in the output.
func (s *syncBuffer) waitFor(t *testing.T, sub string, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for strings.Count(s.String(), sub) < n {
		select {
		case <-s.changed:
		case <-timeout:
			t.Fatalf("output never had %q %d times; it is:\n%s", sub, n, s.String())
		}
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// runDuplex runs the command line args with stdin and waits for its exit.
func runDuplex(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, stdin, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// startDuplex runs args in the background; wait returns the exit status.
func startDuplex(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr *syncBuffer, wait func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = newSyncBuffer(), newSyncBuffer()
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, stdin, stdout, stderr) }()
	t.Cleanup(cancel)
	return stdout, stderr, func() int {
		t.Helper()
		select {
		case code := <-done:
			return code
		case <-time.After(20 * time.Second):
			t.Fatalf("duplex %s did not exit; stderr:\n%s", strings.Join(args, " "), stderr)
			return -1
		}
	}
}

// openStdin is a stdin that stays open until the test ends.
func openStdin(t *testing.T) io.Reader {
	r, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	return r
}

func TestConnectEchoesStdin(t *testing.T) {
	url := wsServer(t, echoHandler(nil))
	res := runDuplex(t, strings.NewReader("hello\nwörld\r\n\nlast line without newline"), "connect", url)
	if res.code != exitOK {
		t.Fatalf("exit %d; want 0; stderr: %s", res.code, res.stderr)
	}
	if want := "hello\nwörld\n\nlast line without newline\n"; res.stdout != want {
		t.Errorf("stdout = %q; want %q", res.stdout, want)
	}
	if res.stderr != "" {
		t.Errorf("stderr = %q; want nothing", res.stderr)
	}
}

func TestConnectBinary(t *testing.T) {
	url := wsServer(t, echoHandler(nil))
	for _, tt := range []struct{ format, want string }{
		{"hex", "616263\n"},
		{"base64", "YWJj\n"},
	} {
		res := runDuplex(t, strings.NewReader("abc\n"), "connect", "--binary", "--binary-format", tt.format, url)
		if res.code != exitOK || res.stdout != tt.want {
			t.Errorf("--binary-format %s: exit %d, stdout %q; want 0, %q (stderr %q)", tt.format, res.code, res.stdout, tt.want, res.stderr)
		}
	}
}

func TestConnectRefused(t *testing.T) {
	url := wsServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "invalid token", http.StatusUnauthorized)
	})
	for _, extra := range [][]string{nil, {"--reconnect"}} {
		args := append(append([]string{"connect"}, extra...), url)
		res := runDuplex(t, openStdin(t), args...)
		if res.code != exitRefused {
			t.Errorf("%v: exit %d; want %d", extra, res.code, exitRefused)
		}
		if want := "duplex: 401 Unauthorized: invalid token\n"; res.stderr != want {
			t.Errorf("%v: stderr = %q; want %q", extra, res.stderr, want)
		}
	}
}

func TestConnectPeerCloseCode(t *testing.T) {
	url := wsServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.Close(4001, "bye")
	})
	res := runDuplex(t, openStdin(t), "connect", url)
	if res.code != exitPeerClosed {
		t.Errorf("exit %d; want %d", res.code, exitPeerClosed)
	}
	if !strings.Contains(res.stderr, "4001") || !strings.Contains(res.stderr, "bye") {
		t.Errorf("stderr = %q; want the code 4001 and the reason bye", res.stderr)
	}
}

func TestConnectPeerCloseNormal(t *testing.T) {
	url := wsServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.Write(r.Context(), duplex.MessageText, []byte("welcome"))
		c.Close(duplex.StatusGoingAway, "restarting")
	})
	res := runDuplex(t, openStdin(t), "connect", url)
	if res.code != exitOK || res.stdout != "welcome\n" {
		t.Errorf("exit %d, stdout %q; want 0, %q (stderr %q)", res.code, res.stdout, "welcome\n", res.stderr)
	}
}

func TestConnectEchoFlag(t *testing.T) {
	type msg struct {
		typ duplex.MessageType
		p   string
	}
	sent := []msg{{duplex.MessageText, "one"}, {duplex.MessageBinary, "\x01\x02\x03"}, {duplex.MessageText, ""}}
	echoed := make(chan []msg, 1)
	url := wsServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		var got []msg
		defer func() { echoed <- got }()
		for _, m := range sent {
			if err := c.Write(r.Context(), m.typ, []byte(m.p)); err != nil {
				return
			}
			typ, p, err := c.Read(r.Context())
			if err != nil {
				return
			}
			got = append(got, msg{typ, string(p)})
		}
		c.Close(duplex.StatusNormalClosure, "done")
	})
	res := runDuplex(t, openStdin(t), "connect", "--echo", url)
	if res.code != exitOK {
		t.Fatalf("exit %d; want 0; stderr %q", res.code, res.stderr)
	}
	if got := <-echoed; fmt.Sprint(got) != fmt.Sprint(sent) {
		t.Errorf("server got back %v; want %v", got, sent)
	}
	if want := "one\n010203\n\n"; res.stdout != want {
		t.Errorf("stdout = %q; want %q", res.stdout, want)
	}
}

func TestConnectCredentialsHeadersSubprotocol(t *testing.T) {
	url := wsServer(t, func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		switch {
		case !ok || user != "alice" || pass != "s3cret":
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		case r.Header.Get("X-Trace") != "abc" || r.Host != "example.test":
			http.Error(w, "missing header", http.StatusBadRequest)
			return
		}
		echoHandler(&duplex.AcceptOptions{Subprotocols: []string{"chat.v2"}})(w, r)
	})
	withCreds := strings.Replace(url, "ws://", "ws://alice:s3cret@", 1)
	res := runDuplex(t, strings.NewReader("hi\n"), "connect", "-v",
		"-H", "X-Trace: abc", "-H", "Host: example.test",
		"--subprotocol", "chat.v1", "--subprotocol", "chat.v2", withCreds)
	if res.code != exitOK || res.stdout != "hi\n" {
		t.Fatalf("exit %d, stdout %q; want 0, %q; stderr %q", res.code, res.stdout, "hi\n", res.stderr)
	}
	if !strings.Contains(res.stderr, `subprotocol "chat.v2"`) {
		t.Errorf("stderr = %q; want the agreed subprotocol under -v", res.stderr)
	}
	if strings.Contains(res.stderr, "s3cret") {
		t.Errorf("stderr = %q shows the password", res.stderr)
	}
}

func TestConnectPing(t *testing.T) {
	url := wsServer(t, echoHandler(nil))
	stdin, w := io.Pipe()
	defer w.Close()
	_, stderr, wait := startDuplex(t, stdin, "connect", "-v", "--ping-interval", "20ms", url)
	stderr.waitFor(t, "pong in", 2)
	w.Close()
	if code := wait(); code != exitOK {
		t.Errorf("exit %d; want 0; stderr %q", code, stderr)
	}
}

func TestConnectNoPong(t *testing.T) {
	res := runDuplex(t, openStdin(t), "connect", "--ping-interval", "20ms", "--timeout", "200ms", silentServer(t))
	if res.code != exitError {
		t.Errorf("exit %d; want %d", res.code, exitError)
	}
	if want := "duplex: no pong within 200ms; closing the connection\n"; res.stderr != want {
		t.Errorf("stderr = %q; want %q", res.stderr, want)
	}
}

func TestConnectReconnect(t *testing.T) {
	// The server echoes one message per connection, then says it restarts.
	var conns atomic.Int32
	url := wsServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		conns.Add(1)
		typ, p, err := c.Read(r.Context())
		if err != nil {
			return
		}
		c.Write(r.Context(), typ, p)
		c.Close(duplex.StatusServiceRestart, "restarting")
	})
	stdin, w := io.Pipe()
	defer w.Close()
	stdout, stderr, wait := startDuplex(t, stdin, "connect", "--reconnect", url)
	for i := 1; i <= 3; i++ {
		// Write on the fresh connection: one written while the old one
		// is closing may be lost, which --reconnect cannot prevent.
		stderr.waitFor(t, "duplex: connected to", i)
		fmt.Fprintf(w, "line %d\n", i)
		stdout.waitFor(t, fmt.Sprintf("line %d\n", i), 1)
	}
	w.Close()
	if code := wait(); code != exitOK {
		t.Errorf("exit %d; want 0; stderr:\n%s", code, stderr)
	}
	if want := "line 1\nline 2\nline 3\n"; stdout.String() != want {
		t.Errorf("stdout = %q; want %q", stdout, want)
	}
	if !strings.Contains(stderr.String(), "1012 service restart: restarting; reconnecting") {
		t.Errorf("stderr = %q; want the disconnect reported", stderr)
	}
}

// connectProxy is an HTTP proxy that only tunnels (CONNECT), counting the
// tunnels it opens.
func connectProxy(t *testing.T) (proxyURL string, tunnels *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tunnels = new(atomic.Int32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		open = append(open, c)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if req.Method != http.MethodConnect {
					io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
					return
				}
				target, err := net.Dial("tcp", req.URL.Host)
				if err != nil {
					io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
					return
				}
				track(target)
				defer target.Close()
				tunnels.Add(1)
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				go func() {
					io.Copy(target, br)
					target.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(c, target)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String(), tunnels
}

// clearProxyEnv unsets every proxy variable for the test.
func clearProxyEnv(t *testing.T) {
	for _, name := range []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} {
		t.Setenv(name, "")
		t.Setenv(strings.ToLower(name), "")
	}
}

func TestConnectThroughProxy(t *testing.T) {
	target := wsServer(t, echoHandler(nil)) // on 127.0.0.1: net/http would not proxy it
	proxy, tunnels := connectProxy(t)
	clearProxyEnv(t)
	t.Setenv("http_proxy", proxy) // lower case works too

	res := runDuplex(t, strings.NewReader("via proxy\n"), "connect", target)
	if res.code != exitOK || res.stdout != "via proxy\n" {
		t.Fatalf("exit %d, stdout %q; want 0, %q; stderr %q", res.code, res.stdout, "via proxy\n", res.stderr)
	}
	if n := tunnels.Load(); n != 1 {
		t.Errorf("proxy opened %d tunnels; want 1", n)
	}

	t.Setenv("NO_PROXY", "127.0.0.1")
	res = runDuplex(t, strings.NewReader("direct\n"), "connect", target)
	if res.code != exitOK || res.stdout != "direct\n" {
		t.Fatalf("NO_PROXY: exit %d, stdout %q; stderr %q", res.code, res.stdout, res.stderr)
	}
	if n := tunnels.Load(); n != 1 {
		t.Errorf("with NO_PROXY the proxy opened %d tunnels in all; want still 1", n)
	}
}

func TestProxyFromEnv(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		target string
		want   string // "" for direct
	}{
		{"none", nil, "ws://example.com/", ""},
		{"http", map[string]string{"HTTP_PROXY": "http://p:3128"}, "ws://example.com/", "http://p:3128"},
		{"http only for ws", map[string]string{"HTTP_PROXY": "http://p:3128"}, "wss://example.com/", ""},
		{"https for wss", map[string]string{"HTTPS_PROXY": "https://p:8443"}, "wss://example.com/", "https://p:8443"},
		{"upper wins", map[string]string{"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:1"}, "ws://a/", "http://upper:1"},
		{"lower alone", map[string]string{"http_proxy": "http://lower:1"}, "ws://a/", "http://lower:1"},
		{"bare host:port", map[string]string{"HTTP_PROXY": "p:3128"}, "ws://a/", "http://p:3128"},
		{"loopback proxied", map[string]string{"HTTP_PROXY": "http://p:1"}, "ws://127.0.0.1:9/", "http://p:1"},
		{"localhost proxied", map[string]string{"HTTP_PROXY": "http://p:1"}, "ws://localhost:9/", "http://p:1"},
		{"no_proxy star", map[string]string{"HTTP_PROXY": "http://p:1", "NO_PROXY": "*"}, "ws://a/", ""},
		{"no_proxy domain", map[string]string{"HTTP_PROXY": "http://p:1", "NO_PROXY": "x.org, example.com"}, "ws://api.example.com/", ""},
		{"no_proxy domain itself", map[string]string{"HTTP_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "ws://example.com/", ""},
		{"no_proxy dot: subdomains only", map[string]string{"HTTP_PROXY": "http://p:1", "NO_PROXY": ".example.com"}, "ws://example.com/", "http://p:1"},
		{"no_proxy suffix is not a domain", map[string]string{"HTTP_PROXY": "http://p:1", "NO_PROXY": "ample.com"}, "ws://example.com/", "http://p:1"},
		{"no_proxy port", map[string]string{"HTTP_PROXY": "http://p:1", "NO_PROXY": "a:8080"}, "ws://a:8080/", ""},
		{"no_proxy other port", map[string]string{"HTTP_PROXY": "http://p:1", "NO_PROXY": "a:8080"}, "ws://a:9090/", "http://p:1"},
		{"no_proxy default port", map[string]string{"HTTPS_PROXY": "http://p:1", "NO_PROXY": "a:443"}, "wss://a/", ""},
		{"no_proxy CIDR", map[string]string{"HTTP_PROXY": "http://p:1", "no_proxy": "10.0.0.0/8"}, "ws://10.1.2.3/", ""},
		{"no_proxy IPv6", map[string]string{"HTTP_PROXY": "http://p:1", "NO_PROXY": "::1"}, "ws://[::1]:80/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearProxyEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			u, err := url.Parse(strings.Replace(strings.Replace(tt.target, "wss:", "https:", 1), "ws:", "http:", 1))
			if err != nil {
				t.Fatal(err)
			}
			got, err := proxyFromEnv(&http.Request{URL: u})
			if err != nil {
				t.Fatalf("proxyFromEnv(%s) error %v", tt.target, err)
			}
			gotS := ""
			if got != nil {
				gotS = got.String()
			}
			if gotS != tt.want {
				t.Errorf("proxyFromEnv(%s) = %q; want %q", tt.target, gotS, tt.want)
			}
		})
	}
	clearProxyEnv(t)
	t.Setenv("HTTP_PROXY", "socks5://p:1080")
	if _, err := proxyFromEnv(&http.Request{URL: &url.URL{Scheme: "http", Host: "a"}}); err == nil {
		t.Error("socks5 proxy: no error; want unsupported")
	}
}

func TestConnectUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"connect"},
		{"connect", "ws://a/", "ws://b/"},
		{"connect", "ftp://a/"},
		{"connect", "ws:///nohost"},
		{"connect", "-H", "no colon", "ws://a/"},
		{"connect", "-H", "Bad Name: x", "ws://a/"},
		{"connect", "--binary-format", "octal", "ws://a/"},
		{"connect", "--timeout", "0s", "ws://a/"},
		{"connect", "--nope", "ws://a/"},
		{"nope"},
		{},
	} {
		res := runDuplex(t, strings.NewReader(""), args...)
		if res.code != exitUsage || res.stderr == "" || res.stdout != "" {
			t.Errorf("duplex %q: exit %d, stdout %q, stderr %q; want 2 and a message on stderr only", args, res.code, res.stdout, res.stderr)
		}
	}
}

func TestConnectFlagsAfterURL(t *testing.T) {
	url := wsServer(t, echoHandler(nil))
	res := runDuplex(t, strings.NewReader("x\n"), "connect", url, "--binary", "--binary-format=base64")
	if res.code != exitOK || res.stdout != "eA==\n" {
		t.Errorf("exit %d, stdout %q; want 0, %q; stderr %q", res.code, res.stdout, "eA==\n", res.stderr)
	}
}

func TestConnectDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res := runDuplex(t, strings.NewReader(""), "connect", "ws://"+addr+"/")
	if res.code != exitError || !strings.HasPrefix(res.stderr, "duplex: ") || strings.Count(res.stderr, "duplex: ") != 1 {
		t.Errorf("exit %d, stderr %q; want 1 and one prefixed line", res.code, res.stderr)
	}
}

func TestPrinterMarks(t *testing.T) {
	var out bytes.Buffer
	p := &printer{stdout: &out, marks: true, showSent: true}
	p.sent(duplex.MessageText, []byte("hi"))
	p.received(duplex.MessageBinary, []byte{0xff})
	p.received(duplex.MessageText, []byte("ho"))
	if want := "> hi\n< ff\n< ho\n"; out.String() != want {
		t.Errorf("terminal output = %q; want %q", out.String(), want)
	}
}

// silentServer completes the WebSocket handshake, then neither reads nor
// writes, like a peer that vanished without closing its socket.
func silentServer(t *testing.T) string {
	url, _ := testkit.ServeRaw(t) // the peers are never read from
	return url + "/"
}
