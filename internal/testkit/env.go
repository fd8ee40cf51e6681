package testkit

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// RequireTool returns the path of the command name, or skips the test
// when it is not installed. With DUPLEX_REQUIRE_ALL=1 (as CI sets it) a
// missing tool fails the test instead, so nothing is skipped silently.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " not found; DUPLEX_REQUIRE_ALL=1 makes this fail"
	if os.Getenv("DUPLEX_REQUIRE_ALL") == "1" {
		t.Fatal(name + " not found and DUPLEX_REQUIRE_ALL=1")
	}
	t.Skip(msg)
	return ""
}

// modulePath marks the goroutines CheckNoGoroutineLeak watches: any with a
// frame of this module (library, testkit or test code) in its stack.
const modulePath = "github.com/duplexws/duplex"

// CheckNoGoroutineLeak fails the test if a goroutine started during it
// that runs code of this module is still alive at the end. Call it first,
// so that its check runs after every other cleanup (servers, peers,
// connections). It waits up to 5 s for goroutines that are on their way
// out. The event loop's own goroutines are not counted. Do not use it in parallel tests: their goroutines would be counted.
func CheckNoGoroutineLeak(t testing.TB) {
	t.Helper()
	before := make(map[string]bool)
	for _, g := range goroutines() {
		before[g.id] = true
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
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
