package redial_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/redial"
)

// server is a WebSocket server that records every message it reads and
// can be killed and restarted on the same address.
type server struct {
	t    *testing.T
	addr string
	got  chan string // every message read, in order, across restarts

	mu    sync.Mutex
	srv   *http.Server          // guarded by mu
	conns map[*duplex.Conn]bool // guarded by mu
	wg    sync.WaitGroup        // handlers still running
}

func startServer(t *testing.T) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, addr: ln.Addr().String(), got: make(chan string, 100), conns: map[*duplex.Conn]bool{}}
	s.serve(ln)
	t.Cleanup(s.kill)
	return s
}

func (s *server) url() string { return "ws://" + s.addr + "/" }

func (s *server) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(s.handle)}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

func (s *server) handle(w http.ResponseWriter, r *http.Request) {
	c, err := duplex.Accept(w, r, nil)
	if err != nil {
		return
	}
	s.wg.Add(1)
	defer s.wg.Done()
	s.mu.Lock()
	s.conns[c] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.CloseNow()
	}()
	for {
		_, p, err := c.Read(context.Background())
		if err != nil {
			return
		}
		s.got <- string(p)
	}
}

// kill closes the listener and every connection, without close frames,
// as a crashing process would.
func (s *server) kill() {
	s.mu.Lock()
	srv := s.srv
	for c := range s.conns {
		c.CloseNow()
	}
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	s.wg.Wait()
}

// restart listens again on the same address.
func (s *server) restart() {
	s.t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

// expect waits for the next messages the server reads and checks them.
func (s *server) expect(want ...string) {
	s.t.Helper()
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < len(want) {
		select {
		case m := <-s.got:
			got = append(got, m)
		case <-timeout:
			s.t.Fatalf("server read %q; want %q", got, want)
		}
	}
	if !slices.Equal(got, want) {
		s.t.Fatalf("server read %q; want %q", got, want)
	}
}

// expectNothingMore checks that nothing more arrives once a marker sent
// after the last message has arrived, so duplicates would have shown.
func (s *server) expectNothingMore(c *redial.Client) {
	s.t.Helper()
	if err := c.Send(context.Background(), duplex.MessageText, []byte("marker")); err != nil {
		s.t.Fatal(err)
	}
	s.expect("marker")
}

// states records a client's state changes and wakes waiters.
type states struct {
	mu   sync.Mutex
	seen []stateEvent
	ch   chan struct{}
}

type stateEvent struct {
	s   redial.State
	err error
	at  time.Time
}

func newStates() *states { return &states{ch: make(chan struct{}, 1)} }

func (st *states) record(s redial.State, err error) {
	st.mu.Lock()
	st.seen = append(st.seen, stateEvent{s, err, time.Now()})
	st.mu.Unlock()
	select {
	case st.ch <- struct{}{}:
	default:
	}
}

// wait blocks until the n-th event in state s has happened and returns it.
func (st *states) wait(t *testing.T, s redial.State, n int) stateEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		st.mu.Lock()
		k := 0
		for _, e := range st.seen {
			if e.s == s {
				if k++; k == n {
					st.mu.Unlock()
					return e
				}
			}
		}
		st.mu.Unlock()
		select {
		case <-st.ch:
		case <-timeout:
			t.Fatalf("state %v #%d did not happen; saw %v", s, n, st.list())
		}
	}
}

func (st *states) count(s redial.State) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	k := 0
	for _, e := range st.seen {
		if e.s == s {
			k++
		}
	}
	return k
}

func (st *states) list() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []string
	for _, e := range st.seen {
		out = append(out, fmt.Sprintf("%v(%v)", e.s, e.err))
	}
	return out
}

// run starts c.Run and returns a function that cancels it and returns its
// result.
func run(t *testing.T, c *redial.Client) (stop func() error, result <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	stop = func() error {
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
			return nil
		}
	}
	t.Cleanup(func() { cancel() })
	return stop, errc
}

func TestReconnectAfterRestart(t *testing.T) {
	s := startServer(t)
	st := newStates()
	var connects atomic.Int32
	const maxDelay = 200 * time.Millisecond
	c := redial.New(s.url(), &redial.Options{
		MinDelay: 20 * time.Millisecond,
		MaxDelay: maxDelay,
		OnConnect: func(ctx context.Context, conn *duplex.Conn) error {
			n := connects.Add(1)
			return conn.Write(ctx, duplex.MessageText, []byte(fmt.Sprintf("hello %d", n)))
		},
		OnState: st.record,
	})
	stop, _ := run(t, c)

	st.wait(t, redial.StateConnected, 1)
	for _, m := range []string{"a1", "a2", "a3"} {
		if err := c.Send(context.Background(), duplex.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	s.expect("hello 1", "a1", "a2", "a3")

	s.kill()
	st.wait(t, redial.StateDisconnected, 1)
	// Queued while nothing listens: the client is retrying and failing.
	for i := 1; i <= 5; i++ {
		if err := c.Send(context.Background(), duplex.MessageText, []byte(fmt.Sprintf("b%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	st.wait(t, redial.StateDisconnected, 2) // at least one refused dial

	restarted := time.Now()
	s.restart()
	e := st.wait(t, redial.StateConnected, 2)
	// The backoff never waits more than MaxDelay; allow for a slow machine.
	if d := e.at.Sub(restarted); d > maxDelay+time.Second {
		t.Errorf("reconnected %v after the restart; want within MaxDelay (%v) plus slack", d, maxDelay)
	}
	s.expect("hello 2", "b1", "b2", "b3", "b4", "b5")
	s.expectNothingMore(c)
	if n := connects.Load(); n != 2 {
		t.Errorf("OnConnect ran %d times; want 2", n)
	}
	if err := c.Flush(context.Background()); err != nil {
		t.Errorf("Flush = %v", err)
	}
	if err := stop(); err != nil {
		t.Errorf("Run = %v; want nil after its context ended", err)
	}
	if err := c.Send(context.Background(), duplex.MessageText, []byte("late")); !errors.Is(err, redial.ErrClosed) {
		t.Errorf("Send after Run returned = %v; want ErrClosed", err)
	}
}

func TestUnauthorizedStopsAtOnce(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			var requests atomic.Int32
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				http.Error(w, "invalid token", status)
			})}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })

			c := redial.New("ws://"+ln.Addr().String()+"/", &redial.Options{MinDelay: time.Hour})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = c.Run(ctx)
			var he *duplex.HandshakeError
			if !errors.As(err, &he) || he.StatusCode != status {
				t.Fatalf("Run = %v; want a HandshakeError with status %d", err, status)
			}
			if !strings.Contains(string(he.Body), "invalid token") {
				t.Errorf("body = %q; want it to say invalid token", he.Body)
			}
			if n := requests.Load(); n != 1 {
				t.Errorf("server saw %d handshakes; want 1 (no retry)", n)
			}
		})
	}
}

