package redial_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/redial"
	"github.com/golang-jwt/jwt/v5"
)

// issue16Gateway serves a gateway with presence, join/leave and an RPC
// hook that echoes its data with the caller's user.
func issue16Gateway(t *testing.T) (srv *httptest.Server, api func(path, body string)) {
	t.Helper()
	const key = "k-16"
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			User   string          `json:"user"`
			Method string          `json:"method"`
			Data   json.RawMessage `json:"data"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		if req.Method == "fail" {
			io.WriteString(w, `{"error":"it failed"}`)
			return
		}
		fmt.Fprintf(w, `{"data":{"user":%q,"got":%s}}`, req.User, req.Data)
	}))
	t.Cleanup(backend.Close)
	gw, err := gateway.New(gateway.Options{
		JWTSecret: tokenSecret,
		APIKey:    key,
		Presence:  []string{"room/*"},
		JoinLeave: []string{"room/*"},
		RPCHook:   backend.URL,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv = httptest.NewServer(gw)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
		srv.Close()
	})
	api = func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("POST %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	return srv, api
}

func signSubs(t *testing.T, sub string, subs ...string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "subs": subs, "publish": "*",
	}).SignedString([]byte(tokenSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestServerSideSubscriptionsResume: the server subscribes the client
// from its token's subs; after a cut, Channels.Query resumes them with
// since, and every message arrives once, in order.
func TestServerSideSubscriptionsResume(t *testing.T) {
	srv, api := issue16Gateway(t)
	proxy := newCutter(t, srv.Listener.Addr().String())
	got := make(chan redial.ChannelMessage, 100)
	subscribed := make(chan string, 10)
	cs := redial.NewChannels(&redial.ChannelOptions{
		OnMessage:    func(m redial.ChannelMessage) { got <- m },
		OnSubscribed: func(ch string, _ uint64, rec bool) { subscribed <- fmt.Sprint(ch, " ", rec) },
	})
	c := redial.New("ws://"+proxy.ln.Addr().String()+"/ws?token="+signSubs(t, "ada", "user/ada"), &redial.Options{
		MinDelay:  10 * time.Millisecond,
		MaxDelay:  50 * time.Millisecond,
		OnConnect: cs.OnConnect,
		OnMessage: func(typ duplex.MessageType, p []byte) { cs.Handle(typ, p) },
		Query:     cs.Query,
	})
	stop, _ := run(t, c)
	if s := waitValue(t, subscribed); s != "user/ada false" {
		t.Fatalf("subscribed = %q; want user/ada, not recovered", s)
	}
	if got := cs.ServerChannels(); len(got) != 1 || got[0] != "user/ada" {
		t.Fatalf("ServerChannels = %q", got)
	}
	publish := func(from, n int) {
		for i := from; i < from+n; i++ {
			api("/api/publish", fmt.Sprintf(`{"channel":"user/ada","data":%d}`, i))
		}
	}
	var last uint64
	receive := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			m := waitValue(t, got)
			if string(m.Data) != strconv.Itoa(i) || (last != 0 && m.Offset != last+1) {
				t.Fatalf("message %s at %d after %d; want %d", m.Data, m.Offset, last, i)
			}
			last = m.Offset
		}
	}
	publish(0, 5)
	receive(0, 5)
	if q := cs.Query().Get("since"); q != "user/ada:"+strconv.FormatUint(last, 10) {
		t.Fatalf("Query since = %q; want user/ada:%d", q, last)
	}
	proxy.cut()
	publish(5, 5)
	if s := waitValue(t, subscribed); s != "user/ada true" {
		t.Fatalf("subscribed after the cut = %q; want recovered", s)
	}
	receive(5, 5)
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestPresenceJoinRPCDisconnect: presence, join/leave events and RPC
// through Channels, and Run ending, without reconnecting, on the
// server's /api/disconnect.
func TestPresenceJoinRPCDisconnect(t *testing.T) {
	srv, api := issue16Gateway(t)
	joins := make(chan redial.PresenceEvent, 10)
	leaves := make(chan redial.PresenceEvent, 10)
	subscribed := make(chan string, 10)
	unsubscribed := make(chan string, 10)
	cs := redial.NewChannels(&redial.ChannelOptions{
		OnSubscribed:   func(ch string, _ uint64, _ bool) { subscribed <- ch },
		OnJoin:         func(e redial.PresenceEvent) { joins <- e },
		OnLeave:        func(e redial.PresenceEvent) { leaves <- e },
		OnUnsubscribed: func(ch string) { unsubscribed <- ch },
	})
	cs.Subscribe("room/1")
	var connects int
	c := redial.New("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws?token="+signSubs(t, "ada"), &redial.Options{
		MinDelay:  10 * time.Millisecond,
		MaxDelay:  50 * time.Millisecond,
		OnConnect: func(ctx context.Context, conn *duplex.Conn) error { connects++; return cs.OnConnect(ctx, conn) },
		OnMessage: func(typ duplex.MessageType, p []byte) { cs.Handle(typ, p) },
	})
	_, result := run(t, c)
	if ch := waitValue(t, subscribed); ch != "room/1" {
		t.Fatalf("subscribed %q", ch)
	}

	// bob joins room/1 with a plain connection.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bob, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws?token="+signSubs(t, "bob"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.CloseNow()
	bob.Write(ctx, duplex.MessageText, []byte(`{"type":"subscribe","channel":"room/1"}`))
	if e := waitValue(t, joins); e.Channel != "room/1" || e.User != "bob" || e.Client == "" {
		t.Fatalf("join = %+v", e)
	}
	clients, err := cs.Presence(ctx, c, "room/1")
	if err != nil || len(clients) != 2 {
		t.Fatalf("Presence = %+v, %v; want ada and bob", clients, err)
	}
	if _, err := cs.Presence(ctx, c, "lobby"); !errors.Is(err, redial.ErrPresence) {
		t.Errorf("Presence of a channel without presence = %v; want ErrPresence", err)
	}
	bob.Close(duplex.StatusNormalClosure, "")
	if e := waitValue(t, leaves); e.User != "bob" {
		t.Fatalf("leave = %+v", e)
	}

	data, err := cs.RPC(ctx, c, "echo", []int{1, 2})
	if err != nil || string(data) != `{"user":"ada","got":[1,2]}` {
		t.Errorf("RPC = %s, %v", data, err)
	}
	var rerr *redial.RPCError
	if _, err := cs.RPC(ctx, c, "fail", nil); !errors.As(err, &rerr) || rerr.Message != "it failed" {
		t.Errorf("RPC fail = %v; want RPCError it failed", err)
	}

	api("/api/unsubscribe", `{"user":"ada","channel":"room/1"}`)
	if ch := waitValue(t, unsubscribed); ch != "room/1" {
		t.Errorf("unsubscribed %q", ch)
	}
	if _, ok := cs.Offset("room/1"); ok {
		t.Error("Channels still resumes room/1 after the server unsubscribed it")
	}

	api("/api/disconnect", `{"user":"ada"}`)
	err = waitValue(t, result)
	if duplex.CloseStatus(err) != redial.StatusDisconnected {
		t.Fatalf("Run = %v; want the 4403 close", err)
	}
	if connects != 1 {
		t.Errorf("connected %d times; want 1: no reconnect after a disconnect", connects)
	}
}

func TestChannelsServerSideHandle(t *testing.T) {
	var unsubscribed []string
	cs := redial.NewChannels(&redial.ChannelOptions{OnUnsubscribed: func(ch string) { unsubscribed = append(unsubscribed, ch) }})
	handle := func(s string) {
		t.Helper()
		if !cs.Handle(duplex.MessageText, []byte(s)) {
			t.Fatalf("Handle(%s) = false", s)
		}
	}
	handle(`{"type":"subscribed","channel":"user/ada","offset":10,"recovered":false}`)
	handle(`{"type":"message","channel":"user/ada","offset":11,"data":1}`)
	if got := cs.Query().Encode(); got != "since=user%2Fada%3A11" {
		t.Errorf("Query = %s", got)
	}
	// A subscribe taken back before its answer: the answer is not a
	// server-side subscription.
	cs.Subscribe("news")
	cs.Unsubscribe("news")
	handle(`{"type":"subscribed","channel":"news","offset":3,"recovered":false}`)
	if got := cs.ServerChannels(); len(got) != 1 || got[0] != "user/ada" {
		t.Errorf("ServerChannels = %q; want [user/ada]", got)
	}
	handle(`{"type":"unsubscribed","channel":"user/ada"}`)
	if got := cs.Query(); len(got) != 0 || len(unsubscribed) != 1 {
		t.Errorf("after unsubscribed: Query %v, OnUnsubscribed %q", got, unsubscribed)
	}
	// A non-string rpc error is still an rpc answer.
	handle(`{"type":"rpc","id":99,"error":{"code":7}}`)
}
