package browser

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/internal/testkit"
)

// channelAPIKey is the --api-key of the channel tests.
const channelAPIKey = "browser-test-api-key-Jp3w"

// publish posts data to channel through the HTTP API at baseURL and
// returns the offset the gateway gave it.
func publish(t *testing.T, baseURL, channel string, data any) uint64 {
	t.Helper()
	body, err := json.Marshal(map[string]any{"channel": channel, "data": data})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, baseURL+"/api/publish", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+channelAPIKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s/api/publish: %v", baseURL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out struct {
		Offset uint64 `json:"offset"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || out.Offset == 0 {
		t.Fatalf("POST /api/publish: %s %s; want 200 {\"offset\":N}", res.Status, b)
	}
	return out.Offset
}

// chanEntries returns the texts of the page's channel-message log entries,
// in the order shown.
const chanEntries = `[...document.querySelectorAll('#log .entry.chan .text')].map(e => e.textContent)`

// reserve serves s's Gateway again on s's address, after kill: the same
// gateway, so the same in-memory broker and its history, as when only the
// HTTP front of a server restarts. (startGateway would make a new gateway,
// and a new, empty memory broker.)
func (s *gatewayServer) reserve(opts gateway.Options) *gatewayServer {
	t := s.t
	t.Helper()
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", s.addr, err)
	}
	ln := &trackingListener{Listener: l}
	logger := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := &httptest.Server{Listener: ln, Config: opts.HTTPServer(s.gw, logger)}
	srv.Start()
	again := &gatewayServer{t: t, gw: s.gw, srv: srv, ln: ln, logs: s.logs, addr: s.addr, url: srv.URL}
	t.Cleanup(again.stop)
	return again
}

// dropConnections takes the HTTP server down as a crash would (listener and
// every connection closed, no close frame) but keeps the Gateway, and so its
// broker, alive. It returns once the gateway's sessions have ended.
func (s *gatewayServer) dropConnections() {
	s.t.Helper()
	s.srv.Listener.Close()
	s.ln.closeAll()
	testkit.CloseServer(s.t, s.srv)
	deadline := time.Now().Add(stepTimeout)
	for s.gw.Connections() > 0 {
		if time.Now().After(deadline) {
			s.t.Fatalf("%d sessions still open %v after their connections were dropped", s.gw.Connections(), stepTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// subState is a JavaScript expression for channel's row in the page's
// subscription list: "resume state | its text | the offset shown", or
// "no row".
func subState(channel string) string {
	return fmt.Sprintf(`(() => {
		const r = document.querySelector('#subs .sub[data-channel=' + JSON.stringify(%s) + ']');
		if (!r) return 'no row';
		const resume = r.querySelector('.resume');
		return resume.dataset.resume + ' | ' + resume.textContent + ' | ' + r.querySelector('.offset').textContent;
	})()`, jsString(channel))
}

// TestPageChannelRecovery subscribes the demo page to a channel, drops the
// server under it while messages keep being published, and brings it back
// on the same address: the page must resubscribe with since and show the
// missed messages once each, in offset order, then what its publish box
// queued meanwhile, then live ones. The row of the channel shows where it
// resumes from and whether it recovered.
func TestPageChannelRecovery(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	const channel = "demo"
	opts := pageOptions()
	opts.APIKey = channelAPIKey // the default, in-memory broker

	tb := newTab(t)
	gs := startGateway(t, "127.0.0.1:0", opts)
	gs.ln.holdSockets() // to drop the page's event-loop WebSocket below
	tb.do("loading the page", chromedp.Navigate(gs.url+"/?token="+pageToken))
	tb.waitFor("state open", stateIs("open"), stepTimeout)
	if v := eval[string](tb, `document.getElementById('channel').value`); v != channel {
		t.Errorf("#channel holds %q; want the default %q", v, channel)
	}
	tb.do("subscribing", chromedp.Click(chromedp.ID("subscribe")))
	tb.waitFor("the subscription", entries("info", "subscribed to #"+channel)+" === 1", stepTimeout)

	tb.waitFor("the row saying live", subState(channel)+" === 'live | live | offset 0'", stepTimeout)

	var want []string
	var last uint64 // offset of the last message published
	pub := func(baseURL string, n int, text string) {
		t.Helper()
		data := map[string]any{"n": n, "text": text}
		last = publish(t, baseURL, channel, data)
		b, _ := json.Marshal(data) // keys sorted: n, text, as JSON.stringify keeps them
		want = append(want, fmt.Sprintf("#%s %d: %s", channel, last, b))
	}
	shown := func(what string) {
		t.Helper()
		tb.waitFor(what, fmt.Sprintf(`%s.length >= %d`, chanEntries, len(want)), stepTimeout)
		if got := eval[[]string](tb, chanEntries); !slices.Equal(got, want) {
			t.Fatalf("after %s the page shows the channel messages\n%q\nwant\n%q", what, got, want)
		}
	}

	for i := 1; i <= 3; i++ {
		pub(gs.url, i, "live")
	}
	shown("3 live messages")

	gs.dropConnections()
	tb.waitFor("state reconnecting", stateIs("reconnecting"), stepTimeout)
	waiting := fmt.Sprintf("waiting | disconnected; resumes after offset %d | offset %d", last, last)
	tb.waitFor("the row saying where it resumes", subState(channel)+" === "+jsString(waiting), stepTimeout)

	// Published while the page is away, through the API of the same
	// gateway on a server of its own.
	api := httptest.NewServer(gs.gw)
	for i := 4; i <= 6; i++ {
		pub(api.URL, i, "missed")
	}
	testkit.CloseServer(t, api)
	if s := eval[string](tb, `document.getElementById('state').dataset.state`); s == "open" {
		t.Fatalf("the page is open while the server is down")
	}
	// The publish box queues what is published meanwhile; duplex.js sends
	// it after resubscribing, so it arrives live, after the replay.
	const queued = "published while the server was down"
	quoted, _ := json.Marshal(queued)
	tb.do("publishing while down", chromedp.SendKeys(chromedp.ID("pubdata"), queued+kb.Enter))
	tb.waitFor("the queued publish in the log", entries("sent", "publish to #demo: "+string(quoted)+"  (queued until connected)")+" === 1", stepTimeout)
	tb.screenshot("channel-reconnecting.png")

	again := gs.reserve(opts)
	tb.waitFor("state open after the restart", stateIs("open"), stepTimeout)
	tb.waitFor("the recovery", entries("info", "#"+channel+" resumed, 3 missed")+" === 1", stepTimeout)
	tb.waitFor("the queued publish on the channel", fmt.Sprintf(`%s.some(e => e.endsWith(%s))`, chanEntries, jsString(": "+string(quoted))), stepTimeout)
	var stored int
	for _, m := range held(t, again.url, channel) {
		if string(m.Data) == string(quoted) {
			stored++
			last = m.Offset
		}
	}
	if stored != 1 {
		t.Fatalf("the server stored the queued publish %d times; want 1", stored)
	}
	want = append(want, fmt.Sprintf("#%s %d: %s", channel, last, quoted))
	shown("the recovery and the queued publish")
	recovered := fmt.Sprintf("recovered | resumed after reconnect: 3 missed, recovered | offset %d", last)
	tb.waitFor("the row saying it recovered", subState(channel)+" === "+jsString(recovered), stepTimeout)

	pub(again.url, 7, "live after the restart")
	shown("a live message after the restart")
	lost := entries("info", "#"+channel+": history lost, reloaded")
	if n := eval[int](tb, lost); n != 0 {
		t.Errorf("the page says history was lost %d times; want 0", n)
	}
	tb.screenshot("channel-recovered.png")

	// A new gateway has a new, empty memory broker: the page's since is
	// below the channel's new first offset, so it is told, and says so.
	again.kill()
	third := startGateway(t, gs.addr, opts)
	tb.waitFor("the page saying the history was lost", lost+" === 1", stepTimeout)
	tb.waitFor("the row saying the history was lost", subState(channel)+".startsWith('lost | not recovered')", stepTimeout)
	pub(third.url, 8, "after the history was lost")
	shown("a live message on the new gateway")
	checkLogsHideToken(t, gs, pageToken)
	checkLogsHideToken(t, gs, channelAPIKey)
	checkLogsHideToken(t, third, channelAPIKey)
}

// heldMessage is a message of GET /api/history.
type heldMessage struct {
	Offset uint64          `json:"offset"`
	Data   json.RawMessage `json:"data"`
}

// held returns the messages the gateway at baseURL holds for channel, as
// its history API tells them.
func held(t *testing.T, baseURL, channel string) []heldMessage {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, baseURL+"/api/history?channel="+channel, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+channelAPIKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /api/history: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out struct {
		Messages []heldMessage `json:"messages"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("GET /api/history?channel=%s: %s %s", channel, res.Status, b)
	}
	return out.Messages
}

