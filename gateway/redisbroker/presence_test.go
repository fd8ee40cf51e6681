package redisbroker_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/gateway/redisbroker"
	"github.com/duplexws/duplex/internal/testkit"
)

// Issue 16 on Redis: presence, join/leave and the server API across two
// nodes, each a gateway with its own broker on one redis-server.

const presenceTTL = 3 * time.Second

type presenceNode struct {
	*node
}

// startPresenceNode starts a gateway with presence on the Redis at url;
// prefix keeps the keys of a test apart on a shared cluster. With
// goroutines its sessions are goroutine sessions (NoEventLoop), else event
// sessions: the tests run one node of each kind, so that both kinds work
// with each other.
func startPresenceNode(t *testing.T, name, url, prefix string, goroutines bool) *presenceNode {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil)).With("node", name)
	b, err := redisbroker.New(url, &redisbroker.Options{Logger: logger, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Options{
		Basic:        []string{"ada:pw", "bob:pw", "carol:pw"},
		APIKey:       apiKey,
		Broker:       b,
		PingInterval: -1,
		Presence:     []string{"room/*"},
		JoinLeave:    []string{"room/*"},
		PresenceTTL:  presenceTTL,
		NoEventLoop:  goroutines,
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	n := &node{t: t, name: name, g: g, b: b, srv: srv, ws: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", logs: logs}
	kind := "session=event "
	if goroutines {
		kind = "session=goroutine "
	}
	t.Cleanup(func() {
		n.kill()
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "msg=connected") && !strings.Contains(line, kind) {
				t.Errorf("node %s: a connection ran as another kind of session than %s:\n%s", name, kind, line)
				break
			}
		}
		if t.Failed() {
			t.Logf("node %s logs:\n%s", name, logs)
		}
	})
	return &presenceNode{n}
}

// crash stops the node as a dying process would: Redis hears nothing
// more from it, neither leaves nor the removal of its node.
func (n *presenceNode) crash() {
	n.b.Close()
	n.kill()
}

// pmsg is a server message with the fields of issue 16.
type pmsg struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Client  string `json:"client"`
	User    string `json:"user"`
	Error   string `json:"error"`
	Clients []struct {
		Client string `json:"client"`
		User   string `json:"user"`
	} `json:"clients"`
}

type pclient struct {
	t *testing.T
	c *duplex.Conn
}

func (n *presenceNode) connect(t *testing.T, user string) *pclient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":pw"))}}
	c, _, err := duplex.Dial(ctx, n.ws, &duplex.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("Dial %s as %s: %v", n.name, user, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &pclient{t: t, c: c}
}

func (pc *pclient) send(s string) {
	pc.t.Helper()
	if err := pc.c.Write(context.Background(), duplex.MessageText, []byte(s)); err != nil {
		pc.t.Fatalf("Write: %v", err)
	}
}

func (pc *pclient) read() (pmsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, p, err := pc.c.Read(ctx)
	if err != nil {
		return pmsg{}, err
	}
	var m pmsg
	json.Unmarshal(p, &m)
	return m, nil
}

func (pc *pclient) expect(typ string) pmsg {
	pc.t.Helper()
	m, err := pc.read()
	if err != nil {
		pc.t.Fatalf("Read: %v", err)
	}
	if m.Type != typ {
		pc.t.Fatalf("got %+v; want a %q message", m, typ)
	}
	return m
}

func (n *presenceNode) api(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, n.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := n.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		json.Unmarshal(b, out)
	}
	return resp.StatusCode
}

func (n *presenceNode) presence(t *testing.T, channel string) []gateway.Member {
	t.Helper()
	var out struct{ Clients []gateway.Member }
	if code := n.api(t, "GET", "/api/presence?channel="+channel, "", &out); code != 200 {
		t.Fatalf("GET /api/presence on %s: %d", n.name, code)
	}
	sort.Slice(out.Clients, func(i, j int) bool { return out.Clients[i].User < out.Clients[j].User })
	return out.Clients
}

func TestPresenceAcrossRedisNodes(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		testPresenceAcrossNodes(t, startRedis(t).url, "duplex:")
	})
	t.Run("cluster", func(t *testing.T) {
		testPresenceAcrossNodes(t, sharedCluster(t).url, "presence-"+strconv.FormatInt(time.Now().UnixNano(), 36)+":")
	})
}

