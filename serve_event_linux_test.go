//go:build linux

package duplex_test

import (
	"bufio"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// A client that sends a message and closes its socket at once is seen
// to have gone, every time, even when its FIN comes in the same segment
// as the message, so in the same readiness edge: a short read of the
// message must not be taken to mean there is nothing more (the connection
// would otherwise be held for ever).
func TestServeEventsPeerLeavesRightAfterBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	opened, ended := make(chan struct{}, 1), make(chan error, 1)
	// The server only listens: an answer to the closed client would bring
	// back a reset, a new edge, and hide a missed FIN.
	s, err := duplex.ServeEvents(ln, &duplex.EventHandler{
		OnOpen:  func(*duplex.EventConn) { opened <- struct{}{} },
		OnClose: func(_ *duplex.EventConn, err error) { ended <- err },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	for i := range 50 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(testkit.Deadline(t, 0))
		if _, err := nc.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake %d: %v %v", i, resp, err)
		}
		<-opened
		// "Hello", masked, then the socket closes with no close frame.
		// Corked, the frame waits in the send queue and the FIN joins it:
		// one segment, one readiness edge for both.
		raw, err := nc.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		raw.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, 1) })
		if _, err := nc.Write(testkit.Hex("81 85 37fa213d 7f9f4d5158")); err != nil {
			t.Fatal(err)
		}
		nc.Close()
		select {
		case err := <-ended:
			if got := duplex.CloseStatus(err); got != duplex.StatusAbnormalClosure {
				t.Fatalf("connection %d ended with %v; want 1006", i, err)
			}
		case <-time.After(testkit.Wait(t, 0)):
			t.Fatalf("connection %d: the server never saw the client go", i)
		}
	}
}
