package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/testkit"
)

// expectReply sends req and checks that the next message is want.
func (cc *chanClient) expectReply(req, want string) {
	cc.t.Helper()
	cc.sendJSON(req)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, p, err := cc.c.Read(ctx)
	if err != nil || string(p) != want {
		cc.t.Errorf("%.80s → %q, %v; want %s", req, p, err, want)
	}
}

// TestHistoryMemoryRecovery: messages pushed out of the history by the
// memory budget, by publishes to other channels, are reported to a
// client that resumes from them with recovered:false, as
// docs/protocol.md says; one that is up to date still recovers.
func TestHistoryMemoryRecovery(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	ts := startGateway(t, Options{HistoryMemory: 64 << 10, PublishRate: -1, PublishBytesRate: -1})
	c := ts.connect(t, gwToken)
	first := ts.publishN(t, "keep", 0, 3)
	c.sendJSON(fmt.Sprintf(`{"type":"subscribe","channel":"keep","since":%d}`, first-1))
	if m := c.expect("subscribed"); !m.Recovered || m.Offset != first+2 {
		t.Fatalf("before the flood: %v; want recovered, offset %d", m, first+2)
	}
	c.expectMessages("keep", first, 0, 3)

	// 200 KiB to other channels: three times the budget. c stays
	// subscribed to keep, so the channel lives on with no message held.
	big := `"` + strings.Repeat("y", 1022) + `"`
	for i := range 200 {
		c.sendJSON(fmt.Sprintf(`{"type":"publish","channel":"flood%d","data":%s}`, i%7, big))
	}
	c.expectNothing()
	if v, live := ts.metric(t, "duplex_history_bytes"), liveHistory(64<<10, gcPercent()); v <= 0 || v > float64(live) {
		t.Errorf("duplex_history_bytes %v; want at most %d, the budget less the collector's room", v, live)
	}
	if v, live := ts.metric(t, "duplex_history_limit_bytes"), liveHistory(64<<10, gcPercent()); v != float64(live) {
		t.Errorf("duplex_history_limit_bytes %v; want %d", v, live)
	}
	if v := ts.metric(t, "duplex_history_evicted_total"); v < 100 {
		t.Errorf("duplex_history_evicted_total %v; want most of the flood evicted", v)
	}
	r := ts.connect(t, gwToken)
	r.sendJSON(fmt.Sprintf(`{"type":"subscribe","channel":"keep","since":%d}`, first-1))
	if m := r.expect("subscribed"); m.Recovered || m.Offset != first+2 {
		t.Errorf("after the flood: %v; want recovered:false at offset %d", m, first+2)
	}
	r.expectNothing() // nothing replayed
	r.sendJSON(`{"type":"unsubscribe","channel":"keep"}`)
	r.sendJSON(fmt.Sprintf(`{"type":"subscribe","channel":"keep","since":%d}`, first+2))
	if m := r.expect("subscribed"); !m.Recovered {
		t.Errorf("resuming from the latest offset: %v; want recovered", m)
	}
}

func TestSubscriptionLimit(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	ts := startGateway(t, Options{MaxSubscriptions: 3})
	a, b := ts.connect(t, gwToken), ts.connect(t, gwToken)
	for _, ch := range []string{"x", "y"} {
		a.sendJSON(`{"type":"subscribe","channel":"` + ch + `"}`)
		a.expect("subscribed")
	}
	b.sendJSON(`{"type":"subscribe","channel":"x"}`)
	b.expect("subscribed")
	b.expectReply(`{"type":"subscribe","channel":"z"}`, `{"type":"error","error":"subscription limit reached","channel":"z"}`)
	a.expectReply(`{"type":"subscribe","channel":"z"}`, `{"type":"error","error":"subscription limit reached","channel":"z"}`)
	if v := ts.metric(t, `duplex_limited_total{limit="subscriptions"}`); v != 2 {
		t.Errorf(`duplex_limited_total{limit="subscriptions"} = %v; want 2`, v)
	}
	// A subscription ended, by unsubscribe or by closing, makes room.
	a.sendJSON(`{"type":"unsubscribe","channel":"y"}`)
	a.expectNothing()
	b.sendJSON(`{"type":"subscribe","channel":"z"}`)
	b.expect("subscribed")
	a.c.CloseNow()
	waitFor(t, 10*time.Second, "a's subscriptions to end", func() bool { return ts.metric(t, "duplex_subscriptions") == 2 })
	b.sendJSON(`{"type":"subscribe","channel":"w"}`)
	b.expect("subscribed")
}

