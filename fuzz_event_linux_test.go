//go:build linux

package duplex

import (
	"errors"
	"io"
	"os"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzEventFrames is FuzzReadFrames for the event-driven reader: the
// stream goes through a socket, written in pieces of chunk bytes, to an
// EventConn on the shared poller, which reads it with the same code as a
// detached connection (resumable parsing, reads into the message, the
// edge-triggered hand-off between workers). Its messages and its ending
// must be the reference reader's.
func FuzzEventFrames(f *testing.F) {
	for _, s := range readFramesSeeds {
		f.Add(s, false, uint16(0))
		f.Add(s, true, uint16(1))
		f.Add(s, false, uint16(3))
	}
	p, err := sharedPoller()
	if err != nil {
		f.Skipf("no event loop here: %v", err)
	}
	f.Fuzz(func(t *testing.T, stream []byte, client bool, chunk uint16) {
		want := readFramesRef(stream, client, fuzzReadLimit)

		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		peer := os.NewFile(uintptr(fds[1]), "peer")
		defer peer.Close()
		// What the EventConn writes (pongs, its close frame) is dropped.
		go io.Copy(io.Discard, peer)

		var got []refMessage
		ended := make(chan error, 1)
		ec := &EventConn{fd: int32(fds[0]), h: &EventHandler{
			OnMessage: func(c *EventConn, typ MessageType, p []byte) {
				if len(p) > fuzzReadLimit {
					t.Errorf("OnMessage got %d bytes; the read limit is %d", len(p), fuzzReadLimit)
				}
				if typ == MessageText && !utf8.Valid(p) {
					t.Errorf("OnMessage got invalid UTF-8 text %q", p)
				}
				got = append(got, refMessage{typ, string(p)})
			},
			OnClose: func(c *EventConn, err error) { ended <- err },
		}}
		ec.limit.Store(fuzzReadLimit)
		if client {
			ec.flags |= evClient
		}
		if err := p.Add(fds[0], ec); err != nil {
			syscall.Close(fds[0])
			t.Fatal(err)
		}
		n := int(chunk)
		if n == 0 {
			n = len(stream)
		}
		for rest := stream; len(rest) > 0; {
			k := min(n, len(rest))
			if _, err := peer.Write(rest[:k]); err != nil {
				break // the EventConn ended and closed its end
			}
			rest = rest[k:]
			runtime.Gosched()
		}
		// The end of the stream: EOF, unless a close frame ended it first.
		syscall.Shutdown(fds[1], syscall.SHUT_WR)

		var end error
		select {
		case end = <-ended:
		case <-time.After(10 * time.Second):
			t.Fatalf("stream % x (client %v, pieces of %d): OnClose not called (state %#x)", stream, client, chunk, ec.state.Load())
		}
		var ce *CloseError
		if !errors.As(end, &ce) {
			t.Fatalf("OnClose got %v (%T); want a *CloseError", end, end)
		}
		gotEnd := refEnd{ce.Code, ce.Sent}
		if !slices.Equal(got, want.msgs) || gotEnd != want.end {
			t.Fatalf("stream % x (client %v, pieces of %d):\nEventConn gave %q, then %v (sent %v)\nwant           %q, then %v (sent %v)",
				stream, client, chunk, got, gotEnd.code, gotEnd.sent, want.msgs, want.end.code, want.end.sent)
		}
	})
}
