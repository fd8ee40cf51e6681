package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex"
)

// messageHandler acts on one message a client sent; replies go through
// s.send, which never blocks.
type messageHandler func(s *session, typ duplex.MessageType, p []byte)

// outMsg is a message waiting in a send queue. data is never modified
// once queued, so one slice can be queued to many sessions (fan-out).
type outMsg struct {
	typ  duplex.MessageType
	data []byte
	prep *duplex.PreparedMessage // set for fan-out: framed once for all
}

// session is one WebSocket connection and its three goroutines:
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
// logs the close.
//
// A refresh replaces ident.Claims on the reader, the only goroutine that
// reads them; the others read only ident.User and ident.Method.
type session struct {
	g      *Gateway
	id     uint64
	conn   *duplex.Conn
	ident  Identity // a refresh replaces its Claims (see above)
	remote string
	path   string
	handle messageHandler
	start  time.Time

	queue       chan outMsg
	queuedBytes atomic.Int64  // payload bytes in queue
	pending     atomic.Int64  // messages queued or being written
	wrote       chan struct{} // signalled by the writer after each write

	ctx    context.Context // done once the session starts to end
	cancel context.CancelFunc

	mu        sync.Mutex
	endCode   duplex.StatusCode // guarded by mu; the code the server closes with, 0 if none
	endReason string            // guarded by mu

	closeErr error // written by the keeper before it returns; what Close returned

	lastRefresh   time.Time     // used by the reader only (refresh.go)
	expires       atomic.Int64  // Unix ms when the credential runs out, 0 never (expiry.go)
	expiryChanged chan struct{} // one slot: setExpiry wakes the keeper

	msgsIn, msgsOut, bytesIn, bytesOut atomic.Int64
}

func (g *Gateway) newSession(conn *duplex.Conn, r *http.Request, id Identity, handle messageHandler) *session {
	s := &session{
		g:      g,
		id:     g.nextID.Add(1),
		conn:   conn,
		ident:  id,
		remote: r.RemoteAddr,
		path:   r.URL.Path,
		handle: handle,
		start:  time.Now(),
		queue:  make(chan outMsg, g.opts.SendQueue),
		wrote:  make(chan struct{}, 1),

		expiryChanged: make(chan struct{}, 1),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.setExpiry(id.Expires)
	return s
}

// run serves the session until it ends and logs how it ended.
func (s *session) run() {
	g := s.g
	if !g.hub.add(s) {
		// Shutdown began during the handshake.
		s.closeWith(duplex.StatusGoingAway, "server shutting down")
	} else {
		defer g.hub.remove(s)
	}
	g.metrics.connections.Inc()
	g.metrics.connectionsTotal.Inc()
	defer g.metrics.connections.Dec()
	g.log.Info("connected",
		"conn", s.id,
		"path", s.path,
		"remote", s.remote,
		"user", s.ident.User,
		"auth", s.ident.Method,
		"subprotocol", s.conn.Subprotocol(),
		"extensions", s.conn.Extensions())

	var wg sync.WaitGroup
	wg.Go(s.writeLoop)
	wg.Go(s.keep)
	g.startSession(s) // server-side subscriptions (control.go)
	err := s.readLoop()
	s.closeWith(0, "") // stop the others if the client or the network ended it
	wg.Wait()
	s.logClose(err)
}

// readLoop reads messages until the connection ends. When the server
// closes it (the keeper's Close), Read returns once the close handshake
// is over.
func (s *session) readLoop() error {
	for {
		typ, p, err := s.conn.Read(context.Background())
		if err != nil {
			return err
		}
		s.msgsIn.Add(1)
		s.bytesIn.Add(int64(len(p)))
		s.g.metrics.messagesIn.Inc()
		s.g.metrics.bytesIn.Add(float64(len(p)))
		if s.ctx.Err() != nil {
			// The session is ending: keep reading, so that the client's
			// answer to our close frame is seen, but act on nothing.
			continue
		}
		s.handle(s, typ, p)
		s.drain()
	}
}

// drainTimeout bounds how long the reader waits for its answers to go out.
const drainTimeout = 5 * time.Second

// drain waits until everything queued so far is written, before the next
// Read: the library answers a client's close frame inside Read, and no
// message may follow that answer, so an acknowledgement still queued when
// the client says goodbye would be lost. A client that does not read for
// drainTimeout is a slow consumer: the session closes with 1013.
func (s *session) drain() {
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

// send queues a message for the writer without blocking. When the queue
// is full (SendQueue messages, or SendQueueBytes bytes and at least one
// message) the client is not keeping up: the session is closed with 1013
// and the message dropped. It returns whether the message was queued.
func (s *session) send(typ duplex.MessageType, p []byte) bool {
	return s.enqueue(outMsg{typ: typ, data: p})
}

// sendPrepared queues a fan-out message: the writer sends its frame bytes,
// encoded once for every subscriber whose framing matches.
func (s *session) sendPrepared(typ duplex.MessageType, p []byte, pm *duplex.PreparedMessage) bool {
	return s.enqueue(outMsg{typ: typ, data: p, prep: pm})
}

func (s *session) enqueue(m outMsg) bool {
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
		s.overflow()
		return false
	}
}

// Why a session is closed as a slow consumer, for the log (issue 15
// item 9: the log line must say the real cause), and the reasons its
// 1013 close frame gives the client (docs/protocol.md).
const (
	causeQueueFull    = "send queue full (--send-queue messages)"
	causeQueueBytes   = "send queue full (--send-queue-bytes)"
	causeDrainTimeout = "drain timeout: the client read none of the answers to its last message in 5s"
	causeNotReading   = "not reading: messages were sent and no pong came within --pong-timeout"

	reasonQueueFull  = "send queue full"
	reasonNotReading = "not reading"
)

// overflow closes a session whose send queue is full with 1013.
func (s *session) overflow() { s.slowConsumer(causeQueueFull, reasonQueueFull) }

// slowConsumer closes with 1013 a session whose client does not read, and
// logs why.
func (s *session) slowConsumer(cause, reason string) {
	s.g.metrics.queueDrops.Inc()
	if s.closeWith(duplex.StatusTryAgainLater, reason) {
		s.g.metrics.slowConsumers.Inc()
		s.g.log.Warn("slow consumer, closing", "cause", cause,
			"conn", s.id, "remote", s.remote, "user", s.ident.User,
			"queued", len(s.queue), "queued_bytes", s.queuedBytes.Load(),
			"unwritten", s.pending.Load())
	}
}

// closeWith starts ending the session, from any goroutine, without
// blocking. With a code, the keeper sends it in a close frame at once; 0
// means the connection is over already (or failing, which the reader will
// see) and the writer and keeper just stop. Only the first call counts; it
// reports whether it was this one.
func (s *session) closeWith(code duplex.StatusCode, reason string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return false
	}
	s.endCode, s.endReason = code, reason
	s.cancel()
	return true
}

