package browser

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestPageScreenshot writes docs/screenshot.png, with -update:
//
//	cd interop && go test -run TestPageScreenshot -update ./browser/
//
// It builds cmd/duplex, runs "duplex serve" on a free port as a newcomer
// would (only --token is added, so that no development token is stored
// in the user's config directory), and uses the demo page in Chromium:
// two channels, a publish, a message, the history view.
func TestPageScreenshot(t *testing.T) {
	if !*update {
		t.Skip("writes docs/screenshot.png only with -update")
	}
	tb := newTab(t)
	base := startServe(t, "--addr", "127.0.0.1:0", "--token", pageToken)

	tb.do("loading the page", chromedp.Navigate(base+"/?token="+pageToken))
	tb.waitFor("state open", stateIs("open"), stepTimeout)
	tb.do("subscribing to demo", chromedp.Click(chromedp.ID("subscribe")))
	tb.waitFor("the subscription to demo", entries("info", "subscribed to #demo")+" === 1", stepTimeout)
	eval[chromedp.Void](tb, `document.getElementById('channel').value = ''`)
	tb.do("subscribing to news", chromedp.SendKeys(chromedp.ID("channel"), "news"+kb.Enter))
	tb.waitFor("the subscription to news", entries("info", "subscribed to #news")+" === 1", stepTimeout)
	for _, text := range []string{"hello, channel", "second message"} {
		tb.do("publishing", chromedp.SendKeys(chromedp.ID("pubdata"), text+kb.Enter))
		tb.waitFor("the published message", fmt.Sprintf(`%s.some(e => e.endsWith(%s))`, chanEntries, jsString(`: "`+text+`"`)), stepTimeout)
	}
	eval[chromedp.Void](tb, `document.getElementById('pubchannel').value = 'news'`)
	tb.do("publishing to news", chromedp.SendKeys(chromedp.ID("pubdata"), "news of the day"+kb.Enter))
	tb.waitFor("the news", fmt.Sprintf(`%s.some(e => e.startsWith('#news '))`, chanEntries), stepTimeout)
	eval[chromedp.Void](tb, `document.getElementById('pubchannel').value = 'demo'`)
	tb.send("hello from the demo page")
	tb.acked("hello from the demo page")
	tb.do("opening demo's history", chromedp.Click(`#subs .sub[data-channel="demo"] button.history`))
	tb.waitFor("demo's history", `document.getElementById('history-status').dataset.state === 'loaded'`, stepTimeout)
	tb.waitFor("a round-trip time", `/^RTT [0-9.]+ ms$/.test(document.getElementById('rtt').textContent)`, stepTimeout)

	// The whole page, unscrolled, without the caret blinking in a box.
	eval[chromedp.Void](tb, `document.activeElement.blur(), window.scrollTo(0, 0)`)
	// The log's height follows the viewport's (up to a cap): size it until
	// the page fits.
	for range 3 {
		h := eval[int](tb, `document.documentElement.scrollHeight`)
		tb.do("sizing the viewport", chromedp.EmulateViewport(900, int64(min(h, 1400))))
	}
	png := tb.screenshot("screenshot.png")
	name := filepath.Join("..", "..", "docs", "screenshot.png")
	if err := os.WriteFile(name, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", name)
}

// startServe builds cmd/duplex and runs "duplex serve" with args until the
// test ends (then interrupts it, as Ctrl-C would). It returns the server's
// base URL, read from what serve prints.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	exe := filepath.Join(dir, "duplex")
	build := exec.Command("go", "build", "-o", exe, "./cmd/duplex")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/duplex: %v\n%s", err, out)
	}
	cmd := exec.Command(exe, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("duplex serve: %v", err)
	}
	logs := new(lockedBuffer)
	urls := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		url := regexp.MustCompile(`https?://[0-9.:\[\]a-z]+`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(logs, sc.Text())
			if u := url.FindString(sc.Text()); u != "" {
				select {
				case urls <- u:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(stepTimeout):
			cmd.Process.Kill()
		}
		cmd.Wait()
		if t.Failed() {
			t.Logf("duplex serve printed:\n%s", logs)
		}
	})
	select {
	case u := <-urls:
		return u
	case <-done:
		t.Fatalf("duplex serve exited without printing its URL:\n%s", logs)
	case <-time.After(stepTimeout):
		t.Fatalf("duplex serve printed no URL in %v:\n%s", stepTimeout, logs)
	}
	return ""
}
