//go:build linux

package duplex_test

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/wire"
)

// tryBuf is the socket buffer size the Try tests ask for (the kernel
// doubles it), so that a socket fills after a few frames and a frame of
// tryBig bytes never fits in what a peer that does not read leaves free.
const (
	tryBuf = 32 << 10
	tryBig = 1 << 20
)

// tryFrame is a frame as the writer gave it and the peer read it.
type tryFrame struct {
	op   byte // wire opcode: 1 text, 2 binary, 9 ping
	data []byte
}

// tryPeer is who reads what the EventConn under test writes.
type tryPeer int

const (
	// peerRaw: a server EventConn; a raw TCP client splits the frames and
	// inflates them itself (compress/flate), without the library.
	peerRaw tryPeer = iota
	// peerConn: a server EventConn; a duplex.Conn client reads it.
	peerConn
	// peerServer: a client EventConn, whose frames are masked; a
	// duplex.Conn server reads it.
	peerServer
)

func (p tryPeer) String() string {
	return [...]string{"raw client", "Conn client", "Conn server"}[p]
}

// tryReader reads frames until the close frame and returns them (data
// messages, and pings for peerRaw) with the close code. pause is called
// after each message "pause" and returns when the test lets it go on.
type tryReader func(pause func()) ([]tryFrame, duplex.StatusCode, error)

// TestTryWrite: Try calls never wait; when the socket is full they say
// so, a frame the socket took in part is finished first by the next Try
// call, a waiting Write or Close, and the peer gets every frame whole and
// in order, with each kind of peer and compression.
func TestTryWrite(t *testing.T) {
	for _, peer := range []tryPeer{peerRaw, peerConn, peerServer} {
		for _, cm := range []struct {
			name string
			comp *duplex.CompressionOptions
		}{
			{"plain", nil},
			{"deflate no takeover", &duplex.CompressionOptions{NoContextTakeover: true}},
			{"deflate takeover", &duplex.CompressionOptions{}},
		} {
			t.Run(peer.String()+"/"+cm.name, func(t *testing.T) {
				testkit.CheckNoGoroutineLeak(t)
				testTryWrite(t, peer, cm.comp)
			})
		}
	}
}

