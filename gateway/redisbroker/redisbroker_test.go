package redisbroker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/gateway/redisbroker"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/redial"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newBroker(t *testing.T, rs *redisServer, o *redisbroker.Options) *redisbroker.Broker {
	t.Helper()
	if o == nil {
		o = &redisbroker.Options{}
	}
	o.Logger = quietLogger()
	b, err := redisbroker.New(rs.url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	waitFor(t, 5*time.Second, "the broker to reach redis", func() bool { return b.Healthy() == nil })
	return b
}

func TestBrokerPublishHistory(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	rs := startRedis(t)
	b := newBroker(t, rs, &redisbroker.Options{HistorySize: 5})
	ctx := context.Background()

	if msgs, rec, latest, err := b.History(ctx, "c", 0); err != nil || !rec || latest != 0 || len(msgs) != 0 {
		t.Fatalf("History of a channel that does not exist = %v, %v, %d, %v; want nothing, covered, 0", msgs, rec, latest, err)
	}
	got := make(chan gateway.Message, 100)
	// "c" first: a reader that has started "warm" has started it too.
	stop := b.Subscribe("c", func(m gateway.Message) { got <- m })
	defer stop()
	stopWarm := b.Subscribe("warm", func(m gateway.Message) { got <- m })
	// The reader adds the channel asynchronously, and starts at its latest
	// offset then: publish until a delivery shows it has.
	ctxWarm, cancelWarm := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWarm()
	for warm := true; warm; {
		if _, err := b.Publish(ctx, "warm", json.RawMessage(`0`)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
			warm = false
		case <-time.After(20 * time.Millisecond):
		case <-ctxWarm.Done():
			t.Fatal("no delivery")
		}
	}
	stopWarm()
	for len(got) > 0 {
		<-got
	}
	before := uint64(time.Now().UnixMicro())
	// In step with the deliveries: a reader more than HistorySize behind
	// would skip messages (which Prev would show).
	var offs []uint64
	for i := range 8 {
		off, err := b.Publish(ctx, "c", json.RawMessage(strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && off != offs[i-1]+1 {
			t.Fatalf("offset %d after %d: not consecutive", off, offs[i-1])
		}
		offs = append(offs, off)
		m := <-got
		wantPrev := off - 1
		if i == 0 {
			wantPrev = 0
		}
		if m.Offset != off || m.Prev != wantPrev || string(m.Data) != strconv.Itoa(i) || m.Channel != "c" {
			t.Fatalf("delivery %d = %+v; want offset %d prev %d", i, m, off, wantPrev)
		}
	}
	if offs[0] < before-uint64(time.Minute.Microseconds()) {
		t.Errorf("first offset %d; want it from Redis' clock in µs (about %d)", offs[0], before)
	}
	msgs, rec, latest, err := b.History(ctx, "c", offs[4])
	if err != nil || !rec || latest != offs[7] || len(msgs) != 3 || msgs[0].Offset != offs[5] || string(msgs[2].Data) != "7" || msgs[0].Prev != offs[4] {
		t.Errorf("History(since %d) = %+v, %v, %d, %v", offs[4], msgs, rec, latest, err)
	}
	msgs, rec, _, _ = b.History(ctx, "c", offs[1])
	if rec || len(msgs) != 5 {
		t.Errorf("History beyond the 5 held = %d messages, recovered %v; want 5, false", len(msgs), rec)
	}
	if msgs, rec, latest, _ := b.History(ctx, "c", ^uint64(0)); len(msgs) != 0 || rec || latest != offs[7] {
		t.Errorf("History(latest only) = %v, %v, %d", msgs, rec, latest)
	}
}

// TestBrokerTTL: messages expire after HistoryTTL, and a channel whose keys
// expired starts again above its old offsets.
func TestBrokerTTL(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	rs := startRedis(t)
	b := newBroker(t, rs, &redisbroker.Options{HistoryTTL: 200 * time.Millisecond})
	ctx := context.Background()
	first, err := b.Publish(ctx, "t", json.RawMessage(`1`))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if msgs, rec, latest, _ := b.History(ctx, "t", first-1); rec || len(msgs) != 0 || latest != 0 {
		t.Errorf("after the TTL: %v, %v, latest %d; want nothing, not covered, latest 0", msgs, rec, latest)
	}
	again, _ := b.Publish(ctx, "t", json.RawMessage(`2`))
	if again <= first {
		t.Errorf("offset after expiry %d; want above %d", again, first)
	}
	if _, rec, _, _ := b.History(ctx, "t", first); rec {
		t.Error("an offset of the expired channel is covered")
	}
}

// TestFanoutAcrossNodes: three nodes on one Redis; a subscriber on node A
// receives what is published through node B's HTTP API exactly once, in
// order, and so does one on C.
func TestFanoutAcrossNodes(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	rs := startRedis(t)
	a, b, c := startNode(t, "A", rs, 100), startNode(t, "B", rs, 100), startNode(t, "C", rs, 100)
	subA := subscribe(t, a, "chat")
	subC := subscribe(t, c, "chat")
	// Messages published before the readers of A and C follow the
	// channel reach the subscribers from history (Message.Prev shows the
	// gap): either way, each exactly once.
	var offsets []uint64
	for i := range 200 {
		code, off := b.publish("chat", strconv.Itoa(i))
		if code != 200 {
			t.Fatalf("publish %d: %d", i, code)
		}
		if len(offsets) > 0 && off != offsets[len(offsets)-1]+1 {
			t.Fatalf("offset %d after %d", off, offsets[len(offsets)-1])
		}
		offsets = append(offsets, off)
	}
	subA.expect(offsets, 0)
	subC.expect(offsets, 0)
	// Publishing through A's WebSocket reaches C too.
	subA.write(`{"type":"publish","channel":"chat","data":200}`)
	subA.expect([]uint64{offsets[199] + 1}, 200)
	subC.expect([]uint64{offsets[199] + 1}, 200)
	subA.expectNothing()
	subC.expectNothing()
}

// TestNodeFailover: the node a client is on dies; the client, given the
// URLs of two nodes, reconnects to the other and recovers every message
// published meanwhile, none lost, none duplicated.
func TestNodeFailover(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	rs := startRedis(t)
	a, b, c := startNode(t, "A", rs, 1000), startNode(t, "B", rs, 1000), startNode(t, "C", rs, 1000)

	var mu sync.Mutex
	var got []redial.ChannelMessage
	var subscribed []string
	connected := make(chan string, 10)
	cs := redial.NewChannels(&redial.ChannelOptions{
		OnMessage: func(m redial.ChannelMessage) {
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
		},
		OnSubscribed: func(_ string, off uint64, rec bool) {
			mu.Lock()
			subscribed = append(subscribed, fmt.Sprintf("%d %v", off, rec))
			mu.Unlock()
		},
	})
	cs.Subscribe("orders")
	client := redial.New(a.ws, &redial.Options{
		URLs:     []string{c.ws},
		MinDelay: 20 * time.Millisecond,
		MaxDelay: 200 * time.Millisecond,
		OnConnect: func(ctx context.Context, conn *duplex.Conn) error {
			connected <- conn.RemoteAddr().String()
			return cs.OnConnect(ctx, conn)
		},
		OnMessage: func(typ duplex.MessageType, p []byte) { cs.Handle(typ, p) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- client.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if addr := <-connected; !strings.HasSuffix(a.ws, addr+"/ws") {
		t.Fatalf("first connection to %s; want node A (%s)", addr, a.ws)
	}
	waitFor(t, 5*time.Second, "the subscription", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(subscribed) == 1
	})
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}

	// B publishes 300 messages at a steady pace; A dies after 100 have
	// arrived.
	const total = 300
	offsets := make([]uint64, 0, total)
	for i := range total {
		code, off := b.publish("orders", strconv.Itoa(i))
		if code != 200 {
			t.Fatalf("publish %d: %d", i, code)
		}
		offsets = append(offsets, off)
		if i == 100 {
			waitFor(t, 10*time.Second, "100 messages on A", func() bool { return received() >= 100 })
			a.kill()
		}
		time.Sleep(time.Millisecond)
	}
	if addr := <-connected; !strings.HasSuffix(c.ws, addr+"/ws") {
		t.Fatalf("reconnected to %s; want node C (%s)", addr, c.ws)
	}
	waitFor(t, 20*time.Second, "every message", func() bool { return received() >= total })
	time.Sleep(100 * time.Millisecond) // a duplicate would arrive by now
	mu.Lock()
	defer mu.Unlock()
	if len(got) != total {
		t.Fatalf("received %d messages; want %d", len(got), total)
	}
	for i, m := range got {
		if m.Offset != offsets[i] || string(m.Data) != strconv.Itoa(i) {
			t.Fatalf("message %d: offset %d data %s; want offset %d data %d", i, m.Offset, m.Data, offsets[i], i)
		}
	}
	if len(subscribed) != 2 || !strings.HasSuffix(subscribed[1], "true") {
		t.Errorf("subscribed replies %q; want a second one with recovered true", subscribed)
	}
}

// TestRedisRestart: Redis goes away mid-stream and comes back with its
// data (append-only file). The nodes keep their connections, report 503
// on /healthz and refuse publishes meanwhile, then recover, and the
// subscribers miss nothing that Redis stored.
func TestRedisRestart(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	rs := startRedis(t)
	a, b := startNode(t, "A", rs, 1000), startNode(t, "B", rs, 1000)
	subA := subscribe(t, a, "r")
	subB := subscribe(t, b, "r")
	waitFor(t, 5*time.Second, "the readers", func() bool { return a.b.Healthy() == nil && b.b.Healthy() == nil })
	time.Sleep(100 * time.Millisecond)

	var offsets []uint64
	publish := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			code, off := b.publish("r", strconv.Itoa(i))
			if code != 200 {
				t.Fatalf("publish %d: %d", i, code)
			}
			offsets = append(offsets, off)
		}
	}
	publish(0, 50)
	rs.stop() // right away: some of the 50 may not have reached the readers

	waitFor(t, 10*time.Second, "/healthz 503 on both nodes", func() bool {
		ca, _ := a.health()
		cb, _ := b.health()
		return ca == 503 && cb == 503
	})
	if code, body := a.health(); !strings.Contains(body, "broker unavailable") {
		t.Errorf("/healthz = %d %s; want the broker's error", code, body)
	}
	if code, _ := b.publish("r", "-1"); code != 503 {
		t.Errorf("publish while Redis is down: %d; want 503", code)
	}
	subA.expectNothingBut(offsets, 0) // connections stay up: pings are answered

	rs.start()
	waitFor(t, 10*time.Second, "/healthz 200 on both nodes", func() bool {
		ca, _ := a.health()
		cb, _ := b.health()
		return ca == 200 && cb == 200
	})
	publish(50, 50)
	subA.expect(offsets[subA.seen:], subA.seen)
	subB.expect(offsets, 0)
	subA.expectNothing()
	subB.expectNothing()

	// Redis kept everything (append-only file): a client resuming from
	// before the restart recovers it all.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := duplex.Dial(ctx, a.ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	late := &subscriber{t: t, c: c}
	late.write(fmt.Sprintf(`{"type":"subscribe","channel":"r","since":%d}`, offsets[9]))
	if m := late.next(); m.Type != "subscribed" || !m.Recovered || m.Offset != offsets[99] {
		t.Fatalf("resubscribe after the restart: %+v; want recovered true at offset %d", m, offsets[99])
	}
	late.expect(offsets[10:], 10)
	late.expectNothing()
}

// TestNoRedis: with no Redis to reach, the broker says so, the gateway's
// /healthz answers 503 and publishing 503, and WebSockets still work.
func TestNoRedis(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	rs := &redisServer{t: t, port: freePort(t)} // nothing listens there
	rs.url = fmt.Sprintf("redis://127.0.0.1:%d", rs.port)
	n := startNode(t, "A", rs, 100)
	waitFor(t, 5*time.Second, "an error from Healthy", func() bool {
		err := n.b.Healthy()
		return err != nil && strings.Contains(err.Error(), "refused")
	})
	// The error is for holders of the API key only (issue 15 item 9).
	if code, body := n.health(); code != 503 || strings.Contains(body, "refused") {
		t.Errorf("/healthz = %d %s; want 503 without the error", code, body)
	}
	req, _ := http.NewRequest("GET", n.srv.URL+"/api/health", nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if resp, err := n.srv.Client().Do(req); err != nil {
		t.Errorf("/api/health: %v", err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || !strings.Contains(string(body), "refused") {
			t.Errorf("/api/health = %d %s; want 503 with the error", resp.StatusCode, body)
		}
	}
	if code, _ := n.publish("x", "1"); code != 503 {
		t.Errorf("publish = %d; want 503", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := duplex.Dial(ctx, n.ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	s := &subscriber{t: t, c: c}
	s.write(`{"type":"subscribe","channel":"x"}`)
	if m := s.next(); m.Type != "error" || m.Error != "broker unavailable" || m.Channel != "x" {
		t.Errorf("subscribe without Redis: %+v; want error broker unavailable", m)
	}
	s.expectNothing()
	if _, err := redisbroker.New("http://nope", nil); err == nil {
		t.Error("New with an http URL succeeded")
	}
}

// TestNewURL: the URLs New takes, and clear errors that never quote a
// password for the ones it does not.
func TestNewURL(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	for _, ok := range []string{
		"redis://127.0.0.1:1/0",
		"redis://:s3cret@127.0.0.1:1",
		"redis+cluster://127.0.0.1:1",
		"redis+cluster://127.0.0.1:1,127.0.0.1:2,[::1]:3",
		"redis+cluster://user:s3cret@127.0.0.1:1,127.0.0.1:2",
		"rediss+cluster://127.0.0.1:1",
	} {
		b, err := redisbroker.New(ok, &redisbroker.Options{Logger: quietLogger()})
		if err != nil {
			t.Errorf("New(%q): %v", ok, err)
			continue
		}
		b.Close()
	}
	for _, bad := range []string{
		"http://s3cret@127.0.0.1:1",
		"redis+cluster://",
		"redis+cluster://:s3cret@127.0.0.1",
		"redis+cluster://user:s3cret@127.0.0.1:1,nohost",
		"redis+cluster://127.0.0.1:99999",
		"redis+sentinel://127.0.0.1:1",
	} {
		_, err := redisbroker.New(bad, nil)
		if err == nil {
			t.Errorf("New(%q) succeeded; want an error", bad)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%q): %v: quotes the password", bad, err)
		}
	}
	if _, err := redisbroker.New("redis://127.0.0.1:1", &redisbroker.Options{KeyPrefix: "a{b}:"}); err == nil {
		t.Error("New with a KeyPrefix holding a hash tag succeeded")
	}
}

// TestRedisLostData: Redis restarts with nothing (no persistence), so the
// channel starts a new life. Its subscriber is told so once, with
// {"type":"subscribed","recovered":false}, then gets the new messages.
// (TestRedisRestart is the other side: Redis kept its data, and nobody is
// told recovered false.)
func TestRedisLostData(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	rs := startRedis(t)
	rs.stop()
	rs.noPersist = true
	rs.start()
	a, b := startNode(t, "A", rs, 100), startNode(t, "B", rs, 100)
	sub := subscribe(t, a, "l")
	waitFor(t, 5*time.Second, "the readers", func() bool { return a.b.Healthy() == nil && b.b.Healthy() == nil })
	var offsets []uint64
	for i := range 10 {
		code, off := b.publish("l", strconv.Itoa(i))
		if code != 200 {
			t.Fatalf("publish %d: %d", i, code)
		}
		offsets = append(offsets, off)
	}
	sub.expect(offsets, 0)
	rs.stop()
	rs.start()
	waitFor(t, 10*time.Second, "/healthz 200 on both nodes", func() bool {
		ca, _ := a.health()
		cb, _ := b.health()
		return ca == 200 && cb == 200
	})
	var again []uint64
	for i := range 5 {
		code, off := b.publish("l", strconv.Itoa(10+i))
		if code != 200 {
			t.Fatalf("publish after the restart %d: %d", i, code)
		}
		again = append(again, off)
	}
	if again[0] <= offsets[9] {
		t.Fatalf("first offset after the loss %d; want above %d", again[0], offsets[9])
	}
	// The gateway learns of the loss from the first new message, whose
	// prev (0: a new channel) is not the last it sent: it tells the
	// client, which goes on after the offset given.
	m := sub.next()
	if m.Type != "subscribed" || m.Recovered || m.Offset < again[0] {
		t.Fatalf("after the loss: %+v; want subscribed, recovered false, at offset %d or later", m, again[0])
	}
	for _, off := range again {
		if off > m.Offset {
			if got := sub.next(); got.Type != "message" || got.Offset != off {
				t.Fatalf("after the loss: %+v; want offset %d", got, off)
			}
		}
	}
	sub.expectNothing()
}
