//go:build linux

package netpoll

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// A registered socket is reported once per arming: after the first event
// the poller stays quiet until Rearm, even while bytes stay unread.
func TestOneShotAndRearm(t *testing.T) {
	p, events := eventPoller(t)
	client, fd := socketPair(t)
	c := new(testConn)
	if err := p.Add(fd, c); err != nil {
		t.Fatal(err)
	}
	client.Write([]byte("x"))
	expect := expecter(events)
	expect(t, true)
	client.Write([]byte("y"))
	expect(t, false) // one-shot: disarmed until Rearm
	if err := p.Rearm(fd); err != nil {
		t.Fatal(err)
	}
	expect(t, true) // level-triggered: the unread bytes report at once
	p.Remove(fd, c)
	if err := p.Rearm(fd); err != syscall.ENOENT {
		t.Fatalf("Rearm after Remove = %v; want ENOENT", err)
	}
}

// After Follow, each arrival of bytes is reported once, with no re-arming,
// and bytes already waiting are reported at once; bytes left unread do not
// report again.
func TestFollow(t *testing.T) {
	p, events := eventPoller(t)
	client, fd := socketPair(t)
	expect := expecter(events)
	if err := p.Add(fd, new(testConn)); err != nil {
		t.Fatal(err)
	}
	client.Write([]byte("x"))
	expect(t, true)
	client.Write([]byte("y"))
	expect(t, false) // one-shot until Follow
	if err := p.Follow(fd); err != nil {
		t.Fatal(err)
	}
	expect(t, true) // the waiting bytes
	expect(t, false)
	for range 3 {
		client.Write([]byte("z"))
		expect(t, true)
	}
}

type testConn struct{}

// eventPoller returns a poller that reports each event on events; it is
// closed when the test ends.
func eventPoller(t *testing.T) (*Poller[testConn], <-chan struct{}) {
	events := make(chan struct{}, 10)
	p, err := New(func(*testConn, bool) { events <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, events
}

// expecter checks whether an event arrives within 200 ms.
func expecter(events <-chan struct{}) func(t *testing.T, want bool) {
	return func(t *testing.T, want bool) {
		t.Helper()
		select {
		case <-events:
			if !want {
				t.Fatal("event while none was due")
			}
		case <-time.After(200 * time.Millisecond):
			if want {
				t.Fatal("no event for new bytes")
			}
		}
	}
}

// A handler that blocks does not stall the other sockets: the monitor
// starts another loop, and it ends again once the handler returns.
func TestBlockingHandler(t *testing.T) {
	release := make(chan struct{})
	handled := make(chan int, 16)
	type sock struct{ id int }
	p, err := New(func(s *sock, _ bool) {
		if s.id == 0 {
			<-release
		}
		handled <- s.id
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var clients []net.Conn
	for i := range int(baseLoops) + 1 {
		client, fd := socketPair(t)
		clients = append(clients, client)
		id := 0 // blocks its loop
		if i == int(baseLoops) {
			id = 1 // must get through
		}
		if err := p.Add(fd, &sock{id: id}); err != nil {
			t.Fatal(err)
		}
	}
	// Block every base loop: the first baseLoops sockets have id 0.
	for i := range int(baseLoops) {
		clients[i].Write([]byte("x"))
	}
	time.Sleep(50 * time.Millisecond)
	clients[baseLoops].Write([]byte("y"))
	select {
	case id := <-handled:
		if id != 1 {
			t.Fatalf("handled %d first; want the unblocked socket", id)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a ready socket waited behind blocked handlers")
	}
	close(release)
}

// socketPair returns a client connection and the descriptor of its
// accepted server side, both closed when the test ends.
func socketPair(t *testing.T) (net.Conn, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	raw, _ := server.(*net.TCPConn).SyscallConn()
	var fd int
	raw.Control(func(f uintptr) { fd = int(f) })
	return client, fd
}

// Readv fills its first slice before its second, in one call, and a short
// count says the socket had no more.
func TestReadv(t *testing.T) {
	client, fd := socketPair(t)
	if err := syscall.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	client.Write([]byte("0123456789"))
	a, b := make([]byte, 4), make([]byte, 16)
	var n int
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if n, err = Readv(fd, a, b); err != syscall.EAGAIN || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err != nil || n != 10 || string(a) != "0123" || string(b[:6]) != "456789" {
		t.Fatalf("Readv = %d, %v: %q %q", n, err, a, b[:max(n-4, 0)])
	}
	if n, err := Readv(fd, a, nil); err != syscall.EAGAIN {
		t.Fatalf("Readv of an empty socket = %d, %v; want EAGAIN", n, err)
	}
}
