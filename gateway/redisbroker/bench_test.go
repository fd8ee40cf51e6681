package redisbroker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// BenchmarkFanout is the load test of issue 6: subscribers spread over two
// "duplex serve" processes on one Redis, one channel, a steady publish
// rate through the HTTP API. It reports
//
//	delivered/expected  must be exactly 1: every subscriber got every message
//	p50-ms, p99-ms      from the publish call to a subscriber reading it
//	node-cpu-µs/delivery  CPU of both node processes, per message delivered
//	redis-cpu-µs/msg    CPU of redis-server per message published
//
// It runs once whatever b.N is. The environment sizes it:
//
//	DUPLEX_FANOUT_SUBSCRIBERS  default 5000
//	DUPLEX_FANOUT_RATE         messages per second, default 10
//	DUPLEX_FANOUT_DURATION     default 3s (the run: 30s)
//
//	go test -run '^$' -bench Fanout -benchtime 1x ./gateway/redisbroker
//
// The subscribers run in the benchmark's process, the nodes and Redis in
// their own, all on this machine's cores.
func BenchmarkFanout(b *testing.B) {
	subscribers := envInt(b, "DUPLEX_FANOUT_SUBSCRIBERS", 5000)
	rate := envInt(b, "DUPLEX_FANOUT_RATE", 10)
	duration := envDuration(b, "DUPLEX_FANOUT_DURATION", 3*time.Second)
	rs := startRedis(b)
	bin := buildDuplex(b)
	nodes := []*procNode{startProcNode(b, bin, rs), startProcNode(b, bin, rs)}

	// Connect and subscribe, 100 at a time.
	subs := make([]*benchSub, subscribers)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100)
	var dialErr atomic.Value
	for i := range subs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s, err := dialBenchSub(nodes[i%len(nodes)].ws)
			if err != nil {
				dialErr.Store(err)
				return
			}
			subs[i] = s
		})
	}
	wg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		b.Fatalf("subscriber: %v", err)
	}
	b.Cleanup(func() {
		for _, s := range subs {
			s.c.CloseNow()
		}
	})
	var delivered atomic.Int64
	for _, s := range subs {
		go s.read(&delivered)
	}

	cpu0 := nodes[0].cpu(b) + nodes[1].cpu(b)
	redis0 := procCPU(b, rs.cmd.Process.Pid)
	b.ResetTimer()
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	published := 0
	for time.Since(start) < duration {
		<-tick.C
		n := nodes[published%len(nodes)]
		if err := n.publish(fmt.Sprintf(`{"t":%d}`, time.Now().UnixNano())); err != nil {
			b.Fatalf("publish %d: %v", published, err)
		}
		published++
	}
	tick.Stop()
	expected := int64(published) * int64(subscribers)
	deadline := time.Now().Add(30 * time.Second)
	for delivered.Load() < expected && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // duplicates would arrive by now
	b.StopTimer()
	nodeCPU := nodes[0].cpu(b) + nodes[1].cpu(b) - cpu0
	redisCPU := procCPU(b, rs.cmd.Process.Pid) - redis0

	got := delivered.Load()
	for _, s := range subs {
		if err := s.err(); err != nil {
			b.Errorf("subscriber: %v", err)
			break
		}
	}
	if got != expected {
		b.Errorf("delivered %d of %d messages", got, expected)
	}
	p50, p99 := quantiles(subs)
	b.ReportMetric(float64(got)/float64(expected), "delivered/expected")
	b.ReportMetric(float64(p50)/1e6, "p50-ms")
	b.ReportMetric(float64(p99)/1e6, "p99-ms")
	b.ReportMetric(float64(nodeCPU.Microseconds())/float64(max(got, 1)), "node-cpu-µs/delivery")
	b.ReportMetric(float64(redisCPU.Microseconds())/float64(max(published, 1)), "redis-cpu-µs/msg")
	b.ReportMetric(float64(published)/duration.Seconds(), "msgs/s")
	b.ReportMetric(float64(got)/duration.Seconds(), "deliveries/s")
	b.Logf("%d subscribers on 2 nodes, %d messages in %v: %d of %d delivered; p50 %v, p99 %v; node CPU %v, redis CPU %v",
		subscribers, published, duration, got, expected, p50, p99, nodeCPU, redisCPU)
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// envDuration reads a duration from the environment variable name, or
// returns def if it is unset.
func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

