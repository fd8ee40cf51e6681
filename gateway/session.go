package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex"
)

// outMsg is a message waiting in a send queue. data is never modified
// once queued, so one slice can be queued to many sessions (fan-out).
type outMsg struct {
	typ  duplex.MessageType
	data []byte
	prep *duplex.PreparedMessage // set for fan-out: framed once for all
}

// session is one WebSocket connection: what the handlers, the channels and
// the logs know of it, whichever kind runs it. The kinds differ in how
// bytes move (sessionKind):
//
//   - an event session (session_event.go) is a *duplex.EventConn on the
//     library's event loop: plain TCP, ws:// or behind a TLS-terminating
//     proxy. It holds no goroutine and no buffer while idle;
//   - a goroutine session (session_goroutine.go) is a *duplex.Conn with a
//     reader, a writer and a keeper goroutine: TLS served by duplex itself,
//     HTTP/2 streams, other platforms, and Options.NoEventLoop.
//
// Its fields are sized for a million of them: an idle session costs what
// it holds (docs/scaling.md, "The gateway").
type session struct {
	g      *Gateway
	kind   sessionKind
	ident  atomic.Pointer[Identity] // shared by sessions with one credential; a refresh swaps in a copy
	remote string
	id     uint64
	start  int64 // Unix ns

	end atomic.Pointer[sessionEnd] // nil until the session starts to end; set once

	// subs are the channels s subscribes to: inline for one, since
	// most sessions have one or two (chanlist.go).
	subs chanList // guarded by channels.mu

	lastRefresh int64        // Unix ns; used by the handler only (refresh.go)
	expires     atomic.Int64 // Unix ms when the credential runs out, 0 never (expiry.go)

	msgsIn, msgsOut, bytesIn, bytesOut atomic.Int64

	subsEnded bool // guarded by channels.mu; leaveAll ran

	// onWS: the session serves /ws (channels), not /echo; only these
	// get server-side subscriptions and the API's subscribe commands.
	onWS bool

	hubIndex int32 // guarded by hub.mu; where s is in hub.sessions
}

// sessionEnd is how the server ends a session: made when it starts to,
// so that open sessions hold only a nil pointer.
type sessionEnd struct {
	code   duplex.StatusCode // the code of the server's close frame, 0 if none
	reason string
}

// sessionKind is what differs between the two kinds of session.
type sessionKind interface {
	// enqueue queues m without blocking; false: it was dropped, and the
	// session is ending (a full queue closes it with 1013).
	enqueue(m outMsg) bool
	// closing starts sending the close frame with code (0: none, the
	// connection is over already). closeWith calls it once.
	closing(code duplex.StatusCode, reason string)
	// flush waits, up to drainTimeout, until what is queued now is
	// written; a client that reads none of it is a slow consumer.
	flush()
	// expiryChanged tells the kind that s.expires moved.
	expiryChanged()
	// context is done once the session ends (context.Background for
	// kinds that keep none: check s.ending instead).
	context() context.Context
	// closeNow drops the connection without a close handshake.
	closeNow()
	// describe returns the kind's name ("event" or "goroutine") and the
	// negotiated subprotocol and extensions.
	describe() (kind, subprotocol, extensions string)
	// queueState returns what waits for the client, for the logs:
	// messages and bytes queued, and messages not yet written.
	queueState() (queued int, queuedBytes, unwritten int64)
}

func (g *Gateway) initSession(s *session, kind sessionKind, r *http.Request, id *Identity, onWS bool) {
	s.g = g
	s.kind = kind
	s.id = g.nextID.Add(1)
	s.ident.Store(id)
	s.remote = r.RemoteAddr
	s.onWS = onWS
	s.start = time.Now().UnixNano()
	s.setExpiry(id.Expires)
}

// identity returns the session's credential. Its Claims change only with
// a refresh, on the session's handler.
func (s *session) identity() *Identity { return s.ident.Load() }

// user is the identity's user, for logs.
func (s *session) user() string { return s.identity().User }

// ending reports whether the session has started to end.
func (s *session) ending() bool { return s.end.Load() != nil }

// context is done once the session ends, for the kinds that have one;
// callers check ending as well.
func (s *session) context() context.Context { return s.kind.context() }

// opened counts and logs a session of path that is about to serve
// messages. It returns false when the gateway is shutting down: the
// session is closed with 1001 then, and not registered.
func (s *session) opened(path string) bool {
	g := s.g
	added := g.hub.add(s)
	g.metrics.connections.Inc()
	g.metrics.connectionsTotal.Inc()
	kind, sub, ext := s.kind.describe()
	g.log.Info("connected",
		"conn", s.id,
		"session", kind,
		"path", path,
		"remote", s.remote,
		"user", s.user(),
		"auth", s.identity().Method,
		"subprotocol", sub,
		"extensions", ext)
	if !added {
		s.closeWith(duplex.StatusGoingAway, "server shutting down")
	}
	return added
}

// ended undoes opened once the connection is over and logs how it ended.
// closeErr is what the server's Close returned, if it sent one.
func (s *session) ended(err, closeErr error) {
	s.closeWith(0, "")
	s.g.channels.leaveAll(s)
	s.g.presence.leftAll(s) // leave events, the presence store (presence.go)
	s.g.channels.limiter.forget(s)
	// Logged and counted before it leaves the hub: whoever sees the
	// connection gone (Connections) sees its close counted.
	s.logClose(err, closeErr)
	s.g.hub.remove(s)
	s.g.metrics.connections.Dec()
}

