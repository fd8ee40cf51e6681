package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/gwtest"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/wire"
)

// wireMsg is any server message of docs/protocol.md.
type wireMsg = gwtest.Msg

// chanClient is a /ws client that speaks the channel protocol.
type chanClient struct {
	t    *testing.T
	c    *duplex.Conn
	sync int
}

func (ts *testServer) connect(t *testing.T, token string) *chanClient {
	t.Helper()
	return &chanClient{t: t, c: dial(t, ts.ws+"/ws?token="+token, nil)}
}

func (cc *chanClient) sendJSON(s string) {
	cc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cc.c.Write(ctx, duplex.MessageText, []byte(s)); err != nil {
		cc.t.Fatalf("Write %s: %v", s, err)
	}
}

func (cc *chanClient) next() wireMsg {
	cc.t.Helper()
	return gwtest.Next(cc.t, cc.c, 10*time.Second)
}

// expect reads the next message and checks its type.
func (cc *chanClient) expect(typ string) wireMsg {
	cc.t.Helper()
	m := cc.next()
	if m.Type != typ {
		cc.t.Fatalf("got %v; want a %q message", m, typ)
	}
	return m
}

// barrier returns every message the server sent before it answered a ping
// sent now: the server handles one client's messages in order.
func (cc *chanClient) barrier() []wireMsg {
	cc.t.Helper()
	cc.sync++
	cc.sendJSON(fmt.Sprintf(`{"type":"ping","t":%d}`, cc.sync))
	var got []wireMsg
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, p, err := cc.c.Read(ctx)
		cancel()
		if err != nil {
			cc.t.Fatalf("Read: %v", err)
		}
		if string(p) == fmt.Sprintf(`{"type":"pong","t":%d}`, cc.sync) {
			return got
		}
		var m wireMsg
		json.Unmarshal(p, &m)
		got = append(got, m)
	}
}

// expectNothing checks that no message is pending.
func (cc *chanClient) expectNothing() {
	cc.t.Helper()
	if got := cc.barrier(); len(got) > 0 {
		cc.t.Fatalf("unexpected messages: %v", got)
	}
}

// expectMessages reads n channel messages and checks that they carry
// offsets first, first+1, … and data "from", "from+1", ….
func (cc *chanClient) expectMessages(channel string, first uint64, from, n int) {
	cc.t.Helper()
	for i := range n {
		m := cc.expect("message")
		if m.Channel != channel || m.Offset != first+uint64(i) || string(m.Data) != strconv.Itoa(from+i) {
			cc.t.Fatalf("message %d = %v; want channel %s offset %d data %d", i, m, channel, first+uint64(i), from+i)
		}
	}
}

// publishN publishes the numbers from, from+1, … to channel through the
// broker and returns the offset of the first.
func (ts *testServer) publishN(t *testing.T, channel string, from, n int) uint64 {
	t.Helper()
	var first uint64
	for i := range n {
		off, err := ts.g.channels.broker.Publish(context.Background(), channel, json.RawMessage(strconv.Itoa(from+i)))
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if i == 0 {
			first = off
		}
	}
	return first
}

func TestChannelsSubscribePublishUnsubscribe(t *testing.T) {
	forEachKind(t, testChannelsSubscribePublishUnsubscribe)
}

