package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/gateway/redisbroker"
)

// serve runs the gateway: the demo page, /ws, /echo, health and metrics.
var serveCommand = &Command{
	Name:  "serve",
	Usage: "serve [flags]",
	Short: "run the WebSocket server: demo page, token auth, echo, heartbeat, metrics",
	Long:  serveLong,
}

// Run is set here: runServe refers to serveCommand (see flagSet).
func init() { serveCommand.Run = runServeCommand }

const serveLong = `
Serve runs the duplex gateway on one port:

  /             the demo page (its token comes from its own ?token=)
  /duplex.js    the browser client
  /ws           the application endpoint: channels (subscribe, unsubscribe,
                publish; docs/protocol.md), and every other message is
                acknowledged with "received: <message>"
  /echo         sends every message back with its type
  /healthz      200 while serving, 503 while shutting down or while the
                broker is unavailable (why: /api/health)
  /metrics      Prometheus metrics (with --metrics-auth, only with the
                API key; with --metrics-addr, only on that address)
  /api/auth-check  204 if the request's credentials are valid, else 401
  /api/publish  POST {"channel":C,"data":D} publishes (with --api-key)
  /api/history  GET ?channel=C&since=N[&limit=L] returns a page of what C holds (with --api-key)
  /api/health   /healthz with the broker's error (with --api-key)

Channels keep their last --history-size messages for --history-ttl, so a
client that reconnects with the last offset it saw gets what it missed.
By default they live in this process; --broker redis://host:port[/db]
shares channels, offsets and history between every node on that Redis,
and --broker redis+cluster://host:port[,host:port...] on a Redis Cluster.

Every WebSocket endpoint checks credentials before the upgrade (401
otherwise): a token from ?token=, "Authorization: Bearer", or the cookie
duplex_token; Basic credentials (ws://user:pass@host); or a JWT. With no
auth flag, a development token is generated, kept across restarts in the
user's configuration directory (~/.config/duplex/dev-token on Linux, mode
0600), and the page URL carrying it is printed. --no-auth lets everyone
in, with a warning.

With --tls-cert and --tls-key the server speaks HTTPS and HTTP/2 (with
--h2c, HTTP/2 over cleartext too), and clients may open WebSockets over
HTTP/2 (RFC 8441): duplex serve turns on
Go's extended CONNECT support (GODEBUG=http2xconnect=1) by re-executing
itself once at start; set DUPLEX_NO_REEXEC=1 to prevent that.

SIGINT or SIGTERM stops accepting, closes every connection with 1001 and
waits up to --shutdown-timeout.

%FLAGS%

` + gateway.EnvHelp + `
Exit status:
  0    stopped by SIGINT or SIGTERM
  1    the server failed, e.g. the address is in use
  2    bad flags, arguments or environment
`

func runServeCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := runServe(ctx, args, stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return int(ue)
	}
	fmt.Fprintf(stderr, "duplex serve: %v\n", err)
	return exitError
}

// usageError is what runServe returns after it has reported a usage error
// or printed help: the exit status to return.
type usageError int

