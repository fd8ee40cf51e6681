// Package redisbroker is a gateway.Broker on Redis, so that several
// "duplex serve" nodes share channels, offsets and history: a message
// published through any node reaches the subscribers of every node, once
// and in offset order.
//
//	b, err := redisbroker.New("redis://localhost:6379/0", nil)
//	...
//	defer b.Close()
//	gw, err := gateway.New(gateway.Options{Broker: b, ...}, logger)
//
// It is a package of its own so that users of the gateway who do not use
// Redis never compile its client.
//
// # Keys
//
// Each channel C has two keys, which share the hash tag {C}:
//
//	duplex:{C}:meta  hash: base (the offset before the first message), last
//	duplex:{C}:log   stream of the last HistorySize messages; entry ID
//	                 "<offset>-0", fields d (data), t (time, ms), p (prev)
//
// Publishing is one Lua script: HINCRBY takes the offset and XADD stores
// the message under it, so offsets are shared by all nodes and the
// stream's order is offset order. Both keys expire HistoryTTL after the
// channel's last publish.
//
// # Delivery
//
// Each Broker runs one reader, which follows the streams of the channels
// its gateway has subscribers for with XREAD BLOCK, from the offset it
// delivered last, so it delivers every message once and in order. When
// the set of channels changes, the broker adds an entry to its own wake
// stream, duplex:wake:<id>, which the reader also follows, so the blocked
// XREAD returns and starts again with the new set.
//
// # Failures
//
// When Redis cannot be reached, Publish and History fail, Healthy returns
// the error (the gateway's /healthz answers 503), local connections stay
// open, and the reader retries with capped, jittered backoff. Once Redis
// is back it goes on from the offsets it delivered last, so subscribers
// miss nothing Redis kept. Commands are never retried by the client
// library: a publish whose reply was lost would otherwise be stored twice.
// A publish that fails may still have been stored; whoever retries it may
// store it twice.
package redisbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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

	// KeyPrefix starts every key. Default "duplex:".
	KeyPrefix string

	// Logger receives the broker's warnings: Redis lost and found again.
	// Default slog.Default().
	Logger *slog.Logger
}

// Broker is a gateway.Broker on one Redis server. It is safe for
// concurrent use; one Broker may serve several gateways.
type Broker struct {
	rdb     *redis.Client
	size    int
	ttl     time.Duration
	prefix  string
	wakeKey string
	log     *slog.Logger

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the reader and the waker
	kick   chan struct{}  // one slot: the set of channels changed

	health atomic.Pointer[error] // nil while healthy

	mu      sync.Mutex
	watches map[string]*watch // guarded by mu; channels subscribed to
}

// watch is a channel the reader follows. Its fields are guarded by
// Broker.mu.
type watch struct {
	subs    []*subscription
	started bool   // last is set: the reader reads after it
	last    uint64 // offset of the last message delivered
}

type subscription struct{ deliver func(gateway.Message) }

// errConnecting is Healthy's answer until Redis has answered once.
var errConnecting = errors.New("redisbroker: connecting to redis")

// New returns a Broker for the Redis server at url,
// redis://[user:password@]host:port[/db] or rediss:// for TLS. It does not
// wait for Redis: until Redis answers, Healthy reports it and Publish
// fails.
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
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ro, err := redis.ParseURL(url)
	if err != nil {
		// The error of ParseURL may quote the URL, password included.
		return nil, errors.New("redisbroker: invalid URL: want redis://host:port[/db]")
	}
	ro.MaxRetries = -1 // see the package doc: a retried publish may be stored twice
	ro.ContextTimeoutEnabled = true
	ro.DialTimeout = 2 * time.Second
	var id [8]byte
	rand.Read(id[:])
	b := &Broker{
		rdb:     redis.NewClient(ro),
		size:    o.HistorySize,
		ttl:     o.HistoryTTL,
		prefix:  o.KeyPrefix,
		wakeKey: o.KeyPrefix + "wake:" + hex.EncodeToString(id[:]),
		log:     o.Logger,
		kick:    make(chan struct{}, 1),
		watches: make(map[string]*watch),
	}
	b.setHealth(errConnecting)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Go(b.readLoop)
	b.wg.Go(b.wakeLoop)
	return b, nil
}

func (b *Broker) metaKey(channel string) string { return b.prefix + "{" + channel + "}:meta" }
func (b *Broker) logKey(channel string) string  { return b.prefix + "{" + channel + "}:log" }

// channelOf returns the channel whose log key is key.
func (b *Broker) channelOf(key string) (string, bool) {
	s, ok := strings.CutPrefix(key, b.prefix+"{")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(s, "}:log")
}

// Publish stores data as the next message of channel and returns its
// offset. Every node's reader then delivers it.
func (b *Broker) Publish(ctx context.Context, channel string, data json.RawMessage) (uint64, error) {
	if b.ctx.Err() != nil {
		return 0, gateway.ErrBrokerClosed
	}
	res, err := publishScript.Run(ctx, b.rdb, []string{b.metaKey(channel), b.logKey(channel)},
		[]byte(data), b.size, b.ttl.Milliseconds()).Int64Slice()
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

// Subscribe makes the reader follow channel and deliver its messages,
// starting about now: from the latest offset when the reader adds the
// channel, or where it already is if another subscription has it.
func (b *Broker) Subscribe(channel string, deliver func(gateway.Message)) (stop func()) {
	s := &subscription{deliver: deliver}
	b.mu.Lock()
	w := b.watches[channel]
	if w == nil {
		w = &watch{}
		b.watches[channel] = w
	}
	w.subs = append(w.subs, s)
	b.mu.Unlock()
	b.wake()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			for i, x := range w.subs {
				if x == s {
					w.subs = append(w.subs[:i:i], w.subs[i+1:]...)
					break
				}
			}
			if len(w.subs) == 0 && b.watches[channel] == w {
				delete(b.watches, channel)
			}
		})
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

// Close stops the reader and closes the connections to Redis. Publish and
// History return gateway.ErrBrokerClosed afterwards.
func (b *Broker) Close() error {
	b.cancel()
	err := b.rdb.Close() // unblocks the reader's XREAD
	b.wg.Wait()
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
