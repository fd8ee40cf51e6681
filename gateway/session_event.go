package gateway

import (
	"context"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex"
)

// eventSession is a session on the library's event loop
// (duplex.Conn.Detach): no goroutine and no buffer while idle. The loop
// calls its handler when a message arrives; the gateway's sweep
// (heartbeat.go) pings it and checks its token's expiry; what it has to
// send is written by the gateway's pool of writers (writers.go), without
// waiting, or, when the client's socket is full, by a goroutine of its
// own until the queue is empty. A publisher never waits for a client and
// an idle client holds no stack.
//
// One cost of the loop: a client message whose answers do not go out
// keeps a loop worker waiting in flush, up to drainTimeout, as the
// reader of a goroutine session waits (the loop adds workers when all
// are stuck).
//
// It is what a plain TCP connection (ws://, or wss:// behind a proxy
// that terminates TLS) runs as, unless Options.NoEventLoop.
type eventSession struct {
	session
	conn *duplex.EventConn

	mu sync.Mutex
	// q is the send queue: allocated when a message comes, released once
	// it is written. While q is set, s is in the writers' line, or one of
	// them writes it (writeRound), or a goroutine of its own (writeLoop).
	q         *sendQueue // guarded by mu
	closeSent bool       // guarded by mu; the server's close frame went, or goes, out

	// The heartbeat (sweep, pong): beat > 0 is when the next ping is due,
	// beat < 0 minus when the ping waiting for its pong went out (Unix
	// ns). pingWrote and wroteAtPong hold the low bits of msgsOut when
	// that ping went out and before the last answered one.
	beat                   atomic.Int64
	pingWrote, wroteAtPong atomic.Uint32
}

// sendQueue is what a session has to send, and its writer's state.
type sendQueue struct {
	msgs     []outMsg      // guarded by eventSession.mu
	spare    []outMsg      // the writer's: the array of its last round, emptied, for the next
	bytes    int64         // guarded by eventSession.mu; payload bytes in msgs
	pings    int           // guarded by eventSession.mu; pings in msgs
	flushed  chan struct{} // guarded by eventSession.mu; made by a waiting flush, closed when the queue empties
	inFlight atomic.Int64  // messages (not pings) taken from msgs and not yet written
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
			s.ended(err, nil)
			s.g.hub.release()
		},
	}
}

// detach moves conn to the event loop as a session. It reports false,
// with conn unchanged, for a connection the loop cannot take: the caller
// runs a goroutine session instead. Once it returns true the connection
// slot belongs to the session, which gives it back when it ends.
//
// since holds the upgrade's offsets for server-side subscriptions: they
// are made before the session's value is set, so a message the client
// sends meanwhile waits in sessionOf and is handled after them, as a
// goroutine session reads its first message after them.
func (g *Gateway) detach(conn *duplex.Conn, r *http.Request, id *Identity, onWS bool, since map[string]uint64) bool {
	s := &eventSession{}
	g.initSession(&s.session, s, r, id, onWS)
	s.beat.Store(s.start + int64(g.opts.PingInterval))
	// The loop may call the handler as soon as Detach returns: the
	// callbacks wait in sessionOf until SetValue, after opened has
	// registered and logged the session.
	ec, err := conn.Detach(g.eventHandler())
	if err != nil {
		return false
	}
	s.conn = ec
	s.opened(r.URL.Path)
	g.startSession(&s.session, since) // server-side subscriptions (control.go)
	ec.SetValue(s)
	return true
}

// sessionOf returns the session of c. The loop may call the handler as
// soon as Detach has handed it the socket, before detach has set the
// value: then this waits until it has, microseconds, or as long as the
// server-side subscriptions take (with a Redis broker, a few round trips
// each). (Detach taking the value would spare the wait; the library has
// no such call yet.)
func sessionOf(c *duplex.EventConn) *eventSession {
	for i := 0; ; i++ {
		if s, ok := c.Value().(*eventSession); ok {
			return s
		}
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(100 * time.Microsecond)
		}
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
	if q := s.q; q != nil {
		n := len(q.msgs) - q.pings
		return n, q.bytes, int64(n) + q.inFlight.Load()
	}
	return 0, 0, 0
}

func (s *eventSession) enqueue(m outMsg) bool {
	n := int64(len(m.data))
	s.mu.Lock()
	if s.ending() {
		s.mu.Unlock()
		return false
	}
	q := s.q
	// One message is always accepted into an empty queue, however large:
	// MaxMessageSize bounds it.
	if q != nil && m.typ != pingMsg {
		cause := ""
		switch o := &s.g.opts; {
		case q.bytes+n > o.SendQueueBytes && q.bytes > 0:
			cause = causeQueueBytes
		case len(q.msgs)-q.pings >= o.SendQueue:
			cause = causeQueueFull
		}
		if cause != "" {
			s.mu.Unlock()
			s.slowConsumer(cause, reasonQueueFull)
			return false
		}
	}
	start := q == nil
	if start {
		q = sendQueues.Get().(*sendQueue)
		s.q = q
	}
	q.msgs = append(q.msgs, m)
	q.bytes += n
	if m.typ == pingMsg {
		q.pings++
	}
	s.mu.Unlock()
	if start {
		s.g.writers.push(s)
	}
	return true
}

