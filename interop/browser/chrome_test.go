package browser

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/duplexws/duplex/internal/testkit"
)

var update = flag.Bool("update", false, "write the demo page's screenshot to docs/screenshot.png")

// stepTimeout bounds one browser action or wait that moves few bytes
// (times DUPLEX_TEST_SLOWDOWN). The slowest such wait is a reconnection
// after a restart: a few backoff delays of at most 4 s. The tab's methods
// cut every wait to end by testkit.Cutoff, before go test's -timeout.
var stepTimeout = testkit.Scale(30 * time.Second)

// chromiumPath returns the browser to run: $DUPLEX_CHROMIUM, or Debian's
// chromium. Without one the test skips (testkit.Missing), or fails under
// DUPLEX_REQUIRE_ALL=1.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DUPLEX_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		testkit.Missing(t, "chromium", "$DUPLEX_CHROMIUM="+p+" does not exist; apt-get install chromium")
		return ""
	}
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testkit.Missing(t, "chromium", "apt-get install chromium, or set DUPLEX_CHROMIUM")
	return ""
}

// tab is one page of a headless Chromium of its own.
type tab struct {
	t       *testing.T
	ctx     context.Context // the tab's chromedp context
	console *lockedBuffer   // the page's console messages and uncaught exceptions
}

// newTab starts a fresh Chromium (new profile, background networking off)
// and opens a tab in it. extra adds or overrides command-line flags. The
// browser is closed, and its profile removed, when the test ends; if the
// test failed, the page's console is logged.
func newTab(t *testing.T, extra ...chromedp.ExecAllocatorOption) *tab {
	t.Helper()
	exe := chromiumPath(t)
	profile := t.TempDir() // removed after the browser has exited: cleanups run last-in first-out
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox, // we run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	boundedCleanup(t, "the browser process to exit", cancelAlloc)

	quiet := func(string, ...any) {} // cdproto's notes on events it does not know
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(quiet), chromedp.WithLogf(quiet))
	boundedCleanup(t, "the browser to close", cancel)

	// The first action starts the browser and opens the tab. It must run on
	// ctx itself: the browser lives as long as the context of that action.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(900, 600)); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}

	tb := &tab{t: t, ctx: ctx, console: new(lockedBuffer)}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			fmt.Fprintf(tb.console, "%s %s\n", m.Time.Format("15:04:05.000"), m)
		}
	}()
	t.Cleanup(func() {
		if t.Failed() && tb.console.Len() > 0 {
			t.Logf("browser console:\n%s", tb.console)
		}
	})
	return tb
}

// within returns a context of the tab's that ends d from now, or at
// testkit.Cutoff if that comes first.
func (tb *tab) within(d time.Duration) (context.Context, context.CancelFunc) {
	end := time.Now().Add(d)
	if cut := testkit.Cutoff(tb.t); cut.Before(end) {
		end = cut
	}
	return context.WithDeadline(tb.ctx, end)
}

// boundedCleanup registers f, which waits for something to end, as a
// cleanup of t that gives up after testkit.Timeout(0) with an error
// naming what, so that a browser that does not exit cannot hang the test
// and hide its failures (issue 17).
func boundedCleanup(t *testing.T, what string, f func()) {
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() {
			f()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(testkit.Timeout(0)):
			t.Errorf("gave up waiting %v for %s", testkit.Timeout(0), what)
		}
	})
}

// do runs actions, failing the test on error.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := tb.within(stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.fail("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := tb.within(stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.fail("evaluating %s: %v", expr, err)
	}
	return v
}

// waitFor waits until the JavaScript expression is truthy, re-evaluating
// it on every DOM mutation so that no state shown on the page is missed,
// however briefly. It fails the test after timeout, describing what; the
// timeout is cut to end by testkit.Cutoff.
func (tb *tab) waitFor(what, expr string, timeout time.Duration) {
	tb.t.Helper()
	if cut := time.Until(testkit.Cutoff(tb.t)) - 5*time.Second; cut < timeout {
		timeout = max(cut, time.Second)
	}
	ctx, cancel := tb.within(timeout + 5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(timeout)))
	if errors.Is(err, chromedp.ErrPollingTimeout) {
		tb.fail("timed out after %v waiting for %s", timeout, what)
	}
	if err != nil {
		tb.fail("waiting for %s: %v", what, err)
	}
}

// fail saves a screenshot of the page and fails the test.
func (tb *tab) fail(format string, args ...any) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
		name := filepath.Join(artifactDir(tb.t), "failure.png")
		if os.WriteFile(name, png, 0o644) == nil {
			tb.t.Logf("screenshot of the failure: %s", name)
		}
	}
	tb.t.Fatalf(format, args...)
}

// screenshot saves the viewport as name (a .png) in the test's artifact
// directory and returns the image.
func (tb *tab) screenshot(name string) []byte {
	tb.t.Helper()
	ctx, cancel := tb.within(stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		tb.t.Fatalf("screenshot %s is not a PNG (starts %q)", name, png[:min(len(png), 8)])
	}
	path := filepath.Join(artifactDir(tb.t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot: %s", path)
	return png
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// artifactDir is $DUPLEX_ARTIFACTS/<test name> when that variable is set,
// else the test's ArtifactDir (kept under -outputdir by go test
// -artifacts, removed otherwise).
func artifactDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("DUPLEX_ARTIFACTS")
	if root == "" {
		return t.ArtifactDir()
	}
	dir := filepath.Join(root, unsafeName.ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// lockedBuffer collects output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}
