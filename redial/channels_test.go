package redial_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/redial"
)

// TestURLsRotate: after a lost connection the client moves to the next
// URL, round and round.
func TestURLsRotate(t *testing.T) {
	s1, s2 := startServer(t), startServer(t)
	st := newStates()
	var connects int
	c := redial.New(s1.url(), &redial.Options{
		MinDelay: 10 * time.Millisecond,
		MaxDelay: 50 * time.Millisecond,
		URLs:     []string{s2.url()},
		OnConnect: func(ctx context.Context, conn *duplex.Conn) error {
			connects++
			return conn.Write(ctx, duplex.MessageText, []byte(fmt.Sprintf("hello %d", connects)))
		},
		OnState: st.record,
	})
	stop, _ := run(t, c)
	s1.expect("hello 1")
	s1.kill()
	s2.expect("hello 2")
	s1.restart()
	s2.kill()
	// s2 refuses now: the client tries it, fails, and comes back to s1.
	s1.expect("hello 3")
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestRunRejectsBadURLs(t *testing.T) {
	c := redial.New("ws://localhost:1/", &redial.Options{URLs: []string{"ftp://x/"}})
	if err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "ftp") {
		t.Errorf("Run with a bad URL in URLs = %v; want an error naming it", err)
	}
}

func TestChannelsHandle(t *testing.T) {
	var msgs []redial.ChannelMessage
	var subs []string
	cs := redial.NewChannels(&redial.ChannelOptions{
		OnMessage:    func(m redial.ChannelMessage) { msgs = append(msgs, m) },
		OnSubscribed: func(c string, off uint64, rec bool) { subs = append(subs, fmt.Sprint(c, off, rec)) },
	})
	cs.Subscribe("a")
	for _, tt := range []struct {
		in       string
		consumed bool
		offset   uint64 // of "a" afterwards, 0: none
	}{
		{`{"type":"subscribed","channel":"a","offset":100,"recovered":false}`, true, 100},
		{`{"type":"message","channel":"a","offset":101,"data":1}`, true, 101},
		{`{"type":"message","channel":"b","offset":900,"data":1}`, true, 101}, // not subscribed: reported, not tracked
		{`{"type":"subscribed","channel":"a","offset":140,"recovered":true}`, true, 101},
		{`{"type":"message","channel":"a","offset":102,"data":2}`, true, 102},
		// A reset channel: the server's latest is below ours; start over.
		{`{"type":"subscribed","channel":"a","offset":0,"recovered":false}`, true, 0},
		{`{"type":"pong","t":1}`, false, 0},
		{`received: hi`, false, 0},
	} {
		if got := cs.Handle(duplex.MessageText, []byte(tt.in)); got != tt.consumed {
			t.Errorf("Handle(%s) = %v; want %v", tt.in, got, tt.consumed)
		}
		if off, ok := cs.Offset("a"); off != tt.offset || !ok {
			t.Errorf("after %s: Offset = %d, %v; want %d", tt.in, off, ok, tt.offset)
		}
	}
	if len(msgs) != 3 || msgs[0].Offset != 101 || string(msgs[2].Data) != "2" {
		t.Errorf("OnMessage got %+v", msgs)
	}
	if want := []string{"a100 false", "a140 true", "a0 false"}; fmt.Sprint(subs) != fmt.Sprint(want) {
		t.Errorf("OnSubscribed got %q; want %q", subs, want)
	}
	cs.Unsubscribe("a")
	if _, ok := cs.Offset("a"); ok {
		t.Error("Offset after Unsubscribe is known")
	}
}

// cutter is a TCP proxy whose connections can be cut, as a phone's are
// when it changes network.
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target}
	go c.serve()
	t.Cleanup(func() { ln.Close(); c.cut() })
	return c
}

func (c *cutter) serve() {
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", c.target)
		if err != nil {
			in.Close()
			continue
		}
		c.mu.Lock()
		c.conns = append(c.conns, in, out)
		c.mu.Unlock()
		go func() { io.Copy(out, in); out.Close() }()
		go func() { io.Copy(in, out); in.Close() }()
	}
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// TestChannelsResume: against the gateway, a client whose connection is
// cut resubscribes with since and gets every message once, in order.
func TestChannelsResume(t *testing.T) {
	const key = "k-3e9"
	gw, err := gateway.New(gateway.Options{NoAuth: true, APIKey: key}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
		srv.Close()
	})
	publish := func(n int) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/api/publish", strings.NewReader(fmt.Sprintf(`{"channel":"news","data":%d}`, n)))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("publish: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	proxy := newCutter(t, srv.Listener.Addr().String())

	got := make(chan redial.ChannelMessage, 100)
	subscribed := make(chan bool, 10)
	cs := redial.NewChannels(&redial.ChannelOptions{
		OnMessage:    func(m redial.ChannelMessage) { got <- m },
		OnSubscribed: func(_ string, _ uint64, rec bool) { subscribed <- rec },
	})
	cs.Subscribe("news")
	c := redial.New("ws://"+proxy.ln.Addr().String()+"/ws", &redial.Options{
		MinDelay:  10 * time.Millisecond,
		MaxDelay:  50 * time.Millisecond,
		OnConnect: cs.OnConnect,
		OnMessage: func(typ duplex.MessageType, p []byte) { cs.Handle(typ, p) },
	})
	stop, _ := run(t, c)
	if rec := waitValue(t, subscribed); rec {
		t.Fatal("first subscribe: recovered true; want false, no since was sent")
	}
	var offsets []uint64
	receive := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			m := waitValue(t, got)
			if string(m.Data) != strconv.Itoa(i) {
				t.Fatalf("got message %s at offset %d; want %d", m.Data, m.Offset, i)
			}
			if len(offsets) > 0 && m.Offset != offsets[len(offsets)-1]+1 {
				t.Fatalf("offset %d after %d", m.Offset, offsets[len(offsets)-1])
			}
			offsets = append(offsets, m.Offset)
		}
	}
	for i := range 10 {
		publish(i)
	}
	receive(0, 10)
	proxy.cut()
	for i := 10; i < 20; i++ {
		publish(i)
	}
	if rec := waitValue(t, subscribed); !rec {
		t.Fatal("resubscribe: recovered false; want true")
	}
	receive(10, 10)
	publish(20)
	receive(20, 1)
	select {
	case m := <-got:
		t.Fatalf("unexpected message %+v", m)
	case <-time.After(50 * time.Millisecond):
	}
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

func waitValue[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
	}
	var zero T
	return zero
}