// writeRound is one turn of a pool writer (writers.go) on s: it writes
// what s has queued without waiting, then lets the queue go if it is
// empty, puts s back in line if more came meanwhile, or, if the client's
// socket filled up, hands what is left to writeLoop, which waits.
func (s *eventSession) writeRound() {
	s.mu.Lock()
	q := s.q
	batch := q.msgs
	if len(batch) == 0 || s.ending() {
		s.finish(q, true)
		return
	}
	q.inFlight.Store(int64(len(batch) - q.pings))
	q.msgs, q.spare = q.spare, nil
	q.bytes, q.pings = 0, 0
	s.mu.Unlock()
	n, err := s.writeMsgs(q, batch, false)
	if err == duplex.ErrWouldBlock && !s.ending() {
		// The client's socket is full: what is left goes first, before what
		// came meanwhile, on a goroutine that waits for the client.
		s.mu.Lock()
		rest := make([]outMsg, 0, len(batch)-n+len(q.msgs))
		rest = append(rest, batch[n:]...)
		for _, m := range batch[n:] {
			q.bytes += int64(len(m.data))
			if m.typ == pingMsg {
				q.pings++
			}
		}
		q.msgs = append(rest, q.msgs...)
		q.inFlight.Store(0)
		s.mu.Unlock()
		clear(batch)
		go s.writeLoop(q)
		return
	}
	if err != nil && err != duplex.ErrWouldBlock {
		s.closeWith(0, "") // the connection is over: OnClose says why
	}
	clear(batch)
	q.inFlight.Store(0)
	s.mu.Lock()
	q.spare = batch[:0]
	if len(q.msgs) == 0 || s.ending() {
		s.finish(q, true)
		return
	}
	s.mu.Unlock()
	s.g.writers.push(s)
}

// finish ends the writing of q, whose queue is empty or whose session is
// ending: it releases q, wakes a waiting flush and sends the server's
// close frame if there is one, on a goroutine of its own when pool is
// set (a pool writer must not wait for one client). Its caller holds
// s.mu; finish unlocks it.
func (s *eventSession) finish(q *sendQueue, pool bool) {
	s.q = nil
	if q.flushed != nil {
		close(q.flushed)
	}
	q.release()
	code, reason := s.closeCode()
	send := code != 0 && !s.closeSent
	s.closeSent = s.closeSent || send
	s.mu.Unlock()
	switch {
	case !send:
	case pool:
		go s.sendClose(code, reason)
	default:
		s.sendClose(code, reason)
	}
}

// writeMsgs writes batch in order until it is done, the connection fails
// or the session ends, and returns how many messages went out. A pool
// writer calls it with wait false: it then also stops when the socket is
// full (duplex.ErrWouldBlock), and the last message counted may have gone
// out in part: the library keeps its end, which the next write sends
// first (writeLoop's first call waits for it). writeLoop calls it with
// wait true. The fan-out messages that follow each other go out together,
// up to 16 in a system call.
func (s *eventSession) writeMsgs(q *sendQueue, batch []outMsg, wait bool) (int, error) {
	ctx := context.Background()
	var pmv [16]*duplex.PreparedMessage
	i := 0
	for i < len(batch) && !s.ending() {
		m := &batch[i]
		if m.prep != nil {
			pms := pmv[:0]
			for j := i; j < len(batch) && batch[j].prep != nil && len(pms) < len(pmv); j++ {
				pms = append(pms, batch[j].prep)
			}
			var n int
			var err error
			if wait {
				n, err = s.conn.WritePreparedBatch(ctx, pms)
			} else if n, err = s.conn.TryWritePreparedBatch(pms); err == nil && n == 0 {
				err = duplex.ErrWouldBlock
			}
			q.inFlight.Add(-int64(n))
			for _, m := range batch[i : i+n] {
				s.wroteMsg(len(m.data))
			}
			i += n
			if err != nil {
				return i, err
			}
			continue
		}
		var sent bool
		var err error
		switch {
		case m.typ == pingMsg && wait:
			err = s.conn.Ping(ctx, nil)
			sent = err == nil
		case m.typ == pingMsg:
			sent, err = s.conn.TryPing(nil)
		case wait:
			err = s.conn.Write(ctx, m.typ, m.data)
			sent = err == nil
		default:
			sent, err = s.conn.TryWrite(m.typ, m.data)
		}
		if sent {
			if m.typ != pingMsg {
				q.inFlight.Add(-1)
				s.wroteMsg(len(m.data))
			}
			i++
		}
		if err != nil {
			return i, err
		}
	}
	return i, nil
}

