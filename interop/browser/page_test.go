package browser

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/internal/testkit"
)

// The demo page of issue 4, served by the gateway as "duplex serve" runs
// it: a static token, compression on (the default). Selectors are those
// of web/index.html.

// pageToken is the token of these tests; the logs must never show it.
const pageToken = "browser-test-token-7Qk2"

func pageOptions() gateway.Options {
	return gateway.Options{Tokens: []string{pageToken}}
}

// stateIs is true when the page's connection badge shows state.
func stateIs(state string) string {
	return fmt.Sprintf(`document.getElementById('state').dataset.state === %s`, jsString(state))
}

// entries counts the log entries of kind ("sent", "recv" or "info") whose
// text is exactly text.
func entries(kind, text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#log .entry.%s .text')].filter(e => e.textContent === %s).length`,
		kind, jsString(text))
}

// send types text in the message box and presses Enter.
func (tb *tab) send(text string) {
	tb.t.Helper()
	tb.do("typing "+text, chromedp.SendKeys(chromedp.ID("msg"), text+kb.Enter))
}

// acked waits for the server's acknowledgement of text on /ws.
func (tb *tab) acked(text string) {
	tb.t.Helper()
	ack := "received: " + text
	tb.waitFor(fmt.Sprintf("%q in the log", ack), entries("recv", ack)+" > 0", stepTimeout)
}

// checkLogsHideToken fails if a gateway log line holds the token.
func checkLogsHideToken(t *testing.T, gs *gatewayServer, token string) {
	t.Helper()
	if strings.Contains(gs.logs.String(), token) {
		t.Errorf("the gateway log holds the token %q:\n%s", token, gs.logs)
	}
}

// TestPage loads the page with a good token, sends a message with Enter,
// and sees the acknowledgement and the heartbeat's round-trip time.
func TestPage(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	tb := newTab(t)
	gs := startGateway(t, "127.0.0.1:0", pageOptions())
	tb.do("loading the page", chromedp.Navigate(gs.url+"/?token="+pageToken))
	tb.waitFor("state open", stateIs("open"), stepTimeout)

	// The client pings as soon as the socket opens, then every 10 s.
	tb.waitFor("a round-trip time", `/^RTT [0-9.]+ ms$/.test(document.getElementById('rtt').textContent)`, stepTimeout)

	for _, msg := range []string{"hello from Chromium", "héllo, wörld ✓", `{"type":"note","text":"JSON is acknowledged too"}`} {
		tb.send(msg)
		tb.acked(msg)
		if n := eval[int](tb, entries("sent", msg)); n != 1 {
			t.Errorf("%d sent entries for %q; want 1", n, msg)
		}
	}
	if v := eval[string](tb, `document.getElementById('msg').value`); v != "" {
		t.Errorf("message box holds %q after sending; want it empty", v)
	}
	if hidden := eval[bool](tb, `document.getElementById('notice').hidden`); !hidden {
		t.Errorf("#notice is shown with a good token: %q", eval[string](tb, `document.getElementById('notice').textContent`))
	}

	tb.screenshot("page.png") // docs/screenshot.png: TestPageScreenshot

	// The server saw the page's socket on /ws, compressed: Chromium always
	// offers permessage-deflate and the gateway accepts it by default.
	conns := gs.records("connected")
	if len(conns) != 1 {
		t.Fatalf("gateway logged %d connections; want 1", len(conns))
	}
	if c := conns[0]; c.str("path") != "/ws" || !strings.HasPrefix(c.str("extensions"), "permessage-deflate") {
		t.Errorf("connection logged with path %q, extensions %q; want /ws, permessage-deflate", c.str("path"), c.str("extensions"))
	}
	checkLogsHideToken(t, gs, pageToken)
}

// checkOnlyAuthChecked fails unless the page asked /api/auth-check and
// stopped there: browsers hide the status of a refused upgrade, so it must
// not have tried one.
func checkOnlyAuthChecked(t *testing.T, gs *gatewayServer) {
	t.Helper()
	var checks, upgrades int
	for _, r := range gs.records("auth failed") {
		switch u := r.str("url"); {
		case strings.HasPrefix(u, "/api/auth-check"):
			checks++
		case strings.HasPrefix(u, "/ws"):
			upgrades++
		}
	}
	if checks == 0 || upgrades != 0 {
		t.Errorf("gateway logged %d refused auth checks and %d refused upgrades; want at least 1 and 0", checks, upgrades)
	}
}

