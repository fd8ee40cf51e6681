package duplex

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// StatusCode is a close code (RFC 6455 §7.4).
type StatusCode uint16

// Close codes. 1005, 1006 and 1015 are never sent on the wire: a CloseError
// carries them to report a close without a code, a connection lost without a
// close frame, and a TLS failure.
const (
	StatusNormalClosure           StatusCode = 1000
	StatusGoingAway               StatusCode = 1001
	StatusProtocolError           StatusCode = 1002
	StatusUnsupportedData         StatusCode = 1003
	StatusNoStatusReceived        StatusCode = 1005
	StatusAbnormalClosure         StatusCode = 1006
	StatusInvalidFramePayloadData StatusCode = 1007
	StatusPolicyViolation         StatusCode = 1008
	StatusMessageTooBig           StatusCode = 1009
	StatusMandatoryExtension      StatusCode = 1010
	StatusInternalError           StatusCode = 1011
	StatusServiceRestart          StatusCode = 1012
	StatusTryAgainLater           StatusCode = 1013
	StatusBadGateway              StatusCode = 1014
	StatusTLSHandshake            StatusCode = 1015
)

var statusText = map[StatusCode]string{
	StatusNormalClosure:           "normal closure",
	StatusGoingAway:               "going away",
	StatusProtocolError:           "protocol error",
	StatusUnsupportedData:         "unsupported data",
	StatusNoStatusReceived:        "no status",
	StatusAbnormalClosure:         "abnormal closure",
	StatusInvalidFramePayloadData: "invalid payload data",
	StatusPolicyViolation:         "policy violation",
	StatusMessageTooBig:           "message too big",
	StatusMandatoryExtension:      "mandatory extension",
	StatusInternalError:           "internal error",
	StatusServiceRestart:          "service restart",
	StatusTryAgainLater:           "try again later",
	StatusBadGateway:              "bad gateway",
	StatusTLSHandshake:            "TLS handshake failure",
}

func (s StatusCode) String() string {
	if t, ok := statusText[s]; ok {
		return fmt.Sprintf("%d %s", uint16(s), t)
	}
	return fmt.Sprintf("%d", uint16(s))
}

// CloseError is how a connection ended. Every Read, Write or Ping on a
// closed connection returns one; read it with errors.As or CloseStatus.
//
// Sent tells who chose the code: false means the peer sent this close
// frame (Code and Reason are the peer's words); true means this side sent
// it, because the application called Close or because the peer broke the
// protocol or a limit, and Err says why.
type CloseError struct {
	Code   StatusCode
	Reason string
	Sent   bool
	Err    error
}

func (e *CloseError) Error() string {
	var s string
	switch {
	case e.Code == StatusAbnormalClosure:
		s = "duplex: connection lost without a close frame"
	case e.Sent:
		s = "duplex: closed with " + e.Code.String()
	default:
		s = "duplex: peer closed with " + e.Code.String()
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *CloseError) Unwrap() error { return e.Err }

// CloseStatus returns the close code carried by err, or 0 when err is not
// a *CloseError.
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// Close starts the close handshake with code and reason (at most 123
// bytes), waits for the peer's answer for at most the close timeout, then
// closes the transport. Messages the peer sent before its answer still
// reach a goroutine that keeps reading; if nobody reads (the program never
// did, or its reader stays away for 100 ms), Close reads and drops them
// itself. It returns nil when the handshake completed and the CloseError
// otherwise. Calling it again, or after the connection has ended, returns
// the connection's CloseError.
func (c *Conn) Close(code StatusCode, reason string) error {
	payload, err := closePayload(code, reason)
	if err != nil {
		return err
	}
	c.setErr(&CloseError{Code: code, Reason: reason, Sent: true, Err: net.ErrClosed})
	if !c.sendClose(payload) {
		<-c.done
		return c.err()
	}
	timer := time.NewTimer(c.closeTimeout)
	defer timer.Stop()
	// Wait for the peer's close frame. A program that reads keeps its
	// reader, which gets every message the peer sent before its close. If
	// the program never read, or its reader has been away for closeGrace,
	// Close reads (and drops messages) itself.
	takeover := c.readSem
	var grace <-chan time.Time
	if c.readEver.Load() {
		takeover = nil
		g := time.NewTimer(closeGrace)
		defer g.Stop()
		grace = g.C
	}
	for done := false; !done; {
		select {
		case takeover <- struct{}{}:
			c.readUntilClose()
			unlock(c.readSem)
			done = true
		case <-grace:
			takeover, grace = c.readSem, nil
		case <-c.peerClose:
			done = true
		case <-c.done:
			done = true
		case <-timer.C:
			done = true
		}
	}
	c.closeTransport()
	select {
	case <-c.peerClose:
		return nil
	default:
		return &CloseError{Code: code, Reason: reason, Sent: true, Err: ErrCloseTimeout}
	}
}

// closeGrace is how long Close lets a program's reader come back for the
// peer's close frame before reading itself: a reading loop is back in
// Read within microseconds of handling a message.
const closeGrace = 100 * time.Millisecond

// readUntilClose reads and drops messages until the peer's close frame,
// for at most the close timeout. The caller holds readSem.
func (c *Conn) readUntilClose() {
	c.readCtx = context.Background()
	c.tr.SetReadDeadline(time.Now().Add(c.closeTimeout))
	for c.readClosed() == nil {
		if !c.msgDone {
			if err := c.mr.discard(); err != nil {
				return
			}
			continue
		}
		if err := c.nextDataFrame(); err != nil {
			c.readError(err)
			return
		}
		c.mr.start()
	}
}

// CloseNow closes the transport at once, without a close handshake.
func (c *Conn) CloseNow() error {
	c.setErr(&CloseError{Code: StatusAbnormalClosure, Sent: true, Err: net.ErrClosed})
	c.closeTransport()
	return nil
}
