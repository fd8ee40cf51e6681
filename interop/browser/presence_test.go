package browser

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/internal/testkit"
)

// membersOf is a JavaScript expression for the members text of channel's
// row ("" when the page shows none).
func membersOf(channel string) string {
	return `(document.querySelector('#subs .sub[data-channel=' + JSON.stringify(` + jsString(channel) + `) + '] .members') || {}).textContent || ''`
}

// TestPagePresence: the demo page, as ada, shows who is subscribed to a
// channel with presence, a line when bob joins and leaves, a channel its
// token's subs subscribed it to, and a channel the server API
// unsubscribed it from.
func TestPagePresence(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	const secret = "browser-test-jwt-secret-Pr16"
	token := func(user string, subs ...string) string {
		return hs256(t, secret, map[string]any{"sub": user, "subs": subs, "exp": time.Now().Add(time.Hour).Unix()})
	}
	tb := newTab(t)
	gs := startGateway(t, "127.0.0.1:0", gateway.Options{
		JWTSecret: secret,
		APIKey:    channelAPIKey,
		Presence:  []string{"room/*"},
		JoinLeave: []string{"room/*"},
	})
	tb.do("loading the page", chromedp.Navigate(gs.url+"/?token="+token("ada", "user/ada")))
	tb.waitFor("state open", stateIs("open"), stepTimeout)
	tb.waitFor("the server-side subscription's row", entries("info", "subscribed to #user/ada")+" === 1", stepTimeout)

	eval[chromedp.Void](tb, `document.getElementById('channel').value = ''`)
	tb.do("subscribing to room/1", chromedp.SendKeys(chromedp.ID("channel"), "room/1"+kb.Enter))
	tb.waitFor("ada alone in room/1", membersOf("room/1")+` === ' · 1 here: ada'`, stepTimeout)

	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	bob, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(gs.url, "http")+"/ws?token="+token("bob"), nil)
	if err != nil {
		t.Fatalf("bob: %v", err)
	}
	defer bob.CloseNow()
	if err := bob.Write(ctx, duplex.MessageText, []byte(`{"type":"subscribe","channel":"room/1"}`)); err != nil {
		t.Fatal(err)
	}
	tb.waitFor("bob's join line", entries("info", "#room/1: bob joined")+" === 1", stepTimeout)
	// One poll reads the count and the names: the row is redrawn by each
	// presence answer.
	tb.waitFor("ada and bob in room/1", `((m) => m.startsWith(' · 2 here: ') && m.includes('ada') && m.includes('bob'))(`+membersOf("room/1")+`)`, stepTimeout)
	if got := eval[string](tb, membersOf("user/ada")); got != "" {
		t.Errorf("members of user/ada (no presence): %q; want none shown", got)
	}

	bob.Close(duplex.StatusNormalClosure, "")
	tb.waitFor("bob's leave line", entries("info", "#room/1: bob left")+" === 1", stepTimeout)
	tb.waitFor("ada alone again", membersOf("room/1")+` === ' · 1 here: ada'`, stepTimeout)

	req, _ := http.NewRequest("POST", gs.url+"/api/unsubscribe", strings.NewReader(`{"user":"ada","channel":"user/ada"}`))
	req.Header.Set("Authorization", "Bearer "+channelAPIKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("POST /api/unsubscribe: %v %v", res, err)
	}
	res.Body.Close()
	tb.waitFor("the server's unsubscribe", entries("info", "the server unsubscribed the page from #user/ada")+" === 1", stepTimeout)
	if got := eval[string](tb, subState("user/ada")); got != "no row" {
		t.Errorf("row of user/ada after the server unsubscribed it: %q", got)
	}
}
