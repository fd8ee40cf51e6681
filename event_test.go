//go:build linux

package duplex_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/wire"
)

// detachedEchoServer echoes from the event loop: its handlers return right
// after Accept, so no goroutine waits on an idle connection.
func detachedEchoServer(t *testing.T, closed chan<- error) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		_, err = c.Detach(&duplex.EventHandler{
			OnMessage: func(c *duplex.EventConn, typ duplex.MessageType, p []byte) {
				c.Write(context.Background(), typ, p)
			},
			OnClose: func(c *duplex.EventConn, err error) {
				if closed != nil {
					closed <- err
				}
			},
		})
		if err != nil {
			t.Errorf("Detach: %v", err)
		}
	}))
	testkit.Serve(t, srv)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestDetachEcho(t *testing.T) {
	closed := make(chan error, 1)
	url := detachedEchoServer(t, closed)
	ctx, cancel := testkit.Context(t, 2*200000)
	defer cancel()
	c, _, err := duplex.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"hello", "", strings.Repeat("é", 100000)} {
		if err := c.Write(ctx, duplex.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, p, err := c.Read(ctx)
		if err != nil || string(p) != msg {
			t.Fatalf("echo: %d bytes, %v", len(p), err)
		}
	}
	// Strictness is the same as Read's: a bad UTF-8 text closes with 1007.
	if err := c.Write(ctx, duplex.MessageText, []byte{0xff}); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	if got := duplex.CloseStatus(err); got != duplex.StatusInvalidFramePayloadData {
		t.Fatalf("after invalid UTF-8: %v; want close 1007", err)
	}
	select {
	case err := <-closed:
		var ce *duplex.CloseError
		if !errors.As(err, &ce) || ce.Code != duplex.StatusInvalidFramePayloadData {
			t.Fatalf("OnClose got %v", err)
		}
	case <-ctx.Done():
		t.Fatal("OnClose was not called")
	}
}

