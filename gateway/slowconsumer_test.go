package gateway

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/wire"
)

// TestNotReadingClient: a client that sends a few messages and then
// reads nothing, whose acks all fit in kernel buffers so that its send
// queue never fills, is closed with 1013 "not reading" when its pong is
// late, as a slow consumer, not with 1008 "pong timeout" (issue 15
// item 9). A client that gets nothing but pings and answers none is still
// a 1008 (TestHeartbeatClosesSilentPeer).
func TestNotReadingClient(t *testing.T) { forEachKind(t, testNotReadingClient) }

func testNotReadingClient(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	ts := k.start(t, Options{PingInterval: 100 * time.Millisecond, PongTimeout: 300 * time.Millisecond, CloseTimeout: time.Second})
	p, _ := testkit.DialRaw(t, ts.ws+"/ws?token="+gwToken, nil)
	const n = 20
	for i := range n {
		if err := p.WriteFrame(true, 0, wire.OpText, true, []byte("m"+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	// Read nothing until the server has given up on the client.
	waitFor(t, 10*time.Second, "the slow-consumer close", func() bool {
		return ts.metric(t, "duplex_slow_consumer_closes_total") == 1
	})
	acks, pings := 0, 0
	for {
		h, payload, err := p.ReadFrame()
		if err != nil {
			t.Fatalf("after %d acks: %v", acks, err)
		}
		switch h.Opcode {
		case wire.OpText:
			acks++
			continue
		case wire.OpPing:
			pings++
			continue
		}
		code, reason, _ := wire.ParseClose(payload)
		if code != 1013 || reason != "not reading" {
			t.Errorf("closed with %d %q; want 1013 %q", code, reason, "not reading")
		}
		break
	}
	if acks != n || pings == 0 {
		t.Errorf("read %d acks and %d pings before the close; want %d acks, then pings", acks, pings, n)
	}
	p.WriteFrame(true, 0, wire.OpClose, true, wire.AppendClose(nil, 1013, ""))
	p.ExpectEOF(t, testkit.CloseWait)
	if got := ts.metric(t, "duplex_pong_timeouts_total"); got > 0 {
		t.Errorf("duplex_pong_timeouts_total = %v; want 0", got)
	}
	if logs := ts.logs.String(); !strings.Contains(logs, `cause="not reading`) {
		t.Errorf("the slow-consumer log line does not say why:\n%s", logs)
	}
}

// TestDrainTimeoutLogsCause: a client whose one ack is too big for the
// kernel buffers, and who does not read it, is closed with 1013 after the
// reader's drain timeout, with the queue empty (the writer holds the
// message). The log line names the drain timeout, not "queued=0" alone.
func TestDrainTimeoutLogsCause(t *testing.T) { forEachKind(t, testDrainTimeoutLogsCause) }

func testDrainTimeoutLogsCause(t *testing.T, k sessionKindCase) {
	const size = 24 << 20 // beyond loopback's send plus receive buffers
	ts := k.start(t, Options{PingInterval: -1, MaxMessageSize: 32 << 20, SendQueueBytes: 64 << 20, CloseTimeout: 20 * time.Second})
	p, _ := testkit.DialRaw(t, ts.ws+"/ws?token="+gwToken, nil)
	p.Timeout = time.Minute
	if err := p.WriteFrame(true, 0, wire.OpBinary, true, bytes.Repeat([]byte("x"), size)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, drainTimeout+20*time.Second, "the slow-consumer close", func() bool {
		return ts.metric(t, "duplex_slow_consumer_closes_total") == 1
	})
	logs := ts.logs.String()
	if !strings.Contains(logs, `cause="drain timeout`) {
		t.Errorf("the slow-consumer log line does not name the drain timeout:\n%s", logs)
	}
	// Read the ack the writer was stuck on, then the close frame.
	for {
		h, payload, err := p.ReadFrame()
		if err != nil {
			t.Fatalf("reading to the close frame: %v", err)
		}
		if h.Opcode == wire.OpClose {
			if code, reason, _ := wire.ParseClose(payload); code != 1013 {
				t.Errorf("closed with %d %q; want 1013", code, reason)
			}
			break
		}
	}
	p.WriteFrame(true, 0, wire.OpClose, true, wire.AppendClose(nil, 1013, ""))
	p.ExpectEOF(t, testkit.CloseWait)
}
