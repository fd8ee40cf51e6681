package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// backend is a test application backend serving the hooks.
type backend struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	connects []connectHookRequest // guarded by mu
}

func startBackend(t *testing.T) *backend {
	be := &backend{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /connect", func(w http.ResponseWriter, r *http.Request) {
		var req connectHookRequest
		json.NewDecoder(r.Body).Decode(&req)
		be.mu.Lock()
		be.connects = append(be.connects, req)
		be.mu.Unlock()
		switch {
		case req.Headers.Get("Cookie") == "session=ada":
			io.WriteString(w, `{"user":"ada","subs":["user/ada"],"channels":["room/*","user/ada"],"publish":"room/*"}`)
		case req.Headers.Get("Cookie") == "session=banned":
			w.WriteHeader(http.StatusForbidden)
		case req.User != "":
			io.WriteString(w, `{"user":"`+req.User+`-via-hook"}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	mux.HandleFunc("POST /subscribe", func(w http.ResponseWriter, r *http.Request) {
		var req hookRequest
		json.NewDecoder(r.Body).Decode(&req)
		if req.Channel == "room/secret" {
			w.WriteHeader(http.StatusForbidden)
		}
	})
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		var req hookRequest
		json.NewDecoder(r.Body).Decode(&req)
		switch string(req.Data) {
		case `"forbidden words"`:
			w.WriteHeader(http.StatusForbidden)
		case `"rewrite me"`:
			io.WriteString(w, `{"data":{"text":"rewritten","by":"`+req.User+`"}}`)
		default:
			io.WriteString(w, `{}`)
		}
	})
	mux.HandleFunc("POST /rpc", func(w http.ResponseWriter, r *http.Request) {
		var req hookRequest
		json.NewDecoder(r.Body).Decode(&req)
		switch req.Method {
		case "sum":
			var xs []int
			json.Unmarshal(req.Data, &xs)
			n := 0
			for _, x := range xs {
				n += x
			}
			json.NewEncoder(w).Encode(map[string]any{"data": n})
		case "whoami":
			json.NewEncoder(w).Encode(map[string]any{"data": req.User})
		case "slow":
			select {
			case <-r.Context().Done():
			case <-time.After(time.Minute):
			}
		case "broken":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			io.WriteString(w, `{"error":"no such method"}`)
		}
	})
	be.srv = httptest.NewServer(mux)
	t.Cleanup(be.srv.Close)
	return be
}

func (be *backend) url(path string) string { return be.srv.URL + path }

func hookOptions(be *backend) Options {
	return Options{
		Tokens:        []string{gwToken},
		ConnectHook:   be.url("/connect"),
		SubscribeHook: be.url("/subscribe"),
		PublishHook:   be.url("/publish"),
		RPCHook:       be.url("/rpc"),
		HookTimeout:   time.Second,
	}
}

// dialStatus dials url with header and returns the HTTP status of a
// refused handshake (0 when it succeeded).
func dialStatus(t *testing.T, url string, header http.Header) (*duplex.Conn, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := duplex.Dial(ctx, url, &duplex.DialOptions{HTTPHeader: header})
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
		return c, 0
	}
	var he *duplex.HandshakeError
	if !errors.As(err, &he) {
		t.Fatalf("Dial: %v", err)
	}
	return nil, he.StatusCode
}

func TestConnectHook(t *testing.T) { forEachKind(t, testConnectHook) }

func testConnectHook(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	be := startBackend(t)
	ts := k.start(t, hookOptions(be))

	// Allowed: the hook's user, server-side subscriptions, permissions.
	c, status := dialStatus(t, ts.ws+"/ws", http.Header{"Cookie": {"session=ada"}})
	if status != 0 {
		t.Fatalf("connect with the ada cookie: %d", status)
	}
	cc := &chanClient{t: t, c: c}
	if m := cc.expectMsg("subscribed"); m.Channel != "user/ada" {
		t.Fatalf("subscribed = %+v; want user/ada from the hook's subs", m)
	}
	cc.sendJSON(`{"type":"subscribe","channel":"private"}`)
	if m := cc.expectMsg("error"); string(m.Error) != `"forbidden"` {
		t.Errorf("subscribe outside the hook's channels: %+v; want forbidden", m)
	}
	cc.sendJSON(`{"type":"rpc","id":1,"method":"whoami"}`)
	if m := cc.expectMsg("rpc"); string(m.Data) != `"ada"` {
		t.Errorf("whoami = %+v; want ada", m)
	}
	be.mu.Lock()
	got := be.connects[0]
	be.mu.Unlock()
	if got.Remote == "" || got.Path != "/ws" || got.Token != "" || got.User != "" {
		t.Errorf("connect hook request = %+v", got)
	}

	// Refused with the hook's status.
	if _, status := dialStatus(t, ts.ws+"/ws", http.Header{"Cookie": {"session=banned"}}); status != 403 {
		t.Errorf("banned: %d; want 403", status)
	}
	if _, status := dialStatus(t, ts.ws+"/ws?token=wrong", nil); status != 401 {
		t.Errorf("unknown: %d; want 401", status)
	}
	be.mu.Lock()
	last := be.connects[len(be.connects)-1]
	be.mu.Unlock()
	if last.Token != "wrong" {
		t.Errorf("the hook saw token %q; want the one sent", last.Token)
	}
	// A valid credential does not ask the hook.
	n := len(be.connects)
	if _, status := dialStatus(t, ts.ws+"/ws?token="+gwToken, nil); status != 0 {
		t.Errorf("static token: %d", status)
	}
	if len(be.connects) != n {
		t.Errorf("the hook was called for a valid token")
	}
	// The page's auth check asks the hook as the upgrade does.
	if resp, _ := ts.get(t, "/api/auth-check", http.Header{"Cookie": {"session=ada"}}); resp.StatusCode != 204 {
		t.Errorf("auth check with the ada cookie: %d; want 204", resp.StatusCode)
	}
	if resp, _ := ts.get(t, "/api/auth-check", http.Header{"Cookie": {"session=banned"}}); resp.StatusCode != 403 {
		t.Errorf("auth check with the banned cookie: %d; want 403", resp.StatusCode)
	}
	if v := ts.metric(t, `duplex_hook_requests_total{hook="connect",result="denied"}`); v != 3 {
		t.Errorf("denied connect hooks = %v; want 3", v)
	}
}

func TestConnectHookAlways(t *testing.T) { forEachKind(t, testConnectHookAlways) }

func testConnectHookAlways(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	be := startBackend(t)
	opts := hookOptions(be)
	opts.ConnectHookAlways = true
	opts.JWTSecret = string(presenceSecret)
	ts := k.start(t, opts)
	c, status := dialStatus(t, ts.ws+"/ws?token="+userToken(t, "bob", nil), nil)
	if status != 0 {
		t.Fatalf("connect: %d", status)
	}
	cc := &chanClient{t: t, c: c}
	cc.sendJSON(`{"type":"rpc","id":2,"method":"whoami"}`)
	if m := cc.expectMsg("rpc"); string(m.Data) != `"bob-via-hook"` {
		t.Errorf("whoami = %+v; want the hook's user", m)
	}
}

func TestConnectHookDownOrSlow(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })

	for _, tt := range []struct {
		name, url, result string
	}{
		{"down", downURL + "/connect", "error"},
		{"slow", slow.URL, "timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := startGateway(t, Options{Tokens: []string{gwToken}, ConnectHook: tt.url, HookTimeout: 300 * time.Millisecond})
			start := time.Now()
			if _, status := dialStatus(t, ts.ws+"/ws", nil); status != 503 {
				t.Fatalf("connect with the hook %s: %d; want 503", tt.name, status)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("refusal took %v: the hook timeout is 300ms", d)
			}
			if v := ts.metric(t, `duplex_hook_requests_total{hook="connect",result="`+tt.result+`"}`); v != 1 {
				t.Errorf("connect hook %s counted %v; want 1", tt.result, v)
			}
			if !strings.Contains(ts.logs.String(), "hook failed") {
				t.Errorf("no log of the failure:\n%s", ts.logs.String())
			}
		})
	}
}

func TestSubscribePublishRPCHooks(t *testing.T) { forEachKind(t, testSubscribePublishRPCHooks) }

func testSubscribePublishRPCHooks(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	be := startBackend(t)
	opts := hookOptions(be)
	opts.HookTimeout = 300 * time.Millisecond
	ts := k.start(t, opts)
	c := ts.connect(t, gwToken)

	c.sendJSON(`{"type":"subscribe","channel":"room/secret"}`)
	if m := c.expectMsg("error"); string(m.Error) != `"forbidden"` || m.Channel != "room/secret" {
		t.Errorf("denied subscribe: %+v", m)
	}
	c.sendJSON(`{"type":"subscribe","channel":"room/1"}`)
	c.expectMsg("subscribed")

	c.sendJSON(`{"type":"publish","channel":"room/1","data":"forbidden words"}`)
	if m := c.expectMsg("error"); string(m.Error) != `"forbidden"` {
		t.Errorf("denied publish: %+v", m)
	}
	c.sendJSON(`{"type":"publish","channel":"room/1","data":"rewrite me"}`)
	if m := c.expectMsg("message"); string(m.Data) != `{"text":"rewritten","by":"token:`+ts.g.auth.tokens[0].user[6:]+`"}` {
		t.Errorf("rewritten publish delivered as %s", m.Data)
	}
	c.sendJSON(`{"type":"publish","channel":"room/1","data":"as is"}`)
	if m := c.expectMsg("message"); string(m.Data) != `"as is"` {
		t.Errorf("allowed publish delivered as %s", m.Data)
	}

	for _, tt := range []struct{ send, want string }{
		{`{"type":"rpc","id":7,"method":"sum","data":[1,2,3]}`, `{"type":"rpc","id":7,"data":6}`},
		{`{"type":"rpc","id":8,"method":"nope"}`, `{"type":"rpc","id":8,"error":"no such method"}`},
		{`{"type":"rpc","id":9,"method":"slow"}`, `{"type":"rpc","id":9,"error":"hook timeout"}`},
		{`{"type":"rpc","id":10,"method":"broken"}`, `{"type":"rpc","id":10,"error":"hook unavailable"}`},
		{`{"type":"rpc","id":11}`, `{"type":"rpc","id":11,"error":"bad request: method: want 1 to 128 characters"}`},
		{`{"type":"rpc","id":"x","method":"sum"}`, `{"type":"error","error":"bad request: rpc id: want a number"}`},
	} {
		c.sendJSON(tt.send)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, p, err := c.c.Read(ctx)
		cancel()
		if err != nil || string(p) != tt.want {
			t.Errorf("%s → %q, %v; want %s", tt.send, p, err, tt.want)
		}
	}
	if v := ts.metric(t, `duplex_hook_requests_total{hook="rpc",result="timeout"}`); v != 1 {
		t.Errorf("rpc timeouts = %v; want 1", v)
	}
}

// An rpc counts against the publish rate: a client cannot make the
// gateway call the backend without limit.
func TestRPCRateLimited(t *testing.T) { forEachKind(t, testRPCRateLimited) }

func testRPCRateLimited(t *testing.T, k sessionKindCase) {
	testkit.CheckNoGoroutineLeak(t)
	be := startBackend(t)
	opts := hookOptions(be)
	opts.PublishRate = 1 // one a second, in bursts of one
	ts := k.start(t, opts)
	c := ts.connect(t, gwToken)
	var errs []string
	start := time.Now()
	for i := range 6 {
		c.sendJSON(`{"type":"rpc","id":` + strconv.Itoa(i) + `,"method":"sum","data":[1]}`)
		m := c.expectMsg("rpc")
		if i == 0 && len(m.Error) > 0 {
			t.Fatalf("the first rpc: %+v", m)
		}
		if len(m.Error) > 0 {
			errs = append(errs, string(m.Error))
		}
	}
	// At most one token a second comes back while the 6 are sent.
	if most := 5 - int(time.Since(start)/time.Second); len(errs) < most {
		t.Errorf("6 rpcs at 1/s: %d refused (%q); want at least %d", len(errs), errs, most)
	}
	for _, e := range errs {
		if e != `"rpc rate exceeded"` {
			t.Errorf("refused with %s; want rpc rate exceeded", e)
		}
	}
}

func TestRPCWithoutHook(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	ts := startGateway(t, Options{})
	c := ts.connect(t, gwToken)
	c.sendJSON(`{"type":"rpc","id":1,"method":"x"}`)
	if m := c.expectMsg("rpc"); string(m.Error) != `"rpc not available"` || string(m.ID) != "1" {
		t.Errorf("rpc without a hook: %+v", m)
	}
}
