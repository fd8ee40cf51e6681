package gateway

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Issue 15 item 8: a refused token costs about 40 µs, so without a limit
// guessing is free. authLimiter gives each client address a bucket of
// AuthFailureLimit failures that refills over a minute; an address whose
// bucket is empty gets 429 on every request that needs credentials,
// before they are checked, so a guess that happens to be right is not
// told apart from a wrong one. One address's bucket never affects
// another's.

// authLimiter counts failed authentications per client address.
type authLimiter struct {
	burst  float64 // failures an address may make at once
	perSec float64 // refill rate of the bucket
	max    int     // addresses remembered
	now    func() time.Time

	mu    sync.Mutex
	addrs map[string]*list.Element // guarded by mu; of *authBucket
	lru   list.List                // guarded by mu; least recent failure at Front
}

type authBucket struct {
	addr   string
	tokens float64 // failures left at time at
	at     time.Time
}

// newAuthLimiter allows perMinute failures per minute per address (nil for
// a negative perMinute: no limit), remembering at most maxAddrs addresses.
func newAuthLimiter(perMinute, maxAddrs int) *authLimiter {
	if perMinute < 0 {
		return nil
	}
	return &authLimiter{
		burst:  float64(perMinute),
		perSec: float64(perMinute) / 60,
		max:    max(maxAddrs, 1),
		now:    time.Now,
		addrs:  make(map[string]*list.Element),
	}
}

// refill brings b up to now; l.mu is held.
func (l *authLimiter) refill(b *authBucket, now time.Time) {
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.perSec)
	b.at = now
}

// check reports whether addr may present credentials now; if not, wait is
// how long until it may. A nil limiter allows everything.
func (l *authLimiter) check(addr string) (wait time.Duration, ok bool) {
	if l == nil {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.addrs[addr]
	if e == nil {
		return 0, true
	}
	b := e.Value.(*authBucket)
	l.refill(b, l.now())
	if b.tokens >= 1 {
		return 0, true
	}
	if l.perSec == 0 {
		return time.Hour, false
	}
	return time.Duration((1 - b.tokens) / l.perSec * float64(time.Second)), false
}

// fail counts a failed authentication of addr. When the table is full, the
// address that failed least recently is forgotten.
func (l *authLimiter) fail(addr string) {
	if l == nil {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.addrs[addr]
	if e == nil {
		if len(l.addrs) >= l.max {
			old := l.lru.Front()
			delete(l.addrs, old.Value.(*authBucket).addr)
			l.lru.Remove(old)
		}
		e = l.lru.PushBack(&authBucket{addr: addr, tokens: l.burst, at: now})
		l.addrs[addr] = e
	} else {
		l.lru.MoveToBack(e)
	}
	b := e.Value.(*authBucket)
	l.refill(b, now)
	b.tokens = math.Max(b.tokens-1, 0)
}

// size returns the number of addresses remembered.
func (l *authLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}

// clientAddr is the key of r's client in the limiter: its IP address, or
// for IPv6 its /64 network, which one subscriber usually holds whole.
// Behind a reverse proxy this is the proxy's address.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// tooManyFailures answers a request from an address over its limit: 429
// with Retry-After in whole seconds, rounded up.
func tooManyFailures(w http.ResponseWriter, wait time.Duration) {
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	w.Header().Set("Cache-Control", "no-store")
}
