package duplex

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"

	"github.com/duplexws/duplex/internal/netpoll"
)

// EventHandler receives the messages of a connection handed to the event
// loop with Detach. Both functions run on worker goroutines; OnMessage is
// never called concurrently for one connection, and p is valid only until
// it returns.
type EventHandler struct {
	OnMessage func(c *Conn, typ MessageType, p []byte)
	OnClose   func(c *Conn, err error) // once, with the connection's CloseError
}

// Detach hands the reading of c to a shared event loop (epoll on Linux)
// and returns at once, so the calling goroutine, typically an HTTP handler,
// can end. While the connection is idle no goroutine waits on it and it
// holds no buffer; when bytes arrive, a worker reads the messages that are
// there, with the same checks as Read, and calls h.OnMessage. Write, Ping
// and Close work as before, from any goroutine; Read and Reader return
// ErrConcurrentRead. Detach works on plain TCP connections from Accept or
// Dial; for TLS and HTTP/2 it returns an error and c is unchanged.
func (c *Conn) Detach(h EventHandler) error {
	tcp, ok := c.tr.(*net.TCPConn)
	if !ok {
		return errors.New("duplex: Detach needs a plain TCP connection")
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return err
	}
	var fd int
	raw.Control(func(f uintptr) { fd = int(f) })
	p, err := sharedPoller()
	if err != nil {
		return err
	}
	if err := c.acquireRead(); err != nil {
		return err
	}
	// The read side stays taken for good: workers take evt.mu instead.
	c.evt = &eventState{h: h, raw: raw, fd: fd, poller: p}
	c.rd.raw, c.rd.nonblock = raw, true
	if err := p.Add(fd, c.onReadable); err != nil {
		c.evt, c.rd.nonblock = nil, false
		unlock(c.readSem)
		return err
	}
	return nil
}

// eventState is what a detached connection keeps.
type eventState struct {
	h      EventHandler
	raw    syscall.RawConn
	fd     int
	poller *netpoll.Poller
	mu     sync.Mutex // held by the worker reading the connection
	closed sync.Once
}

var (
	pollerOnce sync.Once
	poller     *netpoll.Poller
	pollerErr  error
)

func sharedPoller() (*netpoll.Poller, error) {
	pollerOnce.Do(func() { poller, pollerErr = netpoll.New() })
	return poller, pollerErr
}

// errWouldBlock: a detached connection has no more bytes for now.
var errWouldBlock = errors.New("duplex: no data ready")

// eventBufMax: larger message buffers are not kept for reuse.
const eventBufMax = 64 << 10

var eventBufs = sync.Pool{New: func() any { b := make([]byte, 0, readBufSize); return &b }}

// onReadable runs on a worker when the socket has bytes: it reads every
// message that is there, then re-arms the poller.
func (c *Conn) onReadable() {
	e := c.evt
	e.mu.Lock()
	defer e.mu.Unlock()
	bp := eventBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= eventBufMax {
			eventBufs.Put(bp)
		}
	}()
	ctx := context.Background()
	for {
		if e := c.readClosed(); e != nil {
			c.closeTransport()
			return
		}
		typ, p, err := c.readInto(ctx, (*bp)[:0])
		if err == errWouldBlock {
			if e.poller.Rearm(e.fd) != nil {
				c.closeTransport()
			}
			return
		}
		if err != nil {
			// The read path has closed the transport, or is lingering
			// before it does; either way the fd stays disarmed.
			return
		}
		*bp = p[:0]
		if e.h.OnMessage != nil {
			e.h.OnMessage(c, typ, p)
		}
		if c.rd.buffered() == 0 {
			// Nothing left in hand: let the poller say when more comes
			// rather than spend a read to learn that nothing has.
			if e.poller.Rearm(e.fd) != nil {
				c.closeTransport()
			}
			return
		}
	}
}

// closed tells the handler, once, that the connection has ended. It runs
// with the transport closed and the fd removed from the poller.
func (e *eventState) close(c *Conn) {
	e.closed.Do(func() {
		if e.h.OnClose != nil {
			go e.h.OnClose(c, c.err())
		}
	})
}