func testChannelsSubscribePublishUnsubscribe(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	ts := k.start(t, Options{})
	a, b := ts.connect(t, gwToken), ts.connect(t, gwToken)

	a.sendJSON(`{"type":"subscribe","channel":"news"}`)
	if m := a.expect("subscribed"); m.Channel != "news" || m.Offset != 0 || m.Recovered {
		t.Fatalf("subscribed = %v; want news at offset 0 (no channel yet), recovered false", m)
	}
	b.sendJSON(`{"type":"publish","channel":"news","data":{"headline":"hello"}}`)
	b.expectNothing() // a publish has no reply
	m := a.expect("message")
	if m.Channel != "news" || m.Offset == 0 || string(m.Data) != `{"headline":"hello"}` {
		t.Fatalf("message = %v", m)
	}
	first := m.Offset
	b.sendJSON(`{"type":"publish","channel":"news","data":[1,2]}`)
	b.expectNothing()
	if m := a.expect("message"); m.Offset != first+1 || string(m.Data) != "[1,2]" {
		t.Fatalf("second message = %v; want offset %d", m, first+1)
	}

	// A second subscriber without since starts at the latest offset.
	b.sendJSON(`{"type":"subscribe","channel":"news"}`)
	if m := b.expect("subscribed"); m.Offset != first+1 || m.Recovered {
		t.Fatalf("subscribed = %v; want offset %d, recovered false", m, first+1)
	}
	b.sendJSON(`{"type":"publish","channel":"news","data":"both"}`)
	for _, c := range []*chanClient{a, b} {
		if m := c.expect("message"); m.Offset != first+2 || string(m.Data) != `"both"` {
			t.Fatalf("message = %v; want offset %d", m, first+2)
		}
	}

	a.sendJSON(`{"type":"unsubscribe","channel":"news"}`)
	a.expectNothing()
	b.sendJSON(`{"type":"publish","channel":"news","data":3}`)
	b.expect("message")
	a.expectNothing()

	// Ordinary messages are still acknowledged.
	a.sendJSON(`{"type":"chat"}`)
	if _, p, _ := a.c.Read(context.Background()); string(p) != `received: {"type":"chat"}` {
		t.Errorf("ack = %q", p)
	}
	if v := ts.metric(t, "duplex_subscriptions"); v != 1 {
		t.Errorf("duplex_subscriptions = %v; want 1", v)
	}
	if v := ts.metric(t, `duplex_published_total{source="ws"}`); v != 4 {
		t.Errorf(`duplex_published_total{source="ws"} = %v; want 4`, v)
	}
}

func TestChannelErrors(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	ts := startGateway(t, Options{})
	c := ts.connect(t, gwToken)
	c.sendJSON(`{"type":"subscribe","channel":"a"}`)
	c.expect("subscribed")
	for _, tt := range []struct{ send, want string }{
		{`{"type":"subscribe","channel":"a"}`, `{"type":"error","error":"already subscribed","channel":"a"}`},
		{`{"type":"unsubscribe","channel":"b"}`, `{"type":"error","error":"not subscribed","channel":"b"}`},
		{`{"type":"subscribe","channel":""}`, `{"type":"error","error":"invalid channel name"}`},
		{`{"type":"subscribe","channel":"a b"}`, `{"type":"error","error":"invalid channel name"}`},
		{`{"type":"subscribe","channel":"a*"}`, `{"type":"error","error":"invalid channel name"}`},
		{`{"type":"subscribe","channel":"` + strings.Repeat("x", 129) + `"}`, `{"type":"error","error":"invalid channel name"}`},
		{`{"type":"subscribe","channel":"c","since":-1}`, `{"type":"error","error":"bad request: since: want uint64"}`},
		{`{"type":"subscribe","channel":7}`, `{"type":"error","error":"bad request: channel: want string"}`},
		{`{"type":"publish","channel":"a"}`, `{"type":"error","error":"publish needs data","channel":"a"}`},
	} {
		c.sendJSON(tt.send)
		_, p, err := c.c.Read(context.Background())
		if err != nil || string(p) != tt.want {
			t.Errorf("%s → %q, %v; want %s", tt.send, p, err, tt.want)
		}
	}
	c.sendJSON(`{"type":"publish","channel":"a","data":null}`)
	if m := c.expect("message"); string(m.Data) != "null" {
		t.Errorf("data null delivered as %v", m)
	}
}