func TestDetachHoldsNoGoroutinePerConnection(t *testing.T) {
	url := detachedEchoServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := runtime.NumGoroutine()
	const n = 200
	conns := make([]*duplex.Conn, n)
	for i := range conns {
		c, _, err := duplex.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		t.Cleanup(func() { c.CloseNow() })
	}
	for _, c := range conns {
		if err := c.Write(ctx, duplex.MessageBinary, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Client conns have no goroutines (nobody reads them now); the server
	// side should add at most a few worker goroutines, not one per conn.
	deadline := time.Now().Add(5 * time.Second)
	for {
		extra := runtime.NumGoroutine() - before
		if extra < n/4 {
			t.Logf("%d goroutines for %d idle detached connections", extra, n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d extra goroutines for %d idle detached connections", extra, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Every conformance case holds for a detached connection too, in both
// roles: the same frames back, the same close codes, the same CloseError
// from OnClose and from a Write after the end.
func init() {
	confDrivers = append(confDrivers, confDriver{
		name:   "detach",
		roles:  asBoth,
		shared: true,
		start: func(t *testing.T, r role, o confOptions) (*testkit.RawPeer, <-chan ending) {
			c, peer := confPair(t, r, o)
			return peer, detachedEcho(t, c)
		},
	})
}

// detachedEcho detaches c with a handler that echoes every message, and
// reports its end as the goroutine mode's confEcho does.
func detachedEcho(t *testing.T, c *duplex.Conn) <-chan ending {
	t.Helper()
	ch := make(chan ending, 1)
	ec, err := c.Detach(&duplex.EventHandler{
		OnMessage: func(c *duplex.EventConn, typ duplex.MessageType, p []byte) {
			c.Write(context.Background(), typ, p)
		},
		OnClose: func(c *duplex.EventConn, err error) {
			ch <- ending{err, c.Write(context.Background(), duplex.MessageText, []byte("after the end"))}
		},
	})
	if err != nil {
		t.Fatalf("Detach: %v", err)
	}
	t.Cleanup(func() { ec.CloseNow() })
	return ch
}

// Bytes that came with the handshake, read before Detach, are handled by
// the event loop first: a frame in the same packet as the request.
func TestDetachFrameRightAfterRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		detachedEcho(t, c)
	}))
	defer testkit.CloseServer(t, srv)
	helloWithRequest(t, srv.Listener.Addr().String())
}

// ServeEvents handles frames that came in the request's packet.
func TestServeEventsFrameRightAfterRequest(t *testing.T) {
	addr, _, _ := serveEvents(t, nil)
	helloWithRequest(t, addr)
}

// A peer that stops reading fills the socket: Write waits for room until
// its context ends, then drops the connection (the message was cut), and
// OnClose reports 1006. Other connections are not held up meanwhile.
func TestDetachWriteToStalledPeer(t *testing.T) {
	closed := make(chan error, 1)
	conns := make(chan *duplex.EventConn, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		ec, err := c.Detach(&duplex.EventHandler{
			OnMessage: func(c *duplex.EventConn, typ duplex.MessageType, p []byte) {
				c.Write(context.Background(), typ, p)
			},
			OnClose: func(c *duplex.EventConn, err error) {
				select {
				case closed <- err:
				default:
				}
			},
		})
		if err != nil {
			t.Errorf("Detach: %v", err)
			return
		}
		conns <- ec
	}))
	defer testkit.CloseServer(t, srv)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stalled, _, err := duplex.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.CloseNow()
	ec := <-conns
	healthy, _, err := duplex.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.CloseNow()
	<-conns

	// Nobody reads stalled: write until the socket buffers are full.
	msg := make([]byte, 1<<20)
	var werr error
	for i := 0; i < 256 && werr == nil; i++ {
		wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		werr = ec.Write(wctx, duplex.MessageBinary, msg)
		wcancel()
	}
	if got := duplex.CloseStatus(werr); got != duplex.StatusAbnormalClosure {
		t.Fatalf("Write to a stalled peer: %v; want a CloseError with 1006", werr)
	}
	select {
	case err := <-closed:
		if duplex.CloseStatus(err) != duplex.StatusAbnormalClosure {
			t.Fatalf("OnClose got %v; want 1006", err)
		}
	case <-ctx.Done():
		t.Fatal("OnClose was not called")
	}
	if err := ec.Write(ctx, duplex.MessageText, []byte("late")); duplex.CloseStatus(err) != duplex.StatusAbnormalClosure {
		t.Fatalf("Write after the end: %v; want the CloseError", err)
	}
	// The other connection still echoes.
	if err := healthy.Write(ctx, duplex.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := healthy.Read(ctx); err != nil || string(p) != "still here" {
		t.Fatalf("echo on the healthy connection: %q, %v", p, err)
	}
}

// Close from the program: the peer gets the close frame, answers, and
// OnClose reports our code with Sent set.
func TestDetachClose(t *testing.T) {
	c, peer := confPair(t, asServer, confOptions{})
	closed := make(chan error, 1)
	ec, err := c.Detach(&duplex.EventHandler{OnClose: func(c *duplex.EventConn, err error) { closed <- err }})
	if err != nil {
		t.Fatal(err)
	}
	if err := ec.Close(duplex.StatusGoingAway, "restart"); err != nil {
		t.Fatal(err)
	}
	h, p, err := peer.ReadFrame()
	if err != nil || h.Opcode != wire.OpClose || string(p[2:]) != "restart" {
		t.Fatalf("peer got %+v %q, %v; want a close frame with the reason", h, p, err)
	}
	if err := peer.Send("88 02 03e9"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		var ce *duplex.CloseError
		if !errors.As(err, &ce) || ce.Code != duplex.StatusGoingAway || !ce.Sent || ce.Reason != "restart" {
			t.Fatalf("OnClose got %v; want our 1001", err)
		}
	case <-time.After(testkit.Wait(t, 0)):
		t.Fatal("OnClose was not called after the peer's answer")
	}
	// The socket is closed: the peer reads EOF.
	if _, _, err := peer.ReadFrame(); err == nil {
		t.Fatal("peer read another frame; want EOF")
	}
}

// splitConn writes in random pieces, so frames reach the server in parts:
// partial headers, partial payloads, several frames in one segment.
type splitConn struct {
	net.Conn
	rnd *rand.Rand
}

func (c splitConn) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		n := min(len(p), 1+c.rnd.IntN(3000))
		k, err := c.Conn.Write(p[:n])
		total += k
		if err != nil {
			return total, err
		}
		p = p[n:]
	}
	return total, nil
}

// Many connections, each pipelining messages of random sizes that arrive
// in random pieces, against both event-driven servers: every echo comes
// back, in order, so no arrival is lost while a worker reads (the
// connections are edge-triggered once open).
func TestEventEchoPipelined(t *testing.T) {
	addr, _, _ := serveEvents(t, nil)
	servers := map[string]string{
		"Detach":      detachedEchoServer(t, nil),
		"ServeEvents": "ws://" + addr,
	}
	for name, url := range servers {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := pipelineEcho(ctx, url, uint64(i)); err != nil {
						t.Errorf("connection %d: %v", i, err)
					}
				}()
			}
			wg.Wait()
		})
	}
}

