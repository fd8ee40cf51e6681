package gateway

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/web"
)

// Gateway is the duplex server as an http.Handler. Its routes:
//
//	/                 the demo page
//	/duplex.js        the browser client
//	/ws               the application endpoint: channels (docs/protocol.md);
//	                  every other message is acknowledged
//	/echo             sends every message back as it came
//	/healthz          200 {"status":"ok"}; 503 once Shutdown has begun or
//	                  while the broker is unavailable
//	/metrics          Prometheus text format (with Options.MetricsAuth, the
//	                  API key; with Options.MetricsAddr, see InternalHandler)
//	/api/health       /healthz with the broker's error (Options.APIKey)
//	/api/auth-check   204 if the request's credentials are good, else 401
//	/api/publish      POST a message to a channel (Options.APIKey)
//	/api/history      GET a channel's recent messages (Options.APIKey)
//	/api/presence, /api/channels, /api/disconnect, /api/subscribe,
//	/api/unsubscribe  the server API of issue 16 (api_server.go)
//
// /ws and /echo authenticate before the upgrade. A Gateway is safe for
// concurrent use.
type Gateway struct {
	opts    Options // with defaults applied
	log     *slog.Logger
	auth    *Authenticator
	accept  duplex.AcceptOptions
	metrics *metrics
	hub     *hub
	mux     *http.ServeMux
	page    []byte // web/index.html
	client  []byte // web/duplex.js
	nextID  atomic.Uint64

	logs      *logLimiter  // refusals: a bounded number of lines per second
	authLimit *authLimiter // failed authentications per address; nil: no limit
	pageCSP   string       // Content-Security-Policy of the demo page
	conns     *connTracker // set by LimitListener, for tests

	channels  *channels
	ownBroker bool // the broker is ours to close: Options.Broker was nil

	events     duplex.EventHandler // of every event session (session_event.go)
	writers    *writers            // write the event sessions' queues (writers.go)
	identities sync.Map            // *Identity by identityKey: shared by sessions (identity.go)

	hooks    *hooks    // backend hooks (hooks.go)
	presence *presence // presence, join/leave, API commands (presence.go)
}

// New returns a Gateway for opts, logging to logger (nil: slog.Default()).
// It reads TokenFile and JWTKeyFile, and fails on settings that cannot
// work, such as an empty token or an unreadable key. It logs a warning
// when NoAuth is set.
//
// With no credential and NoAuth off, every upgrade is refused with 401:
// see NeedsGeneratedToken.
func New(opts Options, logger *slog.Logger) (*Gateway, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	cfg, err := opts.authConfig()
	if err != nil {
		return nil, err
	}
	cfg.Logger = logger
	auth, err := NewAuthenticator(cfg)
	if err != nil {
		return nil, err
	}
	page, err := fs.ReadFile(web.FS, "index.html")
	if err != nil {
		return nil, fmt.Errorf("duplex: embedded page: %w", err)
	}
	csp, err := pageCSP(page)
	if err != nil {
		return nil, err
	}
	client, err := fs.ReadFile(web.FS, "duplex.js")
	if err != nil {
		return nil, fmt.Errorf("duplex: embedded client: %w", err)
	}
	g := &Gateway{
		opts:      opts,
		log:       logger,
		auth:      auth,
		metrics:   newMetrics(),
		events:    newEventHandler(),
		writers:   newWriters(),
		page:      page,
		client:    client,
		pageCSP:   csp,
		logs:      newLogLimiter(logger, opts.LogRefusalRate),
		authLimit: newAuthLimiter(opts.AuthFailureLimit, opts.AuthFailureAddresses),
		accept: duplex.AcceptOptions{
			OriginPatterns: opts.AllowOrigin,
			ReadLimit:      opts.MaxMessageSize,
			CloseTimeout:   opts.CloseTimeout,
		},
	}
	g.hub = newHub(opts.MaxConnections, g.sweepLoop)
	if !opts.DisableCompression {
		// Without context takeover by default: a connection keeps no
		// history between messages (Options.CompressionContextTakeover).
		g.accept.Compression = &duplex.CompressionOptions{NoContextTakeover: !opts.CompressionContextTakeover}
		if opts.CompressionContextTakeover {
			// A smaller window bounds the history both sides keep.
			g.accept.Compression.ClientMaxWindowBits = opts.CompressionWindowBits
			g.accept.Compression.ServerMaxWindowBits = opts.CompressionWindowBits
		}
	}
	broker := opts.Broker
	if broker == nil {
		broker = newMemoryBrokerConfig(opts.memoryConfig())
		g.ownBroker = true
	}
	g.channels = newChannels(g, broker)
	g.hooks = newHooks(g)
	g.presence = newPresence(g, broker, !g.ownBroker)
	if opts.NoAuth {
		logger.Warn("authentication is off (--no-auth): anyone who can reach this server can connect")
	}
	g.routes()
	return g, nil
}

