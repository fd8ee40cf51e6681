package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/loadgen"
	"github.com/gorilla/websocket"
)

// centrifugoVersion is the module version gateways.sh builds by default.
const centrifugoVersion = "v6.9.1"

// centrifugoLDFlags stamps the version into the binary, as Centrifugo's
// release builds do (go install leaves it 0.0.0).
var centrifugoLDFlags = "-X github.com/centrifugal/centrifugo/v6/internal/build.Version=" + strings.TrimPrefix(centrifugoVersion, "v")

const apiKey = "bench-api-key" // as in centrifugo.json

// skipOrFail skips, visibly without -v, unless DUPLEX_REQUIRE_ALL=1 asks
// for every peer.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("DUPLEX_REQUIRE_ALL") == "1" {
		t.Fatal(msg)
	}
	fmt.Fprintf(os.Stderr, "SKIP %s: %s\n", t.Name(), msg)
	t.Skip(msg + "; DUPLEX_REQUIRE_ALL=1 makes this fail")
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// centrifugoBinary returns $CENTRIFUGO, or builds Centrifugo with go
// install into the user's cache directory (once; later builds come from
// Go's build cache).
func centrifugoBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CENTRIFUGO"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		dir = filepath.Join(dir, "duplex-bench", "centrifugo-"+centrifugoVersion)
		buildPath = filepath.Join(dir, "centrifugo")
		if _, err := os.Stat(buildPath); err == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute) // within go test's 10
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "install", "-ldflags", centrifugoLDFlags,
			"github.com/centrifugal/centrifugo/v6@"+centrifugoVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go install centrifugo %s: %v\n%s", centrifugoVersion, err, lastLines(out, 10))
		}
	})
	if buildErr != nil {
		skipOrFail(t, "cannot build Centrifugo (set CENTRIFUGO to a binary): %v", buildErr)
	}
	return buildPath
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// startCentrifugo runs Centrifugo with gateways.sh's configuration on a
// free port, and returns its address once it answers.
func startCentrifugo(t *testing.T) string {
	t.Helper()
	bin := centrifugoBinary(t)
	raw, err := os.ReadFile("centrifugo.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("centrifugo.json: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg["http_server"].(map[string]any)["port"] = port
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--config", path)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("centrifugo did not exit after SIGKILL")
		}
		if t.Failed() {
			t.Logf("centrifugo's output:\n%s", lastLines(logs.Bytes(), 30))
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case err := <-exited:
			t.Fatalf("centrifugo exited: %v\n%s", err, lastLines(logs.Bytes(), 30))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("centrifugo not listening on %s after 30s", addr)
		}
	}
}

// api calls Centrifugo's HTTP API method with body and decodes its result.
func api(t *testing.T, addr, method string, body, result any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/"+method, bytes.NewReader(b))
	req.Header.Set("X-API-Key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /api/%s: %v", method, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Error != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /api/%s: %s %s", method, resp.Status, raw)
	}
	if result != nil {
		if err := json.Unmarshal(env.Result, result); err != nil {
			t.Fatalf("POST /api/%s: result %s: %v", method, env.Result, err)
		}
	}
}

// TestCentrifugoPubSub runs duplex bench's Centrifugo client against a
// real Centrifugo: every publish through the API reaches every
// subscriber, with its latency, and nothing counts as an error.
func TestCentrifugoPubSub(t *testing.T) {
	addr := startCentrifugo(t)
	const conns, channels = 60, 6
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := loadgen.Run(ctx, loadgen.Config{
		URL:      "ws://" + addr + "/connection/websocket",
		PubSub:   true,
		Protocol: loadgen.ProtocolCentrifugo,
		Conns:    conns, Channels: channels,
		Rate: 60, Duration: time.Second, Size: 100,
		PublishVia: "api", APIKey: apiKey,
	})
	if err != nil {
		t.Fatalf("loadgen.Run: %v", err)
	}
	if res.Errors != 0 || res.FirstError != "" {
		t.Fatalf("%d errors; first: %s", res.Errors, res.FirstError)
	}
	if res.Conns != conns {
		t.Errorf("subscribed %d; want %d", res.Conns, conns)
	}
	// Each publish goes to one channel of conns/channels subscribers.
	if res.Publishes == 0 || res.Expected != res.Publishes*conns/channels || res.Msgs != res.Expected {
		t.Errorf("publishes %d, expected deliveries %d, delivered %d; want %d each",
			res.Publishes, res.Expected, res.Msgs, conns/channels)
	}
	if res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P50 {
		t.Errorf("latency %+v: want a positive p50 below the max", res.Latency)
	}
}

