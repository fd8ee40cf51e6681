package gateway

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex"
)

// goSession is a session run by three goroutines, for the connections
// the event loop cannot take (TLS served by duplex itself, HTTP/2 streams,
// other platforms) and for Options.NoEventLoop:
//
//   - the reader (the handler's goroutine) reads messages and passes them
//     to handle; it always runs, so pongs and close frames are seen;
//   - the writer drains queue; it is the only goroutine that writes
//     messages, so a slow client blocks nobody but its own writer;
//   - the keeper pings every PingInterval and, once the session starts to
//     end, sends the close frame the server chose.
//
// Any of them, Shutdown, or a channel publisher can end the session with
// closeWith, which never blocks; the other goroutines then return and run
// logs the close. It costs about 42 KB of RSS while idle
// (docs/scaling.md).
type goSession struct {
	session
	conn *duplex.Conn

	queue       chan outMsg
	queuedBytes atomic.Int64  // payload bytes in queue
	pending     atomic.Int64  // messages queued or being written
	wrote       chan struct{} // signalled by the writer after each write

	ctx    context.Context // done once the session starts to end
	cancel context.CancelFunc

	closeErr error // written by the keeper before it returns; what Close returned
	path     string

	expiryWake chan struct{} // one slot: setExpiry wakes the keeper
}

func (g *Gateway) newGoSession(conn *duplex.Conn, r *http.Request, id *Identity, onWS bool) *goSession {
	s := &goSession{
		conn:       conn,
		queue:      make(chan outMsg, g.opts.SendQueue),
		wrote:      make(chan struct{}, 1),
		expiryWake: make(chan struct{}, 1),
	}
	s.path = r.URL.Path
	s.ctx, s.cancel = context.WithCancel(context.Background())
	g.initSession(&s.session, s, r, id, onWS)
	return s
}

// run serves the session until it ends and logs how it ended. since
// holds the upgrade's offsets for server-side subscriptions.
func (s *goSession) run(since map[string]uint64) {
	s.opened(s.path)
	var wg sync.WaitGroup
	wg.Go(s.writeLoop)
	wg.Go(s.keep)
	s.g.startSession(&s.session, since) // server-side subscriptions (control.go)
	err := s.readLoop()
	s.closeWith(0, "") // stop the others if the client or the network ended it
	wg.Wait()
	s.ended(err, s.closeErr)
}

func (s *goSession) context() context.Context { return s.ctx }

func (s *goSession) closing(duplex.StatusCode, string) { s.cancel() }

func (s *goSession) closeNow() { s.conn.CloseNow() }

func (s *goSession) describe() (string, string, string) {
	return "goroutine", s.conn.Subprotocol(), s.conn.Extensions()
}

func (s *goSession) queueState() (int, int64, int64) {
	return len(s.queue), s.queuedBytes.Load(), s.pending.Load()
}

func (s *goSession) expiryChanged() {
	select {
	case s.expiryWake <- struct{}{}:
	default:
	}
}

// readLoop reads messages until the connection ends. When the server
// closes it (the keeper's Close), Read returns once the close handshake
// is over.
func (s *goSession) readLoop() error {
	for {
		typ, p, err := s.conn.Read(context.Background())
		if err != nil {
			return err
		}
		s.received(typ, p)
		s.flush()
	}
}

// flush waits until the writer has written everything queued so far
// (session.drain).
func (s *goSession) flush() {
	if s.pending.Load() == 0 {
		return
	}
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	for s.pending.Load() > 0 {
		select {
		case <-s.wrote:
		case <-timer.C:
			// The queue may be empty: the writer is stuck on one message.
			s.slowConsumer(causeDrainTimeout, reasonQueueFull)
			return
		case <-s.ctx.Done():
			return
		}
	}
}

