package gateway

import (
	"sync"
	"time"
)

// publishLimiter holds a token bucket per WebSocket connection that
// publishes, one for messages and one for bytes (Options.PublishRate and
// PublishBytesRate). A publish beyond either is refused, not delayed: the
// client is told at once ("publish rate exceeded") and nothing queues up
// in the server. A bucket is made at a connection's first publish and
// dropped when the connection ends.
type publishLimiter struct {
	rate      float64 // publishes per second; 0: no limit
	byteRate  float64 // bytes per second; 0: no limit
	byteBurst float64 // at least one message of MaxMessageSize
	mu        sync.Mutex
	buckets   map[*session]*publishBucket // guarded by mu
	off       bool                        // both limits off
}

type publishBucket struct {
	msgs, bytes float64 // tokens left; guarded by publishLimiter.mu
	last        time.Time
}

func newPublishLimiter(o *Options) *publishLimiter {
	l := &publishLimiter{buckets: make(map[*session]*publishBucket)}
	if o.PublishRate > 0 {
		l.rate = float64(o.PublishRate)
	}
	if o.PublishBytesRate > 0 {
		l.byteRate = float64(o.PublishBytesRate)
		l.byteBurst = max(l.byteRate, float64(o.MaxMessageSize))
	}
	l.off = l.rate == 0 && l.byteRate == 0
	return l
}

// allow reports whether s may publish n bytes of data now, and takes
// them from its buckets if so.
func (l *publishLimiter) allow(s *session, n int, now time.Time) bool {
	if l.off {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[s]
	if b == nil {
		// forget runs under mu once s has ended: either it sees this
		// bucket or this sees s ending.
		if s.ending() {
			return false // ending: its bucket would never be dropped
		}
		b = &publishBucket{msgs: l.rate, bytes: l.byteBurst, last: now}
		l.buckets[s] = b
	}
	dt := now.Sub(b.last).Seconds()
	b.last = now
	b.msgs = min(b.msgs+dt*l.rate, l.rate)
	b.bytes = min(b.bytes+dt*l.byteRate, l.byteBurst)
	if l.rate > 0 && b.msgs < 1 || l.byteRate > 0 && b.bytes < float64(n) {
		return false
	}
	b.msgs--
	b.bytes -= float64(n)
	return true
}

// forget drops the bucket of s, once s has ended.
func (l *publishLimiter) forget(s *session) {
	if l.off {
		return
	}
	l.mu.Lock()
	delete(l.buckets, s)
	l.mu.Unlock()
}