// noticeShown returns the text of #notice, failing unless it is visible.
func noticeShown(tb *tab) string {
	tb.t.Helper()
	visible := eval[bool](tb, `(() => { const n = document.getElementById('notice');
		return !n.hidden && n.offsetHeight > 0 && getComputedStyle(n).display !== 'none'; })()`)
	text := eval[string](tb, `document.getElementById('notice').textContent`)
	if !visible {
		tb.t.Errorf("#notice is hidden (text %q); want it shown", text)
	}
	return text
}

// checkAddressHasToken fails unless the address bar carries token, so
// that reloading the page keeps the token that worked.
func checkAddressHasToken(tb *tab, token string) {
	tb.t.Helper()
	if got, want := eval[string](tb, `location.search`), "?token="+token; got != want {
		tb.t.Errorf("location.search = %q after reconnecting; want %q", got, want)
	}
}

// TestPageNoToken opens the page as the bare URL of "duplex serve" would,
// without ?token=: the page must say that no token was given (not that
// one was refused) and how to get one, then connect once it is entered.
func TestPageNoToken(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	tb := newTab(t)
	gs := startGateway(t, "127.0.0.1:0", pageOptions())
	tb.do("loading the page", chromedp.Navigate(gs.url+"/"))
	tb.waitFor("state unauthorized", stateIs("unauthorized"), stepTimeout)

	if s := eval[string](tb, `document.getElementById('state').textContent`); s != "unauthorized: no token" {
		t.Errorf("#state reads %q; want %q", s, "unauthorized: no token")
	}
	notice := noticeShown(tb)
	for _, want := range []string{"No token", "?token=", "press Reconnect"} {
		if !strings.Contains(notice, want) {
			t.Errorf("#notice reads %q; want it to hold %q", notice, want)
		}
	}
	if strings.Contains(notice, "refused") || strings.Contains(notice, "rejected") {
		t.Errorf("#notice reads %q: it blames a token that was never given", notice)
	}
	tb.screenshot("no-token.png")
	checkOnlyAuthChecked(t, gs)

	tb.do("entering the token", chromedp.SendKeys(chromedp.ID("token"), pageToken+kb.Enter))
	tb.waitFor("state open with the token", stateIs("open"), stepTimeout)
	if hidden := eval[bool](tb, `document.getElementById('notice').hidden`); !hidden {
		t.Errorf("#notice still shown after connecting")
	}
	checkAddressHasToken(tb, pageToken)
	tb.send("hello with a token")
	tb.acked("hello with a token")
	checkLogsHideToken(t, gs, pageToken)
}

// TestPageTokenChanged is a restart of a server that comes back with
// another token (issue 17): the page must say the token was refused and
// what to do, keep the message typed while the server was down, and send
// it, once, when the new token is entered.
func TestPageTokenChanged(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	const newToken = "browser-test-token-after-restart-M4d"
	tb := newTab(t)
	first := startGateway(t, "127.0.0.1:0", pageOptions())
	tb.do("loading the page", chromedp.Navigate(first.url+"/?token="+pageToken))
	tb.waitFor("state open", stateIs("open"), stepTimeout)
	tb.send("before the restart")
	tb.acked("before the restart")

	first.kill()
	tb.waitFor("state reconnecting", stateIs("reconnecting"), stepTimeout)
	const queued = "typed while the server was down"
	tb.send(queued)
	tb.waitFor("the queued message in the log", entries("sent", queued+"  (queued until connected)")+" === 1", stepTimeout)

	second := startGateway(t, first.addr, gateway.Options{Tokens: []string{newToken}})
	tb.waitFor("state unauthorized after the restart", stateIs("unauthorized"), stepTimeout)
	notice := noticeShown(tb)
	for _, want := range []string{"refused this token", "restarted", "press Reconnect", "1 queued message will be sent"} {
		if !strings.Contains(notice, want) {
			t.Errorf("#notice reads %q; want it to hold %q", notice, want)
		}
	}
	tb.screenshot("token-changed.png")
	checkOnlyAuthChecked(t, second)

	// Pasted as serve prints it: the whole URL.
	eval[chromedp.Void](tb, `document.getElementById('token').value = ''`)
	tb.do("pasting the new URL", chromedp.SendKeys(chromedp.ID("token"), second.url+"/?token="+newToken+kb.Enter))
	tb.waitFor("state open with the new token", stateIs("open"), stepTimeout)
	if v := eval[string](tb, `document.getElementById('token').value`); v != newToken {
		t.Errorf("token box holds %q after pasting the URL; want the token %q", v, newToken)
	}
	checkAddressHasToken(tb, newToken)
	tb.acked(queued)
	tb.send("after the restart")
	tb.acked("after the restart") // in order after any second ack of the queued one
	if n := eval[int](tb, entries("recv", "received: "+queued)); n != 1 {
		t.Errorf("the queued message was acknowledged %d times; want 1", n)
	}
	checkLogsHideToken(t, first, pageToken)
	checkLogsHideToken(t, second, newToken)
}