// TestChannelAuthorization: JWT claims decide which channels a connection
// may subscribe and publish to (Identity.ChannelAllowed).
func TestChannelAuthorization(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	secret := []byte("channel-secret")
	ts := startGateway(t, Options{JWTSecret: string(secret), Tokens: []string{gwToken}})
	tok := signJWT(t, "HS256", secret, map[string]any{
		"sub":      "ada",
		"exp":      time.Now().Add(time.Hour).Unix(),
		"channels": []string{"public/*"},
		"publish":  "public/chat",
	})
	c := ts.connect(t, tok)
	c.sendJSON(`{"type":"subscribe","channel":"public/chat"}`)
	c.expect("subscribed")
	for _, tt := range []struct{ send, want string }{
		{`{"type":"subscribe","channel":"private/x"}`, `{"type":"error","error":"forbidden","channel":"private/x"}`},
		{`{"type":"subscribe","channel":"public"}`, `{"type":"error","error":"forbidden","channel":"public"}`},
		{`{"type":"publish","channel":"public/news","data":1}`, `{"type":"error","error":"forbidden","channel":"public/news"}`},
	} {
		c.sendJSON(tt.send)
		_, p, err := c.c.Read(context.Background())
		if err != nil || string(p) != tt.want {
			t.Errorf("%s → %q, %v; want %s", tt.send, p, err, tt.want)
		}
	}
	c.sendJSON(`{"type":"publish","channel":"public/chat","data":"hi"}`)
	if m := c.expect("message"); string(m.Data) != `"hi"` {
		t.Errorf("own publish delivered as %v", m)
	}
	// A JWT without a publish claim may not publish; static tokens may.
	ro := ts.connect(t, signJWT(t, "HS256", secret, map[string]any{"exp": time.Now().Add(time.Hour).Unix()}))
	ro.sendJSON(`{"type":"publish","channel":"public/chat","data":1}`)
	if m := ro.expect("error"); m.Error != "forbidden" {
		t.Errorf("publish without claim: %v", m)
	}
	admin := ts.connect(t, gwToken)
	admin.sendJSON(`{"type":"publish","channel":"private/x","data":1}`)
	admin.expectNothing()
}

// TestRecoveryExact: publish 50, disconnect, publish 30 more, reconnect
// with since: exactly the 30, in order, then live ones.
func TestRecoveryExact(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	ts := startGateway(t, Options{})
	c := ts.connect(t, gwToken)
	c.sendJSON(`{"type":"subscribe","channel":"feed"}`)
	c.expect("subscribed")
	first := ts.publishN(t, "feed", 0, 50)
	c.expectMessages("feed", first, 0, 50)
	last := first + 49
	c.c.Close(duplex.StatusNormalClosure, "")

	ts.publishN(t, "feed", 50, 30)
	c = ts.connect(t, gwToken)
	c.sendJSON(fmt.Sprintf(`{"type":"subscribe","channel":"feed","since":%d}`, last))
	if m := c.expect("subscribed"); m.Offset != last+30 || !m.Recovered {
		t.Fatalf("subscribed = %v; want offset %d, recovered", m, last+30)
	}
	c.expectMessages("feed", last+1, 50, 30)
	ts.publishN(t, "feed", 80, 1)
	c.expectMessages("feed", last+31, 80, 1)
	c.expectNothing()

	// since 0 means from the start: all 81 are held.
	c2 := ts.connect(t, gwToken)
	c2.sendJSON(`{"type":"subscribe","channel":"feed","since":0}`)
	if m := c2.expect("subscribed"); !m.Recovered {
		t.Fatalf("subscribed since 0 = %v; want recovered", m)
	}
	c2.expectMessages("feed", first, 0, 81)
	c2.expectNothing()
}

// TestRecoveryTooOld: a gap older than the history is announced with
// recovered:false, and no partial history is replayed.
func TestRecoveryTooOld(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	ts := startGateway(t, Options{HistorySize: 10})
	first := ts.publishN(t, "feed", 0, 30)
	latest := first + 29
	for _, since := range []uint64{first, latest - 11, 0, latest + 1000, 1} {
		c := ts.connect(t, gwToken)
		c.sendJSON(fmt.Sprintf(`{"type":"subscribe","channel":"feed","since":%d}`, since))
		if m := c.expect("subscribed"); m.Offset != latest || m.Recovered {
			t.Fatalf("since %d: subscribed = %v; want offset %d, recovered false", since, m, latest)
		}
		c.expectNothing()
	}
	// The last 10 are held: since latest-10 is still recoverable.
	c := ts.connect(t, gwToken)
	c.sendJSON(fmt.Sprintf(`{"type":"subscribe","channel":"feed","since":%d}`, latest-9-1))
	if m := c.expect("subscribed"); !m.Recovered {
		t.Fatalf("subscribed = %v; want recovered", m)
	}
	c.expectMessages("feed", latest-9, 20, 10)
	ts.publishN(t, "feed", 30, 1)
	c.expectMessages("feed", latest+1, 30, 1)
}

