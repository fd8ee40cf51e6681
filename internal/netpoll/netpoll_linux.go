// Package netpoll watches many sockets for readability with one epoll
// instance and no goroutine per socket. Each registration is one-shot: a
// socket that became readable is reported once and must be re-armed after
// its bytes have been consumed, so only one goroutine at a time handles it.
//
// What the poller keeps per socket is one pointer in a table indexed by
// file descriptor; the table grows in chunks as descriptors do.
package netpoll

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Poller is an epoll instance whose events are handled by the goroutines
// that wait on it: each loop goroutine takes one ready socket from
// epoll_wait and runs onReady for it there, with no hand-off to another
// goroutine. A monitor starts another loop when every loop has stayed
// busy in a handler for a while, so a handler that blocks delays the
// other sockets by at most that while; loops beyond the base count end
// once there is an idle one again.
type Poller[T any] struct {
	epfd    int
	file    *os.File        // epfd, watched by the runtime's own poller
	rc      syscall.RawConn // of file: loops park on it while nothing is ready
	onReady func(t *T, hup bool)

	table  [tableChunks]atomic.Pointer[chunk[T]]
	grow   sync.Mutex
	closed atomic.Bool
	loops  atomic.Int32  // loop goroutines running
	busy   atomic.Int32  // of them, running a handler
	served atomic.Uint64 // handlers finished, for the monitor
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup
}

// baseLoops is how many loop goroutines wait for events at all times.
var baseLoops = int32(max(2, runtime.GOMAXPROCS(0)))

// stuckAfter is how long every loop may stay busy before the monitor
// starts another; maxLoops bounds the loops there may be.
const (
	stuckAfter = 10 * time.Millisecond
	maxLoops   = 4096
)

// The table holds chunkSize descriptors a chunk, up to 2^24 descriptors:
// far above any file limit a process is given in practice.
const (
	chunkBits   = 12
	chunkSize   = 1 << chunkBits
	tableChunks = 1 << 12
)

type chunk[T any] [chunkSize]atomic.Pointer[T]

// ErrClosed is returned by Add and Rearm after Close.
var ErrClosed = errors.New("netpoll: poller closed")

// errRange is returned by Add for a descriptor beyond the table.
var errRange = errors.New("netpoll: file descriptor out of range")

// Supported reports whether this platform has a poller.
const Supported = true

// New starts a poller that calls onReady on one of its goroutines for
// each readiness of a registered socket. hup reports that the event says
// the peer has shut down its side (or the socket failed): an edge-triggered
// handler must then read until EOF, since a short read no longer proves
// the socket empty (the hang-up may have come with the bytes it read, in
// one edge).
//
// The epoll descriptor is itself registered with Go's runtime poller: a
// loop asks it for an event without blocking and, when none is ready,
// parks as a goroutine until the runtime sees the descriptor readable. No
// thread sits in epoll_wait, and a wake-up is scheduled the way the
// runtime wakes a goroutine blocked on a socket read (an earlier design
// with loops blocked in epoll_wait added ~90 µs to the round trip's p99).
func New[T any](onReady func(t *T, hup bool)) (*Poller[T], error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	file := os.NewFile(uintptr(epfd), "epoll")
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, err
	}
	p := &Poller[T]{epfd: epfd, file: file, rc: rc, onReady: onReady, done: make(chan struct{})}
	for range baseLoops {
		p.startLoop()
	}
	p.wg.Add(1)
	go p.monitor()
	return p, nil
}

const (
	oneShot       = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT
	edgeTriggered = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLET&0xffffffff // EPOLLET is negative in package syscall
)

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

// Follow switches fd, added one-shot, to edge-triggered reporting: from
// now on every arrival of bytes is reported, also while a handler for it
// is running, and nothing needs re-arming. The caller must then tolerate
// onReady for the same t on two loops at once (the second may only note
// that there is more to read) and read until the socket is empty or a
// read comes back short. Bytes already waiting are reported at once.
func (p *Poller[T]) Follow(fd int) error {
	if p.closed.Load() {
		return ErrClosed
	}
	ev := syscall.EpollEvent{Events: edgeTriggered, Fd: int32(fd)}
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

// Close stops the poller; registered callbacks are not called again once
// the handlers running now have returned.
func (p *Poller[T]) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	close(p.done)
	// Closing the file wakes the loops parked on it; the descriptor is
	// closed once the last of them has let it go.
	err := p.file.Close()
	p.wg.Wait()
	return err
}

func (p *Poller[T]) startLoop() {
	p.loops.Add(1)
	p.wg.Add(1)
	go p.loop()
}

// loop takes one ready socket at a time and handles it. One at a time: a
// socket taken by a loop whose handler then blocks would wait for it,
// where one left in the kernel goes to the next free loop.
func (p *Poller[T]) loop() {
	defer p.wg.Done()
	var ev syscall.EpollEvent
	var werr error
	// take asks for one event without blocking; false parks the loop
	// until the epoll descriptor is readable. The runtime's registration
	// is edge-triggered, so a loop only parks after finding none ready.
	take := func(fd uintptr) bool {
		for {
			n, err := epollWaitNow(int(fd), &ev)
			if err == syscall.EINTR {
				continue
			}
			werr = err
			return n > 0 || err != nil
		}
	}
	for {
		if err := p.rc.Read(take); err != nil || werr != nil || p.closed.Load() {
			p.loops.Add(-1)
			return
		}
		s := p.slot(int(ev.Fd), false)
		if s == nil {
			continue
		}
		if t := s.Load(); t != nil {
			p.busy.Add(1)
			p.onReady(t, ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0)
			p.served.Add(1)
			p.busy.Add(-1)
		}
		// A loop the monitor added ends once another loop is idle.
		if l := p.loops.Load(); l > baseLoops && p.busy.Load() < l-1 {
			if p.loops.CompareAndSwap(l, l-1) {
				return
			}
		}
	}
}

// epollWaitNow fetches at most one event from epfd without waiting. It
// cannot block, so it needs none of the scheduler's system-call hand-off.
func epollWaitNow(epfd int, ev *syscall.EpollEvent) (int, error) {
	r, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(ev)), 1, 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// monitor adds a loop when every loop has been busy for stuckAfter
// without a handler finishing: some handler blocks.
func (p *Poller[T]) monitor() {
	defer p.wg.Done()
	tick := time.NewTicker(stuckAfter)
	defer tick.Stop()
	last := p.served.Load()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
		served := p.served.Load()
		if l := p.loops.Load(); served == last && p.busy.Load() >= l && l < maxLoops {
			p.startLoop()
		}
		last = served
	}
}

// Writev writes bufs to the non-blocking socket fd with one system call
// and returns how many bytes went out.
func Writev(fd int, bufs [][]byte) (int, error) {
	var iov [16]syscall.Iovec // 16: duplex.EventConn.WritePreparedBatch
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

// Readv reads from the non-blocking socket fd into a, then b (which may
// be empty), with one system call (again when a signal interrupts it).
func Readv(fd int, a, b []byte) (int, error) {
	var iov [2]syscall.Iovec
	n := 0
	for _, p := range [2][]byte{a, b} {
		if len(p) > 0 {
			iov[n].Base = &p[0]
			iov[n].SetLen(len(p))
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	for {
		r, _, errno := syscall.Syscall(syscall.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(r), nil
	}
}

// Read reads from the non-blocking socket fd, again when a signal
// interrupts it.
func Read(fd int, p []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, p)
		if err != syscall.EINTR {
			return n, err
		}
	}
}
