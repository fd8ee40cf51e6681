package gateway

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// setting ties one field of Options to its flag and its environment
// variable, so the two can never drift apart.
type setting struct {
	flag  string
	env   string
	usage string
	value flag.Value
}

// settings lists every setting of Options, in the order --help shows
// them. The values write straight into o.
func (o *Options) settings() []setting {
	return []setting{
		{"addr", "DUPLEX_ADDR", "listen `address`", (*stringValue)(&o.Addr)},
		{"token", "DUPLEX_TOKENS", "accept this bearer `token` (repeatable)", &listValue{p: &o.Tokens, secret: true}},
		{"token-file", "DUPLEX_TOKEN_FILE", "read tokens from `file`, one per line", (*stringValue)(&o.TokenFile)},
		{"basic-auth", "DUPLEX_BASIC_AUTH", "accept HTTP Basic `user:password` (repeatable)", &listValue{p: &o.Basic, secret: true}},
		{"jwt-secret", "DUPLEX_JWT_SECRET", "accept HS256 JWTs signed with `secret`", (*secretValue)(&o.JWTSecret)},
		{"jwt-key", "DUPLEX_JWT_KEY", "accept RS256/ES256 JWTs verified by the PEM public key in `file`", (*stringValue)(&o.JWTKeyFile)},
		{"no-auth", "DUPLEX_NO_AUTH", "let anyone connect, without credentials", &boolValue{p: &o.NoAuth}},
		{"allow-origin", "DUPLEX_ALLOW_ORIGIN", "let browser pages from `pattern` connect, e.g. *.example.com or https://app.example.com (repeatable)", &listValue{p: &o.AllowOrigin}},
		{"ping-interval", "DUPLEX_PING_INTERVAL", "ping each connection once per `duration`; negative turns pings off", (*durationValue)(&o.PingInterval)},
		{"pong-timeout", "DUPLEX_PONG_TIMEOUT", "close a connection whose pong takes longer than `duration`, with 1008 \"pong timeout\"", (*durationValue)(&o.PongTimeout)},
		{"max-message-size", "DUPLEX_MAX_MESSAGE_SIZE", "largest message a client may send (`bytes`, or with KiB/MiB); larger closes with 1009", (*sizeValue)(&o.MaxMessageSize)},
		{"max-connections", "DUPLEX_MAX_CONNECTIONS", "allow `n` open WebSockets at once; beyond, upgrades get 503; negative: no limit", (*intValue)(&o.MaxConnections)},
		{"send-queue", "DUPLEX_SEND_QUEUE", "bound each client's send queue to `n` messages; a client that fills it is closed with 1013", (*intValue)(&o.SendQueue)},
		{"send-queue-bytes", "DUPLEX_SEND_QUEUE_BYTES", "bound each client's send queue to `bytes` (plus one message); a client that fills it is closed with 1013", (*sizeValue)(&o.SendQueueBytes)},
		{"handshake-timeout", "DUPLEX_HANDSHAKE_TIMEOUT", "drop a client that takes longer than `duration` to send its request headers, or a request body", (*durationValue)(&o.HandshakeTimeout)},
		{"shutdown-timeout", "DUPLEX_SHUTDOWN_TIMEOUT", "on SIGINT/SIGTERM, wait up to `duration` for connections to close", (*durationValue)(&o.ShutdownTimeout)},
		{"tls-cert", "DUPLEX_TLS_CERT", "serve HTTPS/WSS with the PEM certificate chain in `file`", (*stringValue)(&o.TLSCert)},
		{"tls-key", "DUPLEX_TLS_KEY", "PEM private key `file` for --tls-cert", (*stringValue)(&o.TLSKey)},
		{"log-format", "DUPLEX_LOG_FORMAT", "log `format`: text or json", (*stringValue)(&o.LogFormat)},
		{"compress", "DUPLEX_COMPRESS", "offer permessage-deflate compression; --compress=false turns it off", &boolValue{p: &o.DisableCompression, invert: true}},
		{"broker", "DUPLEX_BROKER", "carry channels through `url`: memory (one process), redis://host:port[/db] (several nodes share channels, offsets and history) or redis+cluster://host:port[,host:port...] (a Redis Cluster, Redis 7+); rediss:// and rediss+cluster:// for TLS", (*secretValue)(&o.BrokerURL)},
		{"history-size", "DUPLEX_HISTORY_SIZE", "keep the last `n` messages of each channel for clients that reconnect; 0: no history; at most 10000", (*historySizeValue)(&o.HistorySize)},
		{"history-ttl", "DUPLEX_HISTORY_TTL", "keep a channel's messages for at most `duration`", (*durationValue)(&o.HistoryTTL)},
		{"api-key", "DUPLEX_API_KEY", "enable POST /api/publish and GET /api/history for \"Authorization: Bearer `key`\"", (*secretValue)(&o.APIKey)},
		{"http-idle-timeout", "DUPLEX_HTTP_IDLE_TIMEOUT", "close a keep-alive HTTP connection idle for `duration`", (*durationValue)(&o.HTTPIdleTimeout)},
		{"max-http-connections", "DUPLEX_MAX_HTTP_CONNECTIONS", "allow `n` connections that are not WebSockets; beyond, the idlest is closed; 0: the file limit less --max-connections and a reserve; negative: no limit", (*intValue)(&o.MaxHTTPConnections)},
		{"auth-failure-limit", "DUPLEX_AUTH_FAILURE_LIMIT", "allow `n` failed authentications per minute per client address; beyond, 429; negative: no limit", (*intValue)(&o.AuthFailureLimit)},
		{"auth-failure-addresses", "DUPLEX_AUTH_FAILURE_ADDRESSES", "remember the failures of at most `n` client addresses", (*intValue)(&o.AuthFailureAddresses)},
		{"log-refusal-rate", "DUPLEX_LOG_REFUSAL_RATE", "log at most `n` refused requests of each kind per second, and count the rest; negative: no limit", (*intValue)(&o.LogRefusalRate)},
		{"metrics-addr", "DUPLEX_METRICS_ADDR", "serve /metrics and /healthz with details on this internal `address` only, not on --addr", (*stringValue)(&o.MetricsAddr)},
		{"metrics-auth", "DUPLEX_METRICS_AUTH", "require \"Authorization: Bearer\" with --api-key on /metrics", &boolValue{p: &o.MetricsAuth}},
		{"jwt-audience", "DUPLEX_JWT_AUDIENCE", "accept only JWTs whose aud claim holds `aud`", (*stringValue)(&o.JWTAudience)},
		{"jwt-issuer", "DUPLEX_JWT_ISSUER", "accept only JWTs whose iss claim is `iss`", (*stringValue)(&o.JWTIssuer)},
		{"jwt-require-exp", "DUPLEX_JWT_REQUIRE_EXP", "refuse JWTs without an exp claim (they would never expire)", &boolValue{p: &o.JWTRequireExp}},
		{"jwt-jwks", "DUPLEX_JWT_JWKS", "accept RS256/ES256 JWTs whose kid names a key of the JSON Web Key Set at `url`", (*stringValue)(&o.JWKSURL)},
		{"jwt-jwks-refresh", "DUPLEX_JWT_JWKS_REFRESH", "fetch the --jwt-jwks key set again when it is older than `duration` (and at once for an unknown kid, at most every 10s)", (*durationValue)(&o.JWKSRefresh)},
		{"jwt-jwks-timeout", "DUPLEX_JWT_JWKS_TIMEOUT", "give up a --jwt-jwks fetch after `duration`", (*durationValue)(&o.JWKSTimeout)},
		{"jwt-jwks-max-size", "DUPLEX_JWT_JWKS_MAX_SIZE", "refuse a --jwt-jwks key set larger than `bytes`", (*sizeValue)(&o.JWKSMaxSize)},
		{"history-memory", "DUPLEX_HISTORY_MEMORY", "bound the memory the history of all channels takes to `bytes`, the garbage collector's room included (half of it holds messages at GOGC=100); beyond, the oldest messages go first (memory broker; Redis is bounded by --history-size); negative: no limit", (*sizeValue)(&o.HistoryMemory)},
		{"max-channels", "DUPLEX_MAX_CHANNELS", "allow `n` channels at once (memory broker); beyond, a new channel replaces the least recently published one nobody subscribes to, or fails if there is none; negative: no limit", (*intValue)(&o.MaxChannels)},
		{"max-subscriptions", "DUPLEX_MAX_SUBSCRIPTIONS", "allow `n` channel subscriptions, all connections together; beyond, subscribe fails; negative: no limit", (*intValue)(&o.MaxSubscriptions)},
		{"max-connection-subscriptions", "DUPLEX_MAX_CONNECTION_SUBSCRIPTIONS", "allow each connection `n` channel subscriptions; beyond, subscribe fails", (*intValue)(&o.MaxConnectionSubscriptions)},
		{"publish-rate", "DUPLEX_PUBLISH_RATE", "allow each connection `n` publishes per second; beyond, a publish gets \"publish rate exceeded\"; negative: no limit", (*intValue)(&o.PublishRate)},
		{"publish-bytes-rate", "DUPLEX_PUBLISH_BYTES_RATE", "allow each connection to publish `bytes` of data per second; negative: no limit", (*sizeValue)(&o.PublishBytesRate)},
		{"history-page-bytes", "DUPLEX_HISTORY_PAGE_BYTES", "bound the data of one GET /api/history response to `bytes` (at least one message)", (*sizeValue)(&o.HistoryPageBytes)},
		{"no-event-loop", "DUPLEX_NO_EVENT_LOOP", "run each WebSocket on goroutines of its own (about 42 KB idle) rather than the event loop (about 2 KB idle); wss:// served with --tls-cert and HTTP/2 streams always run on goroutines", &boolValue{p: &o.NoEventLoop}},
		{"compress-context-takeover", "DUPLEX_COMPRESS_CONTEXT_TAKEOVER", "let compressed messages refer to earlier ones: smaller on the wire, up to 64 KiB more memory per connection", &boolValue{p: &o.CompressionContextTakeover}},
		{"compress-window-bits", "DUPLEX_COMPRESS_WINDOW_BITS", "bound the compression window of both directions to 2^`n` bytes, 8 to 15 (needs --compress-context-takeover): at most 2^n bytes of inflate history per connection instead of 32 KiB, for a worse ratio", (*windowBitsValue)(&o.CompressionWindowBits)},
		{"presence", "DUPLEX_PRESENCE", "let subscribers of channels matching `pattern` list who is subscribed (repeatable)", &listValue{p: &o.Presence}},
		{"join-leave", "DUPLEX_JOIN_LEAVE", "tell subscribers of channels matching `pattern` when others subscribe and leave (repeatable)", &listValue{p: &o.JoinLeave}},
		{"presence-ttl", "DUPLEX_PRESENCE_TTL", "drop the members of a node that stopped from presence after `duration`", (*durationValue)(&o.PresenceTTL)},
		{"connect-hook", "DUPLEX_CONNECT_HOOK", "POST each WebSocket upgrade without a valid credential to `url`, which says who the client is", (*stringValue)(&o.ConnectHook)},
		{"connect-hook-always", "DUPLEX_CONNECT_HOOK_ALWAYS", "call --connect-hook for every upgrade, with credentials or not", &boolValue{p: &o.ConnectHookAlways}},
		{"subscribe-hook", "DUPLEX_SUBSCRIBE_HOOK", "ask `url` to allow each subscribe", (*stringValue)(&o.SubscribeHook)},
		{"publish-hook", "DUPLEX_PUBLISH_HOOK", "ask `url` to allow (and maybe rewrite) each WebSocket publish", (*stringValue)(&o.PublishHook)},
		{"rpc-hook", "DUPLEX_RPC_HOOK", "answer {\"type\":\"rpc\"} messages by POSTing them to `url`", (*stringValue)(&o.RPCHook)},
		{"hook-timeout", "DUPLEX_HOOK_TIMEOUT", "give up a hook call after `duration`", (*durationValue)(&o.HookTimeout)},
	}
}

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string {
	if v == nil {
		return ""
	}
	return string(*v)
}