// received counts a message from the client and hands it to the handler,
// unless the session is ending: then the message is read, so that the
// client's answer to our close frame is seen, but not acted on.
func (s *session) received(typ duplex.MessageType, p []byte) {
	s.msgsIn.Add(1)
	s.bytesIn.Add(int64(len(p)))
	s.g.metrics.messagesIn.Inc()
	s.g.metrics.bytesIn.Add(float64(len(p)))
	if s.ending() {
		return
	}
	if s.onWS {
		onAppMessage(s, typ, p)
	} else {
		onEchoMessage(s, typ, p)
	}
}

// wroteMsg counts a message written to the client.
func (s *session) wroteMsg(n int) {
	s.msgsOut.Add(1)
	s.bytesOut.Add(int64(n))
	s.g.metrics.messagesOut.Inc()
	s.g.metrics.bytesOut.Add(float64(n))
}

// drainTimeout bounds how long the handler waits for its answers to go
// out (sessionKind.flush).
const drainTimeout = 5 * time.Second

// drain waits until everything queued so far is written: the library
// answers a client's close frame as it reads it, and no message may follow
// that answer, so an acknowledgement still queued when the client says
// goodbye would be lost. A client that does not read for drainTimeout is a
// slow consumer: the session closes with 1013.
func (s *session) drain() { s.kind.flush() }

// send queues a message without blocking. When the queue is full
// (SendQueue messages, or SendQueueBytes bytes and at least one message)
// the client is not keeping up: the session is closed with 1013 and the
// message dropped. It returns whether the message was queued.
func (s *session) send(typ duplex.MessageType, p []byte) bool {
	return s.kind.enqueue(outMsg{typ: typ, data: p})
}

// sendPrepared queues a fan-out message: its frame bytes are encoded
// once for every subscriber whose framing matches.
func (s *session) sendPrepared(typ duplex.MessageType, p []byte, pm *duplex.PreparedMessage) bool {
	return s.kind.enqueue(outMsg{typ: typ, data: p, prep: pm})
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
// logs why with what was waiting for it.
func (s *session) slowConsumer(cause, reason string) {
	s.g.metrics.queueDrops.Inc()
	s.closeAfter(duplex.StatusTryAgainLater, reason, func() {
		queued, queuedBytes, unwritten := s.kind.queueState()
		s.g.metrics.slowConsumers.Inc()
		s.g.log.Warn("slow consumer, closing", "cause", cause,
			"conn", s.id, "remote", s.remote, "user", s.user(),
			"queued", queued, "queued_bytes", queuedBytes,
			"unwritten", unwritten)
	})
}

// pongTimeout closes a session whose pong is late with 1008 "pong
// timeout", unless the server wrote the client messages since its last
// answered ping (wroteSince) or some wait to be written: then the client
// has stopped reading (its acks may all fit in kernel buffers, so its
// queue never fills) and is closed with 1013 "not reading", as the slow
// consumer it is (issue 15 item 9). A peer that vanished while receiving
// looks the same from here and is closed the same way.
func (s *session) pongTimeout(wroteSince bool) {
	if _, _, unwritten := s.kind.queueState(); wroteSince || unwritten > 0 {
		s.slowConsumer(causeNotReading, reasonNotReading)
		return
	}
	s.closeAfter(duplex.StatusPolicyViolation, "pong timeout", func() {
		s.g.metrics.pongTimeouts.Inc()
		s.g.log.Warn("pong timeout, closing", "conn", s.id, "remote", s.remote,
			"user", s.user(), "timeout", s.g.opts.PongTimeout)
	})
}

// closeWith starts ending the session, from any goroutine, without
// blocking. With a code, the session's close frame carries it; 0 means
// the connection is over already (or failing, which the reader will see).
// Only the first call counts; it reports whether it was this one.
func (s *session) closeWith(code duplex.StatusCode, reason string) bool {
	return s.closeAfter(code, reason, nil)
}

// closeAfter is closeWith that, when this call is the first, runs first
// before the close starts: the log line that says why comes before the
// one that says the session closed, and a metric counts the cause before
// anyone can see the session gone.
func (s *session) closeAfter(code duplex.StatusCode, reason string, first func()) bool {
	if s.end.Load() != nil || !s.end.CompareAndSwap(nil, &sessionEnd{code: code, reason: reason}) {
		return false
	}
	if first != nil {
		first()
	}
	s.kind.closing(code, reason)
	return true
}

func (s *session) closeCode() (duplex.StatusCode, string) {
	if e := s.end.Load(); e != nil {
		return e.code, e.reason
	}
	return 0, ""
}

// logClose logs how the session ended and counts it. err is the
// connection's end: its *duplex.CloseError, whoever closed it. closeErr is
// what the server's Close returned.
func (s *session) logClose(err, closeErr error) {
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
	if cause == nil && closeErr != nil && errors.Is(closeErr, duplex.ErrCloseTimeout) {
		cause = duplex.ErrCloseTimeout // the client never answered our close
	}
	s.g.metrics.closed(code)
	attrs := []any{
		"conn", s.id,
		"remote", s.remote,
		"user", s.user(),
		"code", int(code),
		"reason", reason,
		"by", by,
		"duration", time.Duration(time.Now().UnixNano() - s.start).Round(time.Millisecond),
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
