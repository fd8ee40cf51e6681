//go:build linux

package duplex

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/duplexws/duplex/internal/deflate"
	"github.com/duplexws/duplex/internal/netpoll"
	"github.com/duplexws/duplex/internal/wire"
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
		got, gotEnd := readThroughLoop(t, p, stream, client, chunk, nil)
		if !slices.Equal(got, want.msgs) || gotEnd != want.end {
			t.Fatalf("stream % x (client %v, pieces of %d):\nEventConn gave %q, then %v (sent %v)\nwant           %q, then %v (sent %v)",
				stream, client, chunk, got, gotEnd.code, gotEnd.sent, want.msgs, want.end.code, want.end.sent)
		}
	})
}

// FuzzEventFramesDeflate compares the event-driven reader with Read on
// connections that negotiated permessage-deflate (with and without
// context takeover): the same stream must give the same messages and the
// same ending. Seeds hold compressed messages, whole and fragmented,
// corrupt data, invalid UTF-8 once inflated, and a bomb past the limit.
func FuzzEventFramesDeflate(f *testing.F) {
	comp := deflate.NewCompressor(1, 15, false)
	z := func(p []byte) []byte {
		out, err := comp.Compress(nil, p)
		if err != nil {
			f.Fatal(err)
		}
		return out
	}
	frame := func(fin bool, rsv byte, op wire.Opcode, masked bool, p []byte) []byte {
		// A zero key masks nothing: the payload stays readable.
		return append(wire.Append(nil, wire.Header{Fin: fin, RSV: rsv, Opcode: op, Masked: masked, Length: int64(len(p))}), p...)
	}
	hello := z([]byte("hello, hello, hello"))
	bomb := z(make([]byte, 8*fuzzReadLimit))
	for _, masked := range []bool{true, false} {
		seeds := [][]byte{
			frame(true, wire.RSV1, wire.OpText, masked, hello),
			append(frame(false, wire.RSV1, wire.OpText, masked, hello[:4]), frame(true, 0, wire.OpContinuation, masked, hello[4:])...),
			append(frame(true, 0, wire.OpBinary, masked, []byte("plain")), frame(true, wire.RSV1, wire.OpBinary, masked, hello)...),
			frame(true, wire.RSV1, wire.OpText, masked, []byte{0xff, 0xff, 0xff, 0xff}),
			frame(true, wire.RSV1, wire.OpText, masked, z([]byte{0xc3, 0x28})),
			frame(true, wire.RSV1, wire.OpBinary, masked, bomb),
			frame(true, wire.RSV1, wire.OpPing, masked, hello),
		}
		for _, s := range seeds {
			f.Add(s, !masked, uint16(0), false)
			f.Add(s, !masked, uint16(3), true)
		}
	}
	p, err := sharedPoller()
	if err != nil {
		f.Skipf("no event loop here: %v", err)
	}
	f.Fuzz(func(t *testing.T, stream []byte, client bool, chunk uint16, takeover bool) {
		c := newConn(connConfig{
			tr:        byteTransport{bytes.NewReader(stream), int(chunk)},
			client:    client,
			readLimit: fuzzReadLimit,
			decomp:    deflate.NewDecompressor(15, takeover),
		})
		var want []refMessage
		var err error
		for i := 0; ; i++ {
			if i > len(stream)/2+1 {
				t.Fatalf("Read returned %d messages from %d bytes", i, len(stream))
			}
			var typ MessageType
			var msg []byte
			if typ, msg, err = c.Read(context.Background()); err != nil {
				break
			}
			want = append(want, refMessage{typ, string(msg)})
		}
		var ce *CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("Read error %v (%T) is not a *CloseError", err, err)
		}
		wantEnd := refEnd{ce.Code, ce.Sent}

		got, gotEnd := readThroughLoop(t, p, stream, client, chunk, func(ec *EventConn) {
			ec.flags |= evDeflate
			ec.x.Store(&eventExtra{closeTimeout: defaultCloseTimeout, decomp: deflate.NewDecompressor(15, takeover)})
		})
		// Read inflates as bytes arrive and fails fast on corrupt or
		// oversized data; the event loop inflates a message once it is
		// whole. So when Read failed a message (1007, 1009) before its
		// end, the event loop ends at whatever comes first after it:
		// the end of the stream (1006), a bad frame (1002), a close.
		// The messages before it must still be the same.
		failedFast := wantEnd == refEnd{StatusInvalidFramePayloadData, true} || wantEnd == refEnd{StatusMessageTooBig, true}
		// The event loop holds a compressed message until it is whole, so
		// it refuses (1009) one longer on the wire than the read limit
		// plus deflate's worst expansion, which Read would inflate as it
		// streams in.
		bounded := gotEnd == refEnd{StatusMessageTooBig, true}
		if !slices.Equal(got, want) || (gotEnd != wantEnd && !failedFast && !bounded) {
			t.Fatalf("stream % x (client %v, pieces of %d, takeover %v):\nEventConn gave %q, then %v (sent %v)\nRead gave      %q, then %v (sent %v)",
				stream, client, chunk, takeover, got, gotEnd.code, gotEnd.sent, want, wantEnd.code, wantEnd.sent)
		}
	})
}

// readThroughLoop writes stream to an EventConn on the poller p through a
// socket, chunk bytes at a time (all at once for 0), then ends it, and
// returns the messages the EventConn delivered and how it ended. setup,
// when set, prepares the connection before it is registered.
func readThroughLoop(t *testing.T, p *netpoll.Poller[EventConn], stream []byte, client bool, chunk uint16, setup func(*EventConn)) ([]refMessage, refEnd) {
	t.Helper()
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
	if setup != nil {
		setup(ec)
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
	return got, refEnd{ce.Code, ce.Sent}
}