func testPresenceAcrossNodes(t *testing.T, url, prefix string) {
	testkit.CheckNoGoroutineLeak(t)
	a, b := startPresenceNode(t, "a", url, prefix, false), startPresenceNode(t, "b", url, prefix, true)
	ada, bob := a.connect(t, "ada"), b.connect(t, "bob")

	ada.send(`{"type":"subscribe","channel":"room/1"}`)
	ada.expect("subscribed")
	bob.send(`{"type":"subscribe","channel":"room/1"}`)
	bob.expect("subscribed")
	join := ada.expect("join")
	if join.User != "bob" || join.Channel != "room/1" {
		t.Fatalf("join on node a = %+v; want bob's from node b", join)
	}

	ada.send(`{"type":"presence","channel":"room/1"}`)
	if p := ada.expect("presence"); len(p.Clients) != 2 {
		t.Fatalf("presence = %+v; want ada and bob", p)
	}
	ms := b.presence(t, "room/1")
	if len(ms) != 2 || ms[0].User != "ada" || ms[1].User != "bob" || ms[0].Node == ms[1].Node || ms[1].Client != join.Client {
		t.Fatalf("GET /api/presence on b = %+v", ms)
	}
	var chans struct {
		Channels []struct {
			Channel     string
			Subscribers int
		}
	}
	if b.api(t, "GET", "/api/channels?pattern=room/*", "", &chans); len(chans.Channels) != 1 || chans.Channels[0].Subscribers != 2 {
		t.Fatalf("GET /api/channels = %+v; want room/1 with 2", chans)
	}

	bob.send(`{"type":"unsubscribe","channel":"room/1"}`)
	if m := ada.expect("leave"); m.User != "bob" {
		t.Fatalf("leave = %+v", m)
	}

	// The API of node a acts on bob's session on node b.
	if code := a.api(t, "POST", "/api/subscribe", `{"user":"bob","channel":"room/1"}`, nil); code != 200 {
		t.Fatalf("POST /api/subscribe: %d", code)
	}
	if m := bob.expect("subscribed"); m.Channel != "room/1" {
		t.Fatalf("subscribed = %+v", m)
	}
	ada.expect("join")
	if code := a.api(t, "POST", "/api/unsubscribe", `{"user":"bob","channel":"room/1"}`, nil); code != 200 {
		t.Fatalf("POST /api/unsubscribe: %d", code)
	}
	bob.expect("unsubscribed")
	ada.expect("leave")
	bob.send(`{"type":"subscribe","channel":"room/1"}`)
	bob.expect("subscribed")
	ada.expect("join")

	if code := a.api(t, "POST", "/api/disconnect", `{"user":"bob"}`, nil); code != 200 {
		t.Fatalf("POST /api/disconnect: %d", code)
	}
	for {
		_, err := bob.read()
		if err == nil {
			continue
		}
		var ce *duplex.CloseError
		if !errors.As(err, &ce) || ce.Code != gateway.StatusDisconnected {
			t.Fatalf("bob's session ended with %v; want 4403", err)
		}
		break
	}
	if m := ada.expect("leave"); m.User != "bob" {
		t.Fatalf("leave after disconnect = %+v", m)
	}
	if ms := a.presence(t, "room/1"); len(ms) != 1 {
		t.Fatalf("presence after bob left = %+v", ms)
	}
}

// A node that dies leaves no client in the lists after PresenceTTL.
func TestPresenceCrashedRedisNode(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	rs := startRedis(t)
	a, c := startPresenceNode(t, "a", rs.url, "duplex:", false), startPresenceNode(t, "c", rs.url, "duplex:", true)
	ada, carol := a.connect(t, "ada"), c.connect(t, "carol")
	for _, pc := range []*pclient{ada, carol} {
		pc.send(`{"type":"subscribe","channel":"room/1"}`)
		pc.expect("subscribed")
	}
	// A member is written just after its subscribed reply is queued.
	waitFor(t, 10*time.Second, "ada and carol in the presence list", func() bool {
		return len(a.presence(t, "room/1")) == 2
	})
	if m := ada.expect("join"); m.User != "carol" {
		t.Fatalf("join = %+v", m)
	}
	crashed := time.Now()
	c.crash()
	if ms := a.presence(t, "room/1"); len(ms) != 2 && time.Since(crashed) < presenceTTL/2 {
		t.Fatalf("carol left at once (%+v): the test no longer shows the expiry", ms)
	}
	waitFor(t, presenceTTL+10*time.Second, "carol to leave the presence list", func() bool {
		ms := a.presence(t, "room/1")
		return len(ms) == 1 && ms[0].User == "ada"
	})
	t.Logf("carol left the list %v after her node died (PresenceTTL %v)", time.Since(crashed).Round(10*time.Millisecond), presenceTTL)
	// Node a reaps the dead node on its ticks and announces her leave.
	if m := ada.expect("leave"); m.User != "carol" {
		t.Fatalf("leave = %+v; want carol's", m)
	}
	t.Logf("carol's leave came %v after her node died (bound %v)", time.Since(crashed).Round(10*time.Millisecond), presenceTTL+presenceTTL/3)
	var chans struct{ Channels []struct{ Subscribers int } }
	if a.api(t, "GET", "/api/channels", "", &chans); len(chans.Channels) != 1 || chans.Channels[0].Subscribers != 1 {
		t.Errorf("GET /api/channels = %+v; want room/1 with 1", chans)
	}
}