// TestPageUnauthorized loads the page with a wrong token: it must say so
// on the page, without retrying and without an upgrade attempt, and then
// connect once the right token is entered.
func TestPageUnauthorized(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	const wrong = "wrong-token-Zx81"
	tb := newTab(t)
	gs := startGateway(t, "127.0.0.1:0", pageOptions())
	tb.do("loading the page", chromedp.Navigate(gs.url+"/?token="+wrong))
	tb.waitFor("state unauthorized", stateIs("unauthorized"), stepTimeout)

	if s := eval[string](tb, `document.getElementById('state').textContent`); s != "unauthorized" {
		t.Errorf("#state reads %q; want %q", s, "unauthorized")
	}
	visible := eval[bool](tb, `(() => { const n = document.getElementById('notice');
		return !n.hidden && n.offsetHeight > 0 && getComputedStyle(n).display !== 'none'; })()`)
	notice := eval[string](tb, `document.getElementById('notice').textContent`)
	if !visible || !strings.Contains(notice, "refused this token") || !strings.Contains(notice, "press Reconnect") {
		t.Errorf("#notice visible=%v text=%q; want it visible, saying the token was refused and what to do", visible, notice)
	}
	if strings.Contains(notice, "No token") {
		t.Errorf("#notice says %q although a token was given", notice)
	}
	tb.screenshot("unauthorized.png")

	checkOnlyAuthChecked(t, gs)
	checkLogsHideToken(t, gs, wrong)

	// The right token and Enter in the token box reconnect.
	eval[chromedp.Void](tb, `document.getElementById('token').value = ''`)
	tb.do("entering the token", chromedp.SendKeys(chromedp.ID("token"), pageToken+kb.Enter))
	tb.waitFor("state open with the right token", stateIs("open"), stepTimeout)
	if hidden := eval[bool](tb, `document.getElementById('notice').hidden`); !hidden {
		t.Errorf("#notice still shown after connecting")
	}
	tb.send("let me in")
	tb.acked("let me in")
	checkLogsHideToken(t, gs, pageToken)
}

// TestPageRestart stops the server under the page: the page must show
// that it is reconnecting, queue what is typed meanwhile, reconnect to a
// new server on the same address and deliver the queued message once.
func TestPageRestart(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	tb := newTab(t)
	first := startGateway(t, "127.0.0.1:0", pageOptions())
	tb.do("loading the page", chromedp.Navigate(first.url+"/?token="+pageToken))
	tb.waitFor("state open", stateIs("open"), stepTimeout)
	tb.send("before the restart")
	tb.acked("before the restart")

	first.kill()
	// State and text are read in one evaluation: the first retry may come
	// at once (full jitter), so a second read could see "connecting".
	tb.waitFor(`the badge reading "reconnecting in N s, attempt K"`, stateIs("reconnecting")+
		` && /^reconnecting in \d+ s, attempt \d+$/.test(document.getElementById('state').textContent)`, stepTimeout)

	const queued = "typed while the server was down"
	tb.send(queued)
	tb.waitFor("the queued message in the log", entries("sent", queued+"  (queued until connected)")+" === 1", stepTimeout)
	tb.screenshot("reconnecting.png")

	start := time.Now()
	second := startGateway(t, first.addr, pageOptions())
	tb.waitFor("state open after the restart", stateIs("open"), stepTimeout)
	t.Logf("reconnected %v after the restart", time.Since(start).Round(time.Millisecond))
	tb.acked(queued)

	// Messages on one socket arrive in order, so once the ack of a later
	// message is in, a second ack of the queued one would be too.
	tb.send("after the restart")
	tb.acked("after the restart")
	if n := eval[int](tb, entries("recv", "received: "+queued)); n != 1 {
		t.Errorf("the queued message was acknowledged %d times; want 1", n)
	}
	tb.screenshot("restarted.png")

	if n := len(second.records("connected")); n != 1 {
		t.Errorf("the new server logged %d connections; want 1", n)
	}
	checkLogsHideToken(t, first, pageToken)
	checkLogsHideToken(t, second, pageToken)
}
