package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// healthEvery is how often the broker PINGs Redis (every master of a
// cluster). A PING gets as long to answer, so a frozen Redis (SIGSTOP)
// makes Healthy fail within about two periods.
const healthEvery = time.Second

// healthLoop PINGs Redis every healthEvery and records the answer, until
// Close.
func (b *Broker) healthLoop() {
	t := time.NewTicker(healthEvery)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(b.ctx, healthEvery)
		err := b.ping(ctx)
		cancel()
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			b.failed(err)
		} else {
			if n := b.failures.Swap(0); n > 0 {
				b.log.Info("redis available again", "after_attempts", n)
			}
			b.setHealth(nil)
		}
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ping asks the server, or every master of the cluster, for a PONG.
func (b *Broker) ping(ctx context.Context) error {
	if b.cluster == nil {
		return b.rdb.Ping(ctx).Err()
	}
	err := b.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		if err := c.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("%s: %w", c.Options().Addr, err)
		}
		return nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		// No master answered in time, or no seed node gave the slots.
		err = fmt.Errorf("redis cluster: no answer within %v: %w", healthEvery, err)
	}
	return err
}

// go-redis logs through one logger for the whole process (redis.SetLogger).
// The broker sets it once, to an adapter that writes to the Logger of the
// Broker made last, as warnings with component=go-redis, at most
// libraryLogBurst lines per libraryLogPeriod (then a count of those
// dropped), so a Redis that flaps cannot flood the log.
const (
	libraryLogBurst  = 20
	libraryLogPeriod = 10 * time.Second
)

var (
	libraryLogOnce sync.Once
	libraryLog     libraryLogger
)

type libraryLogger struct {
	target atomic.Pointer[slog.Logger]

	mu      sync.Mutex
	start   time.Time // guarded by mu; of the current period
	lines   int       // guarded by mu; written in it
	dropped int       // guarded by mu; dropped in it
}

func useLogger(l *slog.Logger) {
	libraryLog.target.Store(l)
	libraryLogOnce.Do(func() { redis.SetLogger(&libraryLog) })
}

// Printf is go-redis's logging interface.
func (l *libraryLogger) Printf(ctx context.Context, format string, v ...any) {
	target := l.target.Load()
	if target == nil {
		return
	}
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.start) >= libraryLogPeriod {
		if l.dropped > 0 {
			target.Warn("go-redis: log lines dropped", "component", "go-redis", "dropped", l.dropped)
		}
		l.start, l.lines, l.dropped = now, 0, 0
	}
	l.lines++
	if l.lines > libraryLogBurst {
		l.dropped++
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	if len(msg) > 1024 {
		msg = msg[:1024] + "…"
	}
	target.Warn(msg, "component", "go-redis")
}
