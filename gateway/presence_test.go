package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

var presenceSecret = []byte("presence-test-secret-0123456789abcdef")

const presenceAPIKey = "api-key-presence"

// presenceMsg is a server message with the fields of issue 16.
type presenceMsg struct {
	Type      string          `json:"type"`
	Channel   string          `json:"channel"`
	Offset    uint64          `json:"offset"`
	Recovered bool            `json:"recovered"`
	Data      json.RawMessage `json:"data"`
	Error     json.RawMessage `json:"error"`
	Client    string          `json:"client"`
	User      string          `json:"user"`
	ID        json.RawMessage `json:"id"`
	Clients   []struct {
		Client string `json:"client"`
		User   string `json:"user"`
	} `json:"clients"`
}

// nextMsg reads the next message of cc as a presenceMsg.
func (cc *chanClient) nextMsg() presenceMsg {
	cc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, p, err := cc.c.Read(ctx)
	if err != nil {
		cc.t.Fatalf("Read: %v", err)
	}
	var m presenceMsg
	if err := json.Unmarshal(p, &m); err != nil {
		cc.t.Fatalf("server sent %q: %v", p, err)
	}
	return m
}

func (cc *chanClient) expectMsg(typ string) presenceMsg {
	cc.t.Helper()
	m := cc.nextMsg()
	if m.Type != typ {
		cc.t.Fatalf("got %+v; want a %q message", m, typ)
	}
	return m
}

// userToken signs an HS256 JWT for user with the extra claims.
func userToken(t *testing.T, user string, claims map[string]any) string {
	t.Helper()
	c := map[string]any{"sub": user, "publish": "*"}
	for k, v := range claims {
		c[k] = v
	}
	return signJWT(t, "HS256", presenceSecret, c)
}

// twoNodes starts two gateways on one memory broker, like two nodes of a
// cluster on one Redis, with sessions of kind k.
func twoNodes(t *testing.T, k sessionKindCase, b Broker, opts Options) (*testServer, *testServer) {
	t.Helper()
	opts.Broker = b
	opts.JWTSecret = string(presenceSecret)
	opts.APIKey = presenceAPIKey
	if opts.Presence == nil {
		opts.Presence = []string{"room/*"}
	}
	if opts.JoinLeave == nil {
		opts.JoinLeave = []string{"room/*"}
	}
	return k.start(t, opts), k.start(t, opts)
}

func newSharedBroker(t *testing.T) *memoryBroker {
	mb := newMemoryBroker(100, time.Minute)
	t.Cleanup(func() { mb.Close() })
	return mb
}