func pipelineEcho(ctx context.Context, url string, seed uint64) error {
	rnd := rand.New(rand.NewPCG(seed, 7))
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return splitConn{c, rand.New(rand.NewPCG(seed, 9))}, nil
	}
	c, _, err := duplex.Dial(ctx, url, &duplex.DialOptions{NetDialContext: dial})
	if err != nil {
		return err
	}
	defer c.CloseNow()
	msgs := make([][]byte, 300)
	for i := range msgs {
		n := rnd.IntN(200)
		if i%25 == 0 {
			n = rnd.IntN(300_000)
		}
		msgs[i] = make([]byte, n)
		for j := range msgs[i] {
			msgs[i][j] = byte(rnd.Uint32())
		}
	}
	werr := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := c.Write(ctx, duplex.MessageBinary, m); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	for i, m := range msgs {
		_, p, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("echo %d of %d: %w", i, len(msgs), err)
		}
		if !bytes.Equal(p, m) {
			return fmt.Errorf("echo %d: %d bytes, not the %d sent", i, len(p), len(m))
		}
	}
	return <-werr
}

// With context takeover each compressed message refers to the ones sent
// before it, so they must leave in the order they were compressed in.
// Writers on many goroutines at once must not interleave compressing and
// sending: the client inflates every message, or fails with 1007.
func TestDetachConcurrentCompressedWrites(t *testing.T) {
	const writers, each = 8, 50
	comp := &duplex.CompressionOptions{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, &duplex.AcceptOptions{Compression: comp})
		if err != nil {
			return
		}
		ec, err := c.Detach(nil)
		if err != nil {
			t.Errorf("Detach: %v", err)
			return
		}
		var wg sync.WaitGroup
		for g := range writers {
			wg.Go(func() {
				for i := range each {
					msg := fmt.Sprintf("writer %d message %d: %s", g, i, strings.Repeat("similar text compresses well ", 20))
					if ec.Write(context.Background(), duplex.MessageText, []byte(msg)) != nil {
						return // the client has failed the test, or will miss the rest
					}
				}
			})
		}
		wg.Wait()
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &duplex.DialOptions{Compression: comp})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if !strings.HasPrefix(c.Extensions(), "permessage-deflate") {
		t.Fatalf("Extensions() = %q; want permessage-deflate", c.Extensions())
	}
	next := make([]int, writers)
	for range writers * each {
		_, p, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %v messages: %v", next, err)
		}
		var g, i int
		if _, err := fmt.Sscanf(string(p), "writer %d message %d:", &g, &i); err != nil || g < 0 || g >= writers || i != next[g] {
			t.Fatalf("message %.40q out of place (next per writer %v)", p, next)
		}
		next[g]++
	}
	c.Close(duplex.StatusNormalClosure, "")
}

// TestDetachValue: the value given to DetachValue is there when the loop
// first calls a handler, even for a message that arrived before Detach;
// SetValue and Value may race.
func TestDetachValue(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	seen := make(chan any, 1)
	ecs := make(chan *duplex.EventConn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			t.Errorf("Accept: %v", err)
			return
		}
		ec, err := c.DetachValue(&duplex.EventHandler{
			OnMessage: func(c *duplex.EventConn, typ duplex.MessageType, p []byte) {
				select {
				case seen <- c.Value():
				default:
				}
			},
		}, "session-1")
		if err != nil {
			t.Errorf("DetachValue: %v", err)
			return
		}
		ecs <- ec
	}))
	testkit.Serve(t, srv)
	ctx, cancel := testkit.Context(t, 0)
	defer cancel()
	c, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, duplex.MessageText, []byte("at once")); err != nil {
		t.Fatal(err)
	}
	var ec *duplex.EventConn
	select {
	case v := <-seen:
		if v != "session-1" {
			t.Errorf("Value() in the first OnMessage = %v; want session-1", v)
		}
		ec = <-ecs
	case <-ctx.Done():
		t.Fatal("no message")
	}
	defer ec.CloseNow()

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				ec.SetValue(g*1000 + i)
				if v, ok := ec.Value().(int); !ok || v%1000 >= 100 {
					t.Errorf("Value() = %v; want one SetValue stored", ec.Value())
					return
				}
			}
		}()
	}
	wg.Wait()
	ec.SetValue("last")
	if v := ec.Value(); v != "last" {
		t.Errorf("Value() = %v; want last", v)
	}
	ec.SetValue(nil)
	if v := ec.Value(); v != nil {
		t.Errorf("Value() after SetValue(nil) = %v; want nil", v)
	}
}
