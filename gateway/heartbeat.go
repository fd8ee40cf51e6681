package gateway

import "time"

// The event sessions' heartbeat and token expiry run on one goroutine per
// gateway, not a timer per connection: every tick it sweeps the sessions,
// queues a ping to those whose PingInterval has passed since their last
// pong, closes those whose ping has waited PongTimeout, and those whose
// credential ran out. A session is a few atomic loads per tick, so 19,000
// sessions cost a fraction of a millisecond a tick (docs/scaling.md).
// The pings themselves go through each session's send queue, so a client
// whose socket is full delays only its own ping.
//
// The goroutine runs while the gateway has event sessions, and ends at
// the first tick that finds none.

// sweepTick is how often the sweep runs: an eighth of the shorter of
// PingInterval and PongTimeout, so pings and timeouts are at most that
// late, between 5ms and 1s (the lateness of a token expiry). With the
// defaults (25s, 10s) that is 1s: 19,000 sessions cost the sweep about
// 2ms of CPU a second.
func (g *Gateway) sweepTick() time.Duration {
	d := time.Second
	if o := &g.opts; o.PingInterval > 0 {
		d = min(d, o.PingInterval/8, o.PongTimeout/8)
	}
	return max(d, 5*time.Millisecond)
}

// sweepLoop sweeps the event sessions every tick until there are none.
func (g *Gateway) sweepLoop() {
	t := time.NewTicker(g.sweepTick())
	defer t.Stop()
	var buf []*eventSession
	for range t.C {
		var ok bool
		buf, ok = g.hub.eventSessions(buf[:0])
		if !ok {
			return
		}
		now := time.Now()
		for _, s := range buf {
			s.sweep(now)
		}
		clear(buf) // let ended sessions go
	}
}
