package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/redial"
	"golang.org/x/net/http2"
)

var connectCommand = &Command{
	Name:  "connect",
	Usage: "connect [flags] URL",
	Short: "open a WebSocket and relay it to the terminal, like wscat",
	Long:  connectLong,
}

// Run is set here: runConnect refers to connectCommand (see flagSet).
func init() { connectCommand.Run = runConnect }

const connectLong = `
Connect opens a WebSocket to URL (ws://, wss://, http:// or https://) and
relays it to the terminal.

Each line read from stdin is sent as a text message (with --binary, as a
binary message). Every message received is printed on a line of its own:
text as it is, binary in hex or base64 (--binary-format). When stdout is a
terminal, received lines start with "< ", and lines sent start with "> "
when stdin is not a terminal too; otherwise lines are printed bare, for
pipes. At the end of stdin, connect sends a normal close (1000), prints
whatever still arrives until the server answers, and exits.

Credentials in the URL (ws://user:pass@host/path) are sent as Basic
authorization. Messages are compressed (permessage-deflate) if the server
agrees, unless --compress=false.

%FLAGS%

Environment:
  HTTPS_PROXY, https_proxy  proxy for wss:// and https:// URLs
  HTTP_PROXY, http_proxy    proxy for ws:// and http:// URLs
  NO_PROXY, no_proxy        comma-separated hosts reached directly: a name
                            (example.com, which covers its subdomains),
                            .example.com (subdomains only), an IP, a CIDR,
                            any of them with :port, or * for all
  A proxy is http:// or https:// (a bare host:port means http://), with
  user:pass@ for Basic auth; the WebSocket is tunnelled with CONNECT.
  Unlike Go's net/http, the variables are read on every connection, and a
  loopback URL (localhost, 127.0.0.1) goes through the proxy too; list it
  in NO_PROXY to reach it directly.

Exit status:
  0    stdin ended and the close handshake was done, the peer closed with
       1000 (normal) or 1001 (going away), or --reconnect was stopped by
       the end of stdin
  1    the connection failed: dial, TLS, proxy, protocol, lost connection,
       no pong within --timeout
  2    bad flags or arguments
  3    the server refused the handshake; its status and body are printed:
       "duplex: 401 Unauthorized: invalid token" (with --reconnect, only
       401 and 403 stop it; other refusals are retried)
  4    the peer closed with another code; the code and reason are printed
  130  interrupted (SIGINT or SIGTERM): a close (1001) was sent first

Examples:
  duplex connect ws://localhost:8080/echo
  echo '{"op":"ping"}' | duplex connect -H 'Authorization: Bearer T' wss://example.com/ws
  duplex connect --echo ws://localhost:9001/    # reflect what a server sends
`

// connectFlags are connect's command-line flags.
type connectFlags struct {
	headers      listFlag
	subprotocols listFlag
	origin       string
	compress     bool
	pingInterval time.Duration
	reconnect    bool
	echo         bool
	binary       bool
	binaryFormat string
	insecure     bool
	http2        bool
	timeout      time.Duration
	verbose      bool
}