// writeLoop writes q, round after round, until it is empty or the
// session ends; then it releases q, sends the server's close frame if
// there is one, and returns. It runs on a goroutine of its own, started
// by a pool writer that found the client's socket full: a write waits
// while it is.
func (s *eventSession) writeLoop(q *sendQueue) {
	// First the end of a message the socket took only part of, if any.
	if _, err := s.conn.WritePreparedBatch(context.Background(), nil); err != nil {
		s.closeWith(0, "")
	}
	var spare []outMsg
	for {
		s.mu.Lock()
		batch := q.msgs
		if len(batch) == 0 || s.ending() {
			q.spare = spare
			s.finish(q, false)
			return
		}
		// New messages go to the array of the last round: a client that
		// keeps receiving reuses two arrays.
		q.inFlight.Store(int64(len(batch) - q.pings))
		q.msgs, q.bytes, q.pings = spare, 0, 0
		s.mu.Unlock()
		if _, err := s.writeMsgs(q, batch, true); err != nil {
			s.closeWith(0, "") // the connection is over: OnClose says why
		}
		clear(batch)
		q.inFlight.Store(0)
		spare = batch[:0]
	}
}

// sendQueues keeps released queues, with their arrays, for the next
// sessions that have something to send: a fan-out makes thousands of
// queues that each live for one write.
var sendQueues = sync.Pool{New: func() any { return &sendQueue{msgs: make([]outMsg, 0, 4)} }}

// release puts q back in sendQueues with its arrays, unless they are too
// large to keep.
func (q *sendQueue) release() {
	clear(q.msgs)
	clear(q.spare)
	if cap(q.msgs) > 64 {
		q.msgs = nil
	}
	if cap(q.spare) > 64 {
		q.spare = nil
	}
	q.msgs, q.spare = q.msgs[:0], q.spare[:0]
	q.bytes, q.pings, q.flushed = 0, 0, nil
	q.inFlight.Store(0)
	sendQueues.Put(q)
}

// flush waits until what the handler queued is written (session.drain).
// The loop's worker waits here, so the client's next frame, perhaps its
// close frame, is read only after the answers went out.
func (s *eventSession) flush() {
	s.mu.Lock()
	q := s.q
	if q == nil || s.ending() {
		s.mu.Unlock()
		return
	}
	if q.flushed == nil {
		q.flushed = make(chan struct{})
	}
	done := q.flushed
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
	if s.q != nil {
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
	s.mu.Unlock()
	// Close waits while the socket is full: not on the caller, which may
	// hold a channel's lock.
	go s.sendClose(code, reason)
}

// sendClose sends the close frame. Close returns at once, or once the
// frame is in the socket; a client that does not answer is dropped after
// CloseTimeout, and OnClose's error says so (duplex.ErrCloseTimeout).
func (s *eventSession) sendClose(code duplex.StatusCode, reason string) {
	s.conn.Close(code, reason)
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
	beat := s.beat.Load()
	if beat < 0 {
		if ns+beat >= int64(s.g.opts.PongTimeout) {
			s.pongTimeout(uint32(s.msgsOut.Load()) != s.wroteAtPong.Load())
		}
		return
	}
	if ns < beat {
		return
	}
	s.pingWrote.Store(uint32(s.msgsOut.Load()))
	s.beat.Store(-ns)
	s.ping()
}

// ping sends the heartbeat's ping: from the sweep itself when nothing is
// queued, so that a round over thousands of idle sessions takes no queue
// and no writer; else after what is queued.
func (s *eventSession) ping() {
	s.mu.Lock()
	idle := s.q == nil
	s.mu.Unlock()
	if idle {
		sent, err := s.conn.TryPing(nil)
		switch {
		case err == nil:
			return
		case err != duplex.ErrWouldBlock:
			s.closeWith(0, "") // the connection is over: OnClose says why
			return
		case sent:
			// The socket took part of it: its end goes out when the
			// client reads, or the pong timeout closes the session.
			go s.conn.WritePreparedBatch(context.Background(), nil)
			return
		}
	}
	s.enqueue(outMsg{typ: pingMsg})
}

// pong takes the answer to the session's ping.
func (s *eventSession) pong(now time.Time) {
	sent := -s.beat.Load()
	if sent <= 0 {
		return // unsolicited (RFC 6455 §5.5.3): no answer to anything
	}
	ns := now.UnixNano()
	s.g.metrics.pingRTT.Observe(time.Duration(ns - sent).Seconds())
	s.wroteAtPong.Store(s.pingWrote.Load())
	s.beat.Store(ns + int64(s.g.opts.PingInterval))
}
