package testkit

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB whose failures and skips are recorded instead
// of ending the test, for checking helpers that fail or skip.
type recorder struct {
	*testing.T
	deadline time.Time
	errs     []string
	skips    []string
	fatals   []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skips = append(r.skips, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
}
func (r *recorder) Deadline() (time.Time, bool) { return r.deadline, !r.deadline.IsZero() }

func TestTimeoutScalesWithBytes(t *testing.T) {
	t.Setenv("DUPLEX_TEST_SLOWDOWN", "")
	if got := Timeout(0); got != baseTimeout {
		t.Errorf("Timeout(0) = %v; want %v", got, baseTimeout)
	}
	// A 16 MiB echo moves 32 MiB.
	if got, want := Timeout(32<<20), baseTimeout+128*time.Second; got != want {
		t.Errorf("Timeout(32 MiB) = %v; want %v", got, want)
	}
	t.Setenv("DUPLEX_TEST_SLOWDOWN", "2.5")
	if got, want := Timeout(slowRate), time.Duration(2.5*float64(baseTimeout+time.Second)); got != want {
		t.Errorf("Timeout(%d) with DUPLEX_TEST_SLOWDOWN=2.5 = %v; want %v", slowRate, got, want)
	}
	t.Setenv("DUPLEX_TEST_SLOWDOWN", "0.1") // never below 1
	if got := Timeout(0); got != baseTimeout {
		t.Errorf("Timeout(0) with DUPLEX_TEST_SLOWDOWN=0.1 = %v; want %v", got, baseTimeout)
	}
}

func TestDeadlineEndsBeforeTheTestTimeout(t *testing.T) {
	t.Setenv("DUPLEX_TEST_SLOWDOWN", "")
	now := time.Now()
	for _, tt := range []struct {
		name     string
		deadline time.Time // go test's; zero: none (-timeout 0)
		n        int
		min, max time.Duration // from now
	}{
		{"no test deadline", time.Time{}, 1 << 30, Timeout(1 << 30), Timeout(1<<30) + time.Second},
		{"far test deadline", now.Add(time.Hour), 0, baseTimeout, baseTimeout + time.Second},
		{"near test deadline", now.Add(2 * time.Minute), 1 << 30, 90*time.Second - time.Second, 90*time.Second + time.Second},
		{"test deadline in 8s", now.Add(8 * time.Second), 0, 6*time.Second - time.Second, 6*time.Second + time.Second},
	} {
		r := &recorder{T: t, deadline: tt.deadline}
		got := Deadline(r, tt.n).Sub(now)
		if got < tt.min || got > tt.max {
			t.Errorf("%s: Deadline(%d) = now + %v; want between %v and %v", tt.name, tt.n, got, tt.min, tt.max)
		}
	}
}

func TestCloseServer(t *testing.T) {
	defer func(d time.Duration) { closeGrace = d }(closeGrace)
	closeGrace = 200 * time.Millisecond

	// start serves h (over TLS and HTTP/2 if h2, as an RFC 8441 WebSocket
	// is) and returns once a request is inside it.
	start := func(h func(r *http.Request), h2 bool) *httptest.Server {
		in := make(chan struct{})
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			close(in)
			h(r)
		}))
		if h2 {
			srv.EnableHTTP2 = true
			srv.StartTLS()
		} else {
			srv.Start()
		}
		// The client keeps the response open until the test ends.
		end := make(chan struct{})
		t.Cleanup(func() { close(end) })
		client := srv.Client()
		go func() {
			if resp, err := client.Get(srv.URL); err == nil {
				<-end
				resp.Body.Close()
			}
		}()
		select {
		case <-in:
		case <-time.After(Wait(t, 0)):
			t.Fatal("the request never reached the handler")
		}
		return srv
	}

	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("handler ends with its connection/h2=%v", h2), func(t *testing.T) {
			// srv.Close alone would wait for this request for ever.
			srv := start(func(r *http.Request) { <-r.Context().Done() }, h2)
			r := &recorder{T: t}
			begin := time.Now()
			CloseServer(r, srv)
			if len(r.errs) > 0 {
				t.Errorf("CloseServer failed the test: %q", r.errs)
			}
			if d := time.Since(begin); d < closeGrace || d > Timeout(0) {
				t.Errorf("CloseServer took %v; want the grace of %v and then the end of the dropped request", d, closeGrace)
			}
		})
	}

	t.Run("handler never returns", func(t *testing.T) {
		release := make(chan struct{})
		srv := start(func(r *http.Request) { <-release }, false)
		defer func() {
			close(release)
			srv.Close()
		}()
		r := &recorder{T: t}
		CloseServer(r, srv)
		if len(r.errs) != 1 || !strings.Contains(r.errs[0], "a handler does not return") ||
			!strings.Contains(r.errs[0], "testkit.TestCloseServer") {
			t.Errorf("CloseServer on a stuck handler reported %q; want one error naming the handler's goroutine", r.errs)
		}
	})
}

