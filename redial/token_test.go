package redial_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/redial"
)

const tokenSecret = "redial-token-secret"

// startJWTGateway serves a gateway that takes HS256 JWTs signed with
// tokenSecret, and returns its ws:// base URL and its log.
func startJWTGateway(t *testing.T) (string, *syncLog) {
	t.Helper()
	base, logs, _ := startGatewaySecret(t, tokenSecret)
	return base, logs
}

func startGatewaySecret(t *testing.T, secret string) (string, *syncLog, *gateway.Gateway) {
	t.Helper()
	logs := &syncLog{}
	gw, err := gateway.New(gateway.Options{JWTSecret: secret}, slog.New(slog.NewTextHandler(logs, nil)))
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
	return "ws" + strings.TrimPrefix(srv.URL, "http"), logs, gw
}

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sign returns a token for sub whose gateway session ends about `left`
// from now (the gateway allows 30s past exp).
func sign(t *testing.T, sub string, left time.Duration) string {
	t.Helper()
	return signWith(t, tokenSecret, sub, left)
}

func signWith(t *testing.T, secret, sub string, left time.Duration) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "exp": time.Now().Add(left - 30*time.Second).Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tokens hands out the given tokens in order, then repeats the last.
type tokens struct {
	mu    sync.Mutex
	list  []string
	calls int
}

func (tk *tokens) next(context.Context) (string, error) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.calls++
	tok := tk.list[0]
	if len(tk.list) > 1 {
		tk.list = tk.list[1:]
	}
	return tok, nil
}

func (tk *tokens) count() int {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return tk.calls
}

// TestTokenRefreshKeepsConnection: the client dials with the first token
// from Options.Token and, before it runs out, sends the next one as a
// refresh, so the session outlives the first token without a reconnect.
func TestTokenRefreshKeepsConnection(t *testing.T) {
	base, logs := startJWTGateway(t)
	tk := &tokens{list: []string{sign(t, "ada", 3*time.Second), sign(t, "ada", time.Hour)}}
	st := newStates()
	var mu sync.Mutex
	var got []string
	c := redial.New(base+"/ws", &redial.Options{
		Token:     tk.next,
		MinDelay:  10 * time.Millisecond,
		MaxDelay:  50 * time.Millisecond,
		OnState:   st.record,
		OnMessage: func(_ duplex.MessageType, p []byte) { mu.Lock(); got = append(got, string(p)); mu.Unlock() },
	})
	stop, _ := run(t, c)
	st.wait(t, redial.StateConnected, 1)
	// The first token's exp is already in the refresh window: the client
	// refreshes after its one-second floor. Wait past the first token's
	// end (3s) and check the session is the same.
	deadline := time.Now().Add(4500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if n := st.count(redial.StateDisconnected); n != 0 {
			t.Fatalf("disconnected: %v\ngateway log:\n%s", st.list(), logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := tk.count(); n != 2 {
		t.Errorf("Token called %d times; want 2 (dial, refresh)", n)
	}
	if err := c.Send(context.Background(), duplex.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	mu.Lock()
	if len(got) != 1 || got[0] != "received: still here" {
		t.Errorf("OnMessage got %q; want only the ack (refreshed answers are consumed)", got)
	}
	mu.Unlock()
	if strings.Contains(logs.String(), "token expired") {
		t.Errorf("the gateway expired the session:\n%s", logs)
	}
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestTokenRefusedReconnects: a refresh the server refuses closes the
// connection with 4401; the client gets a new token before dialling again.
func TestTokenRefusedReconnects(t *testing.T) {
	base, _ := startJWTGateway(t)
	tk := &tokens{list: []string{
		sign(t, "ada", 3*time.Second), // dial: runs out soon, so a refresh follows
		sign(t, "bob", time.Hour),     // refresh: another user, refused with 4401
		sign(t, "ada", time.Hour),     // the dial after the 4401
	}}
	st := newStates()
	c := redial.New(base+"/ws?token=placeholder", &redial.Options{
		Token:    tk.next,
		MinDelay: 10 * time.Millisecond,
		MaxDelay: 50 * time.Millisecond,
		OnState:  st.record,
	})
	stop, _ := run(t, c)
	st.wait(t, redial.StateConnected, 1)
	e := st.wait(t, redial.StateDisconnected, 1)
	if code := duplex.CloseStatus(e.err); code != 4401 {
		t.Fatalf("disconnected with %v (code %d); want 4401", e.err, code)
	}
	st.wait(t, redial.StateConnected, 2)
	if n := tk.count(); n != 3 {
		t.Errorf("Token called %d times; want 3 (dial, refresh, dial)", n)
	}
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTokenKeptThenRefusedIsReplaced: a token kept from an earlier
// connection that the server now refuses (here: the next node has another
// key) is replaced by a new one from Token, instead of stopping Run with
// the 401. A fresh token that is refused stops Run, as before.
func TestTokenKeptThenRefusedIsReplaced(t *testing.T) {
	base1, _, gw1 := startGatewaySecret(t, "secret-one")
	base2, _, _ := startGatewaySecret(t, "secret-two")
	tk := &tokens{list: []string{signWith(t, "secret-one", "ada", time.Hour), signWith(t, "secret-two", "ada", time.Hour)}}
	st := newStates()
	c := redial.New(base1+"/ws", &redial.Options{
		Token: tk.next,
		// The second node twice: the redial after its 401 moves to the
		// next URL, and should land on it again. (In a real cluster every
		// node has the same keys; here the second node's other key stands
		// for a key rotated out while the client was away.)
		URLs:     []string{base2 + "/ws", base2 + "/ws"},
		MinDelay: 10 * time.Millisecond,
		MaxDelay: 50 * time.Millisecond,
		OnState:  st.record,
	})
	stop, result := run(t, c)
	st.wait(t, redial.StateConnected, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gw1.Shutdown(ctx) // the client moves to the second node
	st.wait(t, redial.StateConnected, 2)
	if n := tk.count(); n != 2 {
		t.Errorf("Token called %d times; want 2", n)
	}
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}

	// A token fresh from Token that is refused ends Run.
	bad := redial.New(base2+"/ws", &redial.Options{
		Token: func(context.Context) (string, error) { return signWith(t, "secret-one", "ada", time.Hour), nil },
	})
	_, result = run(t, bad)
	select {
	case err := <-result:
		var he *duplex.HandshakeError
		if !errors.As(err, &he) || he.StatusCode != 401 {
			t.Errorf("Run = %v; want the 401", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still retrying a fresh token the server refuses")
	}
}
