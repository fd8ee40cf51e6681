package gateway

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/wire"
)

// dial opens a client connection to url and closes it when the test ends.
func dial(t *testing.T, url string, opts *duplex.DialOptions) *duplex.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := duplex.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// roundTrip writes a message and returns the next one read.
func roundTrip(t *testing.T, c *duplex.Conn, typ duplex.MessageType, p []byte) (duplex.MessageType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, p); err != nil {
		t.Fatalf("Write: %v", err)
	}
	rt, rp, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return rt, rp
}

func TestWSAcknowledges(t *testing.T) { forEachKind(t, testWSAcknowledges) }

func testWSAcknowledges(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	ts := k.start(t, Options{Basic: []string{"ada:pa:ss"}, Tokens: []string{gwToken}})
	credentials := map[string]struct {
		url  string
		opts *duplex.DialOptions
	}{
		"query":  {ts.ws + "/ws?token=" + gwToken, nil},
		"bearer": {ts.ws + "/ws", &duplex.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + gwToken}}}},
		"cookie": {ts.ws + "/ws", &duplex.DialOptions{HTTPHeader: http.Header{"Cookie": {"duplex_token=" + gwToken}}}},
		"basic":  {"ws://ada:pa:ss@" + ts.addr + "/ws", nil},
	}
	for name, cr := range credentials {
		t.Run(name, func(t *testing.T) {
			c := dial(t, cr.url, cr.opts)
			if typ, p := roundTrip(t, c, duplex.MessageText, []byte("hello")); typ != duplex.MessageText || string(p) != "received: hello" {
				t.Errorf("text ack = %v %q; want text %q", typ, p, "received: hello")
			}
			if typ, p := roundTrip(t, c, duplex.MessageBinary, []byte{0, 1, 2}); typ != duplex.MessageBinary || !bytes.Equal(p, []byte("received: \x00\x01\x02")) {
				t.Errorf("binary ack = %v %q; want binary received: 00 01 02", typ, p)
			}
			// The page's heartbeat is answered, not acknowledged.
			if _, p := roundTrip(t, c, duplex.MessageText, []byte(`{"type":"ping","t":1732500000123}`)); string(p) != `{"type":"pong","t":1732500000123}` {
				t.Errorf("ping reply = %q; want the pong with the same t", p)
			}
			// Other JSON is acknowledged like any text.
			if _, p := roundTrip(t, c, duplex.MessageText, []byte(`{"type":"chat"}`)); string(p) != `received: {"type":"chat"}` {
				t.Errorf("JSON ack = %q", p)
			}
			if err := c.Close(duplex.StatusNormalClosure, "bye"); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	waitFor(t, 5*time.Second, "sessions to end", func() bool { return ts.g.Connections() == 0 })
	logs := ts.logs.String()
	for _, want := range []string{"user=ada", "auth=basic", "code=1000", "by=client", "msgs_in=4", "msgs_out=4"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestEcho(t *testing.T) { forEachKind(t, testEcho) }

func testEcho(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	ts := k.start(t, Options{NoAuth: true})
	c := dial(t, ts.ws+"/echo", nil)
	for _, m := range []struct {
		typ duplex.MessageType
		p   []byte
	}{
		{duplex.MessageText, []byte("héllo")},
		{duplex.MessageText, []byte(`{"type":"ping","t":1}`)}, // no pong on /echo
		{duplex.MessageBinary, bytes.Repeat([]byte{0xab}, 100000)},
		{duplex.MessageBinary, nil},
	} {
		if typ, p := roundTrip(t, c, m.typ, m.p); typ != m.typ || !bytes.Equal(p, m.p) {
			t.Errorf("echo of %v %.20q = %v %.20q", m.typ, m.p, typ, p)
		}
	}
	c.Close(duplex.StatusNormalClosure, "")
}

func TestCompressionNegotiated(t *testing.T) { forEachKind(t, testCompressionNegotiated) }

func testCompressionNegotiated(t *testing.T, k sessionKindCase) {
	for _, disable := range []bool{false, true} {
		ts := k.start(t, Options{NoAuth: true, DisableCompression: disable})
		c := dial(t, ts.ws+"/echo", &duplex.DialOptions{Compression: &duplex.CompressionOptions{}})
		got := strings.Contains(c.Extensions(), "permessage-deflate")
		if got == disable {
			t.Errorf("DisableCompression=%v: extensions %q", disable, c.Extensions())
		}
		// The default keeps no history on either side (README,
		// "Compression at scale").
		if !disable && !strings.Contains(c.Extensions(), "server_no_context_takeover") || !disable && !strings.Contains(c.Extensions(), "client_no_context_takeover") {
			t.Errorf("default answer to a browser's offer %q; want no context takeover both ways", c.Extensions())
		}
		msg := bytes.Repeat([]byte("compressible "), 1000)
		if _, p := roundTrip(t, c, duplex.MessageText, msg); !bytes.Equal(p, msg) {
			t.Errorf("DisableCompression=%v: echo differs", disable)
		}
		c.Close(duplex.StatusNormalClosure, "")
	}
}

// TestCompressionContextTakeover: the option answers the same offer with
// context takeover, and messages still round-trip.
func TestCompressionContextTakeover(t *testing.T) {
	forEachKind(t, func(t *testing.T, k sessionKindCase) {
		ts := k.start(t, Options{NoAuth: true, CompressionContextTakeover: true})
		c := dial(t, ts.ws+"/echo", &duplex.DialOptions{Compression: &duplex.CompressionOptions{}})
		if ext := c.Extensions(); !strings.Contains(ext, "permessage-deflate") || strings.Contains(ext, "no_context_takeover") {
			t.Errorf("extensions %q; want permessage-deflate with context takeover", ext)
		}
		for i := range 3 {
			msg := bytes.Repeat([]byte("compressible "+strconv.Itoa(i)), 500)
			if _, p := roundTrip(t, c, duplex.MessageText, msg); !bytes.Equal(p, msg) {
				t.Errorf("message %d: echo differs", i)
			}
		}
		c.Close(duplex.StatusNormalClosure, "")
	})
}

func TestMessageTooBig(t *testing.T) { forEachKind(t, testMessageTooBig) }

func testMessageTooBig(t *testing.T, k sessionKindCase) {
	ts := k.start(t, Options{MaxMessageSize: 1024})
	p, _ := testkit.DialRaw(t, ts.ws+"/echo?token="+gwToken, nil)
	if err := p.WriteFrame(true, 0, wire.OpBinary, true, make([]byte, 1025)); err != nil {
		t.Fatal(err)
	}
	p.ExpectClose(t, 1009)
}

// TestHeartbeatClosesSilentPeer: a client that never answers pings is
// closed with 1008 "pong timeout" within PingInterval+PongTimeout.
func TestHeartbeatClosesSilentPeer(t *testing.T) { forEachKind(t, testHeartbeatClosesSilentPeer) }

func testHeartbeatClosesSilentPeer(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	const interval, timeout = 100 * time.Millisecond, 200 * time.Millisecond
	ts := k.start(t, Options{PingInterval: interval, PongTimeout: timeout, CloseTimeout: time.Second})
	p, _ := testkit.DialRaw(t, ts.ws+"/ws?token="+gwToken, nil)
	start := time.Now()
	pings := 0
	for {
		h, payload, err := p.ReadFrame()
		if err != nil {
			t.Fatalf("after %d pings: %v", pings, err)
		}
		if h.Opcode == wire.OpPing {
			pings++ // and never answered
			continue
		}
		if h.Opcode != wire.OpClose {
			t.Fatalf("unexpected frame %v", h.Opcode)
		}
		code, reason, err := wire.ParseClose(payload)
		if err != nil || code != 1008 || reason != "pong timeout" {
			t.Fatalf("close frame %d %q (%v); want 1008 pong timeout", code, reason, err)
		}
		break
	}
	// The bound is PingInterval+PongTimeout; the slack is for timers on a
	// loaded machine (race detector, parallel packages), not for the gateway.
	if elapsed := time.Since(start); pings != 1 || elapsed > interval+timeout+2*time.Second {
		t.Errorf("closed after %d pings and %v; want 1 ping and about %v", pings, elapsed, interval+timeout)
	}
	// Finish the close handshake; the server closes TCP.
	p.WriteFrame(true, 0, wire.OpClose, true, wire.AppendClose(nil, 1008, ""))
	p.ExpectEOF(t, testkit.CloseWait)
	waitFor(t, 5*time.Second, "the session to end", func() bool { return ts.g.Connections() == 0 })
	if got := ts.metric(t, "duplex_pong_timeouts_total"); got != 1 {
		t.Errorf("duplex_pong_timeouts_total = %v; want 1", got)
	}
	if got := ts.metric(t, `duplex_closes_total{code="1008"}`); got != 1 {
		t.Errorf(`duplex_closes_total{code="1008"} = %v; want 1`, got)
	}
}

// TestHeartbeatKeepsLivePeer: a client that reads (and so answers pings)
// stays connected across many intervals, and the RTT metric fills.
func TestHeartbeatKeepsLivePeer(t *testing.T) { forEachKind(t, testHeartbeatKeepsLivePeer) }

func testHeartbeatKeepsLivePeer(t *testing.T, k sessionKindCase) {
	ts := k.start(t, Options{PingInterval: 20 * time.Millisecond, PongTimeout: time.Second})
	c := dial(t, ts.ws+"/ws?token="+gwToken, nil)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.Read(context.Background())
		readErr <- err
	}()
	waitFor(t, 5*time.Second, "five pongs", func() bool {
		return ts.metric(t, "duplex_ping_rtt_seconds_count") >= 5
	})
	select {
	case err := <-readErr:
		t.Fatalf("connection ended: %v", err)
	default:
	}
	c.Close(duplex.StatusNormalClosure, "")
	<-readErr
}

// TestShutdown: every client gets 1001, Shutdown returns once they are
// gone, and later upgrades get 503.
func TestShutdown(t *testing.T) { forEachKind(t, testShutdown) }

func testShutdown(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	ts := k.start(t, Options{})
	var raws []*testkit.RawPeer
	for range 3 {
		p, _ := testkit.DialRaw(t, ts.ws+"/ws?token="+gwToken, nil)
		raws = append(raws, p)
	}
	c := dial(t, ts.ws+"/echo?token="+gwToken, nil)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.Read(context.Background())
		readErr <- err
	}()
	waitFor(t, 5*time.Second, "4 connections", func() bool { return ts.g.Connections() == 4 })

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- ts.g.Shutdown(ctx)
	}()
	for i, p := range raws {
		if reason := p.ExpectClose(t, 1001); reason != "server shutting down" {
			t.Errorf("client %d: close reason %q", i, reason)
		}
	}
	select {
	case err := <-readErr:
		if duplex.CloseStatus(err) != duplex.StatusGoingAway {
			t.Errorf("duplex client: %v; want a 1001 close", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("duplex client got no close")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if n := ts.g.Connections(); n != 0 {
		t.Errorf("%d connections after Shutdown", n)
	}
	status, _, body := testkit.RawRequest(t, ts.addr, handshake("GET", "/ws?token="+gwToken, ts.addr))
	if status != 503 {
		t.Errorf("upgrade after Shutdown: %d %q; want 503", status, body)
	}
	if resp, _ := ts.get(t, "/healthz", nil); resp.StatusCode != 503 {
		t.Errorf("/healthz after Shutdown: %d; want 503", resp.StatusCode)
	}
}

// TestShutdownTimeout: a client that never answers the close frame is
// dropped when Shutdown's context ends.
func TestShutdownTimeout(t *testing.T) { forEachKind(t, testShutdownTimeout) }

func testShutdownTimeout(t *testing.T, k sessionKindCase) {
	ts := k.start(t, Options{CloseTimeout: time.Minute})
	p, _ := testkit.DialRaw(t, ts.ws+"/ws?token="+gwToken, nil)
	waitFor(t, 5*time.Second, "the connection", func() bool { return ts.g.Connections() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := ts.g.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v; want DeadlineExceeded", err)
	}
	p.Timeout = 5 * time.Second
	for {
		if _, _, err := p.ReadFrame(); err != nil {
			break // dropped
		}
	}
	waitFor(t, 5*time.Second, "the session to end", func() bool { return ts.g.Connections() == 0 })
}

// TestSlowReader: a client that sends a lot and never reads its acks
// fills its send queue and is closed with 1013, while another client's
// round trips go on undisturbed and the server's memory stays bounded.
func TestSlowReader(t *testing.T) { forEachKind(t, testSlowReader) }

func testSlowReader(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	// CloseTimeout is long so that a loaded machine drains the acks in
	// flight before the server gives up on its close frame.
	ts := k.start(t, Options{SendQueue: 16, CloseTimeout: 20 * time.Second, MaxMessageSize: 64 << 10})

	slow, _ := testkit.DialRaw(t, ts.ws+"/ws?token="+gwToken, nil)
	// The slow client's writes block while the server stops reading (its
	// drain timeout, then its close frame, as below). A write deadline as
	// short as that could cut a frame in half, and the close frame sent
	// later would land inside the broken frame's payload.
	slow.Timeout = time.Minute
	fast := dial(t, ts.ws+"/ws?token="+gwToken, nil)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapAlloc
	var peak uint64
	stopSampling := make(chan struct{})
	var samplerDone sync.WaitGroup
	samplerDone.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}
	})

	// The slow client sends 32 MiB of 16 KiB messages and reads nothing.
	const msgSize, msgs = 16 << 10, 2048
	stopWriting := make(chan struct{})
	var writer sync.WaitGroup
	var sent int
	writer.Go(func() {
		payload := bytes.Repeat([]byte("x"), msgSize)
		for sent = 0; sent < msgs; sent++ {
			select {
			case <-stopWriting:
				return
			default:
			}
			if err := slow.WriteFrame(true, 0, wire.OpText, true, payload); err != nil {
				return // the server closed the connection
			}
		}
	})

	// Meanwhile the fast client's round trips go through, each promptly.
	for i := range 200 {
		start := time.Now()
		msg := []byte("fast " + string(rune('a'+i%26)))
		if _, p := roundTrip(t, fast, duplex.MessageText, msg); string(p) != "received: "+string(msg) {
			t.Fatalf("fast client got %q", p)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("fast client round trip %d took %v", i, d)
		}
	}

	waitFor(t, 10*time.Second, "the slow client to be closed", func() bool {
		return ts.metric(t, "duplex_slow_consumer_closes_total") == 1
	})
	close(stopWriting)

	// Draining the slow client's socket shows the acks that fit, then the
	// close frame. The writer may be blocked until then: the close frame
	// cannot overtake the ack the server is stuck writing, and the server
	// reads again only once its close frame is out. Reading is safe while
	// it writes; the close reply waits for it to stop.
	for {
		h, payload, err := slow.ReadFrame()
		if err != nil {
			t.Fatalf("slow client: %v; want a close frame", err)
		}
		if h.Opcode != wire.OpClose {
			continue
		}
		code, reason, _ := wire.ParseClose(payload)
		if code != 1013 || reason != "send queue full" {
			t.Errorf("slow client closed with %d %q; want 1013 %q", code, reason, "send queue full")
		}
		break
	}
	writer.Wait()
	if err := slow.WriteFrame(true, 0, wire.OpClose, true, wire.AppendClose(nil, 1013, "")); err != nil {
		t.Fatalf("slow client's close reply: %v", err)
	}
	slow.ExpectEOF(t, testkit.CloseWait)
	close(stopSampling)
	samplerDone.Wait()
	if grew := int64(peak) - int64(baseline); grew > 24<<20 {
		t.Errorf("heap grew by %d MiB while the slow client sent %d MiB; want it bounded",
			grew>>20, sent*msgSize>>20)
	}
	t.Logf("slow client sent %d messages (%d MiB); heap peak %+d KiB", sent, sent*msgSize>>20, (int64(peak)-int64(baseline))>>10)

	// The fast client is still fine.
	if _, p := roundTrip(t, fast, duplex.MessageText, []byte("still here")); string(p) != "received: still here" {
		t.Errorf("fast client after: %q", p)
	}
	fast.Close(duplex.StatusNormalClosure, "")
	waitFor(t, 25*time.Second, `duplex_closes_total{code="1013"} = 1`, func() bool {
		return ts.metric(t, `duplex_closes_total{code="1013"}`) == 1
	})
}
