package testkit

import (
	"bytes"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// RequireTool returns the path of the command name, or calls Missing
// (skip, or fail under DUPLEX_REQUIRE_ALL=1) when it is not installed.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	install := installHints[name]
	if install == "" {
		install = "put " + name + " on PATH"
	}
	Missing(t, name, install)
	return ""
}

// installHints say how to get the programs the tests run, on Debian.
var installHints = map[string]string{
	"node":         "apt-get install nodejs npm, then npm ci in interop/node",
	"redis-server": "apt-get install redis-server",
	"redis-cli":    "apt-get install redis-server",
	"python3":      "apt-get install python3",
	"chromium":     "apt-get install chromium, or set DUPLEX_CHROMIUM",
	"chromedriver": "apt-get install chromium-driver",
	"go":           "https://go.dev/dl/",
}

// modulePath marks the goroutines CheckNoGoroutineLeak watches: any with a
// frame of this module (library, testkit or test code) in its stack.
const modulePath = "github.com/duplexws/duplex"

// CheckNoGoroutineLeak fails the test if a goroutine started during it
// that runs code of this module is still alive at the end. Call it first,
// so that its check runs after every other cleanup (servers, peers,
// connections). It waits up to Timeout(0) (cut to end by Cutoff) for
// goroutines that are on their way out, which on a busy machine can take
// seconds. The event loop's own goroutines are not counted. Do not use it
// in parallel tests: their goroutines would be counted.
func CheckNoGoroutineLeak(t testing.TB) {
	t.Helper()
	before := make(map[string]bool)
	for _, g := range goroutines() {
		before[g.id] = true
	}
	t.Cleanup(func() {
		deadline := Deadline(t, 0)
		for {
			var leaked []string
			for _, g := range goroutines()[1:] { // [0] is this one
				if !before[g.id] && strings.Contains(g.stack, modulePath) && !sharedLoop(g.stack) {
					leaked = append(leaked, g.stack)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines left behind:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// sharedLoop reports whether stack is one of the event loop's goroutines:
// the loop is shared by the whole process and started by the first
// Detach or ServeEvents, so it outlives the test that started it.
func sharedLoop(stack string) bool {
	return strings.Contains(stack, "internal/netpoll.(*Poller[")
}

type goroutine struct{ id, stack string }

// goroutines returns every goroutine's stack, the calling one first.
func goroutines() []goroutine {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var gs []goroutine
	for _, block := range bytes.Split(buf, []byte("\n\n")) {
		s := string(block)
		// "goroutine 42 [chan receive]:"
		rest, ok := strings.CutPrefix(s, "goroutine ")
		if !ok {
			continue
		}
		id, _, _ := strings.Cut(rest, " ")
		gs = append(gs, goroutine{id: id, stack: s})
	}
	return gs
}
