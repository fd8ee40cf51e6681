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
	// connection is closed with 1008 (policy violation) "pong timeout",
	// or with 1013 "not reading" if the server sent it messages since its
	// last pong (a client that stopped reading).
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
	// see HTTPServer), and the Gateway gives a request body as long to
	// arrive. Default 10s.
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
	// for clients that reconnect (docs/protocol.md). Default 100, at most
	// MaxHistorySize; negative keeps no history (--history-size 0). A
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

	// Bounds on what clients without credentials can take (issue 15):
	// file descriptors, log volume and authentication guesses.

	// HTTPIdleTimeout closes a keep-alive HTTP connection that waits
	// longer than this for its next request (http.Server.IdleTimeout;
	// see HTTPServer). Default 30s.
	HTTPIdleTimeout time.Duration

	// MaxHTTPConnections bounds the connections that are not WebSockets:
	// plain HTTP requests, keep-alive connections between requests, and
	// handshakes in progress. When it is reached, a new connection closes
	// the one that has waited longest for a request, so idle sockets
	// cannot keep a real client out (see LimitListener). Default 0: the
	// file limit (RLIMIT_NOFILE) less MaxConnections and a reserve, so
	// that the process never runs out of file descriptors; negative means
	// no limit.
	MaxHTTPConnections int

	// AuthFailureLimit is how many failed authentications (a wrong token,
	// password, JWT or API key) a client address may make per minute,
	// with a burst of as many. Beyond it, every request of that address
	// that needs credentials gets 429 with Retry-After, whatever it
	// carries, until the address is under the limit again. Other addresses
	// are not affected. IPv6 addresses count by /64. Default 20; negative
	// means no limit.
	AuthFailureLimit int

	// AuthFailureAddresses bounds how many client addresses the failure
	// count remembers; beyond it, the least recently failing are
	// forgotten. Default 16384 (about 2.5 MiB: 163 bytes each).
	AuthFailureAddresses int

	// LogRefusalRate bounds the log lines of each kind of refused request
	// (auth failed, upgrade refused...) to this many per second; the rest
	// are counted, and the count is logged once a second. Default 10;
	// negative means no limit.
	LogRefusalRate int

	// MetricsAddr, when set, serves /metrics (and /healthz with details)
	// on this address only, for example an internal interface, instead
	// of on Addr. Read by "duplex serve" (see InternalHandler).
	MetricsAddr string

	// MetricsAuth makes /metrics require "Authorization: Bearer APIKey";
	// it needs APIKey.
	MetricsAuth bool
	// Token lifetime (docs/protocol.md, "Token lifetime"): a session
	// authenticated by a JWT with "exp" is closed with 4401 "token
	// expired" 30s (the leeway) after exp, unless the client sends a
	// refresh with a new token of the same user first.

	// JWTAudience, when set, must be one of a JWT's "aud" values; other
	// tokens get 401 "invalid audience".
	JWTAudience string

	// JWTIssuer, when set, must be a JWT's "iss"; other tokens get 401
	// "invalid issuer".
	JWTIssuer string

	// JWTRequireExp refuses JWTs without "exp" (401 "token has no exp"),
	// which would otherwise never expire.
	JWTRequireExp bool

	// JWKSURL is a JSON Web Key Set of RS256/ES256 keys; a JWT naming a
	// "kid" is verified with that key (AuthConfig.JWKSURL).
	JWKSURL string

	// JWKSRefresh is the most a fetched key set is used before it is
	// fetched again. Default 5m.
	JWKSRefresh time.Duration

	// JWKSTimeout bounds one fetch of the key set. Default 10s.
	JWKSTimeout time.Duration

	// JWKSMaxSize bounds the size of the key set. Default 1 MiB.
	JWKSMaxSize int64
	// Bounds on channels, history and publishing (issue 15; README,
	// "Security"). For each, zero means the default; negative means no
	// limit, except for MaxConnectionSubscriptions and HistoryPageBytes,
	// which always apply.

	// HistoryMemory bounds the memory the in-memory broker's history
	// takes, all channels together: message data plus bookkeeping, and a
	// fixed cost per channel, and the garbage collector's room for the
	// data it drops (so with GOGC=100 the messages held cost at most half
	// of it). Beyond it the oldest messages go first, whatever their
	// channel; a client resuming from them gets "recovered":false.
	// Default 256 MiB. The Redis broker bounds history with HistorySize
	// (stream MAXLEN) and HistoryTTL instead.
	HistoryMemory int64

	// MaxChannels bounds the channels the in-memory broker holds at once
	// (with messages or subscribers). A publish to a new channel beyond
	// it forgets, with its history, the channel with no subscriber that
	// was published to least recently, or, when every channel has a
	// subscriber, gets the error "channel limit reached". Default 100000.
	MaxChannels int

	// MaxSubscriptions bounds the channel subscriptions of all
	// connections together; a subscribe beyond it gets the error
	// "subscription limit reached". Default 100000.
	MaxSubscriptions int

	// MaxConnectionSubscriptions bounds the channels one connection may
	// subscribe to; a subscribe beyond it gets the error "too many
	// subscriptions". Default 1000; it cannot be turned off.
	MaxConnectionSubscriptions int

	// PublishRate bounds the publishes of one WebSocket connection, per
	// second, in bursts of as many; a publish beyond it is refused with
	// the error "publish rate exceeded". Default 100. The HTTP API, whose
	// callers hold the API key, is not limited.
	PublishRate int

	// PublishBytesRate bounds the data one WebSocket connection publishes,
	// in bytes per second, in bursts of as many or of one message of
	// MaxMessageSize, whichever is larger. Default 1 MiB.
	PublishBytesRate int64

	// HistoryPageBytes bounds the data of one GET /api/history response;
	// a response holds at least one message whatever its size. Default
	// 4 MiB, also for a negative value.
	HistoryPageBytes int64

	// NoEventLoop runs every WebSocket on goroutines of its own (a reader,
	// a writer and a keeper: about 42 KB of RSS each while idle) instead
	// of on the event loop (about 0.5 KB of state, 1.3-2.5 KB of RSS each
	// idle; docs/scaling.md). Connections the loop cannot take (TLS served
	// by this server, HTTP/2, platforms other than Linux) run on
	// goroutines anyway. Default false.
	NoEventLoop bool

	// CompressionContextTakeover lets permessage-deflate refer to earlier
	// messages of the connection (RFC 7692 context takeover): similar
	// messages then compress several times smaller, and each connection
	// keeps up to 32 KiB of history per direction, 30 times what an idle
	// event session costs. Default false: every message is compressed on
	// its own, a connection keeps nothing between messages, and a fan-out
	// message is compressed once for all its subscribers (README,
	// "Compression at scale").
	CompressionContextTakeover bool

	// CompressionWindowBits bounds, with CompressionContextTakeover, the
	// LZ77 window of both directions to 2^N bytes, 8 to 15: the server
	// asks clients whose offer allows it (browsers' do) for
	// client_max_window_bits=N and announces server_max_window_bits=N. A
	// connection then keeps at most 2^N bytes of inflate history (512 at
	// least) instead of 32 KiB, for a worse ratio on similar messages
	// (README, "Compression at scale"). Without context takeover nothing
	// is kept between messages, so a value other than 15 is an error
	// there. Default 15.
	CompressionWindowBits int

	// Presence, join/leave, hooks (issue 16; docs/protocol.md). Defaults
	// and checks are in options_presence.go.

	// Presence lists path.Match patterns of the channels whose
	// subscribers may ask who else is subscribed ({"type":"presence"}).
	Presence []string

	// JoinLeave lists path.Match patterns of the channels whose
	// subscribers are told when others subscribe and leave.
	JoinLeave []string

	// PresenceTTL is how long the members of a node that stopped (it
	// died, or lost the broker) stay listed. Default 30s.
	PresenceTTL time.Duration

	// ConnectHook is a URL the gateway POSTs each WebSocket upgrade to
	// that brings no valid credential (or every upgrade, with
	// ConnectHookAlways); its answer says who the client is and what it
	// may do.
	ConnectHook       string
	ConnectHookAlways bool

	// SubscribeHook and PublishHook are URLs asked to allow each
	// subscribe and publish of a WebSocket client; PublishHook may
	// replace the data. RPCHook answers {"type":"rpc"} messages.
	SubscribeHook string
	PublishHook   string
	RPCHook       string

	// HookTimeout bounds one call of a hook. Default 5s.
	HookTimeout time.Duration
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

	DefaultHTTPIdleTimeout      = 30 * time.Second
	DefaultAuthFailureLimit     = 20
	DefaultAuthFailureAddresses = 16384
	DefaultLogRefusalRate       = 10

	// DefaultCompressionWindowBits is the largest LZ77 window, 32 KiB.
	DefaultCompressionWindowBits = 15
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
	def(&o.JWKSRefresh, DefaultJWKSRefresh)
	def(&o.JWKSTimeout, DefaultJWKSTimeout)
	if o.JWKSMaxSize == 0 {
		o.JWKSMaxSize = DefaultJWKSMaxBytes
	}
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
	def(&o.HTTPIdleTimeout, DefaultHTTPIdleTimeout)
	if o.AuthFailureLimit == 0 {
		o.AuthFailureLimit = DefaultAuthFailureLimit
	}
	if o.AuthFailureAddresses <= 0 {
		o.AuthFailureAddresses = DefaultAuthFailureAddresses
	}
	if o.LogRefusalRate == 0 {
		o.LogRefusalRate = DefaultLogRefusalRate
	}
	o.limitDefaults()
	o.presenceDefaults() // options_presence.go
	if o.CompressionWindowBits == 0 {
		o.CompressionWindowBits = DefaultCompressionWindowBits
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
	errs = append(errs, o.validateLimits()...)
	errs = append(errs, o.validatePresence()...) // options_presence.go
	if o.HistoryTTL < 0 {
		errs = append(errs, errors.New("--history-ttl must not be negative"))
	}
	if o.JWKSRefresh < 0 || o.JWKSTimeout < 0 || o.JWKSMaxSize < 0 {
		errs = append(errs, errors.New("--jwt-jwks-refresh, --jwt-jwks-timeout and --jwt-jwks-max-size must not be negative"))
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
	if o.HTTPIdleTimeout < 0 {
		errs = append(errs, errors.New("--http-idle-timeout must not be negative"))
	}
	if o.MetricsAuth && o.APIKey == "" {
		errs = append(errs, errors.New("--metrics-auth needs --api-key"))
	}
	if n := o.CompressionWindowBits; n != 0 && (n < 8 || n > 15) {
		errs = append(errs, fmt.Errorf("--compress-window-bits %d: want 8 to 15", n))
	} else if n != 0 && n != DefaultCompressionWindowBits && !o.CompressionContextTakeover {
		// Without takeover nothing is kept between messages: a smaller
		// window would only cost ratio, so it is not used, and a setting
		// that does nothing should not pass unnoticed.
		errs = append(errs, errors.New("--compress-window-bits needs --compress-context-takeover"))
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
		o.JWTSecret == "" && o.JWTKeyFile == "" && o.JWKSURL == ""
}

// TLS reports whether TLSCert and TLSKey are set.
func (o *Options) TLS() bool { return o.TLSCert != "" && o.TLSKey != "" }

// authConfig builds the AuthConfig, reading TokenFile and JWTKeyFile.
func (o *Options) authConfig() (AuthConfig, error) {
	cfg := AuthConfig{
		Tokens: append([]string(nil), o.Tokens...),
		Basic:  o.Basic,
		NoAuth: o.NoAuth,

		JWTAudience:   o.JWTAudience,
		JWTIssuer:     o.JWTIssuer,
		JWTRequireExp: o.JWTRequireExp,
		JWKSURL:       o.JWKSURL,
		JWKSRefresh:   o.JWKSRefresh,
		JWKSTimeout:   o.JWKSTimeout,
		JWKSMaxBytes:  o.JWKSMaxSize,
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
// connection slot, and IdleTimeout is HTTPIdleTimeout. Serve it with
// ListenAndServeTLS(o.TLSCert, o.TLSKey) when o.TLS(), on a listener
// bounded by Gateway.LimitListener. Errors of the server itself go to
// logger at Warn, at most LogRefusalRate lines a second.
func (o *Options) HTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	d := o.withDefaults()
	srv := &http.Server{
		Addr:              d.Addr,
		Handler:           h,
		ReadHeaderTimeout: d.HandshakeTimeout,
		IdleTimeout:       d.HTTPIdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
	if logger != nil {
		// One kind for all its lines: each names its client, and bad
		// clients can come in any number (issue 15 item 7).
		th := &throttledHandler{logger.Handler(), newLogLimiter(logger, d.LogRefusalRate), "http server error"}
		srv.ErrorLog = slog.NewLogLogger(th, slog.LevelWarn)
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
