package gateway

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
)

// Options configures a Gateway and the server around it. The zero value
// gives the documented defaults, except that it authenticates nobody: give
// credentials, or set NoAuth.
//
// Addr, ShutdownTimeout, HandshakeTimeout, TLSCert, TLSKey and LogFormat
// are read by whoever runs the HTTP server ("duplex serve"), not by the
// Gateway; they live here so that every setting of the server has one flag,
// one environment variable and one line of help.
type Options struct {
	// Addr is the address to listen on. Default ":8080".
	Addr string

	// Tokens are static bearer tokens, accepted from ?token=, an
	// "Authorization: Bearer" header or the duplex_token cookie.
	Tokens []string

	// TokenFile names a file of further tokens, one per line; blank lines
	// and lines starting with '#' are skipped. Read by New.
	TokenFile string

	// Basic holds "user:password" pairs for HTTP Basic authentication.
	Basic []string

	// JWTSecret enables HS256 JSON Web Tokens signed with it.
	JWTSecret string

	// JWTKeyFile names a PEM public key (RSA ≥ 2048 bits for RS256, or EC
	// P-256 for ES256) that enables JWTs signed with its private key.
	// Read by New.
	JWTKeyFile string

	// NoAuth lets anyone open a WebSocket. It is an explicit opt-out; New
	// logs a warning when it is set.
	NoAuth bool

	// AllowOrigin lists the origins, besides the server's own, whose
	// browser pages may open WebSockets: host patterns ("*.example.com")
	// or scheme and host ("https://app.example.com"), in path.Match
	// syntax. Default: same origin only. Cross-origin requests get 403.
	AllowOrigin []string

	// PingInterval is the time between the server's pings on every
	// connection. Default 25s; negative turns the heartbeat off.
	PingInterval time.Duration

	// PongTimeout is how long a ping waits for its pong before the
	// connection is closed with 1008 (policy violation) "pong timeout".
	// A dead peer is noticed within PingInterval+PongTimeout. Default 10s:
	// long enough for a phone on a poor network, short enough that a dead
	// one does not hold a slot for long.
	PongTimeout time.Duration

	// MaxMessageSize is the largest message a client may send, in bytes
	// after decompression; a larger one closes the connection with 1009.
	// Default 1 MiB; negative means no limit.
	MaxMessageSize int64

	// MaxConnections bounds the open WebSockets; an upgrade beyond it is
	// refused with 503 before the handshake. Default 10000; negative
	// means no limit.
	MaxConnections int

	// SendQueue bounds the messages waiting to be written to one
	// connection. A client that reads too slowly to keep its queue below
	// the bound is closed with 1013 (try again later) "send queue full",
	// so it never slows other connections. Default 256.
	SendQueue int

	// SendQueueBytes bounds the bytes waiting in one connection's queue,
	// beyond the message being written. Default 4 MiB.
	SendQueueBytes int64

	// DisableCompression turns permessage-deflate off (--compress=false).
	// By default it is offered to clients that ask for it.
	DisableCompression bool

	// HandshakeTimeout bounds the reading of a request's headers, so slow
	// clients cannot hold connections open (http.Server.ReadHeaderTimeout;
	// see HTTPServer). Default 10s.
	HandshakeTimeout time.Duration

	// CloseTimeout bounds a close handshake, and so how long a client that
	// stopped reading keeps its connection after the server closes it.
	// Default 5s.
	CloseTimeout time.Duration

	// ShutdownTimeout bounds a graceful shutdown: after it, connections
	// still open are dropped. Default 10s.
	ShutdownTimeout time.Duration

	// TLSCert and TLSKey are PEM files; with both set the server speaks
	// HTTPS and WSS only.
	TLSCert, TLSKey string

	// LogFormat is "text" (default) or "json"; see NewLogger.
	LogFormat string

	// HistorySize is how many of its latest messages each channel keeps
	// for clients that reconnect (docs/protocol.md). Default 100. A
	// replay goes through the client's send queue at once, so keep
	// SendQueue (and SendQueueBytes) above what HistorySize messages take,
	// or clients that resume from far behind are closed with 1013.
	HistorySize int

	// HistoryTTL is how long a message stays in its channel's history.
	// Default 5m.
	HistoryTTL time.Duration

	// APIKey enables the HTTP API (POST /api/publish, GET /api/history)
	// for requests with "Authorization: Bearer APIKey". Default: empty,
	// and the API answers 404.
	APIKey string

	// BrokerURL names the broker, for "duplex serve": empty or "memory"
	// for the default, in this process; redis://host:port[/db] (or
	// rediss://) for Redis, redis+cluster://host:port[,host:port...] (or
	// rediss+cluster://) for a Redis Cluster, which "duplex serve" builds
	// with the redisbroker package and passes in Broker. New reads Broker
	// only.
	BrokerURL string

	// Broker carries channels between gateways and keeps their history.
	// Default: nil, an in-memory broker of HistorySize and HistoryTTL
	// that Shutdown closes. A broker given here is the caller's to close,
	// after Shutdown.
	Broker Broker
}

