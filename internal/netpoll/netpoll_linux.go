// Package netpoll watches many sockets for readability with one epoll
// instance and no goroutine per socket. Each registration is one-shot: a
// socket that became readable is reported once and must be re-armed after
// its bytes have been consumed, so only one worker at a time handles it.
//
// What the poller keeps per socket is one pointer in a table indexed by
// file descriptor; the table grows in chunks as descriptors do.
package netpoll

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Poller is an epoll instance with one goroutine waiting on it. T is what
// the owner keeps per socket; onReady gets it when the socket is ready.
type Poller[T any] struct {
	epfd    int
	wake    int // eventfd that interrupts epoll_wait on Close
	onReady func(*T)

	table  [tableChunks]atomic.Pointer[chunk[T]]
	grow   sync.Mutex
	closed atomic.Bool
	done   chan struct{}
	work   chan *T // ready sockets waiting for a worker
}

// queueSize is how many ready sockets may wait for a worker. When the
// queue is full the loop waits for room, so a burst (every idle connection
// pinged at once) waits in the kernel rather than getting a goroutine, and
// a stack, each. Only when no room comes for stuckAfter, because the
// workers are stuck in handlers that block, does an event get a goroutine
// of its own, so a blocking handler never starves the others.
const (
	queueSize  = 1 << 12
	stuckAfter = 10 * time.Millisecond
)

// The table holds chunkSize descriptors a chunk, up to 2^24 descriptors:
// far above any file limit a process is given in practice.
const (
	chunkBits   = 12
	chunkSize   = 1 << chunkBits
	tableChunks = 1 << 12
)

type chunk[T any] [chunkSize]atomic.Pointer[T]

// workers is how many goroutines run handlers.
var workers = max(16, 4*runtime.GOMAXPROCS(0))

// ErrClosed is returned by Add and Rearm after Close.
var ErrClosed = errors.New("netpoll: poller closed")

// errRange is returned by Add for a descriptor beyond the table.
var errRange = errors.New("netpoll: file descriptor out of range")

// Supported reports whether this platform has a poller.
const Supported = true

// New starts a poller that calls onReady on a worker goroutine for each
// readiness of a registered socket.
func New[T any](onReady func(*T)) (*Poller[T], error) {
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
	p := &Poller[T]{epfd: epfd, wake: wake, onReady: onReady, done: make(chan struct{}), work: make(chan *T, queueSize)}
	for range workers {
		go p.worker()
	}
	go p.loop()
	return p, nil
}

const oneShot = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// slot returns the table entry of fd, making its chunk when make is set.
func (p *Poller[T]) slot(fd int, make bool) *atomic.Pointer[T] {
	if fd < 0 || fd >= tableChunks*chunkSize {
		return nil
	}
	ch := p.table[fd>>chunkBits].Load()
	if ch == nil {
		if !make {
			return nil
		}
		p.grow.Lock()
		if ch = p.table[fd>>chunkBits].Load(); ch == nil {
			ch = new(chunk[T])
			p.table[fd>>chunkBits].Store(ch)
		}
		p.grow.Unlock()
	}
	return &ch[fd&(chunkSize-1)]
}

// Add watches fd for t; onReady(t) runs the next time fd is readable or
// hung up. The caller re-arms with Rearm when done.
func (p *Poller[T]) Add(fd int, t *T) error {
	if p.closed.Load() {
		return ErrClosed
	}
	s := p.slot(fd, true)
	if s == nil {
		return errRange
	}
	s.Store(t)
	ev := syscall.EpollEvent{Events: oneShot, Fd: int32(fd)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		s.CompareAndSwap(t, nil)
		return err
	}
	return nil
}

// Rearm asks for the next readiness of fd.
func (p *Poller[T]) Rearm(fd int) error {
	if p.closed.Load() {
		return ErrClosed
	}
	ev := syscall.EpollEvent{Events: oneShot, Fd: int32(fd)}
	return syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, fd, &ev)
}

// Remove stops watching fd for t. Call it before the fd is closed. An
// event fetched before Remove may still reach t afterwards, so onReady
// must tolerate a t that has ended.
func (p *Poller[T]) Remove(fd int, t *T) {
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	if s := p.slot(fd, false); s != nil {
		s.CompareAndSwap(t, nil)
	}
}

// Close stops the poller; registered callbacks are not called again.
func (p *Poller[T]) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	var one = [8]byte{1}
	syscall.Write(p.wake, one[:])
	<-p.done
	syscall.Close(p.wake)
	return syscall.Close(p.epfd)
}

func (p *Poller[T]) worker() {
	for {
		select {
		case t := <-p.work:
			p.onReady(t)
		case <-p.done:
			return
		}
	}
}

// dispatch queues t for a worker.
func (p *Poller[T]) dispatch(t *T) {
	select {
	case p.work <- t:
		return
	default:
	}
	stuck := time.NewTimer(stuckAfter)
	defer stuck.Stop()
	select {
	case p.work <- t:
	case <-stuck.C:
		go p.onReady(t)
	}
}

func (p *Poller[T]) loop() {
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
			s := p.slot(int(ev.Fd), false)
			if s == nil {
				continue
			}
			if t := s.Load(); t != nil {
				p.dispatch(t)
			}
		}
	}
}

// Writev writes bufs to the non-blocking socket fd with one system call
// and returns how many bytes went out.
func Writev(fd int, bufs [][]byte) (int, error) {
	var iov [4]syscall.Iovec
	n := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if n == len(iov) {
			break
		}
		iov[n].Base = &b[0]
		iov[n].SetLen(len(b))
		n++
	}
	if n == 0 {
		return 0, nil
	}
	for {
		r, _, errno := syscall.Syscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(r), nil
	}
}