func testTryWrite(t *testing.T, peer tryPeer, comp *duplex.CompressionOptions) {
	ec, read := tryPair(t, peer, comp)
	ctx, cancel := testkit.Context(t, 64<<20)
	defer cancel()
	w := &tryWriter{ec: ec, rng: rand.New(rand.NewPCG(uint64(peer), 13))}

	// Phase 1: the peer reads nothing. A frame larger than the socket's
	// buffers is taken in part and counts as sent; until the peer reads,
	// every Try call says the socket would block and sends nothing.
	phase := make(chan error, 1)
	go func() { phase <- w.partial(t.Name()) }()
	if err := waitFor(t, phase, tryBig, "TryWrite on a socket the peer does not read"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 3 {
			if sent, err := ec.TryWrite(duplex.MessageText, []byte("blocked")); sent || err != duplex.ErrWouldBlock {
				phase <- fmt.Errorf("TryWrite with a frame's end left and the peer not reading = %v, %v; want false, ErrWouldBlock", sent, err)
				return
			}
			if sent, err := ec.TryPing([]byte("blocked")); sent || err != duplex.ErrWouldBlock {
				phase <- fmt.Errorf("TryPing with a frame's end left = %v, %v; want false, ErrWouldBlock", sent, err)
				return
			}
			pm := duplex.NewPreparedMessage(duplex.MessageText, []byte("blocked"))
			if n, err := ec.TryWritePreparedBatch([]*duplex.PreparedMessage{pm}); n != 0 || err != duplex.ErrWouldBlock {
				phase <- fmt.Errorf("TryWritePreparedBatch with a frame's end left = %d, %v; want 0, ErrWouldBlock", n, err)
				return
			}
		}
		phase <- nil
	}()
	if err := waitFor(t, phase, 0, "Try calls on a full socket"); err != nil {
		t.Fatal(err)
	}

	// Phase 2: the peer reads. Many small and some large messages go out
	// through Try calls, and each time the socket fills, one of three
	// ways on: Try again until it goes (which finishes a frame's end
	// without waiting), WritePreparedBatch(ctx, nil), which waits for the
	// end, or the waiting call for the message itself.
	paused, resume := make(chan struct{}), make(chan struct{})
	pause := func() {
		select {
		case paused <- struct{}{}:
		case <-ctx.Done():
			return
		}
		select {
		case <-resume:
		case <-ctx.Done():
		}
	}
	type readResult struct {
		frames []tryFrame
		code   duplex.StatusCode
		err    error
	}
	got := make(chan readResult, 1)
	go func() {
		frames, code, err := read(pause)
		got <- readResult{frames, code, err}
	}()
	go func() { phase <- w.stream(ctx, 300) }()
	if err := waitFor(t, phase, 16<<20, "writing while the peer reads"); err != nil {
		t.Fatal(err)
	}

	// Phase 3: with the peer paused after a marker, a frame taken in part
	// is finished by a waiting Write, and then by Close.
	for _, finish := range []string{"Write", "Close"} {
		if err := w.send(ctx, tryMsg{op: 1, data: []byte("pause")}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-paused:
		case r := <-got:
			t.Fatalf("the peer stopped before the marker: %v", r.err)
		case <-ctx.Done():
			t.Fatal("the peer did not read the marker")
		}
		go func() { phase <- w.partial(t.Name() + finish) }()
		if err := waitFor(t, phase, tryBig, "TryWrite on a socket the peer does not read"); err != nil {
			t.Fatal(err)
		}
		go func() {
			if finish == "Write" {
				phase <- w.send(ctx, tryMsg{op: 2, data: []byte("after the rest")})
			} else {
				phase <- ec.Close(duplex.StatusNormalClosure, "done")
			}
		}()
		select {
		case resume <- struct{}{}:
		case <-ctx.Done():
			t.Fatal("the peer did not wait to go on")
		}
		if err := waitFor(t, phase, tryBig, finish+" after a frame taken in part"); err != nil {
			t.Fatal(err)
		}
	}

	// After Close, the Try calls give the error the waiting calls give.
	werr := ec.Write(ctx, duplex.MessageText, []byte("late"))
	if werr == nil {
		t.Fatal("Write after Close: no error")
	}
	if sent, err := ec.TryWrite(duplex.MessageText, []byte("late")); sent || err == nil || err.Error() != werr.Error() {
		t.Errorf("TryWrite after Close = %v, %v; want false, %v", sent, err, werr)
	}
	if sent, err := ec.TryPing(nil); sent || err == nil || err.Error() != werr.Error() {
		t.Errorf("TryPing after Close = %v, %v; want false, %v", sent, err, werr)
	}
	late := []*duplex.PreparedMessage{duplex.NewPreparedMessage(duplex.MessageText, []byte("late"))}
	if n, err := ec.TryWritePreparedBatch(late); n != 0 || err == nil || err.Error() != werr.Error() {
		t.Errorf("TryWritePreparedBatch after Close = %d, %v; want 0, %v", n, err, werr)
	}

	var r readResult
	select {
	case r = <-got:
	case <-ctx.Done():
		t.Fatal("the peer did not get the close frame")
	}
	if r.err != nil {
		t.Fatalf("peer: %v (after %d frames)", r.err, len(r.frames))
	}
	if r.code != duplex.StatusNormalClosure {
		t.Errorf("close code %d; want 1000", r.code)
	}
	want := w.sent
	if peer != peerRaw {
		want = dataFrames(want)
	}
	compareFrames(t, r.frames, want)
	t.Logf("%d frames, %d would-block episodes, %d frames taken in part", len(want), w.blocked, w.partials)
}