func runConnect(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := connectCommand
	fs := cmd.flagSet(stdout)
	var f connectFlags
	fs.Var(&f.headers, "H", "add a request `header` \"Name: value\"; repeatable")
	fs.Var(&f.subprotocols, "subprotocol", "offer a `protocol` in Sec-WebSocket-Protocol; repeatable, most preferred first")
	fs.StringVar(&f.origin, "origin", "", "send an Origin header, as a browser page at `URL` would")
	fs.BoolVar(&f.compress, "compress", true, "offer permessage-deflate; --compress=false turns it off")
	fs.DurationVar(&f.pingInterval, "ping-interval", 0, "ping the server every `duration`; a pong missing for --timeout ends the\nconnection (or reconnects, with --reconnect); 0 turns pings off")
	fs.BoolVar(&f.reconnect, "reconnect", false, "reconnect after the connection ends, with exponential backoff (0.5s to\n30s, with jitter); stdin lines are queued while disconnected")
	fs.BoolVar(&f.echo, "echo", false, "send every message received back, with its type, until the peer closes;\nstdin is not read")
	fs.BoolVar(&f.binary, "binary", false, "send stdin lines as binary messages instead of text")
	fs.StringVar(&f.binaryFormat, "binary-format", "hex", "print binary messages as `hex|base64`")
	fs.BoolVar(&f.insecure, "insecure", false, "skip TLS certificate verification (self-signed servers)")
	fs.BoolVar(&f.http2, "http2", false, "open the WebSocket as a stream of an HTTP/2 connection (RFC 8441) when the\nserver supports it (wss: over TLS; ws: over h2c), else fall back to HTTP/1.1")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "bound the opening handshake, and the wait for a pong, to `duration`")
	fs.BoolVar(&f.verbose, "v", false, "report the handshake and ping round trips on stderr")
	positional, code, done := cmd.parse(fs, args, stderr)
	if done {
		return code
	}
	if len(positional) != 1 {
		return cmd.usageError(stderr, "want one URL, got %d arguments", len(positional))
	}
	rawURL := positional[0]
	if err := checkWSURL(rawURL); err != nil {
		return cmd.usageError(stderr, "%v", err)
	}
	if f.binaryFormat != "hex" && f.binaryFormat != "base64" {
		return cmd.usageError(stderr, "--binary-format is hex or base64, not %q", f.binaryFormat)
	}
	if f.timeout <= 0 {
		return cmd.usageError(stderr, "--timeout must be positive")
	}
	if f.pingInterval < 0 {
		return cmd.usageError(stderr, "--ping-interval must not be negative")
	}
	opts, err := f.dialOptions()
	if err != nil {
		return cmd.usageError(stderr, "%v", err)
	}
	out := &printer{
		stdout:   stdout,
		stderr:   stderr,
		marks:    isTerminal(stdout),
		showSent: isTerminal(stdout) && !isTerminal(stdin),
		base64:   f.binaryFormat == "base64",
		verbose:  f.verbose,
	}
	if f.reconnect {
		return connectRedial(ctx, rawURL, opts, &f, stdin, out)
	}
	return connectOnce(ctx, rawURL, opts, &f, stdin, out)
}

// checkWSURL catches URLs Dial would refuse, so they are usage errors.
func checkWSURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	switch strings.ToLower(u.Scheme) {
	case "ws", "wss", "http", "https":
	default:
		return fmt.Errorf("URL scheme must be ws, wss, http or https, not %q", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("URL %q has no host", rawURL)
	}
	return nil
}

