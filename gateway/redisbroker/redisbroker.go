// Package redisbroker is a gateway.Broker on Redis, so that several
// "duplex serve" nodes share channels, offsets and history: a message
// published through any node reaches the subscribers of every node, once
// and in offset order. It runs on one Redis server or on a Redis Cluster.
//
//	b, err := redisbroker.New("redis://localhost:6379/0", nil)
//	// or redisbroker.New("redis+cluster://10.0.0.1:7000,10.0.0.2:7000", nil)
//	...
//	defer b.Close()
//	gw, err := gateway.New(gateway.Options{Broker: b, ...}, logger)
//
// It is a package of its own so that users of the gateway who do not use
// Redis never compile its client.
//
// # Keys
//
// Each channel C has two keys and one PUB/SUB channel, which share the
// hash tag {C}, so that they live on one shard of a cluster:
//
//	duplex:{C}:meta  hash: base (the offset before the first message), last
//	duplex:{C}:log   stream of the last HistorySize messages; entry ID
//	                 "<offset>-0", fields d (data), t (time, ms), p (prev)
//	duplex:{C}:live  PUB/SUB channel (sharded on a cluster): every message
//	                 as "<offset> <prev> <data>"
//
// Publishing is one Lua script: HINCRBY takes the offset, XADD stores the
// message under it and PUBLISH (SPUBLISH on a cluster) sends it live, so
// offsets are shared by all nodes and the stream's order is offset order.
// Both keys expire HistoryTTL after the channel's last publish.
//
// # Delivery
//
// A node SUBSCRIBEs (SSUBSCRIBE on a cluster, on a connection per master)
// to the live channels of the channels it has subscribers for, so that a
// publish costs Redis the same whatever the number of channels. The
// streams are the truth: when a subscription is confirmed, the node reads
// where to start (the channel's latest offset) or, after a reconnection,
// the messages it missed from the stream; and a live message whose prev
// is not the offset delivered last makes it read the gap from the stream
// before going on. So each message is delivered once, in offset order,
// and a message PUB/SUB dropped is found in the stream.
//
// # Failures
//
// When Redis cannot be reached, Publish and History fail, Healthy returns
// the error (the gateway's /healthz answers 503; a PING every second
// notices a frozen server within about two), local connections stay open,
// and the node reconnects with capped, jittered backoff. Once Redis is
// back it resubscribes and reads from the streams what it missed, so
// subscribers miss nothing Redis kept. On a cluster, a master that fails
// over is followed to its promoted replica the same way.
//
// Commands are not retried on one server: a publish whose reply was lost
// would otherwise be stored twice. A cluster client has to retry to follow
// MOVED, ASK and failovers (go-redis does up to three times), so there a
// publish whose reply timed out may be stored twice, as a publish retried
// by its caller may be anyway. Redis replicates asynchronously: a message
// acknowledged by a master that dies before its replica got it is lost.
package redisbroker

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex/gateway"
	"github.com/redis/go-redis/v9"
)

// Options configures a Broker. A nil *Options means the defaults each
// field documents.
type Options struct {
	// HistorySize is how many messages each channel keeps. Default
	// gateway.DefaultHistorySize.
	HistorySize int

	// HistoryTTL is how long a message is kept, and how long a channel
	// with no publish lives. Default gateway.DefaultHistoryTTL.
	HistoryTTL time.Duration

	// KeyPrefix starts every key. It may not contain { or }, which would
	// change the keys' hash tag. Default "duplex:".
	KeyPrefix string

	// Logger receives the broker's warnings (Redis lost and found again)
	// and the go-redis client's own log lines, as warnings with
	// component=go-redis. go-redis has one logger per process: its lines
	// go to the Logger of the Broker made last. Default slog.Default().
	Logger *slog.Logger
}