// waitFor waits for a step of the writer, which must end (Try calls never
// wait), within a deadline for n bytes.
func waitFor(t *testing.T, ch <-chan error, n int, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	case <-time.After(testkit.Wait(t, n)):
		return fmt.Errorf("%s: did not return", what)
	}
}

func dataFrames(fs []tryFrame) []tryFrame {
	var out []tryFrame
	for _, f := range fs {
		if f.op != byte(wire.OpPing) {
			out = append(out, f)
		}
	}
	return out
}

func compareFrames(t *testing.T, got, want []tryFrame) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i].op != want[i].op || !bytes.Equal(got[i].data, want[i].data) {
			at := 0
			for at < min(len(got[i].data), len(want[i].data)) && got[i].data[at] == want[i].data[at] {
				at++
			}
			t.Fatalf("frame %d: got op %d, %d bytes; want op %d, %d bytes %.24q; first difference at byte %d",
				i, got[i].op, len(got[i].data), want[i].op, len(want[i].data), want[i].data, at)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d frames; want %d", len(got), len(want))
	}
}

// tryMsg is a message or ping for the writer; pm is set for a message
// to send prepared.
type tryMsg struct {
	op   byte
	data []byte
	pm   *duplex.PreparedMessage
}

// tryWriter sends through Try calls and records what counts as sent.
type tryWriter struct {
	ec       *duplex.EventConn
	rng      *rand.Rand
	buf      []byte // reused for TryWrite, and spoiled after each call
	sent     []tryFrame
	blocked  int // ErrWouldBlock results
	partials int // frames taken in part
	n        int
}

// next makes message n: text that compresses or random bytes that do
// not, of sizes from a few bytes to a few socket buffers.
func (w *tryWriter) next() tryMsg {
	w.n++
	size := []int{5, 90, 700, 3000, 20000, 150000}[w.rng.IntN(6)]
	if w.n%5 == 0 {
		return tryMsg{op: byte(wire.OpPing), data: fmt.Appendf(nil, "ping %d", w.n)}
	}
	m := tryMsg{op: 1, data: fmt.Appendf(nil, "message %d ", w.n)}
	if w.n%2 == 0 {
		m.op = 2
		for len(m.data) < size {
			m.data = binary.LittleEndian.AppendUint64(m.data, w.rng.Uint64())
		}
	} else {
		m.data = bytes.Repeat(m.data, max(1, size/len(m.data)))
	}
	if w.n%3 != 0 {
		m.pm = duplex.NewPreparedMessage(duplex.MessageType(m.op), m.data)
	}
	return m
}

// try sends the messages of q, as far as the socket takes them, and
// returns how many count as sent. Prepared messages in a row go in one
// TryWritePreparedBatch.
func (w *tryWriter) try(q []tryMsg) (int, error) {
	if q[0].pm != nil {
		var pms []*duplex.PreparedMessage
		for _, m := range q {
			if m.pm == nil {
				break
			}
			pms = append(pms, m.pm)
		}
		n, err := w.ec.TryWritePreparedBatch(pms)
		w.record(q[:n])
		if err == nil && n != len(pms) {
			err = fmt.Errorf("TryWritePreparedBatch = %d, nil; want %d", n, len(pms))
		}
		return n, err
	}
	var sent bool
	var err error
	if q[0].op == byte(wire.OpPing) {
		sent, err = w.ec.TryPing(q[0].data)
	} else {
		w.buf = append(w.buf[:0], q[0].data...)
		sent, err = w.ec.TryWrite(duplex.MessageType(q[0].op), w.buf)
		for i := range w.buf {
			w.buf[i] = 0xee // what the library kept must be a copy
		}
	}
	if !sent {
		return 0, err
	}
	w.record(q[:1])
	if err == duplex.ErrWouldBlock {
		w.partials++
	}
	return 1, err
}