func TestConnectionSubscriptionLimit(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	ts := startGateway(t, Options{MaxConnectionSubscriptions: 2})
	a, b := ts.connect(t, gwToken), ts.connect(t, gwToken)
	for _, ch := range []string{"x", "y"} {
		a.sendJSON(`{"type":"subscribe","channel":"` + ch + `"}`)
		a.expect("subscribed")
	}
	a.expectReply(`{"type":"subscribe","channel":"z"}`, `{"type":"error","error":"too many subscriptions","channel":"z"}`)
	b.sendJSON(`{"type":"subscribe","channel":"z"}`)
	b.expect("subscribed")
}

func TestChannelLimit(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	const key = "k-3b1f"
	ts := startGateway(t, Options{MaxChannels: 2, APIKey: key})
	c := ts.connect(t, gwToken)
	// A channel that only has subscribers is not one of the broker's:
	// three of them do not reach the limit of 2.
	for _, name := range []string{"a", "s1", "s2"} {
		c.sendJSON(`{"type":"subscribe","channel":"` + name + `"}`)
		c.expect("subscribed")
	}
	// A message makes a its first.
	c.sendJSON(`{"type":"publish","channel":"a","data":0}`)
	if m := c.expect("message"); m.Channel != "a" {
		t.Fatalf("got %v; want a's message", m)
	}
	c.sendJSON(`{"type":"publish","channel":"b","data":1}`)
	c.expectNothing()
	// At the limit, a new channel pushes out the oldest history, and with
	// it b, which nobody listens to.
	c.sendJSON(`{"type":"publish","channel":"n1","data":2}`)
	c.expectNothing()
	if code, body := ts.do(t, "GET", "/api/history?channel=n1", "Bearer "+key, ""); code != 200 || !strings.Contains(body, `"data":2}]`) {
		t.Errorf("history of the new channel: %d %s; want its message", code, body)
	}
	if code, body := ts.do(t, "GET", "/api/history?channel=b", "Bearer "+key, ""); code != 200 || !strings.Contains(body, `"messages":[],`) {
		t.Errorf("history of the channel pushed out: %d %s; want it empty", code, body)
	}
	c.sendJSON(`{"type":"subscribe","channel":"n1"}`)
	c.expect("subscribed")
	// Every channel has a subscriber now: nothing can go.
	c.expectReply(`{"type":"publish","channel":"c","data":1}`, `{"type":"error","error":"channel limit reached","channel":"c"}`)
	if code, body := ts.do(t, "POST", "/api/publish", "Bearer "+key, `{"channel":"c","data":1}`); code != 503 || body != `{"error":"channel limit reached"}`+"\n" {
		t.Errorf("API publish beyond the channel limit: %d %s; want 503 channel limit reached", code, body)
	}
	// Existing channels still take messages.
	c.sendJSON(`{"type":"publish","channel":"a","data":3}`)
	if m := c.expect("message"); string(m.Data) != "3" {
		t.Errorf("publish to an existing channel at the limit: %v", m)
	}
}

func TestPublishRateLimit(t *testing.T) { forEachKind(t, testPublishRateLimit) }

func testPublishRateLimit(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	// A burst of 1000 bytes (one message of MaxMessageSize), refilled at
	// 1 byte/s: the second 600-byte publish is refused whatever the
	// machine's speed.
	ts := k.start(t, Options{MaxMessageSize: 1000, PublishBytesRate: 1})
	c := ts.connect(t, gwToken)
	other := ts.connect(t, gwToken)
	c.sendJSON(`{"type":"subscribe","channel":"r"}`)
	c.expect("subscribed")
	d := `"` + strings.Repeat("z", 598) + `"`
	c.sendJSON(`{"type":"publish","channel":"r","data":` + d + `}`)
	c.expect("message")
	c.expectReply(`{"type":"publish","channel":"r","data":`+d+`}`, `{"type":"error","error":"publish rate exceeded","channel":"r"}`)
	c.expectNothing()
	// The limit is per connection: another still publishes.
	other.sendJSON(`{"type":"publish","channel":"r","data":` + d + `}`)
	c.expect("message")
	if v := ts.metric(t, `duplex_limited_total{limit="publish_rate"}`); v != 1 {
		t.Errorf(`duplex_limited_total{limit="publish_rate"} = %v; want 1`, v)
	}
}