func (g *Gateway) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", g.servePage)
	m.HandleFunc("GET /duplex.js", g.serveClient)
	// No method in these patterns: a POST must reach Accept, which
	// answers 405 with "Allow: GET" (after authentication).
	m.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		g.serveWebSocket(w, r, true)
	})
	m.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		g.serveWebSocket(w, r, false)
	})
	m.HandleFunc("GET /healthz", g.serveHealthz)
	if g.opts.MetricsAddr == "" {
		m.HandleFunc("GET /metrics", g.serveMetrics)
	}
	m.HandleFunc("GET /api/health", g.serveAPIHealth)
	m.HandleFunc("GET /api/auth-check", g.serveAuthCheck)
	m.HandleFunc("POST /api/publish", g.servePublish)
	m.HandleFunc("GET /api/history", g.serveHistory)
	m.HandleFunc("GET /api/presence", g.serveAPIPresence)
	m.HandleFunc("GET /api/channels", g.serveAPIChannels)
	m.HandleFunc("POST /api/disconnect", g.serveAPICommand("disconnect"))
	m.HandleFunc("POST /api/subscribe", g.serveAPICommand("subscribe"))
	m.HandleFunc("POST /api/unsubscribe", g.serveAPICommand("unsubscribe"))
	g.mux = m
}

// ServeHTTP routes r to the endpoint its path names. A request body must
// arrive within HandshakeTimeout (see boundBodyTime).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	boundBodyTime(w, r, g.opts.HandshakeTimeout)
	g.mux.ServeHTTP(w, r)
}

// Shutdown stops the gateway: upgrades from now on are refused with 503,
// /healthz answers 503, and every open connection is closed with 1001
// Going Away. It returns when every connection is gone, or when ctx ends;
// then it drops the connections left without a close handshake and
// returns ctx.Err(). It closes the broker if New made it (Options.Broker
// was nil); a broker passed in Options is the caller's to close.
//
// Shutdown does not stop the http.Server: hijacked connections are not the
// server's any more, so run both, for example
//
//	ctx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
//	defer cancel()
//	go srv.Shutdown(ctx)  // stop listening, finish plain HTTP requests
//	gw.Shutdown(ctx)      // 1001 to every WebSocket, wait for them
func (g *Gateway) Shutdown(ctx context.Context) error {
	if g.ownBroker {
		defer g.channels.broker.Close()
	}
	defer g.channels.stopRouting() // after the sessions have left their channels
	defer g.logs.stop()
	defer g.presence.stop() // after the sessions: their leaves go out first
	sessions := g.hub.startShutdown()
	start := time.Now()
	g.log.Info("shutting down", "connections", len(sessions))
	for _, s := range sessions {
		s.closeWith(duplex.StatusGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() {
		g.hub.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		g.log.Info("all connections closed", "duration", time.Since(start))
		return nil
	case <-ctx.Done():
		left := g.hub.snapshot()
		for _, s := range left {
			s.kind.closeNow()
		}
		g.log.Warn("shutdown timed out; dropped connections", "connections", len(left), "duration", time.Since(start))
		return ctx.Err()
	}
}

// Connections returns the number of open WebSocket connections.
func (g *Gateway) Connections() int { return g.hub.count() }