// Defaults of Options.
const (
	DefaultAddr             = ":8080"
	DefaultPingInterval     = 25 * time.Second
	DefaultPongTimeout      = 10 * time.Second
	DefaultMaxMessageSize   = 1 << 20
	DefaultMaxConnections   = 10000
	DefaultSendQueue        = 256
	DefaultSendQueueBytes   = 4 << 20
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultCloseTimeout     = 5 * time.Second
	DefaultShutdownTimeout  = 10 * time.Second
	DefaultHistorySize      = 100
	DefaultHistoryTTL       = 5 * time.Minute
)

// withDefaults returns a copy of o with every zero field set to its
// default.
func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	def(&o.PingInterval, DefaultPingInterval)
	def(&o.PongTimeout, DefaultPongTimeout)
	def(&o.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&o.CloseTimeout, DefaultCloseTimeout)
	def(&o.ShutdownTimeout, DefaultShutdownTimeout)
	def(&o.HistoryTTL, DefaultHistoryTTL)
	if o.HistorySize == 0 {
		o.HistorySize = DefaultHistorySize
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.SendQueue <= 0 {
		o.SendQueue = DefaultSendQueue
	}
	if o.SendQueueBytes <= 0 {
		o.SendQueueBytes = DefaultSendQueueBytes
	}
	if o.LogFormat == "" {
		o.LogFormat = "text"
	}
	return o
}

// Validate reports settings that cannot work together. New calls it.
func (o *Options) Validate() error {
	var errs []error
	if (o.TLSCert == "") != (o.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	switch o.LogFormat {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", o.LogFormat))
	}
	if o.PongTimeout < 0 {
		errs = append(errs, errors.New("--pong-timeout must not be negative"))
	}
	if o.HistorySize < 0 {
		errs = append(errs, errors.New("--history-size must not be negative"))
	}
	if o.HistoryTTL < 0 {
		errs = append(errs, errors.New("--history-ttl must not be negative"))
	}
	switch scheme, _, _ := strings.Cut(o.BrokerURL, "://"); {
	case o.BrokerURL == "" || o.BrokerURL == "memory":
	case scheme == "redis" || scheme == "rediss" || scheme == "redis+cluster" || scheme == "rediss+cluster":
		if o.Broker == nil {
			errs = append(errs, fmt.Errorf("--broker %s: build the broker with the redisbroker package and set Options.Broker (duplex serve does)", scheme+"://..."))
		}
	default:
		errs = append(errs, fmt.Errorf("--broker: want memory, redis://host:port[/db], redis+cluster://host:port[,host:port...] or rediss://..., not %q", scheme+"://..."))
	}
	if len(errs) > 0 {
		return fmt.Errorf("duplex: options: %w", errors.Join(errs...))
	}
	return nil
}

// NeedsGeneratedToken reports whether no credential of any kind is
// configured and NoAuth is off. "duplex serve" then generates a token
// (GenerateToken), appends it to Tokens and prints the page URL with it,
// so that the default start is usable and still closed to strangers.
func (o *Options) NeedsGeneratedToken() bool {
	return !o.NoAuth && len(o.Tokens) == 0 && o.TokenFile == "" && len(o.Basic) == 0 &&
		o.JWTSecret == "" && o.JWTKeyFile == ""
}

// TLS reports whether TLSCert and TLSKey are set.
func (o *Options) TLS() bool { return o.TLSCert != "" && o.TLSKey != "" }

// authConfig builds the AuthConfig, reading TokenFile and JWTKeyFile.
func (o *Options) authConfig() (AuthConfig, error) {
	cfg := AuthConfig{
		Tokens: append([]string(nil), o.Tokens...),
		Basic:  o.Basic,
		NoAuth: o.NoAuth,
	}
	if o.JWTSecret != "" {
		cfg.JWTSecret = []byte(o.JWTSecret)
	}
	if o.TokenFile != "" {
		toks, err := readTokenFile(o.TokenFile)
		if err != nil {
			return cfg, err
		}
		cfg.Tokens = append(cfg.Tokens, toks...)
	}
	if o.JWTKeyFile != "" {
		pem, err := os.ReadFile(o.JWTKeyFile)
		if err != nil {
			return cfg, fmt.Errorf("duplex: --jwt-key: %w", err)
		}
		cfg.JWTKeyPEM = pem
	}
	return cfg, nil
}

// readTokenFile reads one token per line. Errors name the line, never its
// content.
func readTokenFile(name string) ([]string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("duplex: --token-file: %w", err)
	}
	var toks []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		toks = append(toks, line)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("duplex: --token-file %s: no tokens in it", name)
	}
	return toks, nil
}