// TestCentrifugoIdle holds idle subscribers, as the idle scenario does:
// each one subscribed to a channel of its own, and no error while held.
func TestCentrifugoIdle(t *testing.T) {
	addr := startCentrifugo(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := loadgen.Run(ctx, loadgen.Config{
		URL:    "ws://" + addr + "/connection/websocket",
		PubSub: true, Protocol: loadgen.ProtocolCentrifugo,
		Conns: 40, Channels: 40, Rate: 0, Duration: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("loadgen.Run: %v", err)
	}
	if res.Errors != 0 || res.Conns != 40 {
		t.Fatalf("%d of 40 subscribed, %d errors; first: %s", res.Conns, res.Errors, res.FirstError)
	}
}

// TestCentrifugoConfig checks that centrifugo.json gives Centrifugo what
// duplex serve has by default, so that the two are compared doing the
// same work: a history of 100 messages, and recovery of what a client
// missed when it resubscribes without asking for recovery options.
func TestCentrifugoConfig(t *testing.T) {
	addr := startCentrifugo(t)
	const ch = "bench/history"
	for i := range 120 {
		api(t, addr, "publish", map[string]any{"channel": ch, "data": map[string]int{"i": i}}, nil)
	}
	var hist struct {
		Publications []json.RawMessage `json:"publications"`
		Offset       uint64            `json:"offset"`
		Epoch        string            `json:"epoch"`
	}
	api(t, addr, "history", map[string]any{"channel": ch, "limit": 1000}, &hist)
	if len(hist.Publications) != 100 || hist.Offset != 120 {
		t.Fatalf("history holds %d publications, offset %d; want 100 (history_size), offset 120", len(hist.Publications), hist.Offset)
	}

	// A client that saw offset 115 resubscribes with recover and gets 116-120.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/connection/websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	send := func(s string) {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	reply := func(id int) map[string]json.RawMessage {
		for {
			_, p, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("read reply %d: %v", id, err)
			}
			for line := range bytes.Lines(p) {
				var m map[string]json.RawMessage
				if json.Unmarshal(line, &m) == nil && string(m["id"]) == strconv.Itoa(id) {
					return m
				}
			}
		}
	}
	send(`{"id":1,"connect":{}}`)
	if r := reply(1); r["connect"] == nil {
		t.Fatalf("connect: %v", r)
	}
	send(fmt.Sprintf(`{"id":2,"subscribe":{"channel":%q,"recover":true,"epoch":%q,"offset":115}}`, ch, hist.Epoch))
	r := reply(2)
	var sub struct {
		Recoverable  bool `json:"recoverable"`
		Recovered    bool `json:"recovered"`
		Publications []struct {
			Offset uint64 `json:"offset"`
		} `json:"publications"`
	}
	if err := json.Unmarshal(r["subscribe"], &sub); err != nil || r["subscribe"] == nil {
		t.Fatalf("subscribe: %s", r["error"])
	}
	if !sub.Recoverable || !sub.Recovered || len(sub.Publications) != 5 || sub.Publications[0].Offset != 116 {
		t.Fatalf("subscribe with recover from 115: %+v; want recoverable, recovered, offsets 116-120", sub)
	}
}