// api calls the server API of ts and decodes the answer into out.
func (ts *testServer) api(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, ts.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+presenceAPIKey)
	resp, err := ts.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && json.Unmarshal(b, out) != nil {
		t.Fatalf("%s %s: %d %q", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

type apiPresence struct {
	Clients []Member `json:"clients"`
	Error   string   `json:"error"`
}

func (ts *testServer) presenceOf(t *testing.T, channel string) []Member {
	t.Helper()
	var out apiPresence
	if code := ts.api(t, "GET", "/api/presence?channel="+channel, "", &out); code != 200 {
		t.Fatalf("GET /api/presence: %d %s", code, out.Error)
	}
	sort.Slice(out.Clients, func(i, j int) bool { return out.Clients[i].User < out.Clients[j].User })
	return out.Clients
}

func TestPresenceJoinLeaveAcrossNodes(t *testing.T) { forEachKind(t, testPresenceJoinLeaveAcrossNodes) }

func testPresenceJoinLeaveAcrossNodes(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	a, b := twoNodes(t, k, newSharedBroker(t), Options{})
	ada := a.connect(t, userToken(t, "ada", nil))
	bob := b.connect(t, userToken(t, "bob", nil))

	ada.sendJSON(`{"type":"subscribe","channel":"room/1"}`)
	ada.expectMsg("subscribed")
	bob.sendJSON(`{"type":"subscribe","channel":"room/1"}`)
	bob.expectMsg("subscribed")
	join := ada.expectMsg("join")
	if join.Channel != "room/1" || join.User != "bob" || !strings.HasPrefix(join.Client, b.g.presence.node+".") {
		t.Fatalf("join = %+v; want bob's client on node %s", join, b.g.presence.node)
	}
	bob.expectNothing() // no join for oneself

	ada.sendJSON(`{"type":"presence","channel":"room/1"}`)
	p := ada.expectMsg("presence")
	var users []string
	for _, c := range p.Clients {
		users = append(users, c.User)
	}
	sort.Strings(users)
	if p.Channel != "room/1" || strings.Join(users, ",") != "ada,bob" {
		t.Fatalf("presence = %+v; want ada and bob", p)
	}

	// The API of either node sees both, with their nodes.
	ms := b.presenceOf(t, "room/1")
	if len(ms) != 2 || ms[0].User != "ada" || ms[0].Node != a.g.presence.node || ms[1].Node != b.g.presence.node || ms[1].Client != join.Client {
		t.Fatalf("GET /api/presence = %+v", ms)
	}
	var chans struct {
		Channels []channelCount `json:"channels"`
	}
	ada.sendJSON(`{"type":"subscribe","channel":"other"}`)
	ada.expectMsg("subscribed")
	ada.expectNothing() // the barrier: the membership is written
	if code := a.api(t, "GET", "/api/channels?pattern=room/*", "", &chans); code != 200 || len(chans.Channels) != 1 || chans.Channels[0] != (channelCount{"room/1", 2}) {
		t.Fatalf("GET /api/channels?pattern=room/* = %d %+v; want room/1 with 2", code, chans)
	}
	if a.api(t, "GET", "/api/channels", "", &chans); len(chans.Channels) != 2 {
		t.Fatalf("GET /api/channels = %+v; want room/1 and other", chans)
	}

	bob.sendJSON(`{"type":"unsubscribe","channel":"room/1"}`)
	if m := ada.expectMsg("leave"); m.Client != join.Client || m.User != "bob" {
		t.Fatalf("leave = %+v; want bob's", m)
	}
	bob.sendJSON(`{"type":"subscribe","channel":"room/1"}`)
	bob.expectMsg("subscribed")
	ada.expectMsg("join")
	bob.c.Close(duplex.StatusNormalClosure, "")
	if m := ada.expectMsg("leave"); m.User != "bob" {
		t.Fatalf("leave on close = %+v", m)
	}
	waitFor(t, 5*time.Second, "bob to leave the presence list", func() bool {
		return len(a.presenceOf(t, "room/1")) == 1
	})

	// Errors.
	for _, tt := range []struct{ send, want string }{
		{`{"type":"presence","channel":"other"}`, "presence not enabled for this channel"},
		{`{"type":"presence","channel":"room/2"}`, "not subscribed"},
		{`{"type":"presence","channel":"a b"}`, "invalid channel name"},
	} {
		ada.sendJSON(tt.send)
		if m := ada.expectMsg("error"); string(m.Error) != strconv.Quote(tt.want) {
			t.Errorf("%s → %+v; want %q", tt.send, m, tt.want)
		}
	}
	if code := a.api(t, "GET", "/api/presence?channel=a%20b", "", &apiPresence{}); code != 400 {
		t.Errorf("GET /api/presence with a bad channel = %d; want 400", code)
	}
	if code := a.api(t, "GET", "/api/channels?pattern=[", "", &apiPresence{}); code != 400 {
		t.Errorf("GET /api/channels with a bad pattern = %d; want 400", code)
	}
}

func TestAPICommandsAcrossNodes(t *testing.T) { forEachKind(t, testAPICommandsAcrossNodes) }

func testAPICommandsAcrossNodes(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	a, b := twoNodes(t, k, newSharedBroker(t), Options{})
	bob := b.connect(t, userToken(t, "bob", nil))
	bob2 := b.connect(t, userToken(t, "bob", nil))
	ada := b.connect(t, userToken(t, "ada", nil))
	for _, c := range []*chanClient{bob, bob2, ada} {
		c.expectNothing() // the session runs: commands find it
	}

	// Through node A, on sessions of node B.
	if code := a.api(t, "POST", "/api/subscribe", `{"user":"bob","channel":"news"}`, nil); code != 200 {
		t.Fatalf("POST /api/subscribe = %d", code)
	}
	for _, c := range []*chanClient{bob, bob2} {
		if m := c.expectMsg("subscribed"); m.Channel != "news" {
			t.Fatalf("subscribed = %+v", m)
		}
	}
	a.publishN(t, "news", 1, 1)
	bob.expectMsg("message")
	bob2.expectMsg("message")
	ada.expectNothing()

	if code := a.api(t, "POST", "/api/unsubscribe", `{"user":"bob","channel":"news"}`, nil); code != 200 {
		t.Fatalf("POST /api/unsubscribe = %d", code)
	}
	if m := bob.expectMsg("unsubscribed"); m.Channel != "news" {
		t.Fatalf("unsubscribed = %+v", m)
	}
	bob2.expectMsg("unsubscribed")
	a.publishN(t, "news", 2, 1)
	bob.expectNothing()

	if code := a.api(t, "POST", "/api/disconnect", `{"user":"bob"}`, nil); code != 200 {
		t.Fatalf("POST /api/disconnect = %d", code)
	}
	for _, c := range []*chanClient{bob, bob2} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err := c.c.Read(ctx)
		cancel()
		var ce *duplex.CloseError
		if !errors.As(err, &ce) || ce.Code != StatusDisconnected || ce.Reason != "disconnected" {
			t.Fatalf("bob's read after disconnect = %v; want close 4403 disconnected", err)
		}
	}
	ada.expectNothing() // others stay

	for _, tt := range []struct{ path, body string }{
		{"/api/disconnect", `{}`},
		{"/api/subscribe", `{"user":"bob","channel":"a b"}`},
		{"/api/unsubscribe", `{"user":"bob"}`},
		{"/api/subscribe", `not json`},
	} {
		var e struct{ Error string }
		if code := a.api(t, "POST", tt.path, tt.body, &e); code != 400 || e.Error == "" {
			t.Errorf("POST %s %s = %d %q; want 400 with an error", tt.path, tt.body, code, e.Error)
		}
	}
}

// A node that dies leaves no member behind for longer than PresenceTTL.
func TestPresenceDeadNodeExpires(t *testing.T) { forEachKind(t, testPresenceDeadNodeExpires) }

func testPresenceDeadNodeExpires(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	ttl := minPresenceTTL
	a, b := twoNodes(t, k, newSharedBroker(t), Options{PresenceTTL: ttl})
	ada := a.connect(t, userToken(t, "ada", nil))
	bob := b.connect(t, userToken(t, "bob", nil))
	for _, c := range []*chanClient{ada, bob} {
		c.sendJSON(`{"type":"subscribe","channel":"room/1"}`)
		c.expectMsg("subscribed")
	}
	// A member is written just after its subscribed reply is queued.
	waitFor(t, 10*time.Second, "ada and bob in the presence list", func() bool {
		return len(a.presenceOf(t, "room/1")) == 2
	})
	if m := ada.expectMsg("join"); m.User != "bob" {
		t.Fatalf("join = %+v", m)
	}
	// Node B stops keeping itself alive, as if its process died: its
	// session stays open, but nothing refreshes it in the store.
	killed := time.Now()
	close(b.g.presence.done)
	b.g.presence.wg.Wait()
	waitFor(t, ttl+10*time.Second, "bob's member to expire", func() bool {
		ms := a.presenceOf(t, "room/1")
		return len(ms) == 1 && ms[0].User == "ada"
	})
	t.Logf("bob left the list %v after his node stopped (PresenceTTL %v)", time.Since(killed).Round(10*time.Millisecond), ttl)
	// Node A reaps the dead node on its ticks: ada hears bob leave.
	if m := ada.expectMsg("leave"); m.User != "bob" {
		t.Fatalf("leave = %+v; want bob's", m)
	}
	t.Logf("bob's leave came %v after his node stopped (bound %v)", time.Since(killed).Round(10*time.Millisecond), ttl+ttl/3)
	// The node comes back (it was cut from the broker, not dead): its
	// first renewal finds it expired and adds its members again.
	b.g.presence.keepNode()
	if ms := a.presenceOf(t, "room/1"); len(ms) != 2 {
		t.Fatalf("presence after node B came back = %+v; want ada and bob", ms)
	}
	if m := ada.expectMsg("join"); m.User != "bob" {
		t.Fatalf("join on the way back = %+v; want bob's", m)
	}
}

// Without a PresenceStore and ControlBus, each node sees its own.
func TestPresenceWithoutSharedStoreIsLocal(t *testing.T) {
	forEachKind(t, testPresenceWithoutSharedStoreIsLocal)
}

func testPresenceWithoutSharedStoreIsLocal(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	mb := newSharedBroker(t)
	a, b := twoNodes(t, k, struct{ Broker }{mb}, Options{})
	ada := a.connect(t, userToken(t, "ada", nil))
	ada2 := a.connect(t, userToken(t, "ada2", nil))
	bob := b.connect(t, userToken(t, "bob", nil))
	for _, c := range []*chanClient{ada, bob, ada2} {
		c.sendJSON(`{"type":"subscribe","channel":"room/1"}`)
		c.expectMsg("subscribed")
	}
	if m := ada.expectMsg("join"); m.User != "ada2" {
		t.Fatalf("join = %+v; want ada2 (bob is on the other node)", m)
	}
	bob.expectNothing()
	ada2.expectNothing() // the barrier: ada2's membership is written; no join of ada, who came first
	if ms := a.presenceOf(t, "room/1"); len(ms) != 2 {
		t.Fatalf("presence on A = %+v; want ada and ada2 only", ms)
	}
	a.api(t, "POST", "/api/disconnect", `{"user":"bob"}`, nil)
	bob.expectNothing()
}

func TestServerSideSubscriptionsAndRecovery(t *testing.T) {
	forEachKind(t, testServerSideSubscriptionsAndRecovery)
}

func testServerSideSubscriptionsAndRecovery(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	ts := k.start(t, Options{JWTSecret: string(presenceSecret)})
	tok := userToken(t, "ada", map[string]any{"subs": []string{"user/ada", "bad name"}, "channels": []string{"public/*"}})
	first := ts.publishN(t, "user/ada", 1, 1)

	c := ts.connect(t, tok)
	if m := c.expectMsg("subscribed"); m.Channel != "user/ada" || m.Offset != first || m.Recovered {
		t.Fatalf("subscribed = %+v; want user/ada at %d", m, first)
	}
	ts.publishN(t, "user/ada", 2, 1)
	last := c.expectMsg("message").Offset
	c.c.Close(duplex.StatusNormalClosure, "")

	ts.publishN(t, "user/ada", 3, 2)
	c = &chanClient{t: t, c: dial(t, ts.ws+"/ws?token="+tok+"&since=user/ada:"+strconv.FormatUint(last, 10), nil)}
	if m := c.expectMsg("subscribed"); m.Channel != "user/ada" || !m.Recovered || m.Offset != last+2 {
		t.Fatalf("subscribed on resume = %+v; want recovered at %d", m, last+2)
	}
	c.expectMessages("user/ada", last+1, 3, 2)

	resp, body := ts.get(t, "/ws?token="+tok+"&since=user/ada", nil)
	if resp.StatusCode != 400 || !strings.Contains(body, "CHANNEL:OFFSET") {
		t.Errorf("bad since → %d %q; want 400", resp.StatusCode, body)
	}
}

// Subscribing to a join/leave channel announces the client to every
// subscriber: it counts against the publish rate, so a loop of
// subscribes and unsubscribes cannot flood the channel with events.
func TestJoinRateLimited(t *testing.T) { forEachKind(t, testJoinRateLimited) }

func testJoinRateLimited(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	ts := k.start(t, Options{JWTSecret: string(presenceSecret), JoinLeave: []string{"room/*"}, PublishRate: 1})
	c := ts.connect(t, userToken(t, "ada", nil))
	start := time.Now()
	refused := 0
	for range 4 {
		c.sendJSON(`{"type":"subscribe","channel":"room/1"}`)
		switch m := c.nextMsg(); {
		case m.Type == "subscribed":
			c.sendJSON(`{"type":"unsubscribe","channel":"room/1"}`)
		case m.Type == "error" && string(m.Error) == `"subscribe rate exceeded"`:
			refused++
		default:
			t.Fatalf("subscribe: %+v", m)
		}
	}
	if most := 3 - int(time.Since(start)/time.Second); refused < most {
		t.Errorf("4 subscribes at 1/s: %d refused; want at least %d", refused, most)
	}
	// Other channels are not limited.
	for _, ch := range []string{"a", "b", "c"} {
		c.sendJSON(`{"type":"subscribe","channel":"` + ch + `"}`)
		c.expectMsg("subscribed")
	}
}

// A presence list costs the broker a read of the channel: requests count
// against the publish rate.
func TestPresenceRateLimited(t *testing.T) { forEachKind(t, testPresenceRateLimited) }

func testPresenceRateLimited(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	ts := k.start(t, Options{JWTSecret: string(presenceSecret), Presence: []string{"lobby"}, PublishRate: 1})
	c := ts.connect(t, userToken(t, "ada", nil))
	c.sendJSON(`{"type":"subscribe","channel":"lobby"}`)
	c.expectMsg("subscribed")
	start := time.Now()
	refused := 0
	for i := range 4 {
		c.sendJSON(`{"type":"presence","channel":"lobby"}`)
		switch m := c.nextMsg(); {
		case m.Type == "presence" && len(m.Clients) == 1:
		case i > 0 && m.Type == "error" && string(m.Error) == `"presence rate exceeded"`:
			refused++
		default:
			t.Fatalf("presence request %d: %+v", i, m)
		}
	}
	if most := 3 - int(time.Since(start)/time.Second); refused < most {
		t.Errorf("4 presence requests at 1/s: %d refused; want at least %d", refused, most)
	}
}

// A gateway with a memory broker of its own keeps no presence records
// for channels without --presence or --join-leave: the server API reads
// this node's subscribers from the channels themselves, so an idle
// session on an ordinary channel costs presence nothing.
func TestPresenceOwnBrokerReadsChannels(t *testing.T) {
	forEachKind(t, testPresenceOwnBrokerReadsChannels)
}

func testPresenceOwnBrokerReadsChannels(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	ts := k.start(t, Options{JWTSecret: string(presenceSecret), APIKey: presenceAPIKey, JoinLeave: []string{"room/*"}})
	ada := ts.connect(t, userToken(t, "ada", nil))
	bob := ts.connect(t, userToken(t, "bob", nil))
	for _, c := range []*chanClient{ada, bob} {
		c.sendJSON(`{"type":"subscribe","channel":"news"}`)
		c.expectMsg("subscribed")
	}
	ms := ts.presenceOf(t, "news")
	if len(ms) != 2 || ms[0].User != "ada" || ms[1].User != "bob" || ms[0].Node != ts.g.presence.node {
		t.Fatalf("GET /api/presence?channel=news = %+v; want ada and bob on %s", ms, ts.g.presence.node)
	}
	p := ts.g.presence
	p.mu.Lock()
	records := len(p.sessions) + len(p.byChan)
	p.mu.Unlock()
	if records != 0 {
		t.Errorf("presence keeps %d records for an ordinary channel; want none", records)
	}

	// A --join-leave channel is tracked: bob hears ada join.
	bob.sendJSON(`{"type":"subscribe","channel":"room/1"}`)
	bob.expectMsg("subscribed")
	ada.sendJSON(`{"type":"subscribe","channel":"room/1"}`)
	ada.expectMsg("subscribed")
	if m := bob.expectMsg("join"); m.User != "ada" || m.Channel != "room/1" {
		t.Fatalf("join = %+v; want ada's in room/1", m)
	}
	var chans struct {
		Channels []channelCount `json:"channels"`
	}
	if code := ts.api(t, "GET", "/api/channels", "", &chans); code != 200 || len(chans.Channels) != 2 ||
		chans.Channels[0] != (channelCount{"news", 2}) || chans.Channels[1] != (channelCount{"room/1", 2}) {
		t.Fatalf("GET /api/channels = %d %+v; want news and room/1 with 2 each", code, chans)
	}
	ada.c.Close(duplex.StatusNormalClosure, "")
	if m := bob.expectMsg("leave"); m.User != "ada" {
		t.Fatalf("leave = %+v; want ada's", m)
	}
	waitFor(t, 5*time.Second, "ada to leave news", func() bool { return len(ts.presenceOf(t, "news")) == 1 })
}

// Server-side subscriptions are made before the server reads the
// client's first message, whichever kind of session: a subscribe sent
// at once to the same channel finds it subscribed already.
func TestServerSideSubscriptionsBeforeFirstMessage(t *testing.T) {
	forEachKind(t, testServerSideSubscriptionsBeforeFirstMessage)
}

func testServerSideSubscriptionsBeforeFirstMessage(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	// Each subscription reads the channel's history: slowly here, so that
	// a message the server read meanwhile would overtake them.
	ts := k.start(t, Options{JWTSecret: string(presenceSecret), Broker: slowHistory{newSharedBroker(t)}})
	subs := []string{"user/ada", "team/1", "team/2", "team/3"}
	tok := userToken(t, "ada", map[string]any{"subs": subs})
	for range 5 {
		c := ts.connect(t, tok)
		c.sendJSON(`{"type":"subscribe","channel":"team/3"}`)
		for _, ch := range subs {
			if m := c.expectMsg("subscribed"); m.Channel != ch {
				t.Fatalf("subscribed = %+v; want the server-side %s first", m, ch)
			}
		}
		if m := c.expectMsg("error"); m.Channel != "team/3" || string(m.Error) != `"already subscribed"` {
			t.Fatalf("the client's subscribe → %+v; want already subscribed", m)
		}
		c.c.Close(duplex.StatusNormalClosure, "")
	}
}

// slowHistory is a broker whose History takes 20 ms.
type slowHistory struct{ Broker }

func (b slowHistory) History(ctx context.Context, channel string, since uint64) ([]Message, bool, uint64, error) {
	time.Sleep(20 * time.Millisecond)
	return b.Broker.History(ctx, channel, since)
}
