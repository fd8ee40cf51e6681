package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex"
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
Connect opens a WebSocket to URL (ws://, wss://, http:// or https://; a
URL without a scheme, such as localhost:8080/ws, means ws://) and relays it
to the terminal.

Each line read from stdin is sent as a text message (with --binary, as a
binary message). Every message received is printed on a line of its own:
text as it is, binary in hex or base64 (--binary-format). When stdout is a
terminal, received lines start with "< ", and lines sent start with "> "
when stdin is not a terminal too; otherwise lines are printed bare, for
pipes. At the end of stdin, connect waits until the server has read
every message sent (a ping answered, for at most --timeout: servers read
in order), sends a normal close (1000), prints whatever still arrives
until the server answers, and exits; if the server closed the connection
instead, say because a message was over its size limit (1009), connect
reports its code and exits 4. --no-close keeps the connection open after the end of
stdin, to listen: "duplex connect --no-close URL </dev/null".

When stdin and stdout are both a terminal, connect shows a prompt ("> ")
that stays below the messages arriving, and lines starting with "/" are
commands:
  /ping                     ping the server and print the round trip
  /close [CODE [REASON]]    close with CODE (default 1000) and exit
  /help                     list the commands
  //TEXT                    send "/TEXT"
Ctrl-D on an empty line ends the input, as the end of stdin does.

Credentials in the URL (ws://user:pass@host/path) are sent as Basic
authorization. Under -v, the URL is printed with its password and tokens
(?token=, ?access_token= and the like) replaced by REDACTED. Messages are compressed (permessage-deflate) if the server
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
  0    stdin ended (or /close was typed) and the close handshake was done,
       the peer closed with 1000 (normal) or 1001 (going away), or
       --reconnect was stopped by the end of stdin after sending every line
  1    the connection failed: dial, TLS, proxy, protocol, lost connection,
       no pong within --timeout; with --reconnect, the end of stdin came and
       5 attempts in a row then failed to connect (or to send the lines
       still queued)
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
  duplex connect --no-close localhost:8080/ws?token=T </dev/null   # listen
  duplex connect --ca ca.pem --cert me.pem --key me-key.pem wss://internal:8443/ws
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
	tls          tlsFlags
	noClose      bool
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
	fs.BoolVar(&f.reconnect, "reconnect", false, "reconnect after the connection ends, with exponential backoff (0.5s to\n30s, with jitter); stdin lines are queued while disconnected; once\nstdin has ended, 5 failed attempts in a row give up (exit 1)")
	fs.BoolVar(&f.echo, "echo", false, "send every message received back, with its type, until the peer closes;\nstdin is not read")
	fs.BoolVar(&f.binary, "binary", false, "send stdin lines as binary messages instead of text")
	fs.StringVar(&f.binaryFormat, "binary-format", "hex", "print binary messages as `hex|base64`")
	fs.BoolVar(&f.tls.insecure, "insecure", false, "skip TLS certificate verification (self-signed servers)")
	fs.StringVar(&f.tls.ca, "ca", "", "trust the CA certificates in PEM `file` instead of the system's")
	fs.StringVar(&f.tls.cert, "cert", "", "present the client certificate in PEM `file` (with --key)")
	fs.StringVar(&f.tls.key, "key", "", "the private key of --cert, a PEM `file`")
	fs.BoolVar(&f.noClose, "no-close", false, "keep the connection open after the end of stdin, printing what arrives\nuntil the server closes it or connect is interrupted (listen-only)")
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
	rawURL := withScheme(positional[0])
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
	in := &input{r: stdin}
	if isTerminal(stdin) && isTerminal(stdout) && !f.echo {
		if restore, err := makeRaw(stdin.(*os.File)); err == nil {
			defer restore()
			in.interactive(out)
			in.edit.width = func() int { return termWidth(stdout.(*os.File)) }
			defer out.stopEditing()
		}
	}
	if f.reconnect {
		return connectRedial(ctx, rawURL, opts, &f, in, out)
	}
	return connectOnce(ctx, rawURL, opts, &f, in, out)
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
	header, err := parseHeaders(f.headers)
	if err != nil {
		return nil, err
	}
	if h := header.Get("Host"); h != "" {
		o.Host = h // in HTTPHeader it would go out twice: a 400
		header.Del("Host")
	}
	o.HTTPHeader = header
	if f.compress {
		o.Compression = &duplex.CompressionOptions{}
	}
	tc, err := f.tls.config()
	if err != nil {
		return nil, err
	}
	o.TLSConfig = tc
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

// parseHeaders parses -H flags, "Name: value" each.
func parseHeaders(list []string) (http.Header, error) {
	h := make(http.Header)
	for _, line := range list {
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !validHeaderName(name) || strings.ContainsAny(value, "\r\n") {
			return nil, fmt.Errorf(`-H %q: want "Name: value"`, line)
		}
		h.Add(name, value)
	}
	return h, nil
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
func connectOnce(ctx context.Context, rawURL string, opts *duplex.DialOptions, f *connectFlags, in *input, out *printer) int {
	dctx, cancel := context.WithTimeout(ctx, f.timeout)
	conn, resp, err := duplex.Dial(dctx, rawURL, opts)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return out.dialFailed(err)
	}
	out.info("connected to %s over %s (subprotocol %q, extensions %q)", redactURL(rawURL), resp.Proto, conn.Subprotocol(), conn.Extensions())

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
	// hangUp closes with code and reason, printing what arrives until
	// the peer answers, and returns the exit status.
	hangUp := func(code duplex.StatusCode, reason string) int {
		closeErr := rd.close(code, reason)
		readErr := finish(<-readDone)
		if !closedByUs(readErr, code) {
			// It had ended before our close went out.
			return out.connectionEnded(readErr, noPong.Load())
		}
		if closeErr != nil {
			out.errorf("close handshake: %v", strings.TrimPrefix(closeErr.Error(), "duplex: "))
		}
		return exitOK
	}

	lines, typ, stopLines := in.lines(f)
	defer stopLines()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				lines = nil
				if f.noClose {
					out.info("end of input; listening until the server closes (--no-close)")
					continue
				}
				// A message the server refused (too big, say) makes it
				// close with its own code: wait until it has read them
				// all, so that its close, not ours, ends the connection.
				if !awaitRead(ctx, conn, f.timeout) {
					if ctx.Err() != nil {
						rd.close(duplex.StatusGoingAway, "")
						finish(<-readDone)
						return exitInterrupted
					}
					return out.connectionEnded(finish(<-readDone), noPong.Load())
				}
				return hangUp(duplex.StatusNormalClosure, "")
			}
			if in.editing() && len(line) > 0 && line[0] == '/' {
				send, code, stop := slash(ctx, conn.Ping, out, f.timeout, line, hangUp)
				if stop {
					return code
				}
				if send == nil {
					continue
				}
				line = send
			}
			if err := conn.Write(ctx, typ, line); err != nil {
				lines = nil // the reader reports how the connection ended
				continue
			}
			out.sent(typ, line)
		case <-ctx.Done():
			rd.close(duplex.StatusGoingAway, "")
			finish(<-readDone)
			return exitInterrupted
		case err := <-readDone:
			return out.connectionEnded(finish(err), noPong.Load())
		}
	}
}