// NewLogger returns a slog.Logger writing to w in LogFormat.
func (o *Options) NewLogger(w io.Writer) (*slog.Logger, error) {
	switch o.LogFormat {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("duplex: --log-format %q: want text or json", o.LogFormat)
}

// HTTPServer returns an http.Server for h on Addr with the timeouts of o:
// ReadHeaderTimeout is HandshakeTimeout, so a client that sends its
// request slowly is dropped before it reaches the handler and takes no
// connection slot. Serve it with ListenAndServeTLS(o.TLSCert, o.TLSKey)
// when o.TLS(). Errors of the server itself go to logger at Warn.
func (o *Options) HTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	d := o.withDefaults()
	srv := &http.Server{
		Addr:              d.Addr,
		Handler:           h,
		ReadHeaderTimeout: d.HandshakeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	if logger != nil {
		srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	}
	return srv
}

// RegisterFlags defines the flags of every setting on fs, bound to o. Call
// it, then LoadEnv, then fs.Parse, so that flags override the environment
// and the environment overrides the defaults. Each flag's usage names its
// environment variable; secrets never show up as defaults in the help.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	*o = o.withDefaults()
	for _, s := range o.settings() {
		usage := s.usage
		if s.env != "" {
			usage += " [$" + s.env + "]"
		}
		fs.Var(s.value, s.flag, usage)
	}
}

// LoadEnv sets the options whose DUPLEX_* variables getenv returns
// non-empty. List variables (DUPLEX_TOKENS, DUPLEX_BASIC_AUTH,
// DUPLEX_ALLOW_ORIGIN) are comma-separated. The error names every
// variable that does not parse, never its value.
func (o *Options) LoadEnv(getenv func(string) string) error {
	var errs []error
	for _, s := range o.settings() {
		v := getenv(s.env)
		if s.env == "" || v == "" {
			continue
		}
		var err error
		if l, ok := s.value.(*listValue); ok {
			err = l.setAll(v)
		} else {
			err = s.value.Set(v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("$%s: %w", s.env, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("duplex: environment: %w", errors.Join(errs...))
	}
	return nil
}

// EnvHelp is the text to print after the flag list of "duplex serve
// --help".
const EnvHelp = `Every flag can also be set by the environment variable named after it in
brackets; a flag given on the command line wins over its variable. List
variables are comma-separated. Prefer DUPLEX_TOKENS, DUPLEX_BASIC_AUTH and
DUPLEX_JWT_SECRET (or --token-file) to flags for secrets: command lines are
visible to every user of the machine. With no credential at all and no
--no-auth, a random token is generated and printed with the page URL.
`