// TestRecoveryRacesPublish: subscribers that resume while messages are
// being published get every message after their since exactly once, in
// order, with no gap between the history and the live ones.
func TestRecoveryRacesPublish(t *testing.T) { forEachKind(t, testRecoveryRacesPublish) }

func testRecoveryRacesPublish(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	ts := k.start(t, Options{HistorySize: 1000, SendQueue: 4096})
	ts.publishN(t, "race", 0, 20) // so that every since below is of this channel
	stop := make(chan struct{})
	var published sync.WaitGroup
	published.Go(func() {
		for i := 20; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ts.publishN(t, "race", i, 1)
			time.Sleep(100 * time.Microsecond)
		}
	})
	const subscribers = 12
	type result struct {
		since uint64
		msgs  []wireMsg
	}
	results := make(chan result, subscribers)
	var wg sync.WaitGroup
	for i := range subscribers {
		wg.Go(func() {
			c := ts.connect(t, gwToken)
			time.Sleep(time.Duration(i) * 3 * time.Millisecond)
			_, _, latest, _ := ts.g.channels.broker.History(context.Background(), "race", ^uint64(0))
			since := latest - uint64(i%4)*5 // some behind, some at the head
			c.sendJSON(fmt.Sprintf(`{"type":"subscribe","channel":"race","since":%d}`, since))
			var got []wireMsg
			for {
				m := c.next()
				got = append(got, m)
				if m.Type == "message" && string(m.Data) == `"end"` {
					break
				}
			}
			results <- result{since, got}
		})
	}
	waitFor(t, 10*time.Second, "all subscriptions", func() bool {
		return ts.metric(t, "duplex_subscriptions") == subscribers
	})
	time.Sleep(20 * time.Millisecond) // live messages after the last subscribe
	close(stop)
	published.Wait()
	ts.g.channels.broker.Publish(context.Background(), "race", json.RawMessage(`"end"`))
	wg.Wait()
	close(results)
	for r := range results {
		if r.msgs[0].Type != "subscribed" || !r.msgs[0].Recovered {
			t.Fatalf("since %d: first reply %v; want subscribed, recovered", r.since, r.msgs[0])
		}
		want := r.since + 1
		for _, m := range r.msgs[1:] {
			if m.Type != "message" || m.Offset != want {
				t.Fatalf("since %d: got %v; want the message at offset %d", r.since, m, want)
			}
			want++
		}
	}
}