// Broker is a gateway.Broker on Redis. It is safe for concurrent use; one
// Broker may serve several gateways.
type Broker struct {
	rdb     redis.UniversalClient // *redis.Client or *redis.ClusterClient
	cluster *redis.ClusterClient  // nil on one server
	size    int
	ttl     time.Duration
	prefix  string
	log     *slog.Logger

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the broker

	health   atomic.Pointer[error] // nil while healthy
	failures atomic.Int32          // connection failures in a row, for backoff

	syncKick  chan struct{} // one slot: syncQueue has work
	routeKick chan struct{} // one slot: unrouted has work (cluster)

	mu        sync.Mutex
	watches   map[string]*watch // guarded by mu; channels subscribed to
	shards    map[string]*shard // guarded by mu; by address ("" on one server)
	syncQueue []string          // guarded by mu; channels whose watch is queued
	unrouted  map[string]bool   // guarded by mu; channels waiting for a shard
	closed    bool              // guarded by mu
}

// watch is a channel this node has subscribers for. Its fields are guarded
// by Broker.mu.
type watch struct {
	subs  []*subscription
	shard *shard // where its live channel is subscribed; nil while unrouted

	started bool   // last is known; until then live messages are held
	last    uint64 // offset of the last message delivered

	queued   bool              // in Broker.syncQueue
	inflight int               // syncs sent to Redis, not yet applied
	held     []gateway.Message // live messages waiting for a sync
}

// syncing reports whether live messages must wait for a sync.
func (w *watch) syncing() bool { return !w.started || w.queued || w.inflight > 0 }

type subscription struct{ deliver func(gateway.Message) }

// errConnecting is Healthy's answer until Redis has answered once.
var errConnecting = errors.New("redisbroker: connecting to redis")

// New returns a Broker for the Redis server at url,
// redis://[user:password@]host:port[/db] (rediss:// for TLS), or for the
// Redis Cluster that the seed nodes of
// redis+cluster://[user:password@]host:port[,host:port...] belong to
// (rediss+cluster:// for TLS). A cluster needs Redis 7 (sharded PUB/SUB).
// New does not wait for Redis: until Redis answers, Healthy reports it and
// Publish fails.
func New(url string, opts *Options) (*Broker, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.HistorySize <= 0 {
		o.HistorySize = gateway.DefaultHistorySize
	}
	if o.HistoryTTL <= 0 {
		o.HistoryTTL = gateway.DefaultHistoryTTL
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = "duplex:"
	}
	if strings.ContainsAny(o.KeyPrefix, "{}") {
		return nil, errors.New("redisbroker: KeyPrefix may not contain { or }")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	b := &Broker{
		size:      o.HistorySize,
		ttl:       o.HistoryTTL,
		prefix:    o.KeyPrefix,
		log:       o.Logger,
		syncKick:  make(chan struct{}, 1),
		routeKick: make(chan struct{}, 1),
		watches:   make(map[string]*watch),
		shards:    make(map[string]*shard),
		unrouted:  make(map[string]bool),
	}
	if scheme, _, _ := strings.Cut(url, "://"); strings.HasSuffix(scheme, "+cluster") {
		co, err := parseClusterURL(url)
		if err != nil {
			return nil, err
		}
		b.cluster = redis.NewClusterClient(co)
		b.rdb = b.cluster
	} else {
		ro, err := redis.ParseURL(url)
		if err != nil {
			// The error of ParseURL may quote the URL, password included.
			return nil, errors.New("redisbroker: invalid URL: want redis://host:port[/db] or redis+cluster://host:port[,host:port...]")
		}
		ro.MaxRetries = -1 // see the package doc: a retried publish may be stored twice
		ro.ContextTimeoutEnabled = true
		ro.DialTimeout = dialTimeout
		ro.ReadTimeout = commandTimeout
		ro.WriteTimeout = commandTimeout
		c := redis.NewClient(ro)
		b.rdb = c
		b.shards[""] = b.newShard("", c)
	}
	useLogger(o.Logger)
	b.setHealth(errConnecting)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Go(b.healthLoop)
	b.wg.Go(b.syncLoop)
	if b.cluster != nil {
		b.wg.Go(b.routeLoop)
	}
	for _, s := range b.shards {
		b.wg.Go(s.run)
	}
	return b, nil
}

// parseClusterURL reads redis+cluster://[user:password@]host:port[,...].
func parseClusterURL(raw string) (*redis.ClusterOptions, error) {
	errURL := errors.New("redisbroker: invalid URL: want redis+cluster://[user:password@]host:port[,host:port...]")
	scheme, rest, _ := strings.Cut(raw, "://")
	co := &redis.ClusterOptions{
		ContextTimeoutEnabled: true,
		DialTimeout:           dialTimeout,
		ReadTimeout:           commandTimeout,
		WriteTimeout:          commandTimeout,
	}
	switch scheme {
	case "redis+cluster":
	case "rediss+cluster":
		co.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	default:
		return nil, errURL
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		u, err := url.Parse("redis://" + rest[:i+1] + "x")
		if err != nil || u.User == nil {
			return nil, errURL
		}
		co.Username = u.User.Username()
		co.Password, _ = u.User.Password()
		rest = rest[i+1:]
	}
	rest = strings.TrimSuffix(rest, "/")
	for _, addr := range strings.Split(rest, ",") {
		host, port, err := net.SplitHostPort(addr)
		if _, perr := strconv.ParseUint(port, 10, 16); err != nil || host == "" || perr != nil {
			return nil, errURL
		}
		co.Addrs = append(co.Addrs, addr)
	}
	if co.TLSConfig != nil {
		co.TLSConfig.ServerName, _, _ = net.SplitHostPort(co.Addrs[0])
	}
	return co, nil
}

func (b *Broker) metaKey(channel string) string { return b.prefix + "{" + channel + "}:meta" }
func (b *Broker) logKey(channel string) string  { return b.prefix + "{" + channel + "}:log" }
func (b *Broker) liveKey(channel string) string { return b.prefix + "{" + channel + "}:live" }

// channelOf returns the channel whose live channel is live.
func (b *Broker) channelOf(live string) (string, bool) {
	s, ok := strings.CutPrefix(live, b.prefix+"{")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(s, "}:live")
}

// Publish stores data as the next message of channel and sends it to the
// nodes that subscribe to it. It returns the message's offset.
func (b *Broker) Publish(ctx context.Context, channel string, data json.RawMessage) (uint64, error) {
	if b.ctx.Err() != nil {
		return 0, gateway.ErrBrokerClosed
	}
	pub := "PUBLISH"
	if b.cluster != nil {
		pub = "SPUBLISH"
	}
	res, err := publishScript.Run(ctx, b.rdb,
		[]string{b.metaKey(channel), b.logKey(channel), b.liveKey(channel)},
		[]byte(data), b.size, b.ttl.Milliseconds(), pub).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("redisbroker: publish: %w", err)
	}
	if len(res) != 2 || res[0] <= 0 {
		return 0, fmt.Errorf("redisbroker: publish: unexpected reply %v", res)
	}
	return uint64(res[0]), nil
}