func TestHeartbeatDetectsDeadPeer(t *testing.T) {
	url, accepted := testkit.ServeRaw(t) // peers that never read nor write
	st := newStates()
	c := redial.New(url, &redial.Options{
		Dial:         &duplex.DialOptions{CloseTimeout: 100 * time.Millisecond},
		MinDelay:     10 * time.Millisecond,
		MaxDelay:     50 * time.Millisecond,
		PingInterval: 50 * time.Millisecond,
		PingTimeout:  150 * time.Millisecond,
		OnState:      st.record,
	})
	stop, _ := run(t, c)
	for i := 1; i <= 2; i++ {
		select {
		case <-accepted:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection %d never reached the server; states %v", i, st.list())
		}
	}
	st.wait(t, redial.StateConnected, 2)
	e := st.wait(t, redial.StateDisconnected, 1)
	if e.err == nil || !strings.Contains(e.err.Error(), "no pong") {
		t.Errorf("first disconnect: %v; want the heartbeat's no pong", e.err)
	}
	if err := stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
}

func TestRunLeavesNoGoroutine(t *testing.T) {
	s := startServer(t)
	base := runtime.NumGoroutine()
	st := newStates()
	var mu sync.Mutex
	var echoed []string
	c := redial.New(s.url(), &redial.Options{
		PingInterval: 10 * time.Millisecond,
		OnState:      st.record,
		OnMessage: func(_ duplex.MessageType, p []byte) {
			mu.Lock()
			echoed = append(echoed, string(p))
			mu.Unlock()
		},
	})
	stop, _ := run(t, c)
	st.wait(t, redial.StateConnected, 1)
	if err := c.Send(context.Background(), duplex.MessageText, []byte("x")); err != nil {
		t.Fatal(err)
	}
	s.expect("x")
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if n := st.count(redial.StateStopped); n != 1 {
		t.Errorf("StateStopped reported %d times; want 1", n)
	}
	waitGoroutines(t, base)
}

func TestCloseStopsRun(t *testing.T) {
	s := startServer(t)
	st := newStates()
	c := redial.New(s.url(), &redial.Options{OnState: st.record})
	_, result := run(t, c)
	st.wait(t, redial.StateConnected, 1)
	for _, m := range []string{"one", "two"} {
		c.Send(context.Background(), duplex.MessageText, []byte(m))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("Flush = %v", err)
	}
	c.Close()
	select {
	case err := <-result:
		if err != nil {
			t.Errorf("Run after Close = %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	s.expect("one", "two")
}

func TestCloseWhileRetrying(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + ln.Addr().String() + "/"
	ln.Close() // nothing listens: every dial is refused
	st := newStates()
	c := redial.New(url, &redial.Options{MinDelay: time.Hour, OnState: st.record})
	_, result := run(t, c)
	st.wait(t, redial.StateDisconnected, 1)
	c.Close()
	select {
	case err := <-result:
		if err != nil {
			t.Errorf("Run = %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not interrupt the backoff")
	}
}

func TestSendQueueFull(t *testing.T) {
	c := redial.New("ws://127.0.0.1:1/", &redial.Options{QueueSize: 2})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := c.Send(ctx, duplex.MessageText, []byte("m")); err != nil {
			t.Fatalf("Send %d = %v", i, err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	err := c.Send(short, duplex.MessageBinary, []byte("m"))
	if !errors.Is(err, redial.ErrQueueFull) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send on a full queue = %v; want ErrQueueFull and DeadlineExceeded", err)
	}
	c.Close()
	if err := c.Send(ctx, duplex.MessageText, nil); !errors.Is(err, redial.ErrClosed) {
		t.Errorf("Send after Close = %v; want ErrClosed", err)
	}
	if err := c.Flush(ctx); !errors.Is(err, redial.ErrClosed) {
		t.Errorf("Flush after Close with messages left = %v; want ErrClosed", err)
	}
}

func TestRunRejectsBadURL(t *testing.T) {
	c := redial.New("ftp://example.com/", nil)
	if err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Errorf("Run = %v; want an unsupported scheme error", err)
	}
}

// waitGoroutines waits until no more goroutines run than base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			t.Fatalf("%d goroutines left; want at most %d", runtime.NumGoroutine(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