func TestHTTPAPI(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	off := startGateway(t, Options{})
	if resp, body := off.do(t, "POST", "/api/publish", "Bearer x", `{"channel":"a","data":1}`); resp != 404 {
		t.Errorf("API without --api-key: %d %s; want 404", resp, body)
	}

	const key = "api-key-5d1f"
	ts := startGateway(t, Options{APIKey: key})
	sub := ts.connect(t, gwToken)
	sub.sendJSON(`{"type":"subscribe","channel":"orders"}`)
	sub.expect("subscribed")

	for _, auth := range []string{"", "Bearer wrong", "Basic " + key, gwToken} {
		if code, body := ts.do(t, "POST", "/api/publish", auth, `{"channel":"orders","data":1}`); code != 401 {
			t.Errorf("publish with Authorization %q: %d %s; want 401", auth, code, body)
		}
		if code, _ := ts.do(t, "GET", "/api/history?channel=orders", auth, ""); code != 401 {
			t.Errorf("history with Authorization %q: %d; want 401", auth, code)
		}
	}
	var offsets []uint64
	for i := range 3 {
		code, body := ts.do(t, "POST", "/api/publish", "Bearer "+key, fmt.Sprintf(`{"channel":"orders","data":{"n":%d}}`, i))
		var r struct{ Offset uint64 }
		if code != 200 || json.Unmarshal([]byte(body), &r) != nil || r.Offset == 0 {
			t.Fatalf("publish: %d %s", code, body)
		}
		offsets = append(offsets, r.Offset)
		if m := sub.expect("message"); m.Offset != r.Offset || string(m.Data) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("subscriber got %v; want offset %d", m, r.Offset)
		}
	}
	for _, tt := range []struct {
		body string
		code int
	}{
		{`{"channel":"bad name","data":1}`, 400},
		{`{"channel":"orders"}`, 400},
		{`{"channel":"orders","data":}`, 400},
		{`not json`, 400},
		{`{"channel":"orders","data":"` + strings.Repeat("x", 2<<20) + `"}`, 413},
	} {
		if code, body := ts.do(t, "POST", "/api/publish", "Bearer "+key, tt.body); code != tt.code {
			t.Errorf("publish %.40s: %d %s; want %d", tt.body, code, body, tt.code)
		}
	}

	code, body := ts.do(t, "GET", fmt.Sprintf("/api/history?channel=orders&since=%d", offsets[0]), "Bearer "+key, "")
	want := fmt.Sprintf(`{"messages":[{"channel":"orders","offset":%d,"data":{"n":1}},{"channel":"orders","offset":%d,"data":{"n":2}}],"recovered":true,"offset":%d,"next":%d,"more":false}`+"\n",
		offsets[1], offsets[2], offsets[2], offsets[2])
	if code != 200 || body != want {
		t.Errorf("history = %d %s; want 200 %s", code, body, want)
	}
	code, body = ts.do(t, "GET", "/api/history?channel=orders", "Bearer "+key, "")
	if code != 200 || !strings.Contains(body, `"recovered":true`) || strings.Count(body, `"offset"`) != 4 {
		t.Errorf("history from the start = %d %s", code, body)
	}
	code, body = ts.do(t, "GET", "/api/history?channel=nothing", "Bearer "+key, "")
	if want := `{"messages":[],"recovered":true,"offset":0,"next":0,"more":false}` + "\n"; code != 200 || body != want {
		t.Errorf("history of an empty channel = %d %s; want %s", code, body, want)
	}
	for _, q := range []string{"channel=a*", "channel=orders&since=-1", "channel=orders&since=x"} {
		if code, _ := ts.do(t, "GET", "/api/history?"+q, "Bearer "+key, ""); code != 400 {
			t.Errorf("history?%s: %d; want 400", q, code)
		}
	}
	if code, _ := ts.do(t, "GET", "/api/publish", "Bearer "+key, ""); code != 405 {
		t.Errorf("GET /api/publish: %d; want 405", code)
	}
	if strings.Contains(ts.logs.String(), key) {
		t.Errorf("logs contain the API key")
	}
}