// dialOptions turns the flags into DialOptions.
func (f *connectFlags) dialOptions() (*duplex.DialOptions, error) {
	o := &duplex.DialOptions{
		HTTPHeader:   make(http.Header),
		Origin:       f.origin,
		Subprotocols: f.subprotocols,
		Proxy:        proxyFromEnv,
	}
	for _, h := range f.headers {
		name, value, ok := strings.Cut(h, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !validHeaderName(name) || strings.ContainsAny(value, "\r\n") {
			return nil, fmt.Errorf(`-H %q: want "Name: value"`, h)
		}
		if strings.EqualFold(name, "Host") {
			o.Host = value // in HTTPHeader it would go out twice: a 400
			continue
		}
		o.HTTPHeader.Add(name, value)
	}
	if f.compress {
		o.Compression = &duplex.CompressionOptions{}
	}
	if f.insecure {
		o.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	if f.http2 {
		o.HTTP2Transport = http2Transport(o.TLSConfig)
	}
	return o, nil
}

// http2Transport is the HTTP/2 client that carries --http2 sockets. The
// standard library's client refuses the :protocol pseudo-header of
// extended CONNECT (Go 1.26), so connect uses golang.org/x/net/http2. For
// ws:// URLs it speaks HTTP/2 over cleartext TCP (h2c, prior knowledge).
func http2Transport(tlsConfig *tls.Config) http.RoundTripper {
	return &schemeSwitch{
		tls: &http2.Transport{TLSClientConfig: tlsConfig},
		h2c: &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
		},
	}
}

// schemeSwitch sends https requests over TLS and http ones over h2c.
type schemeSwitch struct{ tls, h2c *http2.Transport }

func (s *schemeSwitch) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" {
		return s.h2c.RoundTrip(r)
	}
	return s.tls.RoundTrip(r)
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r > '~' || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// connectOnce runs one connection, interactive or --echo, and returns the
// exit status.
func connectOnce(ctx context.Context, rawURL string, opts *duplex.DialOptions, f *connectFlags, stdin io.Reader, out *printer) int {
	dctx, cancel := context.WithTimeout(ctx, f.timeout)
	conn, resp, err := duplex.Dial(dctx, rawURL, opts)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return out.dialFailed(err)
	}
	out.info("connected to %s over %s (subprotocol %q, extensions %q)", redact(rawURL), resp.Proto, conn.Subprotocol(), conn.Extensions())

	// The reader and the pinger use their own context: the connection
	// ends by its close handshake, not by a cancelled read.
	bg, stopBg := context.WithCancel(context.Background())
	defer stopBg()
	rd := &reader{conn: conn, out: out, echo: f.echo, closed: make(chan struct{})}
	readDone := make(chan error, 1)
	go func() { readDone <- rd.run(bg) }()
	var noPong atomic.Bool
	var pingerDone chan struct{}
	if f.pingInterval > 0 {
		pingerDone = make(chan struct{})
		go func() {
			defer close(pingerDone)
			pingLoop(bg, conn, f.pingInterval, f.timeout, out, &noPong)
		}()
	}
	// finish stops the pinger once the reader has returned readErr.
	finish := func(readErr error) error {
		stopBg()
		if pingerDone != nil {
			<-pingerDone
		}
		return readErr
	}

	lines, typ, stopLines := f.input(stdin)
	defer stopLines()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				// End of input: close, printing what arrives until the
				// peer answers.
				closeErr := rd.close(duplex.StatusNormalClosure)
				readErr := finish(<-readDone)
				if !closedByUs(readErr) {
					// It had ended before our close went out.
					return out.connectionEnded(readErr, noPong.Load())
				}
				if closeErr != nil {
					out.errorf("close handshake: %v", strings.TrimPrefix(closeErr.Error(), "duplex: "))
				}
				return exitOK
			}
			if err := conn.Write(ctx, typ, line); err != nil {
				lines = nil // the reader reports how the connection ended
				continue
			}
			out.sent(typ, line)
		case <-ctx.Done():
			rd.close(duplex.StatusGoingAway)
			finish(<-readDone)
			return exitInterrupted
		case err := <-readDone:
			return out.connectionEnded(finish(err), noPong.Load())
		}
	}
}

// closedByUs reports whether err is the end of a connection that our
// normal close ended.
func closedByUs(err error) bool {
	var ce *duplex.CloseError
	return errors.As(err, &ce) && ce.Sent && ce.Code == duplex.StatusNormalClosure
}

// reader prints every message until the connection ends, sending each
// back first when echo is set.
type reader struct {
	conn    *duplex.Conn
	out     *printer
	echo    bool
	waiting atomic.Bool   // run is about to call or is in conn.Read
	exited  atomic.Bool   // run has returned
	closed  chan struct{} // closed when close has returned
}

// run reads until the connection ends and returns how it ended.
func (rd *reader) run(ctx context.Context) error {
	defer rd.exited.Store(true)
	for {
		rd.waiting.Store(true)
		typ, p, err := rd.conn.Read(ctx)
		rd.waiting.Store(false)
		if errors.Is(err, duplex.ErrConcurrentRead) {
			// close took the read side (see close): once it returns,
			// Read says how the connection ended.
			select {
			case <-rd.closed:
				continue
			case <-ctx.Done():
				return err
			}
		}
		if err != nil {
			return err
		}
		rd.out.received(typ, p)
		if rd.echo {
			if err := rd.conn.Write(ctx, typ, p); err != nil {
				return err
			}
		}
	}
}

// close runs the close handshake with code while run keeps printing what
// arrives. conn.Close reads the handshake itself, discarding messages,
// when no Read is in progress at that instant, so close first waits for
// run to be back in Read; a message that arrives in the instant between
// two Reads can still be dropped.
func (rd *reader) close(code duplex.StatusCode) error {
	for i := 0; !rd.waiting.Load() && !rd.exited.Load() && i < 1000; i++ {
		time.Sleep(time.Millisecond)
	}
	err := rd.conn.Close(code, "")
	close(rd.closed)
	return err
}