func (w *tryWriter) record(ms []tryMsg) {
	for _, m := range ms {
		w.sent = append(w.sent, tryFrame{m.op, m.data})
	}
}

// send sends m the waiting way.
func (w *tryWriter) send(ctx context.Context, m tryMsg) error {
	var err error
	switch {
	case m.pm != nil:
		_, err = w.ec.WritePreparedBatch(ctx, []*duplex.PreparedMessage{m.pm})
	case m.op == byte(wire.OpPing):
		err = w.ec.Ping(ctx, m.data)
	default:
		err = w.ec.Write(ctx, duplex.MessageType(m.op), m.data)
	}
	if err == nil {
		w.record([]tryMsg{m})
	}
	return err
}

// partial sends a frame too large for the socket with TryWrite, when the
// peer does not read: it must count as sent, taken in part.
func (w *tryWriter) partial(name string) error {
	big := make([]byte, tryBig)
	for i := 0; i < len(big); i += 8 {
		binary.LittleEndian.PutUint64(big[i:], w.rng.Uint64())
	}
	copy(big, name)
	n, err := w.try([]tryMsg{{op: 2, data: big}})
	if n != 1 || err != duplex.ErrWouldBlock {
		return fmt.Errorf("TryWrite(%d bytes) = sent %v, %v; want taken in part: true, ErrWouldBlock", len(big), n == 1, err)
	}
	return nil
}

// stream sends count messages while the peer reads, through Try calls,
// going on in turn each of three ways when the socket is full.
func (w *tryWriter) stream(ctx context.Context, count int) error {
	var q []tryMsg
	for i := 0; i < count || len(q) > 0; {
		for ; i < count && len(q) < 4; i++ {
			q = append(q, w.next())
		}
		n, err := w.try(q)
		q = q[n:]
		if err == nil {
			continue
		}
		if err != duplex.ErrWouldBlock {
			return err
		}
		w.blocked++
		switch w.blocked % 3 {
		case 1:
			// Try again until the socket takes something.
			for {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("Try calls never sent again: %w", err)
				}
				if len(q) == 0 {
					q = append(q, w.next())
					i++
				}
				n, err := w.try(q)
				q = q[n:]
				if err != duplex.ErrWouldBlock {
					if err != nil {
						return err
					}
					break
				}
				if n > 0 {
					break // sent, taken in part
				}
				runtime.Gosched()
			}
		case 2:
			if n, err := w.ec.WritePreparedBatch(ctx, nil); n != 0 || err != nil {
				return fmt.Errorf("WritePreparedBatch(ctx, nil) = %d, %v", n, err)
			}
		case 0:
			if len(q) > 0 {
				if err := w.send(ctx, q[0]); err != nil {
					return err
				}
				q = q[1:]
			}
		}
	}
	return nil
}