// do sends an HTTP request and returns the status and body.
func (ts *testServer) do(t *testing.T, method, path, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := ts.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSlowSubscriber: a subscriber that stops reading is closed with 1013
// when its queue fills, while a fast subscriber of the same channel gets
// every message.
func TestSlowSubscriber(t *testing.T) { forEachKind(t, testSlowSubscriber) }

func testSlowSubscriber(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	ts := k.start(t, Options{SendQueue: 16, CloseTimeout: 20 * time.Second})
	slow, _ := testkit.DialRaw(t, ts.ws+"/ws?token="+gwToken, nil)
	if err := slow.WriteFrame(true, 0, wire.OpText, true, []byte(`{"type":"subscribe","channel":"fire"}`)); err != nil {
		t.Fatal(err)
	}
	fast := ts.connect(t, gwToken)
	fast.sendJSON(`{"type":"subscribe","channel":"fire"}`)
	fast.expect("subscribed")
	waitFor(t, 5*time.Second, "both subscriptions", func() bool { return ts.metric(t, "duplex_subscriptions") == 2 })

	// The publisher goes at the fast subscriber's pace, which the slow
	// one, reading nothing, must not change.
	const n = 400
	payload := `"` + strings.Repeat("x", 32<<10) + `"`
	for i := range n {
		if _, err := ts.g.channels.broker.Publish(context.Background(), "fire", json.RawMessage(payload)); err != nil {
			t.Fatal(err)
		}
		if m := fast.next(); m.Type != "message" || len(m.Data) != len(payload) {
			t.Fatalf("fast subscriber, message %d: %.60v", i, m)
		}
	}
	waitFor(t, 10*time.Second, "the slow subscriber to be closed", func() bool {
		return ts.metric(t, "duplex_slow_consumer_closes_total") == 1
	})
	for {
		h, p, err := slow.ReadFrame()
		if err != nil {
			t.Fatalf("slow subscriber: %v; want a close frame", err)
		}
		if h.Opcode == wire.OpClose {
			if code, reason, _ := wire.ParseClose(p); code != 1013 {
				t.Errorf("slow subscriber closed with %d %q; want 1013", code, reason)
			}
			break
		}
	}
	slow.WriteFrame(true, 0, wire.OpClose, true, wire.AppendClose(nil, 1013, ""))
	slow.ExpectEOF(t, testkit.CloseWait)
}

// lossyBroker loses the deliveries drop picks, as a Redis broker that
// started its stream late or fell behind would; History still has them.
type lossyBroker struct {
	*memoryBroker
	drop func(Message) bool
}

func (b *lossyBroker) Subscribe(channel string, deliver func(Message)) func() {
	return b.memoryBroker.Subscribe(channel, func(m Message) {
		if !b.drop(m) {
			deliver(m)
		}
	})
}

// TestGapsFilledFromHistory: messages the broker fails to deliver live
// are read from its history, so the subscriber still gets each once and
// in order.
func TestGapsFilledFromHistory(t *testing.T) { forEachKind(t, testGapsFilledFromHistory) }

func testGapsFilledFromHistory(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	b := &lossyBroker{newMemoryBroker(100, time.Minute), func(m Message) bool { return m.Offset%7 == 3 || m.Offset%11 == 0 }}
	t.Cleanup(func() { b.Close() })
	ts := k.start(t, Options{Broker: b})
	c := ts.connect(t, gwToken)
	c.sendJSON(`{"type":"subscribe","channel":"g"}`)
	c.expect("subscribed")
	first := ts.publishN(t, "g", 0, 60)
	c.expectMessages("g", first, 0, 60)
	c.expectNothing()
}

// TestGapBeyondHistory: a gap the history no longer holds is announced
// with an unasked {"type":"subscribed","recovered":false}, and the
// messages after it follow.
func TestGapBeyondHistory(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	var lo uint64
	b := &lossyBroker{newMemoryBroker(3, time.Minute), func(m Message) bool { return m.Offset >= lo+10 && m.Offset < lo+16 }}
	t.Cleanup(func() { b.Close() })
	ts := startGateway(t, Options{Broker: b})
	lo = ts.publishN(t, "g", 0, 1) + 1 // before any subscriber
	c := ts.connect(t, gwToken)
	c.sendJSON(`{"type":"subscribe","channel":"g"}`)
	c.expect("subscribed")
	ts.publishN(t, "g", 0, 30)
	c.expectMessages("g", lo, 0, 10)
	m := c.expect("subscribed")
	if m.Recovered || m.Offset < lo+15 {
		t.Fatalf("after the gap: %v; want recovered false at offset ≥ %d", m, lo+15)
	}
	rest := int(lo + 29 - m.Offset)
	c.expectMessages("g", m.Offset+1, 30-rest, rest)
	c.expectNothing()
	if v := ts.metric(t, "duplex_recovery_failures_total"); v != 1 {
		t.Errorf("duplex_recovery_failures_total = %v; want 1", v)
	}
}