// History returns what Redis holds of channel after since, as
// gateway.Broker documents.
func (b *Broker) History(ctx context.Context, channel string, since uint64) ([]gateway.Message, bool, uint64, error) {
	if b.ctx.Err() != nil {
		return nil, false, 0, gateway.ErrBrokerClosed
	}
	arg := strconv.FormatUint(since, 10)
	if since == ^uint64(0) {
		arg = "latest"
	}
	res, err := historyScript.Run(ctx, b.rdb, []string{b.metaKey(channel), b.logKey(channel)},
		arg, b.ttl.Milliseconds()).Slice()
	if err != nil {
		return nil, false, 0, fmt.Errorf("redisbroker: history: %w", err)
	}
	if len(res) != 4 {
		return nil, false, 0, fmt.Errorf("redisbroker: history: unexpected reply of %d elements", len(res))
	}
	var w gateway.Window
	var err1, err2, err3 error
	w.Base, err1 = parseOffset(res[0])
	w.Latest, err2 = parseOffset(res[1])
	w.Oldest, err3 = parseOffset(res[2])
	entries, ok := res[3].([]any)
	if err := errors.Join(err1, err2, err3); err != nil || !ok {
		return nil, false, 0, fmt.Errorf("redisbroker: history: malformed reply: %v", err)
	}
	var msgs []gateway.Message
	for _, e := range entries {
		m, err := parseEntry(channel, e)
		if err != nil {
			return nil, false, 0, fmt.Errorf("redisbroker: history: %w", err)
		}
		if m.Offset > since {
			msgs = append(msgs, m)
		}
	}
	return msgs, w.Covers(since), w.Latest, nil
}

