//go:build linux

package duplex

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/duplexws/duplex/internal/netpoll"
)

// EventServer accepts WebSocket connections in the event loop; see
// ServeEvents.
type EventServer struct {
	ln  *EventConn
	srv *eventServer
}

// eventServer is what the connections of one ServeEvents share.
type eventServer struct {
	opts    AcceptOptions
	check   func(*http.Request) (any, int, string)
	timeout time.Duration

	mu      sync.Mutex
	pending []*EventConn // handshakes in progress, for the reaper; guarded by mu
	done    chan struct{}
}

// maxRequest bounds a handshake request, request line and headers.
const maxRequest = 8 << 10

// ServeEvents accepts connections on ln and serves them entirely in the
// event loop (epoll on Linux): the HTTP upgrade is read, checked and
// answered without a goroutine or net/http, with the same checks and
// refusals as Accept, and each accepted connection is an EventConn from
// its first byte, announced to h.OnOpen. ln must be a *net.TCPListener;
// ServeEvents takes over accepting from it, so nothing else may call its
// Accept. It returns at once; Close stops accepting.
//
// Compared with Accept and Detach behind net/http, nothing per connection
// is allocated for the handshake of a plain request (no Origin from
// another host, no subprotocol or compression to negotiate, no Check), so
// a storm of connections leaves no garbage behind.
func ServeEvents(ln net.Listener, h *EventHandler, opts *EventServerOptions) (*EventServer, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, errors.New("duplex: ServeEvents needs a *net.TCPListener")
	}
	var o EventServerOptions
	if opts != nil {
		o = *opts
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = defaultCloseTimeout
	}
	p, err := sharedPoller()
	if err != nil {
		return nil, err
	}
	fd, err := dupNonblock(tl)
	if err != nil {
		return nil, err
	}
	srv := &eventServer{opts: o.AcceptOptions, check: o.Check, timeout: o.HandshakeTimeout, done: make(chan struct{})}
	hh := EventHandler{}
	if h != nil {
		hh = *h
	}
	hh.srv = srv
	lc := &EventConn{fd: int32(fd), flags: evListener, h: &hh}
	lc.state.Store(stNotified) // a listener has no OnClose
	if err := p.Add(fd, lc); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	go srv.reap()
	return &EventServer{ln: lc, srv: srv}, nil
}

// Close stops accepting. Connections already accepted go on.
func (s *EventServer) Close() error {
	select {
	case <-s.srv.done:
		return nil
	default:
	}
	close(s.srv.done)
	s.ln.kill(&CloseError{Code: StatusAbnormalClosure, Err: net.ErrClosed})
	return nil
}