// pingLoop pings every interval until ctx ends. A pong missing for timeout
// means the peer is gone: it closes the connection, which ends the reader.
func pingLoop(ctx context.Context, conn *duplex.Conn, interval, timeout time.Duration, out *printer, noPong *atomic.Bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		rtt, err := conn.Ping(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			noPong.Store(true)
			out.errorf("no pong within %v; closing the connection", timeout)
			conn.CloseNow()
			return
		case err != nil:
			return // the connection ended; the reader says how
		}
		out.info("pong in %v", rtt)
	}
}

// input is what stdin sends: its lines, as messages of the type the flags
// ask for; none with --echo. stop lets the reader go.
func (f *connectFlags) input(stdin io.Reader) (lines <-chan []byte, typ duplex.MessageType, stop func()) {
	typ = duplex.MessageText
	if f.binary {
		typ = duplex.MessageBinary
	}
	if f.echo {
		return nil, typ, func() {}
	}
	done := make(chan struct{})
	return readLines(stdin, done), typ, func() { close(done) }
}

// readLines sends each line of r, without its line ending, until r ends or
// done is closed; then it closes the channel. A read from r that never
// returns keeps the goroutine, and only it, until the process exits: an
// io.Reader cannot be interrupted.
func readLines(r io.Reader, done <-chan struct{}) <-chan []byte {
	ch := make(chan []byte)
	go func() {
		defer close(ch)
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
				select {
				case ch <- line:
				case <-done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// connectRedial runs --reconnect: a redial.Client fed by stdin (or echoing)
// until stdin ends, ctx ends, or the server refuses our credentials.
func connectRedial(ctx context.Context, rawURL string, opts *duplex.DialOptions, f *connectFlags, stdin io.Reader, out *printer) int {
	ping := f.pingInterval
	if ping == 0 {
		ping = -1 // redial: negative turns the heartbeat off
	}
	var client *redial.Client
	client = redial.New(rawURL, &redial.Options{
		Dial:             opts,
		HandshakeTimeout: f.timeout,
		PingInterval:     ping,
		PingTimeout:      f.timeout,
		OnMessage: func(typ duplex.MessageType, p []byte) {
			out.received(typ, p)
			if f.echo {
				client.Send(ctx, typ, p)
			}
		},
		OnState: func(s redial.State, err error) {
			switch s {
			case redial.StateConnected:
				out.errorf("connected to %s", redact(rawURL))
			case redial.StateDisconnected:
				if err == nil {
					err = errors.New("disconnected")
				}
				out.errorf("%s; reconnecting", strings.TrimPrefix(err.Error(), "duplex: "))
			}
		},
	})
	runErr := make(chan error, 1)
	go func() { runErr <- client.Run(ctx) }()

	lines, typ, stopLines := f.input(stdin)
	defer stopLines()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				client.Flush(ctx) // send what is queued, across reconnects if need be
				client.Close()
				lines = nil
				continue
			}
			if err := client.Send(ctx, typ, line); err != nil {
				lines = nil // closed or interrupted: Run is returning
				continue
			}
			out.sent(typ, line)
		case err := <-runErr:
			switch {
			case err != nil:
				return out.dialFailed(err)
			case ctx.Err() != nil:
				return exitInterrupted
			}
			return exitOK
		}
	}
}

// printer writes messages to stdout and notes to stderr, one line at a
// time from any goroutine.
type printer struct {
	mu       sync.Mutex
	stdout   io.Writer
	stderr   io.Writer
	marks    bool // prefix lines with "< " and "> "
	showSent bool // print the lines sent too
	base64   bool // binary as base64 instead of hex
	verbose  bool
}

func (p *printer) received(typ duplex.MessageType, data []byte) {
	p.message("< ", typ, data)
}

func (p *printer) sent(typ duplex.MessageType, data []byte) {
	if p.showSent {
		p.message("> ", typ, data)
	}
}

func (p *printer) message(mark string, typ duplex.MessageType, data []byte) {
	var b strings.Builder
	if p.marks {
		b.WriteString(mark)
	}
	switch {
	case typ == duplex.MessageText:
		b.Write(data)
	case p.base64:
		b.WriteString(base64.StdEncoding.EncodeToString(data))
	default:
		b.WriteString(hex.EncodeToString(data))
	}
	b.WriteByte('\n')
	p.mu.Lock()
	io.WriteString(p.stdout, b.String())
	p.mu.Unlock()
}