// Subscribe makes the node subscribe to channel's live messages and
// deliver them, starting about now: after the latest offset once Redis
// confirms the subscription, or where the node already is if another
// subscription has the channel.
func (b *Broker) Subscribe(channel string, deliver func(gateway.Message)) (stop func()) {
	s := &subscription{deliver: deliver}
	b.mu.Lock()
	w := b.watches[channel]
	if w == nil && !b.closed {
		w = &watch{}
		b.watches[channel] = w
		b.route(channel, w)
	}
	if w != nil {
		w.subs = append(w.subs, s)
	}
	b.mu.Unlock()
	if w == nil {
		return func() {} // closed: nothing will be delivered
	}
	var once sync.Once
	return func() { once.Do(func() { b.unsubscribe(channel, w, s) }) }
}

func (b *Broker) unsubscribe(channel string, w *watch, s *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range w.subs {
		if x == s {
			w.subs = append(w.subs[:i:i], w.subs[i+1:]...)
			break
		}
	}
	if len(w.subs) > 0 || b.watches[channel] != w {
		return
	}
	delete(b.watches, channel)
	delete(b.unrouted, channel)
	if w.shard != nil {
		w.shard.push(channel, false)
	}
}

// Healthy returns nil while Redis answers, else the last error.
func (b *Broker) Healthy() error {
	if p := b.health.Load(); p != nil {
		return *p
	}
	return nil
}

func (b *Broker) setHealth(err error) {
	if err == nil {
		b.health.Store(nil)
		return
	}
	b.health.Store(&err)
}

// Close stops the broker's goroutines and closes the connections to
// Redis. Publish and History return gateway.ErrBrokerClosed afterwards.
func (b *Broker) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
	err := b.rdb.Close()
	if errors.Is(err, redis.ErrClosed) {
		err = nil
	}
	return err
}

// parseOffset reads an offset that Redis returned as a string or integer.
func parseOffset(v any) (uint64, error) {
	switch v := v.(type) {
	case string:
		return strconv.ParseUint(v, 10, 64)
	case int64:
		if v >= 0 {
			return uint64(v), nil
		}
	}
	return 0, fmt.Errorf("offset %v", v)
}

// parseEntry reads a stream entry as a script returns it:
// {"<offset>-0", {field, value, ...}}.
func parseEntry(channel string, e any) (gateway.Message, error) {
	pair, ok := e.([]any)
	if !ok || len(pair) != 2 {
		return gateway.Message{}, errors.New("malformed stream entry")
	}
	id, _ := pair[0].(string)
	fields, _ := pair[1].([]any)
	values := make(map[string]any, 3)
	for i := 0; i+1 < len(fields); i += 2 {
		if k, ok := fields[i].(string); ok {
			values[k] = fields[i+1]
		}
	}
	return message(channel, id, values)
}

// message builds the Message of a stream entry with ID id.
func message(channel, id string, values map[string]any) (gateway.Message, error) {
	num, _, _ := strings.Cut(id, "-")
	off, err := strconv.ParseUint(num, 10, 64)
	if err != nil || off == 0 {
		return gateway.Message{}, fmt.Errorf("stream entry ID %q is not an offset", id)
	}
	d, ok := values["d"].(string)
	if !ok {
		return gateway.Message{}, fmt.Errorf("stream entry %s has no data", id)
	}
	m := gateway.Message{Channel: channel, Offset: off, Prev: off - 1, Data: json.RawMessage(d)}
	if p, ok := values["p"].(string); ok {
		if prev, err := strconv.ParseUint(p, 10, 64); err == nil {
			m.Prev = prev
		}
	}
	return m, nil
}

// parseLive reads a live message, "<offset> <prev> <data>".
func parseLive(channel, payload string) (gateway.Message, error) {
	off, rest, ok1 := strings.Cut(payload, " ")
	prev, data, ok2 := strings.Cut(rest, " ")
	o, err1 := strconv.ParseUint(off, 10, 64)
	p, err2 := strconv.ParseUint(prev, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || o == 0 {
		return gateway.Message{}, fmt.Errorf("malformed live message %.40q", payload)
	}
	return gateway.Message{Channel: channel, Offset: o, Prev: p, Data: json.RawMessage(data)}, nil
}
