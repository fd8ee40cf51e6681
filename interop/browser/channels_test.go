package browser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

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
	s.srv.Close()
	deadline := time.Now().Add(stepTimeout)
	for s.gw.Connections() > 0 {
		if time.Now().After(deadline) {
			s.t.Fatalf("%d sessions still open %v after their connections were dropped", s.gw.Connections(), stepTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPageChannelRecovery subscribes the demo page to a channel, drops the
// server under it while messages keep being published, and brings it back
// on the same address: the page must resubscribe with since and show the
// missed messages once each, in offset order, then live ones.
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

	var want []string
	pub := func(baseURL string, n int, text string) {
		t.Helper()
		data := map[string]any{"n": n, "text": text}
		off := publish(t, baseURL, channel, data)
		b, _ := json.Marshal(data) // keys sorted: n, text, as JSON.stringify keeps them
		want = append(want, fmt.Sprintf("#%s %d: %s", channel, off, b))
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

	// Published while the page is away, through the API of the same
	// gateway on a server of its own.
	api := httptest.NewServer(gs.gw)
	for i := 4; i <= 6; i++ {
		pub(api.URL, i, "missed")
	}
	api.Close()
	if s := eval[string](tb, `document.getElementById('state').dataset.state`); s == "open" {
		t.Fatalf("the page is open while the server is down")
	}
	tb.screenshot("channel-reconnecting.png")

	again := gs.reserve(opts)
	tb.waitFor("state open after the restart", stateIs("open"), stepTimeout)
	tb.waitFor("the recovery", entries("info", "#"+channel+" resumed, 3 missed")+" === 1", stepTimeout)
	shown("the recovery")

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
	pub(third.url, 8, "after the history was lost")
	shown("a live message on the new gateway")
	checkLogsHideToken(t, gs, pageToken)
	checkLogsHideToken(t, gs, channelAPIKey)
	checkLogsHideToken(t, third, channelAPIKey)
}