// historyShown is the page's history view, one "offset data" a line.
const historyShown = `[...document.querySelectorAll('#history-list li')].map(li => li.dataset.offset + ' ' + li.querySelector('.data').textContent)`

// lines formats messages as historyShown does.
func lines(ms []heldMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = fmt.Sprintf("%d %s", m.Offset, m.Data)
	}
	return out
}

// TestPageChannels drives the channel part of the demo page (issue 17):
// two subscriptions listed, the publish box, the history view of a channel
// whose oldest messages are gone and of one whose history is whole, a live
// message added to the view, and Unsubscribe.
func TestPageChannels(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	opts := pageOptions()
	opts.APIKey = channelAPIKey
	opts.HistorySize = 5 // so that "demo" outgrows it
	tb := newTab(t)
	gs := startGateway(t, "127.0.0.1:0", opts)

	// Before the page comes: 8 messages on demo, of which the server
	// keeps the last 5, and 2 on news.
	for i := 1; i <= 8; i++ {
		publish(t, gs.url, "demo", map[string]any{"n": i})
	}
	for i := 1; i <= 2; i++ {
		publish(t, gs.url, "news", map[string]any{"headline": fmt.Sprint("story ", i)})
	}

	tb.do("loading the page", chromedp.Navigate(gs.url+"/?token="+pageToken))
	tb.waitFor("state open", stateIs("open"), stepTimeout)
	tb.do("subscribing to demo", chromedp.Click(chromedp.ID("subscribe")))
	tb.waitFor("the subscription to demo", entries("info", "subscribed to #demo")+" === 1", stepTimeout)
	eval[chromedp.Void](tb, `document.getElementById('channel').value = ''`)
	tb.do("subscribing to news", chromedp.SendKeys(chromedp.ID("channel"), "news"+kb.Enter))
	tb.waitFor("the subscription to news", entries("info", "subscribed to #news")+" === 1", stepTimeout)
	rows := `[...document.querySelectorAll('#subs .sub')].map(r => r.dataset.channel)`
	if got := eval[[]string](tb, rows); !slices.Equal(got, []string{"demo", "news"}) {
		t.Errorf("subscription rows %q; want [demo news]", got)
	}
	for _, ch := range []string{"demo", "news"} {
		if got := eval[string](tb, subState(ch)); !strings.HasPrefix(got, "live | live | offset ") {
			t.Errorf("row of %s: %q; want it live, with its offset", ch, got)
		}
	}

	// The publish box (its channel defaults to demo) sends text as a JSON
	// string; the server stores it, and the page, subscribed, shows it.
	const text = `hello, "channel" ✓`
	tb.do("publishing", chromedp.SendKeys(chromedp.ID("pubdata"), text+kb.Enter))
	quoted, _ := json.Marshal(text)
	tb.waitFor("the published message", fmt.Sprintf(`%s.some(e => e.endsWith(%s))`, chanEntries, jsString(": "+string(quoted))), stepTimeout)
	demo := held(t, gs.url, "demo")
	if len(demo) != 5 || string(demo[4].Data) != string(quoted) {
		t.Fatalf("the server holds %q for demo; want 5 messages, the last %s", lines(demo), quoted)
	}
	if n := eval[int](tb, entries("chan", fmt.Sprintf("#demo %d: %s", demo[4].Offset, quoted))); n != 1 {
		t.Errorf("%d log entries of the published message at offset %d; want 1", n, demo[4].Offset)
	}
	if n := eval[int](tb, entries("sent", "publish to #demo: "+string(quoted))); n != 1 {
		t.Errorf("%d sent entries for the publish; want 1", n)
	}
	if got, want := eval[string](tb, subState("demo")), fmt.Sprintf("live | live | offset %d", demo[4].Offset); got != want {
		t.Errorf("row of demo: %q; want %q", got, want)
	}
	if v := eval[string](tb, `document.getElementById('pubdata').value`); v != "" {
		t.Errorf("publish box holds %q after publishing; want it empty", v)
	}

	// History of demo: its first 4 messages are gone, so the page finds
	// the 5 still held.
	tb.do("opening demo's history", chromedp.Click(`#subs .sub[data-channel="demo"] button.history`))
	loaded := `document.getElementById('history-status').dataset.state === 'loaded'`
	tb.waitFor("demo's history", loaded, stepTimeout)
	if got, want := eval[[]string](tb, historyShown), lines(demo); !slices.Equal(got, want) {
		t.Errorf("history view of demo:\n%q\nwant what the server holds:\n%q", got, want)
	}
	status := `document.getElementById('history-status').textContent`
	if got := eval[string](tb, status); !strings.HasPrefix(got, "The last 5 messages the server holds (older ones have expired)") {
		t.Errorf("history status %q; want it to say these are the last 5 held", got)
	}
	// A live message joins the view.
	publish(t, gs.url, "demo", map[string]any{"n": 9})
	tb.waitFor("a live message in the history view", historyShown+".length === 6", stepTimeout)
	if got, want := eval[[]string](tb, historyShown)[5], lines(held(t, gs.url, "demo"))[4]; got != want {
		t.Errorf("history view's last line %q; want %q", got, want)
	}

	// History of news: whole.
	tb.do("opening news' history", chromedp.Click(`#subs .sub[data-channel="news"] button.history`))
	tb.waitFor("news' history", loaded+` && document.getElementById('history-title').textContent === 'History of #news'`, stepTimeout)
	if got, want := eval[[]string](tb, historyShown), lines(held(t, gs.url, "news")); len(want) != 2 || !slices.Equal(got, want) {
		t.Errorf("history view of news:\n%q\nwant the 2 messages published:\n%q", got, want)
	}
	if got := eval[string](tb, status); !strings.HasPrefix(got, "All 2 messages of #news") {
		t.Errorf("history status %q; want \"All 2 messages of #news…\"", got)
	}

	// Unsubscribe from news: a live news message shows before, none after.
	publish(t, gs.url, "news", map[string]any{"headline": "live"})
	newsShown := chanEntries + `.filter(e => e.startsWith('#news ')).length`
	tb.waitFor("a live news message", newsShown+" === 1", stepTimeout)
	tb.do("unsubscribing from news", chromedp.Click(`#subs .sub[data-channel="news"] button.unsubscribe`))
	tb.waitFor("news' row gone", subState("news")+" === 'no row'", stepTimeout)
	if n := eval[int](tb, entries("info", "unsubscribed from #news")); n != 1 {
		t.Errorf("%d log entries saying news was unsubscribed; want 1", n)
	}
	// The memory broker hands a message to its subscribers' queues before
	// the API answers, and one socket keeps their order: once demo's
	// message is shown, a news message published before it would be too.
	// The unsubscribe goes first on the page's socket, so this publish
	// reaches the server after it only once the server has read it: wait
	// for a round trip on the same socket first.
	tb.send("after unsubscribing")
	tb.acked("after unsubscribing")
	publish(t, gs.url, "news", map[string]any{"headline": "after unsubscribing"})
	off := publish(t, gs.url, "demo", map[string]any{"n": 10})
	tb.waitFor("demo's message after the unsubscribe", entries("chan", fmt.Sprintf(`#demo %d: {"n":10}`, off))+" === 1", stepTimeout)
	if n := eval[int](tb, newsShown); n != 1 {
		t.Errorf("%d news messages shown; want 1: none after the unsubscribe", n)
	}
	if got := eval[[]string](tb, rows); !slices.Equal(got, []string{"demo"}) {
		t.Errorf("subscription rows %q after unsubscribing from news; want [demo]", got)
	}
	tb.screenshot("channels.png")
	checkLogsHideToken(t, gs, pageToken)
	checkLogsHideToken(t, gs, channelAPIKey)
}

