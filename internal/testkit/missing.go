package testkit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// requireAll reports whether DUPLEX_REQUIRE_ALL=1 (CI sets it): then a
// peer that is not installed fails the tests that need it.
func requireAll() bool { return os.Getenv("DUPLEX_REQUIRE_ALL") == "1" }

// missing records, by peer, the tests that skipped for want of it, for
// Main's summary.
var missing struct {
	mu    sync.Mutex
	peers map[string]*missingPeer
	order []string // peers in the order first seen
}

type missingPeer struct {
	install string   // how to get it
	tests   []string // names of the tests that skipped
}

// Missing says that the test cannot run because peer (a program, a
// package, a browser) is not installed here, and install says how to get
// it ("apt-get install chromium"). It records both for the summary that
// Main prints at the end of the run, then skips the test; under
// DUPLEX_REQUIRE_ALL=1 it fails the test instead.
//
// Use one peer name for one thing to install, so that the summary has one
// line for it however many tests needed it.
func Missing(t testing.TB, peer, install string) {
	t.Helper()
	missing.mu.Lock()
	if missing.peers == nil {
		missing.peers = make(map[string]*missingPeer)
	}
	p := missing.peers[peer]
	if p == nil {
		p = &missingPeer{install: install}
		missing.peers[peer] = p
		missing.order = append(missing.order, peer)
	}
	p.tests = append(p.tests, t.Name())
	missing.mu.Unlock()

	if requireAll() {
		t.Fatalf("%s is missing (%s) and DUPLEX_REQUIRE_ALL=1 requires every peer", peer, install)
		return
	}
	t.Skipf("%s is missing (%s); DUPLEX_REQUIRE_ALL=1 makes this fail", peer, install)
}

// Main runs the tests of a package with peers and returns the exit code:
//
//	func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }
//
// After the tests it prints one line per missing peer (see Missing) to
// stderr, which go test shows with -v, for a failed package, or when run
// in the package's directory. It shows nothing of a package that passed
// in a run of several packages, so Main writes the lines to the terminal
// too (/dev/tty), when there is one and stderr is not it: the person who
// typed go test ./... sees what was left out.
//
// With DUPLEX_SKIP_LOG set to a file name, Main appends the lines to that
// file as well, for a script that runs many packages without a terminal
// (.ci/run, scripts/stress-tests.sh) to print at the end.
func Main(m *testing.M) int {
	code := m.Run()
	report(Summary())
	return code
}

// report writes the summary s where Main says.
func report(s string) {
	if s == "" {
		return
	}
	fmt.Fprint(os.Stderr, s)
	if tty := terminal(); tty != nil {
		io.WriteString(tty, s)
		tty.Close()
	}
	if name := os.Getenv("DUPLEX_SKIP_LOG"); name != "" {
		if f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			io.WriteString(f, s) // one write: packages run in parallel
			f.Close()
		}
	}
}

// Summary returns the lines Main prints: one per peer that Missing
// recorded, naming the package, how many tests skipped, the first of them,
// and how to install the peer. It is empty when nothing was missing.
func Summary() string {
	missing.mu.Lock()
	defer missing.mu.Unlock()
	pkg := packageName()
	var b strings.Builder
	for _, name := range missing.order {
		p := missing.peers[name]
		var tests []string // once each, in the order they skipped
		for _, name := range p.tests {
			if !slices.Contains(tests, name) {
				tests = append(tests, name)
			}
		}
		first := tests[0]
		if len(tests) > 1 {
			first += fmt.Sprintf(" and %d more", len(tests)-1)
		}
		fmt.Fprintf(&b, "SKIP %s: %s is missing, %d tests skipped (%s); install: %s\n",
			pkg, name, len(tests), first, p.install)
	}
	return b.String()
}

// packageName is the tested package's directory (go test runs the test
// binary there) relative to the outermost module above it: the repository.
func packageName() string {
	wd, err := os.Getwd()
	if err != nil {
		return "?"
	}
	top := ""
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			top = dir
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	rel, err := filepath.Rel(top, wd)
	if top == "" || err != nil {
		return wd
	}
	return "./" + filepath.ToSlash(rel)
}

// terminal opens the controlling terminal for writing, or returns nil
// when there is none or stderr already is a terminal (it then shows the
// summary itself).
func terminal() *os.File {
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return nil
	}
	f, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err != nil {
		return nil
	}
	return f
}
