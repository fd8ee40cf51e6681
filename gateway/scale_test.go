package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/wire"
)

// manyIdle is how many idle event sessions the scale tests hold: enough
// that the sweep and Shutdown handle thousands at once, light enough for
// the race detector on a busy machine. Their deadlines scale with it.
const manyIdle = 2000

// TestManyIdleSessionsHeartbeat: thousands of event sessions, none with a
// goroutine of its own, each still pinged and, since its peer never
// answers, closed with 1008 "pong timeout" by the one sweep.
func TestManyIdleSessionsHeartbeat(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	const interval, timeout = 300 * time.Millisecond, 500 * time.Millisecond
	ts := startGateway(t, Options{NoAuth: true, PingInterval: interval, PongTimeout: timeout, CloseTimeout: 2 * time.Second, MaxConnections: -1})
	peers := make([]*testkit.RawPeer, manyIdle)
	for i := range peers {
		peers[i], _ = testkit.DialRaw(t, ts.ws+"/ws", nil)
		peers[i].Timeout = 10 * time.Second
	}
	// The peers read nothing until the server has given up on all of them.
	waitFor(t, 20*time.Second+manyIdle*10*time.Millisecond, "a pong timeout for every silent peer", func() bool {
		return ts.metric(t, "duplex_pong_timeouts_total") == manyIdle
	})
	for i, p := range peers {
		pings := 0
		for {
			h, payload, err := p.ReadFrame()
			if err != nil {
				t.Fatalf("peer %d, after %d pings: %v", i, pings, err)
			}
			if h.Opcode == wire.OpPing {
				pings++
				continue
			}
			code, reason, _ := wire.ParseClose(payload)
			if h.Opcode != wire.OpClose || code != 1008 || reason != "pong timeout" || pings == 0 {
				t.Fatalf("peer %d: frame %v %d %q after %d pings; want pings, then close 1008 \"pong timeout\"", i, h.Opcode, code, reason, pings)
			}
			break
		}
		p.WriteFrame(true, 0, wire.OpClose, true, wire.AppendClose(nil, 1008, ""))
	}
	waitFor(t, 10*time.Second+manyIdle*time.Millisecond, "every session to end", func() bool { return ts.g.Connections() == 0 })
	if got := ts.metric(t, `duplex_closes_total{code="1008"}`); got != manyIdle {
		t.Errorf(`duplex_closes_total{code="1008"} = %v; want %d`, got, manyIdle)
	}
}

// TestManyIdleSessionsShutdown: Shutdown sends 1001 to each of thousands
// of idle event sessions, subscribed or not, and returns once all have
// answered.
func TestManyIdleSessionsShutdown(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	ts := startGateway(t, Options{NoAuth: true, MaxConnections: -1})
	closes := make(chan error, manyIdle)
	h := &duplex.EventHandler{OnClose: func(c *duplex.EventConn, err error) { closes <- err }}
	for i := range manyIdle {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, err := duplex.Dial(ctx, ts.ws+"/ws", nil)
		if err != nil {
			cancel()
			t.Fatalf("client %d: %v", i, err)
		}
		if i%2 == 0 {
			c.Write(ctx, duplex.MessageText, []byte(`{"type":"subscribe","channel":"c`+strconv.Itoa(i%10)+`"}`))
			if _, p, err := c.Read(ctx); err != nil {
				t.Fatalf("client %d: subscribe: %v %s", i, err, p)
			}
		}
		cancel()
		ec, err := c.Detach(h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ec.CloseNow() })
	}
	waitFor(t, 10*time.Second, "every session open", func() bool { return ts.g.Connections() == manyIdle })
	if got := ts.metric(t, "duplex_subscriptions"); got != manyIdle/2 {
		t.Fatalf("duplex_subscriptions = %v; want %d", got, manyIdle/2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second+manyIdle*5*time.Millisecond)
	defer cancel()
	if err := ts.g.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i := range manyIdle {
		select {
		case err := <-closes:
			if duplex.CloseStatus(err) != duplex.StatusGoingAway {
				t.Fatalf("close %d: %v; want 1001 from the server", i, err)
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d clients closed", i, manyIdle)
		}
	}
	if got := ts.metric(t, "duplex_subscriptions"); got != 0 {
		t.Errorf("duplex_subscriptions = %v after Shutdown; want 0", got)
	}
}

// TestTLSRunsGoroutineSessions: a wss:// connection served by the gateway
// itself cannot go to the event loop (the loop reads the socket, and TLS
// is in between), so it runs as a goroutine session and works the same.
func TestTLSRunsGoroutineSessions(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	logs := &logBuffer{}
	g, err := New(Options{NoAuth: true}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g)
	srv.StartTLS()
	defer srv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := duplex.Dial(ctx, "wss"+strings.TrimPrefix(srv.URL, "https")+"/echo",
		&duplex.DialOptions{TLSConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, duplex.MessageText, []byte("over tls")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "over tls" {
		t.Fatalf("echo: %q, %v", p, err)
	}
	if l := logs.String(); !strings.Contains(l, "msg=connected") || !strings.Contains(l, "session=goroutine") {
		t.Errorf("a TLS connection did not run as a goroutine session:\n%s", l)
	}
	c.Close(duplex.StatusNormalClosure, "")
}