func (s *session) closeCode() (duplex.StatusCode, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endCode, s.endReason
}

// writeLoop writes queued messages in order until the session ends.
// Messages still queued then are dropped: the close frame goes next.
func (s *session) writeLoop() {
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
			s.msgsOut.Add(1)
			s.bytesOut.Add(int64(len(m.data)))
			s.g.metrics.messagesOut.Inc()
			s.g.metrics.bytesOut.Add(float64(len(m.data)))
		}
	}
}

// keep runs the heartbeat and token expiry on one timer.
//
// The heartbeat is a ping every PingInterval, each allowed PongTimeout for
// its pong. A late pong closes the connection with 1008 "pong timeout",
// unless the server wrote the client messages since its last answered
// ping: then the client has stopped reading (its acks may all fit in
// kernel buffers, so its queue never fills) and is closed with 1013 "not
// reading", as the slow consumer it is (issue 15 item 9). A peer that
// vanished while receiving looks the same from here and is closed the
// same way.
//
// Expiry closes the connection with 4401 when the credential runs out
// (expireIfDue). It is checked when the timer fires, so while a ping
// waits for its pong an expiry can be late by up to PongTimeout.
//
// When the session ends, keep sends the server's close frame, if the
// server chose one. Close returns once the client answers, or after
// CloseTimeout; meanwhile the reader goes on reading, so the answer is
// seen.
func (s *session) keep() {
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
		case <-s.expiryChanged:
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
		case errors.Is(err, context.DeadlineExceeded) && (s.msgsOut.Load() != wroteAtPong || s.pending.Load() > 0):
			s.slowConsumer(causeNotReading, reasonNotReading)
		case errors.Is(err, context.DeadlineExceeded):
			if s.closeWith(duplex.StatusPolicyViolation, "pong timeout") {
				g.metrics.pongTimeouts.Inc()
				g.log.Warn("pong timeout, closing", "conn", s.id, "remote", s.remote,
					"user", s.ident.User, "timeout", g.opts.PongTimeout)
			}
		default:
			// The connection is over; the reader will see why.
			s.closeWith(0, "")
		}
	}
}

func (s *session) sendClose() {
	if code, reason := s.closeCode(); code != 0 {
		s.closeErr = s.conn.Close(code, reason)
	}
}

// logClose logs how the session ended and counts it. err is what the
// reader got: the *duplex.CloseError of the connection, whoever closed it.
func (s *session) logClose(err error) {
	code, reason := s.closeCode()
	by := "server"
	var cause error
	var ce *duplex.CloseError
	if errors.As(err, &ce) {
		code, reason = ce.Code, ce.Reason
		if !ce.Sent {
			by = "client"
		}
		if ce.Err != nil && !errors.Is(ce.Err, net.ErrClosed) {
			cause = ce.Err
		}
	} else if err != nil {
		code, cause = duplex.StatusAbnormalClosure, err
	}
	if code == duplex.StatusAbnormalClosure {
		by = "network"
	}
	if cause == nil && s.closeErr != nil && errors.Is(s.closeErr, duplex.ErrCloseTimeout) {
		cause = duplex.ErrCloseTimeout // the client never answered our close
	}
	s.g.metrics.closed(code)
	attrs := []any{
		"conn", s.id,
		"remote", s.remote,
		"user", s.ident.User,
		"code", int(code),
		"reason", reason,
		"by", by,
		"duration", time.Since(s.start).Round(time.Millisecond),
		"msgs_in", s.msgsIn.Load(),
		"msgs_out", s.msgsOut.Load(),
		"bytes_in", s.bytesIn.Load(),
		"bytes_out", s.bytesOut.Load(),
	}
	if cause != nil {
		attrs = append(attrs, "error", cause.Error())
	}
	s.g.log.Info("closed", attrs...)
}