// acceptAll accepts every connection waiting on the listener. It reports
// whether the listener goes on.
func (c *EventConn) acceptAll() bool {
	srv := c.h.srv
	p, _ := sharedPoller()
	for {
		fd, _, err := syscall.Accept4(int(c.fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		switch err {
		case nil:
		case syscall.EINTR, syscall.ECONNABORTED:
			continue
		case syscall.EAGAIN:
			return true
		case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM:
			// Out of descriptors or memory: the waiting connections stay
			// queued; try again in a moment rather than spin.
			time.Sleep(10 * time.Millisecond)
			return true
		default:
			return c.state.Load()&stClosing == 0
		}
		// Like net.TCPConn by default: small frames go out at once.
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		nc := &EventConn{fd: int32(fd), h: c.h}
		// Until the upgrade, limit holds the handshake's deadline.
		nc.limit.Store(time.Now().Add(srv.timeout).UnixNano())
		nc.state.Store(stHandshake)
		srv.mu.Lock()
		srv.pending = append(srv.pending, nc)
		srv.mu.Unlock()
		if p == nil || p.Add(fd, nc) != nil {
			nc.state.Or(stNotified)
			syscall.Close(fd)
			nc.state.Store(stClosing | stNotified)
		}
	}
}

// reap drops the handshakes that have run out of time.
func (srv *eventServer) reap() {
	tick := time.NewTicker(max(srv.timeout/4, 50*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-srv.done:
			return
		case now := <-tick.C:
			srv.mu.Lock()
			kept := srv.pending[:0]
			for _, c := range srv.pending {
				s := c.state.Load()
				switch {
				case s&stHandshake == 0 || s&stClosing != 0:
				case now.UnixNano() > c.limit.Load():
					c.state.Or(stNotified) // it never opened
					c.kill(&CloseError{Code: StatusAbnormalClosure, Err: errors.New("duplex: handshake timed out")})
				default:
					kept = append(kept, c)
				}
			}
			clear(srv.pending[len(kept):])
			srv.pending = kept
			srv.mu.Unlock()
		}
	}
}

// readHandshake reads the HTTP request of a connection accepted by
// ServeEvents and answers it. It reports whether the connection goes on
// waiting for bytes.
func (c *EventConn) readHandshake() bool {
	rs := c.rs
	if rs == nil {
		rs = newEventRead()
		c.rs = rs
	}
	bp := eventBufs.Get().(*[]byte)
	defer eventBufs.Put(bp)
	buf := (*bp)[:cap(*bp)]
	for {
		n, err := netpoll.Read(int(c.fd), buf)
		if err == syscall.EAGAIN {
			return true
		}
		if err != nil || n == 0 {
			c.state.Or(stNotified) // it never opened
			c.lost(err)
			return false
		}
		rs.pending = append(rs.pending, buf[:n]...)
		end := requestEnd(rs.pending)
		if end < 0 {
			if len(rs.pending) > maxRequest {
				return c.refuseHandshake(&refusal{http.StatusRequestHeaderFieldsTooLarge, "request header too large"}, buf)
			}
			continue
		}
		if end > maxRequest {
			return c.refuseHandshake(&refusal{http.StatusRequestHeaderFieldsTooLarge, "request header too large"}, buf)
		}
		return c.upgrade(rs.pending[:end], buf)
	}
}

// upgrade answers the request head req, the start of c.rs.pending, and
// goes on to the frames that followed it.
func (c *EventConn) upgrade(req, buf []byte) bool {
	srv := c.h.srv
	var resp []byte
	out := eventBufs.Get().(*[]byte)
	defer eventBufs.Put(out)
	var x *eventExtra
	if key, ok := fastHandshake(req, &srv.opts); ok && srv.check == nil {
		resp = appendResponse((*out)[:0], key, "", "")
	} else {
		r, ref := parseRequest(req)
		var key string
		if ref == nil {
			key, ref = checkHandshake(r, &srv.opts)
		}
		var value any
		if ref == nil && srv.check != nil {
			var status int
			var reason string
			if value, status, reason = srv.check(r); status != 0 {
				if reason == "" {
					reason = http.StatusText(status)
				}
				ref = &refusal{status, reason}
			}
		}
		if ref != nil {
			return c.refuseHandshake(ref, buf)
		}
		cfg := negotiate(r, &srv.opts)
		sub, ext := cfg.subprotocol, cfg.extensions
		if sub != "" || ext != "" {
			x = &eventExtra{subprotocol: sub, extensions: ext, comp: cfg.comp, decomp: cfg.decomp, threshold: cfg.threshold}
		}
		if value != nil {
			c.SetValue(value)
		}
		resp = appendResponse((*out)[:0], []byte(key), sub, ext)
	}
	*out = resp[:0]
	if !c.writeHandshake(resp) {
		return false
	}
	limit := srv.opts.ReadLimit
	if limit == 0 {
		limit = defaultReadLimit
	}
	if srv.opts.CloseTimeout != defaultCloseTimeout {
		if x == nil {
			x = &eventExtra{}
		}
		x.closeTimeout = srv.opts.CloseTimeout
	} else if x != nil {
		x.closeTimeout = defaultCloseTimeout
	}
	if x != nil {
		if x.decomp != nil {
			c.flags |= evDeflate
		}
		c.x.Store(shareExtra(x))
	}
	c.limit.Store(limit)
	// Frames the client sent without waiting for the answer stay pending.
	rs := c.rs
	n := copy(rs.pending, rs.pending[len(req):])
	rs.pending = rs.pending[:n]
	if n == 0 {
		c.rs = nil
		freeEventRead(rs)
	} else {
		rs.ps = c.newParser()
	}
	c.state.And(^int64(stHandshake))
	if c.h.OnOpen != nil {
		c.h.OnOpen(c)
		if c.state.Load()&stClosing != 0 {
			return false
		}
	}
	return c.readSocket()
}

// writeHandshake writes a response to a socket that has just been read
// from, so it has room: a short write means the peer is gone.
func (c *EventConn) writeHandshake(p []byte) bool {
	for len(p) > 0 {
		n, err := syscall.Write(int(c.fd), p)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			c.state.Or(stNotified)
			c.lost(err)
			return false
		}
		p = p[n:]
	}
	return true
}

// refuseHandshake answers with an HTTP error, as Accept does, then lets
// the client read it before the socket closes.
func (c *EventConn) refuseHandshake(ref *refusal, buf []byte) bool {
	c.state.Or(stNotified) // it never opened
	b := fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n", ref.status, http.StatusText(ref.status))
	if name, value := ref.header(); name != "" {
		b = fmt.Appendf(b, "%s: %s\r\n", name, value)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(ref.reason)+1), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(append(b, ref.reason...), '\n')
	if !c.writeHandshake(b) {
		return false
	}
	e := &CloseError{Code: StatusAbnormalClosure, Err: ref.err()}
	c.end.CompareAndSwap(nil, e)
	if rs := c.rs; rs != nil {
		c.rs = nil
		freeEventRead(rs)
	}
	c.state.Or(stReadOver)
	c.state.And(^int64(stHandshake))
	syscall.Shutdown(int(c.fd), syscall.SHUT_WR)
	time.AfterFunc(defaultCloseTimeout, func() { c.kill(e) })
	return c.drain(buf)
}