func TestMissing(t *testing.T) {
	defer func() {
		missing.mu.Lock()
		missing.peers, missing.order = nil, nil
		missing.mu.Unlock()
	}()
	t.Setenv("DUPLEX_REQUIRE_ALL", "")
	a := &recorder{T: t}
	Missing(a, "chromium", "apt-get install chromium")
	Missing(a, "chromium", "apt-get install chromium")
	Missing(&recorder{T: t}, "node", "apt-get install nodejs")
	Missing(named{a, "TestOther"}, "chromium", "apt-get install chromium")
	Missing(a, "chromium", "apt-get install chromium") // not consecutive: still counted once
	if len(a.skips) != 4 || len(a.fatals) != 0 || !strings.Contains(a.skips[0], "chromium is missing (apt-get install chromium)") {
		t.Errorf("Missing skipped with %q and failed with %q; want two skips naming chromium", a.skips, a.fatals)
	}
	t.Setenv("DUPLEX_REQUIRE_ALL", "1")
	b := &recorder{T: t}
	Missing(b, "node", "apt-get install nodejs")
	if len(b.skips) != 0 || len(b.fatals) != 1 || !strings.Contains(b.fatals[0], "DUPLEX_REQUIRE_ALL=1") {
		t.Errorf("under DUPLEX_REQUIRE_ALL=1, Missing skipped with %q and failed with %q; want one failure", b.skips, b.fatals)
	}

	want := "SKIP ./internal/testkit: chromium is missing, 2 tests skipped (TestMissing and 1 more); install: apt-get install chromium\n" +
		"SKIP ./internal/testkit: node is missing, 1 tests skipped (TestMissing); install: apt-get install nodejs\n"
	if got := Summary(); got != want {
		t.Errorf("Summary() =\n%s\nwant\n%s", got, want)
	}
}

func TestScriptEnv(t *testing.T) {
	t.Setenv("DUPLEX_TEST_SLOWDOWN", "2")
	r := &recorder{T: t, deadline: time.Now().Add(10 * time.Minute)}
	env := ScriptEnv(r)
	want := []string{"DUPLEX_TEST_WAIT_MS=40000", "DUPLEX_TEST_RATE=131072"}
	if len(env) != 3 || env[0] != want[0] || env[1] != want[1] {
		t.Fatalf("ScriptEnv = %q; want %q and DUPLEX_TEST_RUN_MS", env, want)
	}
	// The run ends 30 s before the test's deadline.
	ms, err := strconv.Atoi(strings.TrimPrefix(env[2], "DUPLEX_TEST_RUN_MS="))
	if err != nil || ms < 565_000 || ms > 570_000 {
		t.Errorf("%s; want about 570000 (10 minutes less 30 s)", env[2])
	}
}

func TestMainReportsToSkipLog(t *testing.T) {
	defer func() {
		missing.mu.Lock()
		missing.peers, missing.order = nil, nil
		missing.mu.Unlock()
	}()
	log := filepath.Join(t.TempDir(), "skips")
	t.Setenv("DUPLEX_SKIP_LOG", log)
	t.Setenv("DUPLEX_REQUIRE_ALL", "")
	Missing(&recorder{T: t}, "redis-server", "apt-get install redis-server")
	report(Summary())
	report(Summary()) // appends: packages share the file
	b, err := os.ReadFile(log)
	want := "SKIP ./internal/testkit: redis-server is missing, 1 tests skipped (TestMainReportsToSkipLog); install: apt-get install redis-server\n"
	if err != nil || string(b) != want+want {
		t.Errorf("skip log %q, %v; want %q twice", b, err, want)
	}
}

// named is a recorder under another test name.
type named struct {
	*recorder
	name string
}

func (n named) Name() string { return n.name }