func (e usageError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// defaultGCPercent is duplex serve's GOGC unless told otherwise. Go's 100
// lets the heap grow to twice what is live between collections; at 50 an
// idle gateway holds about a fifth less memory per connection, for a
// little more CPU where it allocates (handshakes, publishes through the
// API), and none where it does not (fan-out, idle connections). README,
// "duplex serve with many clients", has the figures.
const defaultGCPercent = 50

// runServe serves until ctx ends, then shuts down gracefully and returns
// nil. Its first line on stderr is "duplex: serving URL/" (with the
// development token, "duplex: serving URL/?token=T"), so --addr with port
// 0 can be used.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := serveCommand
	fs := cmd.flagSet(stdout)
	var o gateway.Options
	o.RegisterFlags(fs)
	h2c := fs.Bool("h2c", false, "also speak HTTP/2 over cleartext TCP (prior knowledge), WebSockets over\nHTTP/2 included; for a TLS-terminating proxy in front [$DUPLEX_H2C]")
	if err := o.LoadEnv(os.Getenv); err != nil {
		return usageError(cmd.usageError(stderr, "%v", err))
	}
	if v := os.Getenv("DUPLEX_H2C"); v != "" {
		*h2c = v == "1" || strings.EqualFold(v, "true")
	}
	gcPercent := fs.Int("gc-percent", defaultGCPercent, "the garbage collector's GOGC for this process: lower keeps less memory per idle\nconnection, higher spends less CPU collecting; -1 turns it off. When neither\nthis flag nor $DUPLEX_GC_PERCENT is given, a GOGC environment variable wins [$DUPLEX_GC_PERCENT]")
	gcGiven := false
	if v := os.Getenv("DUPLEX_GC_PERCENT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return usageError(cmd.usageError(stderr, "DUPLEX_GC_PERCENT: %q is not a number", v))
		}
		*gcPercent, gcGiven = n, true
	}
	positional, code, done := cmd.parse(fs, args, stderr)
	if done {
		return usageError(code)
	}
	if len(positional) > 0 {
		return usageError(cmd.usageError(stderr, "unexpected argument %q", positional[0]))
	}
	fs.Visit(func(f *flag.Flag) { gcGiven = gcGiven || f.Name == "gc-percent" })
	if *gcPercent == 0 || *gcPercent < -1 {
		return usageError(cmd.usageError(stderr, "--gc-percent: %d: use -1 (off) or a positive percentage", *gcPercent))
	}
	if gcGiven || os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gcPercent)
	}
	logger, err := o.NewLogger(stderr)
	if err != nil {
		return usageError(cmd.usageError(stderr, "%v", err))
	}
	var generated, tokenPath string
	var keepErr error
	if o.NeedsGeneratedToken() {
		if generated, tokenPath, keepErr = devToken(); generated == "" {
			return keepErr
		}
		o.Tokens = append(o.Tokens, generated)
	}
	if scheme, _, _ := strings.Cut(o.BrokerURL, "://"); strings.HasPrefix(scheme, "redis") {
		b, err := redisbroker.New(o.BrokerURL, &redisbroker.Options{
			HistorySize: o.HistorySize,
			HistoryTTL:  o.HistoryTTL,
			Logger:      logger,
		})
		if err != nil {
			return usageError(cmd.usageError(stderr, "--broker: %v", err))
		}
		defer b.Close() // after the gateway's shutdown
		o.Broker = b
	}
	gw, err := gateway.New(o, logger)
	if err != nil {
		return usageError(cmd.usageError(stderr, "%v", err))
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return err
	}
	srv := o.HTTPServer(gw, logger)
	ln = gw.LimitListener(ln, srv) // issue 15: idle sockets cannot use up the file limit
	if *h2c {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetHTTP2(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	scheme := "http"
	if o.TLS() {
		scheme = "https"
	}
	base := scheme + "://" + displayAddr(ln.Addr())
	if generated == "" {
		fmt.Fprintf(stderr, "duplex: serving %s/\n", base)
	} else {
		// Only a URL that works: the bare one would open a page whose
		// socket is refused for want of a token.
		fmt.Fprintf(stderr, "duplex: serving %s/?token=%s\n", base, generated)
		if tokenPath != "" {
			fmt.Fprintf(stderr, "duplex: no authentication configured: that URL carries the development token, kept across restarts in %s (delete the file for a new one)\n", tokenPath)
		} else {
			fmt.Fprintf(stderr, "duplex: no authentication configured: that URL carries a token generated for this run only (could not keep one: %v)\n", keepErr)
		}
	}
	if (o.TLS() || *h2c) && !extendedConnectEnabled() {
		logger.Warn("WebSockets over HTTP/2 are off: GODEBUG lacks http2xconnect=1 (DUPLEX_NO_REEXEC is set?)")
	}
	if o.MetricsAddr != "" {
		mln, err := net.Listen("tcp", o.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		msrv := o.HTTPServer(gw.InternalHandler(), logger)
		go msrv.Serve(mln)
		defer msrv.Close()
		fmt.Fprintf(stderr, "duplex: metrics on http://%s/metrics\n", displayAddr(mln.Addr()))
	}
	errc := make(chan error, 1)
	go func() {
		if o.TLS() {
			errc <- srv.ServeTLS(ln, o.TLSCert, o.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", o.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	go srv.Shutdown(sctx) // stops accepting; hijacked connections are the gateway's
	gwErr := gw.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Fprintln(stderr, "duplex: server stopped")
	if gwErr != nil {
		logger.Warn("shutdown did not finish in time", "err", gwErr)
	}
	return nil
}

// displayAddr turns a listening address into one a browser can open:
// an unspecified host becomes localhost.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}