// secretValue never shows its value, so --help cannot print a secret
// taken from the environment as a default.
type secretValue string

func (v *secretValue) Set(s string) error { *v = secretValue(s); return nil }
func (v *secretValue) String() string     { return "" }

// listValue is a repeatable flag. The first flag replaces what the
// environment set, the next ones append: flags win over the environment.
type listValue struct {
	p       *[]string
	secret  bool
	flagSet bool
}

func (v *listValue) Set(s string) error {
	if !v.flagSet {
		*v.p = nil
		v.flagSet = true
	}
	*v.p = append(*v.p, s)
	return nil
}

// setAll sets the list from a comma-separated environment value.
func (v *listValue) setAll(s string) error {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	*v.p = out
	return nil
}

func (v *listValue) String() string {
	if v == nil || v.p == nil || v.secret {
		return ""
	}
	return strings.Join(*v.p, ",")
}

// boolValue is a boolean flag; invert stores its negation (--compress
// sets DisableCompression).
type boolValue struct {
	p      *bool
	invert bool
}

func (v *boolValue) IsBoolFlag() bool { return true }

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v.p = b != v.invert
	return nil
}

func (v *boolValue) String() string {
	if v == nil || v.p == nil {
		return "false"
	}
	return strconv.FormatBool(*v.p != v.invert)
}

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration such as 25s or 1m")
	}
	*v = durationValue(d)
	return nil
}