// hs256 returns a JWT of claims signed with secret (RFC 7519, HS256).
func hs256(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": "HS256", "typ": "JWT"}) + "." + enc(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// TestPageChannelRefused uses the page with a JWT that allows only
// public/* channels: a refused subscription says so in its row and is not
// retried, a refused publish is reported, and a name the protocol does
// not allow is caught before it is sent.
func TestPageChannelRefused(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	const secret = "browser-test-jwt-secret-Qa9v"
	jwt := hs256(t, secret, map[string]any{
		"sub": "ada", "channels": "public/*", "publish": "public/*",
		"exp": time.Now().Add(time.Hour).Unix(),
	})
	tb := newTab(t)
	gs := startGateway(t, "127.0.0.1:0", gateway.Options{JWTSecret: secret})
	gs.ln.holdSockets() // to drop the page's event-loop WebSocket below
	tb.do("loading the page", chromedp.Navigate(gs.url+"/?token="+jwt))
	tb.waitFor("state open", stateIs("open"), stepTimeout)

	subscribeTo := func(channel string) {
		t.Helper()
		eval[chromedp.Void](tb, `document.getElementById('channel').value = ''`)
		tb.do("subscribing to "+channel, chromedp.SendKeys(chromedp.ID("channel"), channel+kb.Enter))
	}
	subscribeTo("private")
	tb.waitFor("the refusal in the row", subState("private")+" === 'refused | refused: forbidden | '", stepTimeout)
	if n := eval[int](tb, entries("info", "error on #private: forbidden")); n != 1 {
		t.Errorf("%d log entries of the refusal; want 1", n)
	}
	subscribeTo("public/chat")
	tb.waitFor("the subscription to public/chat", subState("public/chat")+".startsWith('live | live | offset ')", stepTimeout)

	subscribeTo("no spaces allowed")
	tb.waitFor("the bad name caught", `[...document.querySelectorAll('#log .entry.info .text')].some(e => e.textContent.startsWith('not subscribed: "no spaces allowed" is not a channel name'))`, stepTimeout)
	if got := eval[string](tb, subState("no spaces allowed")); got != "no row" {
		t.Errorf("a row for a bad channel name: %q", got)
	}

	publishTo := func(channel, text string) {
		t.Helper()
		eval[chromedp.Void](tb, `document.getElementById('pubchannel').value = `+jsString(channel))
		tb.do("publishing to "+channel, chromedp.SendKeys(chromedp.ID("pubdata"), text+kb.Enter))
	}
	publishTo("private", "psst")
	tb.waitFor("the refused publish", entries("info", "error on #private: forbidden")+" === 2", stepTimeout)
	publishTo("public/chat", "hi all")
	tb.waitFor("the publish", fmt.Sprintf(`%s.some(e => e.startsWith('#public/chat ') && e.endsWith(': "hi all"'))`, chanEntries), stepTimeout)

	// After a reconnect the page asks again for public/chat only: the
	// server would refuse private again.
	gs.ln.closeAll()
	tb.waitFor("the resubscription", entries("info", "#public/chat resumed, 0 missed")+" === 1", stepTimeout)
	tb.send("after the reconnect")
	tb.acked("after the reconnect")
	if n := eval[int](tb, `[...document.querySelectorAll('#log .entry.info .text')].filter(e => e.textContent.startsWith('error')).length`); n != 2 {
		t.Errorf("%d error entries after the reconnect; want the 2 from before", n)
	}
	if got := eval[string](tb, subState("private")); got != "refused | refused: forbidden | " {
		t.Errorf("row of private after the reconnect: %q; want it still refused", got)
	}
	checkLogsHideToken(t, gs, jwt)
}
