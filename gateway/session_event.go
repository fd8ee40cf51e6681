package gateway

import (
	"context"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex"
)

// eventSession is a session on the library's event loop
// (duplex.Conn.Detach): no goroutine and no buffer while idle. The loop
// calls its handler when a message arrives; Sweep (heartbeat.go) pings it
// and checks its token's expiry; a goroutine is started only to write,
// while it has something queued, and ends when the queue is empty, so a
// publisher never waits for a client and an idle client holds no stack.
//
// It is what a plain TCP connection (ws://, or wss:// behind a proxy
// that terminates TLS) runs as, unless Options.NoEventLoop.
type eventSession struct {
	session
	conn *duplex.EventConn

	// The send queue, allocated when a message comes and released once
	// written. One goroutine at a time writes (writing); messages queued
	// meanwhile go out in its next round.
	queue       []outMsg      // guarded by mu
	queuedBytes int64         // guarded by mu; payload bytes in queue
	writing     bool          // guarded by mu; a writer goroutine runs
	flushed     chan struct{} // guarded by mu; made by a waiting flush, closed when the queue empties
	closeSent   bool          // guarded by mu; the server's close frame went, or goes, out
	inFlight    atomic.Int64  // messages taken from queue and not yet written

	// Heartbeat state, Unix ns: read and written by the sweep and OnPong.
	nextPing    atomic.Int64 // when the next ping is due
	pingSent    atomic.Int64 // when the unanswered ping went out, 0 if none
	pingWrote   atomic.Int64 // msgsOut when that ping was queued
	wroteAtPong atomic.Int64 // msgsOut before the last answered ping

	closeErr error // written by the goroutine that sent the close frame
}

// pingMsg marks a ping in the send queue.
const pingMsg duplex.MessageType = 0

// eventHandler is the one handler of every event session: the session
// is the EventConn's Value.
func (g *Gateway) eventHandler() *duplex.EventHandler {
	return &g.events
}

func newEventHandler() duplex.EventHandler {
	return duplex.EventHandler{
		OnMessage: func(c *duplex.EventConn, typ duplex.MessageType, p []byte) {
			s := sessionOf(c)
			s.received(typ, p)
			s.flush()
		},
		OnPong: func(c *duplex.EventConn, p []byte) {
			sessionOf(c).pong(time.Now())
		},
		OnClose: func(c *duplex.EventConn, err error) {
			s := sessionOf(c)
			s.mu.Lock()
			closeErr := s.closeErr
			s.mu.Unlock()
			s.ended(err, closeErr)
			s.g.hub.release()
		},
	}
}

// detach moves conn to the event loop as a session. It reports false,
// with conn unchanged, for a connection the loop cannot take: the caller
// runs a goroutine session instead. Once it returns true the connection
// slot belongs to the session, which gives it back when it ends.
func (g *Gateway) detach(conn *duplex.Conn, r *http.Request, id *Identity, handle messageHandler) bool {
	s := &eventSession{}
	g.initSession(&s.session, s, r, id, handle)
	s.nextPing.Store(s.start + int64(g.opts.PingInterval))
	// The session is the connection's Value before the loop sees a byte,
	// so every callback finds it.
	ec, err := conn.Detach(g.eventHandler())
	if err != nil {
		return false
	}
	s.conn = ec
	s.opened()
	ec.SetValue(s)
	return true
}

// sessionOf returns the session of c. The loop may call the handler as
// soon as Detach has handed it the socket, before detach has set the
// value: then this waits the microseconds until it has. (Detach taking
// the value would spare the wait; the library has no such call yet.)
func sessionOf(c *duplex.EventConn) *eventSession {
	for {
		if s, ok := c.Value().(*eventSession); ok {
			return s
		}
		runtime.Gosched()
	}
}

func (s *eventSession) context() context.Context { return context.Background() }

func (s *eventSession) closeNow() { s.conn.CloseNow() }

func (s *eventSession) expiryChanged() {} // the sweep reads s.expires

func (s *eventSession) describe() (string, string, string) {
	return "event", s.conn.Subprotocol(), s.conn.Extensions()
}

// queueState returns what waits for the client, for the logs.
func (s *eventSession) queueState() (queued int, queuedBytes, unwritten int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue), s.queuedBytes, int64(len(s.queue)) + s.inFlight.Load()
}

func (s *eventSession) enqueue(m outMsg) bool {
	n := int64(len(m.data))
	s.mu.Lock()
	if s.over.Load() {
		s.mu.Unlock()
		return false
	}
	o := &s.g.opts
	// One message is always accepted into an empty queue, however large:
	// MaxMessageSize bounds it.
	cause := ""
	switch {
	case m.typ != pingMsg && s.queuedBytes+n > o.SendQueueBytes && s.queuedBytes > 0:
		cause = causeQueueBytes
	case m.typ != pingMsg && len(s.queue) >= o.SendQueue:
		cause = causeQueueFull
	}
	if cause != "" {
		s.mu.Unlock()
		s.slowConsumer(cause, reasonQueueFull)
		return false
	}
	if s.queue == nil {
		s.queue = make([]outMsg, 0, 2)
	}
	s.queue = append(s.queue, m)
	s.queuedBytes += n
	start := !s.writing
	s.writing = true
	s.mu.Unlock()
	if start {
		go s.writeLoop()
	}
	return true
}

