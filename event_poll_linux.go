//go:build linux

package duplex

import (
	"net"
	"sync"
	"syscall"

	"github.com/duplexws/duplex/internal/netpoll"
)

// The event loop's glue: the poller shared by every EventConn, the state
// word that says who uses a connection's descriptor and what has happened
// to it, and the hand-off of readable sockets to workers.

// The state word: the count of goroutines using the file descriptor in
// its low 32 bits, then flags. The descriptor is closed when stClosing is
// set and the count drops to zero, so no number is used after it is
// closed (and perhaps reused by another connection).
const (
	refMask     = 1<<32 - 1
	stClosing   = 1 << 32 // no new users; the last one out closes
	stReading   = 1 << 33 // a worker is reading
	stCloseSent = 1 << 34 // our close frame went out; set under wmu
	stReadOver  = 1 << 35 // the read side ended: input is dropped until EOF (endStep.linger)
	stNotified  = 1 << 36 // OnClose has been called
	stHandshake = 1 << 37 // ServeEvents is reading the HTTP request
	stEdge      = 1 << 38 // the poller reports every arrival (netpoll Follow)
	stAgain     = 1 << 39 // bytes arrived while a worker was reading
	stHup       = 1 << 40 // the peer hung up: read until EOF, not a short read
	stWriteWait = 1 << 41 // a write holding wmu waits for room in the socket
)

var (
	pollerOnce sync.Once
	poller     *netpoll.Poller[EventConn]
	pollerErr  error
)

func sharedPoller() (*netpoll.Poller[EventConn], error) {
	pollerOnce.Do(func() { poller, pollerErr = netpoll.New((*EventConn).onReadable) })
	return poller, pollerErr
}

// acquire registers a user of the descriptor; it fails once the
// connection is closing.
func (c *EventConn) acquire() bool {
	for {
		s := c.state.Load()
		if s&stClosing != 0 {
			return false
		}
		if c.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// release ends a use; the last user of a closing connection closes it.
func (c *EventConn) release() {
	if s := c.state.Add(-1); s&refMask == 0 && s&stClosing != 0 {
		c.destroy()
	}
}

// kill ends the connection now, recording e unless an ending is already
// known. The socket is shut down at once, waking a writer blocked on it;
// the descriptor is closed when its last user leaves.
func (c *EventConn) kill(e *CloseError) {
	c.end.CompareAndSwap(nil, e)
	if !c.acquire() {
		return
	}
	c.state.Or(stClosing)
	syscall.Shutdown(int(c.fd), syscall.SHUT_RDWR)
	c.release()
}

// destroy runs once, when the connection is closing and unused.
func (c *EventConn) destroy() {
	if p, _ := sharedPoller(); p != nil {
		p.Remove(int(c.fd), c)
	}
	syscall.Close(int(c.fd))
	c.wmu.Lock()
	c.rest = nil // never to be sent
	c.wmu.Unlock()
	if x := c.x.Load(); x != nil && x.decomp != nil {
		x.decomp.Done()
	}
	c.notify()
}

// notify calls OnClose, once.
func (c *EventConn) notify() {
	if c.state.Or(stNotified)&stNotified == 0 && c.h.OnClose != nil {
		go c.h.OnClose(c, c.endErr())
	}
}

// endErr is the connection's CloseError, for calls made after its end.
func (c *EventConn) endErr() error {
	if e := c.end.Load(); e != nil {
		return e
	}
	return &CloseError{Code: StatusAbnormalClosure, Err: net.ErrClosed}
}

// onReadable runs on a worker when the socket has bytes or was hung up.
//
// A connection is watched one-shot until it is open (a listener always),
// then edge-triggered: every arrival is reported and nothing is re-armed,
// which saves a system call per message. An arrival reported while a
// worker reads is left to that worker, which reads again before it lets
// go of the read side. hup says the peer has shut down its side: from
// then on a short read does not prove the socket empty, since the hang-up
// may have come in the same edge as the bytes read, and only a read that
// returns 0 shows it.
func (c *EventConn) onReadable(hup bool) {
	if hup {
		c.state.Or(stHup)
	}
	// Take the read side; an event for a connection that has ended, or
	// one a worker already reads, is dropped.
	for {
		s := c.state.Load()
		if s&stClosing != 0 {
			return
		}
		if s&stReading != 0 {
			if s&stEdge == 0 || c.state.CompareAndSwap(s, s|stAgain) {
				return
			}
			continue
		}
		if c.state.CompareAndSwap(s, (s+1)|stReading) {
			break
		}
	}
	p, _ := sharedPoller()
	for {
		var more bool
		switch {
		case c.flags&evListener != 0:
			more = c.acceptAll()
		case c.state.Load()&stHandshake != 0:
			more = c.readHandshake()
		default:
			more = c.readSocket()
		}
		s := c.state.Load()
		if more && s&(stEdge|stHandshake) == 0 && c.flags&evListener == 0 {
			// Open now: from here on every arrival is reported, and
			// bytes already waiting at once (to this worker, as stAgain).
			c.state.Or(stEdge)
			if p == nil || p.Follow(int(c.fd)) != nil {
				c.kill(&CloseError{Code: StatusAbnormalClosure, Err: net.ErrClosed})
				more = false
			}
		}
		if !more {
			c.state.And(^int64(stReading | stAgain))
			break
		}
		if c.takeAgain() {
			continue
		}
		if c.state.Load()&stEdge == 0 {
			// Readiness comes back at once if bytes arrived meanwhile.
			if p == nil || p.Rearm(int(c.fd)) != nil {
				c.kill(&CloseError{Code: StatusAbnormalClosure, Err: net.ErrClosed})
			}
		}
		break
	}
	c.release()
}

// takeAgain lets go of the read side, unless bytes were reported while
// the worker read: then it keeps it and reports true.
func (c *EventConn) takeAgain() bool {
	for {
		s := c.state.Load()
		if s&stAgain != 0 {
			if c.state.CompareAndSwap(s, s&^stAgain) {
				return true
			}
			continue
		}
		if c.state.CompareAndSwap(s, s&^stReading) {
			return false
		}
	}
}