// tryPair connects an EventConn in the role peer says to the peer that
// reads it, with small socket buffers on both ends.
func tryPair(t *testing.T, peer tryPeer, comp *duplex.CompressionOptions) (*duplex.EventConn, tryReader) {
	t.Helper()
	ctx, _ := testkit.Context(t, 64<<20)
	setBuf := func(c net.Conn) {
		tc := c.(*net.TCPConn)
		tc.SetWriteBuffer(tryBuf)
		tc.SetReadBuffer(tryBuf)
	}
	accepted := make(chan *duplex.Conn, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, &duplex.AcceptOptions{Compression: comp})
		if err != nil {
			t.Errorf("Accept: %v", err)
			return
		}
		accepted <- c
	}))
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		setBuf(c)
		return ctx
	}
	srv.Start()
	testkit.Serve(t, srv)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	dialOpts := &duplex.DialOptions{
		Compression: comp,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				setBuf(c)
			}
			return c, err
		},
	}

	if peer == peerRaw {
		var extra http.Header
		if comp != nil {
			offer := "permessage-deflate"
			if comp.NoContextTakeover {
				offer += "; server_no_context_takeover; client_no_context_takeover"
			}
			extra = http.Header{"Sec-WebSocket-Extensions": {offer}}
		}
		p, resp := testkit.DialRaw(t, url, extra)
		setBuf(p.Conn)
		p.Timeout = testkit.Wait(t, 64<<20)
		c := <-accepted
		ec, err := c.DetachValue(nil, "try")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ec.CloseNow() })
		takeover := !strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "server_no_context_takeover")
		return ec, func(pause func()) ([]tryFrame, duplex.StatusCode, error) {
			return readRaw(p, takeover, pause)
		}
	}

	var reader *duplex.Conn
	var ec *duplex.EventConn
	c, _, err := duplex.Dial(ctx, url, dialOpts)
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if peer == peerConn {
		reader = c
		ec, err = server.DetachValue(nil, "try")
	} else {
		reader = server
		ec, err = c.DetachValue(nil, "try")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ec.CloseNow()
		reader.CloseNow()
	})
	if got := ec.Value(); got != "try" {
		t.Fatalf("Value() after DetachValue = %v; want try", got)
	}
	return ec, func(pause func()) ([]tryFrame, duplex.StatusCode, error) {
		var frames []tryFrame
		for {
			typ, p, err := reader.Read(ctx)
			if err != nil {
				if code := duplex.CloseStatus(err); code != 0 {
					return frames, code, nil
				}
				return frames, 0, err
			}
			frames = append(frames, tryFrame{byte(typ), p})
			if string(p) == "pause" {
				pause()
			}
		}
	}
}

// readRaw reads a server's frames with a parser of its own (RFC 6455
// §5.2) and inflates compressed ones with compress/flate (RFC 7692 §7.2.2:
// the payload, then 00 00 ff ff; with context takeover, the messages
// inflated before are the window).
func readRaw(p *testkit.RawPeer, takeover bool, pause func()) ([]tryFrame, duplex.StatusCode, error) {
	var frames []tryFrame
	var window []byte
	for {
		h, err := p.ReadN(2)
		if err != nil {
			return frames, 0, err
		}
		if h[0]&0x80 == 0 || h[0]&0x30 != 0 || h[1]&0x80 != 0 {
			return frames, 0, fmt.Errorf("frame %d: header % x: want FIN, no RSV2/3, unmasked", len(frames), h)
		}
		op, n := h[0]&0x0f, uint64(h[1]&0x7f)
		switch n {
		case 126:
			b, err := p.ReadN(2)
			if err != nil {
				return frames, 0, err
			}
			n = uint64(binary.BigEndian.Uint16(b))
		case 127:
			b, err := p.ReadN(8)
			if err != nil {
				return frames, 0, err
			}
			n = binary.BigEndian.Uint64(b)
		}
		if n > 64<<20 {
			return frames, 0, fmt.Errorf("frame %d: length %d: a torn frame", len(frames), n)
		}
		payload, err := p.ReadN(int(n))
		if err != nil {
			return frames, 0, err
		}
		if op == byte(wire.OpClose) {
			if len(payload) < 2 {
				return frames, 0, errors.New("close frame without a code")
			}
			p.WriteFrame(true, 0, wire.OpClose, true, payload[:2])
			return frames, duplex.StatusCode(binary.BigEndian.Uint16(payload)), nil
		}
		if h[0]&0x40 != 0 {
			r := flate.NewReaderDict(io.MultiReader(bytes.NewReader(payload), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})), window)
			if payload, err = io.ReadAll(r); err != nil {
				return frames, 0, fmt.Errorf("frame %d: inflate: %w", len(frames), err)
			}
			if takeover {
				window = append(window, payload...)
				window = window[max(0, len(window)-32<<10):]
			}
		}
		frames = append(frames, tryFrame{op, payload})
		if string(payload) == "pause" {
			pause()
		}
	}
}

