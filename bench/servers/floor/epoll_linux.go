package main

import (
	"net"
	"runtime"
	"syscall"
)

// fconn is all the epoll server keeps for a connection. An idle one has
// nil slices: its size is what an idle connection costs.
type fconn struct {
	fd       int32
	upgraded bool
	pending  []byte // input after the last whole frame, for the next read
	out      []byte // output the socket would not take yet
}

// serveEpoll runs one epoll loop on one thread: no goroutine and no buffer
// per connection. Reads go to one shared buffer, are echoed in place and
// written back at once; only a partial frame or a full socket leaves bytes
// with the connection.
func serveEpoll(addr string, compress bool) error {
	runtime.LockOSThread()
	lfd, err := listen(addr)
	if err != nil {
		return err
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	if err := epollCtl(epfd, syscall.EPOLL_CTL_ADD, lfd, syscall.EPOLLIN); err != nil {
		return err
	}
	s := &epollServer{epfd: epfd, compress: compress, buf: make([]byte, 1<<20), resp: make([]byte, 0, 512)}
	// One slot per possible descriptor from the start, so that growing the
	// table leaves no garbage in the resident size.
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < 1<<22 {
		s.conns = make([]*fconn, lim.Cur)
	}
	var events [256]syscall.EpollEvent
	for {
		n, err := syscall.EpollWait(epfd, events[:], -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == lfd {
				s.accept(lfd)
				continue
			}
			c := s.conns[fd]
			if c == nil {
				continue
			}
			switch {
			case ev.Events&(syscall.EPOLLERR|syscall.EPOLLHUP) != 0:
				s.close(c)
			case ev.Events&syscall.EPOLLOUT != 0:
				s.flush(c)
			case ev.Events&syscall.EPOLLIN != 0:
				s.read(c)
			}
		}
	}
}

type epollServer struct {
	epfd     int
	compress bool
	buf      []byte   // shared by every read
	resp     []byte   // shared by every handshake response
	conns    []*fconn // indexed by file descriptor
}

func listen(addr string) (int, error) {
	ta, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return 0, err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	sa := &syscall.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	if err := syscall.Bind(fd, sa); err != nil {
		return 0, err
	}
	return fd, syscall.Listen(fd, 4096)
}

func epollCtl(epfd, op, fd int, events uint32) error {
	return syscall.EpollCtl(epfd, op, fd, &syscall.EpollEvent{Events: events, Fd: int32(fd)})
}

func (s *epollServer) accept(lfd int) {
	for {
		fd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: accepted them all
		}
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		for fd >= len(s.conns) {
			s.conns = append(s.conns, make([]*fconn, len(s.conns)+1024)...)
		}
		s.conns[fd] = &fconn{fd: int32(fd)}
		if epollCtl(s.epfd, syscall.EPOLL_CTL_ADD, fd, syscall.EPOLLIN|syscall.EPOLLRDHUP) != nil {
			s.close(s.conns[fd])
		}
	}
}

func (s *epollServer) close(c *fconn) {
	syscall.Close(int(c.fd)) // also removes it from the epoll set
	s.conns[c.fd] = nil
}

// read reads once (level-triggered epoll calls again if more is waiting),
// echoes every whole frame and keeps the rest.
func (s *epollServer) read(c *fconn) {
	n0 := copy(s.buf, c.pending)
	n, err := syscall.Read(int(c.fd), s.buf[n0:])
	if err == syscall.EAGAIN {
		return
	}
	if err != nil || n == 0 {
		s.close(c)
		return
	}
	data := s.buf[:n0+n]
	if !c.upgraded {
		resp, used, err := handshake(s.resp[:0], data, s.compress)
		if err != nil {
			s.close(c)
			return
		}
		if used == 0 {
			c.pending = append(c.pending[:0], data...)
			return
		}
		if _, err := syscall.Write(int(c.fd), resp); err != nil {
			s.close(c)
			return
		}
		c.upgraded = true
		data = data[used:]
	}
	out, used, need, closing := echo(data)
	c.pending = append(c.pending[:0], data[used:]...)
	if len(c.pending) == 0 {
		c.pending = nil
	}
	if need+4096 > len(s.buf) {
		s.buf = make([]byte, need+4096)
	}
	if len(out) > 0 {
		w, err := syscall.Write(int(c.fd), out)
		if err != nil && err != syscall.EAGAIN {
			s.close(c)
			return
		}
		if w < len(out) {
			c.out = append(c.out[:0], out[max(w, 0):]...)
			epollCtl(s.epfd, syscall.EPOLL_CTL_MOD, int(c.fd), syscall.EPOLLOUT)
			return
		}
	}
	if closing {
		s.close(c)
	}
}

// flush writes output left over from a full socket and goes back to
// reading once it is all out.
func (s *epollServer) flush(c *fconn) {
	w, err := syscall.Write(int(c.fd), c.out)
	if err != nil && err != syscall.EAGAIN {
		s.close(c)
		return
	}
	c.out = c.out[max(w, 0):]
	if len(c.out) == 0 {
		c.out = nil
		epollCtl(s.epfd, syscall.EPOLL_CTL_MOD, int(c.fd), syscall.EPOLLIN|syscall.EPOLLRDHUP)
	}
}