func TestPublishLimiter(t *testing.T) {
	s := &session{}
	l := newPublishLimiter(&Options{PublishRate: 10, PublishBytesRate: 100, MaxMessageSize: 50})
	now := time.Unix(1000, 0)
	for i := range 10 {
		if !l.allow(s, 10, now) {
			t.Fatalf("publish %d of a burst of 10 refused", i)
		}
	}
	if l.allow(s, 0, now) {
		t.Error("11th publish in the same instant allowed")
	}
	now = now.Add(100 * time.Millisecond) // one publish, 10 bytes back
	if !l.allow(s, 10, now) || l.allow(s, 0, now) {
		t.Error("after 100ms: want exactly one more publish")
	}
	now = now.Add(10 * time.Second) // full again, not beyond the burst
	if l.allow(s, 101, now) {
		t.Error("101 bytes allowed with a byte burst of 100")
	}
	if !l.allow(s, 100, now) {
		t.Error("a full byte bucket refused 100 bytes")
	}
	// A message of MaxMessageSize always fits a bucket once it is full.
	l = newPublishLimiter(&Options{PublishRate: 10, PublishBytesRate: 10, MaxMessageSize: 500})
	if !l.allow(s, 500, now) {
		t.Error("a message of MaxMessageSize refused by a full bucket smaller than it")
	}
	if off := newPublishLimiter(&Options{PublishRate: -1, PublishBytesRate: -1}); !off.allow(s, 1<<30, now) {
		t.Error("limits off: publish refused")
	}
}

func TestHistorySizeZero(t *testing.T) {
	o, err := parse(t, nil, "--history-size", "0")
	if err != nil || o.HistorySize >= 0 {
		t.Fatalf("--history-size 0: HistorySize %d, %v; want negative (no history)", o.HistorySize, err)
	}
	for _, bad := range []string{"-1", "10001", "x"} {
		o, err := parse(t, nil, "--history-size", bad)
		if err == nil {
			err = o.Validate()
		}
		if err == nil {
			t.Errorf("--history-size %s accepted", bad)
		}
	}
	testkit.CheckNoGoroutineLeak(t)
	ts := startGateway(t, o)
	c := ts.connect(t, gwToken)
	first := ts.publishN(t, "h", 0, 2)
	c.sendJSON(fmt.Sprintf(`{"type":"subscribe","channel":"h","since":%d}`, first))
	if m := c.expect("subscribed"); m.Recovered {
		t.Errorf("subscribe since an old offset with no history: %v; want recovered:false", m)
	}
	c.expectNothing()
	next := ts.publishN(t, "h", 5, 1)
	c.expectMessages("h", next, 5, 1) // live messages still flow
}

// plainBroker has only the methods of Broker, as a broker without
// HistoryLimit (historyLimiter) would.
type plainBroker struct{ Broker }

// TestHistoryAPIPaging runs against a broker with HistoryLimit (the
// memory broker) and one without, which the gateway pages itself.
func TestHistoryAPIPaging(t *testing.T) {
	t.Run("HistoryLimit", func(t *testing.T) { testHistoryAPIPaging(t, nil) })
	t.Run("History", func(t *testing.T) {
		b := plainBroker{newMemoryBroker(100, time.Minute)}
		t.Cleanup(func() { b.Close() })
		testHistoryAPIPaging(t, b)
	})
}

