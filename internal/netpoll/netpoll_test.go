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
	events := make(chan struct{}, 10)
	type conn struct{}
	p, err := New(func(*conn) { events <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	raw, _ := server.(*net.TCPConn).SyscallConn()
	var fd int
	raw.Control(func(f uintptr) { fd = int(f) })

	c := new(conn)
	if err := p.Add(fd, c); err != nil {
		t.Fatal(err)
	}
	client.Write([]byte("x"))
	expect := func(want bool) {
		t.Helper()
		select {
		case <-events:
			if !want {
				t.Fatal("event while disarmed")
			}
		case <-time.After(200 * time.Millisecond):
			if want {
				t.Fatal("no event for a readable socket")
			}
		}
	}
	expect(true)
	client.Write([]byte("y"))
	expect(false) // one-shot: disarmed until Rearm
	if err := p.Rearm(fd); err != nil {
		t.Fatal(err)
	}
	expect(true) // level-triggered: the unread bytes report at once
	p.Remove(fd, c)
	if err := p.Rearm(fd); err != syscall.ENOENT {
		t.Fatalf("Rearm after Remove = %v; want ENOENT", err)
	}
}
