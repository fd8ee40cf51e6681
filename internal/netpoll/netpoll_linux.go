// Package netpoll watches many sockets for readability with one epoll
// instance and no goroutine per socket. Each registration is one-shot: a
// socket that became readable is reported once and must be re-armed after
// its bytes have been consumed, so only one worker at a time handles it.
package netpoll

import (
	"errors"
	"runtime"
	"sync"
	"syscall"
)

// Poller is an epoll instance with one goroutine waiting on it.
type Poller struct {
	epfd int
	wake int // eventfd that interrupts epoll_wait on Close

	mu     sync.Mutex
	ready  map[int32]func() // guarded by mu; fd -> callback
	closed bool             // guarded by mu
	done   chan struct{}
	work   chan func() // idle workers wait here
}

// workers is how many goroutines wait for events: enough that a burst of
// ready sockets rarely needs new goroutines, whose stacks must grow on
// first use. When all are busy an event gets a goroutine of its own, so a
// handler that blocks (waiting for a pong, say) never starves the others.
var workers = max(64, 8*runtime.GOMAXPROCS(0))

// ErrClosed is returned by Add and Rearm after Close.
var ErrClosed = errors.New("netpoll: poller closed")

// Supported reports whether this platform has a poller.
const Supported = true

// New starts a poller.
func New() (*Poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	r1, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if errno != 0 {
		syscall.Close(epfd)
		return nil, errno
	}
	wake := int(r1)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(wake)}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, wake, &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(wake)
		return nil, err
	}
	p := &Poller{epfd: epfd, wake: wake, ready: make(map[int32]func()), done: make(chan struct{}), work: make(chan func())}
	for range workers {
		go p.worker()
	}
	go p.loop()
	return p, nil
}

const oneShot = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// Add watches fd; onReady runs on its own goroutine the next time fd is
// readable or hung up. The caller re-arms with Rearm when done.
func (p *Poller) Add(fd int, onReady func()) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.ready[int32(fd)] = onReady
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: oneShot, Fd: int32(fd)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.mu.Lock()
		delete(p.ready, int32(fd))
		p.mu.Unlock()
		return err
	}
	return nil
}

// Rearm asks for the next readiness of fd.
func (p *Poller) Rearm(fd int) error {
	ev := syscall.EpollEvent{Events: oneShot, Fd: int32(fd)}
	return syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, fd, &ev)
}

// Remove stops watching fd. Call it before the fd is closed.
func (p *Poller) Remove(fd int) {
	p.mu.Lock()
	delete(p.ready, int32(fd))
	p.mu.Unlock()
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
}

// Close stops the poller; registered callbacks are not called again.
func (p *Poller) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	var one = [8]byte{1}
	syscall.Write(p.wake, one[:])
	<-p.done
	syscall.Close(p.wake)
	return syscall.Close(p.epfd)
}

func (p *Poller) worker() {
	for {
		select {
		case f := <-p.work:
			f()
		case <-p.done:
			return
		}
	}
}

func (p *Poller) loop() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == p.wake {
				return
			}
			p.mu.Lock()
			f := p.ready[ev.Fd]
			p.mu.Unlock()
			if f != nil {
				select {
				case p.work <- f:
				default:
					go f()
				}
			}
		}
	}
}