// writeLoop writes the queue, round after round, until it is empty or
// the session ends; then it sends the server's close frame, if there is
// one, and returns. It runs on a goroutine of its own: a write waits
// while the client's socket is full.
//
// EventConn has no call that writes several messages in one system call
// yet, so a round writes its messages one by one (a writev per message).
func (s *eventSession) writeLoop() {
	var spare []outMsg
	for {
		s.mu.Lock()
		batch := s.queue
		if len(batch) == 0 || s.over.Load() {
			s.queue, s.queuedBytes = nil, 0
			s.writing = false
			if s.flushed != nil {
				close(s.flushed)
				s.flushed = nil
			}
			code, reason := s.endCode, s.endReason
			send := s.over.Load() && code != 0 && !s.closeSent
			if send {
				s.closeSent = true
			}
			s.mu.Unlock()
			if send {
				s.sendClose(code, reason)
			}
			return
		}
		// New messages go to the array of the last round: a client that
		// keeps receiving reuses two arrays.
		s.queue, s.queuedBytes = spare, 0
		s.inFlight.Store(int64(len(batch)))
		s.mu.Unlock()
		for i := range batch {
			if s.ending() {
				break
			}
			m := &batch[i]
			var err error
			switch {
			case m.typ == pingMsg:
				err = s.conn.Ping(context.Background(), nil)
			case m.prep != nil:
				err = s.conn.WritePrepared(context.Background(), m.prep)
			default:
				err = s.conn.Write(context.Background(), m.typ, m.data)
			}
			s.inFlight.Add(-1)
			if err != nil {
				s.closeWith(0, "") // the connection is over: OnClose says why
				break
			}
			if m.typ != pingMsg {
				s.wroteMsg(len(m.data))
			}
		}
		clear(batch)
		s.inFlight.Store(0)
		spare = batch[:0]
	}
}

// flush waits until what the handler queued is written (session.drain).
// The loop's worker waits here, so the client's next frame, perhaps its
// close frame, is read only after the answers went out.
func (s *eventSession) flush() {
	s.mu.Lock()
	if !s.writing || s.over.Load() {
		s.mu.Unlock()
		return
	}
	if s.flushed == nil {
		s.flushed = make(chan struct{})
	}
	done := s.flushed
	s.mu.Unlock()
	t := time.NewTimer(drainTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.slowConsumer(causeDrainTimeout, reasonQueueFull)
	}
}

// closing sends the close frame: at once if no writer runs, else after
// the message the writer is on. A writer stuck on a client that does not
// read is given CloseTimeout, then the connection is dropped.
func (s *eventSession) closing(code duplex.StatusCode, reason string) {
	if code == 0 {
		return
	}
	s.mu.Lock()
	if s.writing {
		s.mu.Unlock()
		time.AfterFunc(s.g.opts.CloseTimeout, func() {
			s.mu.Lock()
			stuck := !s.closeSent
			s.mu.Unlock()
			if stuck {
				s.conn.CloseNow()
			}
		})
		return
	}
	s.closeSent = true
	s.queue, s.queuedBytes = nil, 0
	s.mu.Unlock()
	// Close waits while the socket is full: not on the caller, which may
	// hold a channel's lock.
	go s.sendClose(code, reason)
}

func (s *eventSession) sendClose(code duplex.StatusCode, reason string) {
	err := s.conn.Close(code, reason)
	s.mu.Lock()
	s.closeErr = err
	s.mu.Unlock()
}

// sweep is the heartbeat and token expiry of one session, called by the
// gateway's sweep (heartbeat.go) every tick: a ping every PingInterval,
// each allowed PongTimeout for its pong (session.pongTimeout), and a
// close with 4401 once the credential has run out (expireIfDue).
func (s *eventSession) sweep(now time.Time) {
	s.expireIfDue(now)
	if s.ending() || s.g.opts.PingInterval <= 0 {
		return
	}
	ns := now.UnixNano()
	if sent := s.pingSent.Load(); sent != 0 {
		if ns-sent >= int64(s.g.opts.PongTimeout) {
			s.pongTimeout(s.msgsOut.Load() != s.wroteAtPong.Load())
		}
		return
	}
	if ns < s.nextPing.Load() {
		return
	}
	s.pingWrote.Store(s.msgsOut.Load())
	s.pingSent.Store(ns)
	s.enqueue(outMsg{typ: pingMsg})
}

// pong takes the answer to the session's ping.
func (s *eventSession) pong(now time.Time) {
	sent := s.pingSent.Load()
	if sent == 0 {
		return // unsolicited (RFC 6455 §5.5.3): no answer to anything
	}
	ns := now.UnixNano()
	s.g.metrics.pingRTT.Observe(time.Duration(ns - sent).Seconds())
	s.wroteAtPong.Store(s.pingWrote.Load())
	s.nextPing.Store(ns + int64(s.g.opts.PingInterval))
	s.pingSent.Store(0)
}