func (v *durationValue) String() string {
	if v == nil {
		return ""
	}
	return time.Duration(*v).String()
}

type intValue int

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("want an integer")
	}
	*v = intValue(n)
	return nil
}

func (v *intValue) String() string {
	if v == nil {
		return ""
	}
	return strconv.Itoa(int(*v))
}

// sizeValue is a byte count: plain, or with a suffix B, KiB, MiB, GiB
// (or K, M, G, KB, MB, GB, also taken as powers of 1024).
type sizeValue int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10},
	{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1},
}

func (v *sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v = sizeValue(n)
	return nil
}

func parseSize(s string) (int64, error) {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range sizeUnits {
		if len(num) > len(u.suffix) && strings.EqualFold(num[len(num)-len(u.suffix):], u.suffix) {
			num, mult = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > (1<<62)/mult || n < -(1<<62)/mult {
		return 0, fmt.Errorf("want a size such as 65536, 64KiB or 1MiB")
	}
	return n * mult, nil
}

func (v *sizeValue) String() string {
	if v == nil {
		return ""
	}
	n := int64(*v)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// windowBitsValue is a permessage-deflate window size in bits, 8 to 15
// (RFC 7692 §7.1.2).
type windowBitsValue int

func (v *windowBitsValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 8 || n > 15 {
		return errors.New("want an integer from 8 to 15")
	}
	*v = windowBitsValue(n)
	return nil
}

func (v *windowBitsValue) String() string {
	if v == nil {
		return ""
	}
	return strconv.Itoa(int(*v))
}
