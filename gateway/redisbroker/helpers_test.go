package redisbroker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/gateway/redisbroker"
	"github.com/duplexws/duplex/internal/gwtest"
	"github.com/duplexws/duplex/internal/testkit"
)

// redisServer is a redis-server of the test's own, on a free loopback
// port, with its data in the test's temporary directory. It keeps an
// append-only file, so a restart keeps what was stored.
type redisServer struct {
	t         testing.TB
	noPersist bool // keep nothing across a restart
	bin       string
	dir       string
	port      int
	url       string
	cmd       *exec.Cmd
}

func startRedis(t testing.TB) *redisServer {
	t.Helper()
	requireRedis(t, false)
	rs := &redisServer{t: t, bin: testkit.RequireTool(t, "redis-server"), dir: t.TempDir(), port: freePort(t)}
	rs.url = fmt.Sprintf("redis://127.0.0.1:%d/0", rs.port)
	rs.start()
	t.Cleanup(rs.stop)
	return rs
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs redis-server and waits until it answers PING.
func (rs *redisServer) start() {
	rs.t.Helper()
	aof := "yes"
	if rs.noPersist {
		aof = "no"
	}
	rs.cmd = exec.Command(rs.bin,
		"--port", strconv.Itoa(rs.port), "--bind", "127.0.0.1", "--dir", rs.dir,
		"--save", "", "--appendonly", aof, "--logfile", filepath.Join(rs.dir, "redis.log"))
	dieWithTest(rs.cmd)
	if err := rs.cmd.Start(); err != nil {
		rs.t.Fatalf("redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if rs.ping() {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(rs.dir, "redis.log"))
			rs.t.Fatalf("redis-server did not answer on port %d:\n%s", rs.port, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (rs *redisServer) ping() bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", rs.port), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	c.Write([]byte("PING\r\n"))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line == "+PONG\r\n"
}

// stop shuts redis-server down as SIGTERM does, flushing its AOF, and
// waits for it to exit.
func (rs *redisServer) stop() {
	if rs.cmd == nil {
		return
	}
	rs.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { rs.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		rs.cmd.Process.Kill()
		<-done
	}
	rs.cmd = nil
}

const apiKey = "test-api-key-71c2"

// node is one gateway on a Redis broker of its own, as one "duplex serve"
// process would be.
type node struct {
	t      testing.TB
	name   string
	g      *gateway.Gateway
	b      *redisbroker.Broker
	srv    *httptest.Server
	ws     string // ws://host:port/ws
	logs   *syncBuffer
	killed bool
}

type syncBuffer = gwtest.SyncBuffer

func startNode(t testing.TB, name string, rs *redisServer, historySize int) *node {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil)).With("node", name)
	b, err := redisbroker.New(rs.url, &redisbroker.Options{HistorySize: historySize, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Options{NoAuth: true, APIKey: apiKey, Broker: b, PingInterval: -1}, logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	n := &node{t: t, name: name, g: g, b: b, srv: srv, ws: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", logs: logs}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("node %s logs:\n%s", name, logs)
		}
	})
	return n
}

// kill stops the node at once: its connections are dropped without a
// close handshake and its broker is closed.
func (n *node) kill() {
	if n.killed {
		return
	}
	n.killed = true
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.g.Shutdown(ctx)
	n.srv.Close()
	n.b.Close()
}

// publish posts data to channel through the node's HTTP API and returns
// the status and the offset.
func (n *node) publish(channel string, data string) (int, uint64) {
	n.t.Helper()
	req, _ := http.NewRequest("POST", n.srv.URL+"/api/publish", strings.NewReader(fmt.Sprintf(`{"channel":%q,"data":%s}`, channel, data)))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := n.srv.Client().Do(req)
	if err != nil {
		n.t.Fatalf("publish: %v", err)
	}
	defer resp.Body.Close()
	var r struct{ Offset uint64 }
	json.NewDecoder(resp.Body).Decode(&r)
	return resp.StatusCode, r.Offset
}

// health returns the status of GET /healthz and its body.
func (n *node) health() (int, string) {
	resp, err := n.srv.Client().Get(n.srv.URL + "/healthz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// wireMsg is a server message of docs/protocol.md.
type wireMsg = gwtest.Msg

// subscriber is a plain /ws client.
type subscriber struct {
	t    testing.TB
	c    *duplex.Conn
	seen int // messages checked by expectNothingBut
}

func subscribe(t testing.TB, n *node, channel string) *subscriber {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := duplex.Dial(ctx, n.ws, nil)
	if err != nil {
		t.Fatalf("Dial %s: %v", n.name, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	s := &subscriber{t: t, c: c}
	s.write(fmt.Sprintf(`{"type":"subscribe","channel":%q}`, channel))
	if m := s.next(); m.Type != "subscribed" {
		t.Fatalf("subscribe: got %+v", m)
	}
	return s
}

func (s *subscriber) write(msg string) {
	s.t.Helper()
	if err := s.c.Write(context.Background(), duplex.MessageText, []byte(msg)); err != nil {
		s.t.Fatalf("Write: %v", err)
	}
}

func (s *subscriber) next() wireMsg {
	s.t.Helper()
	return gwtest.Next(s.t, s.c, 15*time.Second)
}

// expect reads len(offsets) messages and checks that they are the ones
// published at offsets, with data "0", "1", … from the first.
func (s *subscriber) expect(offsets []uint64, from int) {
	s.t.Helper()
	for i, off := range offsets {
		m := s.next()
		if m.Type != "message" || m.Offset != off || string(m.Data) != strconv.Itoa(from+i) {
			s.t.Fatalf("message %d: %+v; want offset %d, data %d", i, m, off, from+i)
		}
	}
}

// expectNothing checks that nothing else is queued: the pong of a ping
// sent now comes next.
func (s *subscriber) expectNothing() {
	s.t.Helper()
	s.write(`{"type":"ping","t":42}`)
	if m := s.next(); m.Type != "pong" {
		s.t.Fatalf("got %+v; want nothing before the pong", m)
	}
}

// expectNothingBut reads until the pong of a ping sent now, checking that
// the messages before it are the next ones of offsets (data from+seen, …).
func (s *subscriber) expectNothingBut(offsets []uint64, from int) {
	s.t.Helper()
	s.write(`{"type":"ping","t":43}`)
	for {
		m := s.next()
		if m.Type == "pong" {
			return
		}
		i := s.seen
		if m.Type != "message" || i >= len(offsets) || m.Offset != offsets[i] || string(m.Data) != strconv.Itoa(from+i) {
			s.t.Fatalf("message %d: %+v; want offset %d", i, m, offsets[min(i, len(offsets)-1)])
		}
		s.seen++
	}
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