// TestTryConcurrent: Try calls and waiting writes from several goroutines
// at once never tear or reorder a goroutine's messages, with compression
// whose context every message moves along, too.
func TestTryConcurrent(t *testing.T) {
	for _, cm := range []struct {
		name string
		comp *duplex.CompressionOptions
	}{
		{"plain", nil},
		{"deflate takeover", &duplex.CompressionOptions{}},
	} {
		t.Run(cm.name, func(t *testing.T) {
			testkit.CheckNoGoroutineLeak(t)
			ec, read := tryPair(t, peerConn, cm.comp)
			ctx, cancel := testkit.Context(t, 32<<20)
			defer cancel()
			const writers, each = 4, 120
			type readResult struct {
				frames []tryFrame
				err    error
			}
			got := make(chan readResult, 1)
			go func() {
				frames, _, err := read(func() {})
				got <- readResult{frames, err}
			}()
			errs := make(chan error, writers)
			for g := range writers {
				go func() { errs <- tryConcurrentWriter(ctx, ec, g, each) }()
			}
			for range writers {
				select {
				case err := <-errs:
					if err != nil {
						t.Fatal(err)
					}
				case <-ctx.Done():
					t.Fatal("writers did not finish")
				}
			}
			if err := ec.Close(duplex.StatusNormalClosure, ""); err != nil {
				t.Fatal(err)
			}
			var r readResult
			select {
			case r = <-got:
			case <-ctx.Done():
				t.Fatal("the peer did not get the close frame")
			}
			if r.err != nil {
				t.Fatalf("peer: %v (after %d messages)", r.err, len(r.frames))
			}
			next := make([]int, writers)
			for k, f := range r.frames {
				var g, i int
				if _, err := fmt.Sscanf(string(f.data), "g%d %d ", &g, &i); err != nil || g < 0 || g >= writers {
					t.Fatalf("message %d: %.24q is no writer's", k, f.data)
				}
				if i != next[g] || !bytes.Equal(f.data, tryMessage(g, i)) {
					t.Fatalf("message %d: %.24q (%d bytes); want writer %d's message %d, whole", k, f.data, len(f.data), g, next[g])
				}
				next[g]++
			}
			for g, n := range next {
				if n != each {
					t.Errorf("writer %d: %d messages arrived; want %d", g, n, each)
				}
			}
		})
	}
}

// tryMessage is message i of writer g, of a size that varies from
// a few bytes to more than a socket buffer.
func tryMessage(g, i int) []byte {
	p := fmt.Appendf(nil, "g%d %d ", g, i)
	size := []int{10, 500, 5000, 90000}[(g+i)%4]
	for k := len(p); k < size; k++ {
		p = append(p, byte(g*31+i*7+k*k))
	}
	return p
}

// tryConcurrentWriter sends writer g's messages in order, by turns with
// Write, TryWrite and TryWritePreparedBatch; a Try call that would block
// is tried again.
func tryConcurrentWriter(ctx context.Context, ec *duplex.EventConn, g, count int) error {
	var buf []byte
	for i := range count {
		m := tryMessage(g, i)
		if i%3 == 0 {
			if err := ec.Write(ctx, duplex.MessageBinary, m); err != nil {
				return err
			}
			continue
		}
		pms := []*duplex.PreparedMessage{duplex.NewPreparedMessage(duplex.MessageBinary, m)}
		for {
			var sent bool
			var err error
			if i%3 == 1 {
				buf = append(buf[:0], m...)
				sent, err = ec.TryWrite(duplex.MessageBinary, buf)
				clear(buf)
			} else {
				var n int
				n, err = ec.TryWritePreparedBatch(pms)
				sent = n == 1
			}
			if err != nil && err != duplex.ErrWouldBlock {
				return err
			}
			if sent {
				break
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("writer %d: message %d never went: %w", g, i, err)
			}
			runtime.Gosched()
		}
	}
	// An end a Try call left goes out before this returns.
	_, err := ec.WritePreparedBatch(ctx, nil)
	return err
}