// buildDuplex builds cmd/duplex into a temporary directory.
func buildDuplex(b *testing.B) string {
	b.Helper()
	goBin := testkit.RequireTool(b, "go")
	out := filepath.Join(b.TempDir(), "duplex")
	cmd := exec.Command(goBin, "build", "-o", out, "github.com/duplexws/duplex/cmd/duplex")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, msg)
	}
	return out
}

// procNode is a "duplex serve" process.
type procNode struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:port
	ws   string
}

var servingLine = regexp.MustCompile(`duplex: serving (http://\S+)/`)

func startProcNode(b *testing.B, bin string, rs *redisServer) *procNode {
	b.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--no-auth", "--api-key", apiKey,
		"--broker", rs.url, "--max-connections", "20000")
	cmd.Env = append(os.Environ(), "DUPLEX_NO_REEXEC=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	br := bufio.NewReader(stderr)
	var m []string
	for m == nil {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatalf("duplex serve: %v before it said where it serves", err)
		}
		m = servingLine.FindStringSubmatch(line)
	}
	go io.Copy(io.Discard, br) // its logs: one line per connection
	n := &procNode{cmd: cmd, base: m[1], ws: "ws" + strings.TrimPrefix(m[1], "http") + "/ws"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(n.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return n
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s/healthz never answered 200", n.base)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *procNode) publish(data string) error {
	return n.post(`{"channel":"bench","data":` + data + `}`)
}

// benchHTTP keeps enough idle connections for the benchmarks' concurrent
// publishers.
var benchHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// post sends body to the node's /api/publish.
func (n *procNode) post(body string) error {
	req, _ := http.NewRequest("POST", n.base+"/api/publish", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := benchHTTP.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func (n *procNode) cpu(b *testing.B) time.Duration { return procCPU(b, n.cmd.Process.Pid) }

// procCPU returns the user plus system CPU time of process pid, from
// fields 14 and 15 of /proc/PID/stat (proc(5)), in clock ticks of 10ms.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("CPU time: %v", err)
	}
	f := bytes.Fields(raw[bytes.LastIndexByte(raw, ')')+1:])
	utime, _ := strconv.ParseInt(string(f[14-3]), 10, 64)
	stime, _ := strconv.ParseInt(string(f[15-3]), 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// benchSub is one subscriber. It checks that offsets follow each other.
type benchSub struct {
	c       *duplex.Conn
	mu      sync.Mutex
	fail    error           // guarded by mu
	samples []time.Duration // guarded by mu; delivery latencies
}

func dialBenchSub(url string) (*benchSub, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := duplex.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Write(ctx, duplex.MessageText, []byte(`{"type":"subscribe","channel":"bench"}`)); err != nil {
		return nil, err
	}
	_, p, err := c.Read(ctx)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(p, []byte(`{"type":"subscribed"`)) {
		return nil, fmt.Errorf("subscribe: %s", p)
	}
	return &benchSub{c: c}, nil
}

func (s *benchSub) read(delivered *atomic.Int64) {
	var last uint64
	var m struct {
		Type   string
		Offset uint64
		Data   struct{ T int64 }
	}
	for {
		_, p, err := s.c.Read(context.Background())
		if err != nil {
			return
		}
		now := time.Now().UnixNano()
		if err := json.Unmarshal(p, &m); err != nil || m.Type != "message" {
			s.setErr(fmt.Errorf("unexpected %s", p))
			return
		}
		if last != 0 && m.Offset != last+1 {
			s.setErr(fmt.Errorf("offset %d after %d", m.Offset, last))
			return
		}
		last = m.Offset
		s.mu.Lock()
		s.samples = append(s.samples, time.Duration(now-m.Data.T))
		s.mu.Unlock()
		delivered.Add(1)
	}
}

func (s *benchSub) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail == nil {
		s.fail = err
	}
}

func (s *benchSub) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail
}

// quantiles returns the median and 99th percentile of every latency.
func quantiles(subs []*benchSub) (p50, p99 time.Duration) {
	var all []time.Duration
	for _, s := range subs {
		s.mu.Lock()
		all = append(all, s.samples...)
		s.mu.Unlock()
	}
	if len(all) == 0 {
		return 0, 0
	}
	slices.Sort(all)
	return all[len(all)*50/100], all[len(all)*99/100]
}