func (s *goSession) enqueue(m outMsg) bool {
	p := m.data
	if s.ctx.Err() != nil {
		return false
	}
	n := int64(len(p))
	// One message is always accepted into an empty queue, however large:
	// MaxMessageSize bounds it.
	if q := s.queuedBytes.Add(n); q > s.g.opts.SendQueueBytes && q != n {
		s.queuedBytes.Add(-n)
		s.slowConsumer(causeQueueBytes, reasonQueueFull)
		return false
	}
	s.pending.Add(1)
	select {
	case s.queue <- m:
		return true
	default:
		s.pending.Add(-1)
		s.queuedBytes.Add(-n)
		s.slowConsumer(causeQueueFull, reasonQueueFull)
		return false
	}
}

// writeLoop writes queued messages in order until the session ends.
// Messages still queued then are dropped: the close frame goes next.
func (s *goSession) writeLoop() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case m := <-s.queue:
			s.queuedBytes.Add(-int64(len(m.data)))
			if s.ctx.Err() != nil {
				return
			}
			// No deadline: a client that stops reading blocks this write
			// until the session closes (queue overflow or pong timeout),
			// and Close gives up on the blocked frame after CloseTimeout.
			var err error
			if m.prep != nil {
				err = s.conn.WritePrepared(context.Background(), m.prep)
			} else {
				err = s.conn.Write(context.Background(), m.typ, m.data)
			}
			s.pending.Add(-1)
			select {
			case s.wrote <- struct{}{}:
			default:
			}
			if err != nil {
				s.closeWith(0, "")
				return
			}
			s.wroteMsg(len(m.data))
		}
	}
}

// keep runs the heartbeat and token expiry on one timer.
//
// The heartbeat is a ping every PingInterval, each allowed PongTimeout for
// its pong; a late pong closes the connection (session.pongTimeout).
//
// Expiry closes the connection with 4401 when the credential runs out
// (expireIfDue). It is checked when the timer fires, so while a ping
// waits for its pong an expiry can be late by up to PongTimeout.
//
// When the session ends, keep sends the server's close frame, if the
// server chose one. Close returns once the client answers, or after
// CloseTimeout; meanwhile the reader goes on reading, so the answer is
// seen.
func (s *goSession) keep() {
	defer s.sendClose()
	g := s.g
	var nextPing time.Time // zero: no heartbeat
	if g.opts.PingInterval > 0 {
		nextPing = time.Now().Add(g.opts.PingInterval)
	}
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var wroteAtPong int64 // messages written before the last answered ping
	for {
		now := time.Now()
		wake := s.expireIfDue(now)
		if s.ctx.Err() != nil {
			return
		}
		if !nextPing.IsZero() && (wake.IsZero() || nextPing.Before(wake)) {
			wake = nextPing
		}
		var fired <-chan time.Time
		if !wake.IsZero() {
			t.Reset(wake.Sub(now))
			fired = t.C
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.expiryWake:
			continue
		case <-fired:
		}
		if nextPing.IsZero() || time.Now().Before(nextPing) {
			continue // an expiry check only
		}
		// Messages written before a ping that is answered were read.
		wroteBeforePing := s.msgsOut.Load()
		ctx, cancel := context.WithTimeout(s.ctx, g.opts.PongTimeout)
		rtt, err := s.conn.Ping(ctx)
		cancel()
		nextPing = time.Now().Add(g.opts.PingInterval)
		switch {
		case err == nil:
			g.metrics.pingRTT.Observe(rtt.Seconds())
			wroteAtPong = wroteBeforePing
		case s.ctx.Err() != nil:
			// Ending for another reason; the next round returns.
		case errors.Is(err, context.DeadlineExceeded):
			s.pongTimeout(s.msgsOut.Load() != wroteAtPong)
		default:
			// The connection is over; the reader will see why.
			s.closeWith(0, "")
		}
	}
}

func (s *goSession) sendClose() {
	if code, reason := s.closeCode(); code != 0 {
		s.closeErr = s.conn.Close(code, reason)
	}
}
