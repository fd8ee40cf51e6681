package browser

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/duplexws/duplex/internal/testkit"
)

// TestPageCSP loads the demo page in Chromium under the gateway's
// Content-Security-Policy (issue 15 item 9): the page's own inline script
// and style run (their hashes are in the policy), its WebSocket opens, and
// a script injected into the page does not run.
func TestPageCSP(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	tb := newTab(t)
	gs := startGateway(t, "127.0.0.1:0", pageOptions())
	tb.do("loading the page", chromedp.Navigate(gs.url+"/?token="+pageToken))
	// The badge is set by the page's inline module script over its socket.
	tb.waitFor("state open", stateIs("open"), stepTimeout)
	if ok := eval[bool](tb, `[...document.querySelectorAll('style')].every(s => s.sheet !== null && s.sheet.cssRules.length > 0)`); !ok {
		t.Errorf("an inline <style> of the page was blocked by its policy")
	}
	const inject = `new Promise(resolve => {
		document.addEventListener('securitypolicyviolation', e => resolve(e.violatedDirective + ' ' + (window.injected || 'blocked')), {once: true});
		const s = document.createElement('script');
		s.textContent = 'window.injected = "ran"';
		document.body.appendChild(s);
		setTimeout(() => resolve('no violation; ' + (window.injected || 'blocked')), 5000);
	})`
	if got := eval[string](tb, inject); got != "script-src-elem blocked" {
		t.Errorf("an injected inline script: %q; want it blocked by script-src-elem", got)
	}
}