// awaitRead pings conn and waits for the pong, for at most timeout: a
// peer reads its connection in order, so once it answers it has read
// every message sent before the ping. It returns false when the
// connection ended meanwhile (or ctx did), and true otherwise, also when
// no pong came in time: a peer slow to answer is no reason not to close.
func awaitRead(ctx context.Context, conn *duplex.Conn, timeout time.Duration) bool {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := conn.Ping(pctx)
	switch {
	case ctx.Err() != nil:
		return false
	case err == nil, errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}

// closedByUs reports whether err is the end of a connection that our
// close with code ended.
func closedByUs(err error, code duplex.StatusCode) bool {
	var ce *duplex.CloseError
	return errors.As(err, &ce) && ce.Sent && ce.Code == code
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
func (rd *reader) close(code duplex.StatusCode, reason string) error {
	for i := 0; !rd.waiting.Load() && !rd.exited.Load() && i < 1000; i++ {
		time.Sleep(time.Millisecond)
	}
	err := rd.conn.Close(code, reason)
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

// input is connect's stdin: lines read from a pipe, or typed at the
// line editor when stdin is a terminal.
type input struct {
	r    io.Reader
	edit *lineEditor // nil unless interactive
}

// interactive puts the line editor between the terminal and connect.
func (in *input) interactive(out *printer) {
	in.edit = &lineEditor{p: out, prompt: "> "}
	out.edit = in.edit
	out.marks = true
}

// editing reports whether lines come from the line editor, which makes
// slash commands of those that start with "/".
func (in *input) editing() bool { return in.edit != nil }

// lines is what stdin sends: its lines, as messages of the type the flags
// ask for; none with --echo. stop lets the reader go.
func (in *input) lines(f *connectFlags) (lines <-chan []byte, typ duplex.MessageType, stop func()) {
	typ = duplex.MessageText
	if f.binary {
		typ = duplex.MessageBinary
	}
	if f.echo {
		return nil, typ, func() {}
	}
	done := make(chan struct{})
	if in.edit != nil {
		ch := make(chan []byte)
		go in.edit.run(in.r, ch, done)
		return ch, typ, func() { close(done) }
	}
	return readLines(in.r, done), typ, func() { close(done) }
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