// errorf prints a note on stderr, prefixed "duplex: ".
func (p *printer) errorf(format string, args ...any) {
	p.mu.Lock()
	fmt.Fprintf(p.stderr, "duplex: "+format+"\n", args...)
	p.mu.Unlock()
}

// info is errorf under -v.
func (p *printer) info(format string, args ...any) {
	if p.verbose {
		p.errorf(format, args...)
	}
}

// dialFailed reports a failed dial and returns its exit status: a refusal
// shows the status and the body the server sent.
func (p *printer) dialFailed(err error) int {
	var he *duplex.HandshakeError
	if errors.As(err, &he) && he.Err == nil && he.StatusCode != 0 {
		msg := fmt.Sprintf("%d %s", he.StatusCode, http.StatusText(he.StatusCode))
		if body := trimBody(he.Body); body != "" {
			msg += ": " + body
		}
		p.errorf("%s", msg)
		return exitRefused
	}
	p.errorf("%s", strings.TrimPrefix(err.Error(), "duplex: "))
	return exitError
}

// connectionEnded reports how a connection we did not close ended and
// returns the exit status. quiet: the reason was already printed.
func (p *printer) connectionEnded(err error, quiet bool) int {
	var ce *duplex.CloseError
	if errors.As(err, &ce) && !ce.Sent {
		switch ce.Code {
		case duplex.StatusNormalClosure, duplex.StatusGoingAway, duplex.StatusNoStatusReceived:
			p.info("%s", strings.TrimPrefix(ce.Error(), "duplex: "))
			return exitOK
		}
		p.errorf("%s", strings.TrimPrefix(ce.Error(), "duplex: "))
		return exitPeerClosed
	}
	if !quiet {
		p.errorf("%s", strings.TrimPrefix(err.Error(), "duplex: "))
	}
	return exitError
}

// trimBody makes a refusal's body printable on one line.
func trimBody(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// redact hides the password of a URL for printing.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	return u.Redacted()
}

// proxyFromEnv is DialOptions.Proxy for connect: HTTPS_PROXY for https
// (wss) URLs, HTTP_PROXY for http (ws) ones, unless NO_PROXY matches; the
// upper-case name wins over the lower-case one. It differs from
// http.ProxyFromEnvironment on purpose: it reads the environment on every
// call instead of once per process, and it proxies loopback hosts too, as
// a user who sets a proxy to watch local traffic expects.
func proxyFromEnv(req *http.Request) (*url.URL, error) {
	name := "HTTP_PROXY"
	if req.URL.Scheme == "https" {
		name = "HTTPS_PROXY"
	}
	raw := getenv(name)
	if raw == "" || noProxy(getenv("NO_PROXY"), req.URL) {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		// A bare "host:port", as curl accepts.
		if u2, err2 := url.Parse("http://" + raw); err2 == nil && u2.Host != "" {
			u, err = u2, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("invalid %s %q: %w", name, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%s %q: only http:// and https:// proxies are supported", name, raw)
	}
	return u, nil
}

// getenv returns the variable name, or its lower-case form if unset.
func getenv(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return os.Getenv(strings.ToLower(name))
}

// noProxy reports whether the NO_PROXY list matches the target u.
func noProxy(list string, u *url.URL) bool {
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	ip := net.ParseIP(host)
	for _, e := range strings.Split(list, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
			continue
		case e == "*":
			return true
		}
		if _, cidr, err := net.ParseCIDR(e); err == nil {
			if ip != nil && cidr.Contains(ip) {
				return true
			}
			continue
		}
		ehost, eport := e, ""
		if h, p, err := net.SplitHostPort(e); err == nil {
			ehost, eport = h, p
		}
		ehost = strings.TrimSuffix(strings.TrimPrefix(ehost, "["), "]")
		if eport != "" && eport != port {
			continue
		}
		if eip := net.ParseIP(ehost); eip != nil {
			if ip != nil && eip.Equal(ip) {
				return true
			}
			continue
		}
		ehost = strings.TrimPrefix(ehost, "*")
		if strings.HasPrefix(ehost, ".") {
			// .example.com: subdomains only.
			if strings.HasSuffix(host, ehost) {
				return true
			}
			continue
		}
		// example.com: the name and its subdomains.
		if host == ehost || strings.HasSuffix(host, "."+ehost) {
			return true
		}
	}
	return false
}
