// Package gateway is the server of "duplex serve" as an http.Handler, built
// on the public duplex API, so it can also be mounted in any mux.
//
//	opts := gateway.Options{Tokens: []string{"s3cret"}}
//	gw, err := gateway.New(opts, slog.Default())
//	...
//	srv := opts.HTTPServer(gw, slog.Default())
//	ln, err := net.Listen("tcp", opts.Addr)
//	...
//	go srv.Serve(gw.LimitListener(ln, srv))
//	// on SIGTERM: gw.Shutdown(ctx) and srv.Shutdown(ctx)
//
// # Authentication
//
// /ws and /echo check credentials before the upgrade (see Authenticator):
// a static token in ?token=, "Authorization: Bearer" or the duplex_token
// cookie, HTTP Basic, or a JWT. A failure is a 401 with WWW-Authenticate;
// it is logged with its reason and remote address, and the logged URL has
// its token redacted. Browser pages of other origins get 403 unless
// Options.AllowOrigin lets them in. An address that fails too often
// (Options.AuthFailureLimit) gets 429 with Retry-After until it slows down.
// JWTs are verified with golang-jwt/jwt/v5, against a static key or, by
// kid, a JWKS URL; a JWT session lasts as long as its token, unless the
// client refreshes it on /ws (docs/protocol.md, "Token lifetime").
//
// # Limits
//
// Clients without credentials can take little: plain HTTP connections are
// bounded below the file limit, the idlest closed first (LimitListener);
// idle keep-alive connections close after HTTPIdleTimeout; headers and
// bodies must arrive within HandshakeTimeout; refusals are logged at a
// bounded rate, with request fields clipped.
//
// # Connections
//
// Each connection has a reader, a writer draining a bounded send queue, and
// a heartbeat. Nothing a client does can block another client: replies and
// channel messages are queued without blocking, and a client whose queue
// fills is closed with 1013 "send queue full". The close codes the server
// chooses:
//
//	1001 going away       Shutdown
//	1008 policy violation "pong timeout": no pong within PongTimeout
//	1009 message too big  a message over MaxMessageSize
//	1013 try again later  "send queue full": the client reads too slowly;
//	                      "not reading": no pong while messages waited
//	4401 (application)    "token expired", "refresh refused: ..."
//	4403 (application)    "disconnected": POST /api/disconnect
//
// # Presence and the backend
//
// Options.Presence and Options.JoinLeave let subscribers list a channel's
// members and hear of joins and leaves, on every node when the Broker also
// implements PresenceStore and ControlBus (the memory and Redis brokers
// do). The server API subscribes, unsubscribes and disconnects users, and
// backend hooks (Options.ConnectHook, SubscribeHook, PublishHook,
// RPCHook) let the application decide who connects and what they may do
// (docs/protocol.md).
//
// # Observability
//
// Logs (log/slog) record each connection (remote address, user,
// subprotocol, extensions), each close (code, reason, who closed, duration,
// messages and bytes each way) and each refused request. /metrics serves
// Prometheus series named duplex_*.
package gateway