func testHistoryAPIPaging(t *testing.T, broker Broker) {
	testkit.CheckNoGoroutineLeak(t)
	const key = "k-91ce"
	ts := startGateway(t, Options{APIKey: key, HistoryPageBytes: 100, Broker: broker})
	first := ts.publishN(t, "p", 0, 10)
	type page struct {
		Messages []wireMsg `json:"messages"`
		Offset   uint64    `json:"offset"`
		Next     uint64    `json:"next"`
		More     bool      `json:"more"`
	}
	get := func(q string) page {
		t.Helper()
		code, body := ts.do(t, "GET", "/api/history?channel=p&"+q, "Bearer "+key, "")
		var p page
		if err := json.Unmarshal([]byte(body), &p); code != 200 || err != nil {
			t.Fatalf("history?%s: %d %s (%v)", q, code, body, err)
		}
		return p
	}
	// Page through with limit=3: 3, 3, 3, 1.
	var got []uint64
	since, pages := first-1, 0
	for {
		p := get(fmt.Sprintf("since=%d&limit=3", since))
		pages++
		if len(p.Messages) > 3 || p.Offset != first+9 {
			t.Fatalf("page %d: %d messages, offset %d", pages, len(p.Messages), p.Offset)
		}
		for _, m := range p.Messages {
			got = append(got, m.Offset)
		}
		if n := len(p.Messages); n > 0 && p.Next != p.Messages[n-1].Offset {
			t.Errorf("page %d: next %d; want its last offset %d", pages, p.Next, p.Messages[n-1].Offset)
		}
		if !p.More {
			break
		}
		since = p.Next
	}
	if pages != 4 || len(got) != 10 || got[0] != first || got[9] != first+9 {
		t.Errorf("%d pages, offsets %v; want 4 pages, %d to %d", pages, got, first, first+9)
	}
	// The byte bound: 100 bytes of data per page at most, but always
	// one message.
	big := `"` + strings.Repeat("b", 60) + `"`
	for range 3 {
		ts.g.channels.broker.Publish(context.Background(), "p2", json.RawMessage(big))
	}
	code, body := ts.do(t, "GET", "/api/history?channel=p2", "Bearer "+key, "")
	var p page
	json.Unmarshal([]byte(body), &p)
	if code != 200 || len(p.Messages) != 1 || !p.More {
		t.Errorf("62-byte messages with a 100-byte page: %d messages, more %v; want 1, true", len(p.Messages), p.More)
	}
	// Without a limit: the default, 100.
	if p := get("since=0"); len(p.Messages) != 10 || p.More || p.Next != first+9 {
		t.Errorf("no limit: %d messages, more %v, next %d", len(p.Messages), p.More, p.Next)
	}
	// Nothing after since: next is the latest offset.
	if p := get(fmt.Sprintf("since=%d", first+9)); len(p.Messages) != 0 || p.More || p.Next != first+9 {
		t.Errorf("up to date: %+v", p)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "limit=-3"} {
		if code, body := ts.do(t, "GET", "/api/history?channel=p&"+q, "Bearer "+key, ""); code != 400 || !strings.Contains(body, "limit: want an integer from 1 to 1000") {
			t.Errorf("history?%s: %d %s; want 400", q, code, body)
		}
	}
}

// TestReplayStopsWhenSessionEnds: a replay to a session that is closing
// (its queue overflowed) encodes nothing more: a long history of large
// messages must not turn into garbage for a client already gone.
func TestReplayStopsWhenSessionEnds(t *testing.T) {
	s := &eventSession{}
	s.kind = s
	s.closeWith(0, "")
	sub := &subscriber{s: &s.session}
	msgs := make([]Message, 100)
	for i := range msgs {
		msgs[i] = Message{Channel: "c", Offset: uint64(i + 1), Data: data(64 << 10)}
	}
	ch := &channel{}
	allocs := testing.AllocsPerRun(10, func() { sub.last = 0; ch.sendHistory(sub, msgs) })
	if allocs > 1 {
		t.Errorf("replay of 100 messages to a closing session: %v allocations; want at most the first message's", allocs)
	}
}

// writeRecorder keeps every slice written to it, as given (to see where
// it points; its content may change after Write), and a copy of the bytes.
type writeRecorder struct {
	writes [][]byte
	all    []byte
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.writes = append(w.writes, p)
	w.all = append(w.all, p...)
	return len(p), nil
}

// TestWriteHistoryStreams: the history API hands each message's data to
// the connection as the broker holds it, never copied into a buffer of the
// whole answer, and the bytes make the documented JSON.
func TestWriteHistoryStreams(t *testing.T) {
	page := []Message{
		{Channel: "c", Offset: 7, Data: data(1 << 20)},
		{Channel: "c", Offset: 8, Data: json.RawMessage(`{"a":1}`)},
	}
	var w writeRecorder
	writeHistory(&w, page, true, 9, 8, true)
	for _, m := range page {
		shared := false
		for _, p := range w.writes {
			shared = shared || len(p) == len(m.Data) && &p[0] == &m.Data[0]
		}
		if !shared {
			t.Errorf("message %d: its data was not written as held", m.Offset)
		}
	}
	largest := 0
	for _, p := range w.writes {
		if len(p) != len(page[0].Data) {
			largest = max(largest, len(p))
		}
	}
	if largest > 256 {
		t.Errorf("a write of %d bytes besides the data; want only small envelopes", largest)
	}
	var out struct {
		Messages []struct {
			Channel string          `json:"channel"`
			Offset  uint64          `json:"offset"`
			Data    json.RawMessage `json:"data"`
		} `json:"messages"`
		Recovered bool   `json:"recovered"`
		Offset    uint64 `json:"offset"`
		Next      uint64 `json:"next"`
		More      bool   `json:"more"`
	}
	if err := json.Unmarshal(w.all, &out); err != nil {
		t.Fatalf("the answer is not JSON: %v", err)
	}
	if len(out.Messages) != 2 || out.Messages[1].Offset != 8 || string(out.Messages[1].Data) != `{"a":1}` ||
		!out.Recovered || out.Offset != 9 || out.Next != 8 || !out.More {
		t.Errorf("decoded %+v", out)
	}
}
