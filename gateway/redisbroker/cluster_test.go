package redisbroker_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/testkit"
	"github.com/redis/go-redis/v9"
)

// The tests share servers that are slow to start: one Redis Cluster of 3
// masters and 3 replicas, and one plain server, each started by the first
// test that needs it and stopped by TestMain after the last.
var shared struct {
	mu      sync.Mutex
	cluster *redisCluster
	single  *redisProc
}

func TestMain(m *testing.M) {
	code := testkit.Main(m)
	shared.mu.Lock()
	if shared.cluster != nil {
		shared.cluster.stop()
	}
	if shared.single != nil {
		shared.single.stop()
		os.RemoveAll(shared.single.dir)
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// redisProc is a redis-server process not tied to one test.
type redisProc struct {
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

func (p *redisProc) addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

// start runs redis-server and waits until it answers PING.
func (p *redisProc) start() error {
	args := append([]string{"--port", strconv.Itoa(p.port), "--bind", "127.0.0.1", "--dir", p.dir,
		"--save", "", "--appendonly", "yes", "--logfile", filepath.Join(p.dir, "redis.log")}, p.args...)
	p.cmd = exec.Command("redis-server", args...)
	dieWithTest(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !(&redisServer{port: p.port}).ping() {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(p.dir, "redis.log"))
			return fmt.Errorf("redis-server did not answer on port %d:\n%s", p.port, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// kill ends the process at once (SIGKILL), as a crash would.
func (p *redisProc) kill() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
	p.cmd = nil
}

// stop ends the process with SIGTERM, and SIGKILL after 10 s.
func (p *redisProc) stop() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	p.cmd = nil
}

// sharedRedis returns the plain server the contract tests share (each
// with keys of its own prefix).
func sharedRedis(t testing.TB) *redisProc {
	t.Helper()
	requireRedis(t, false)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.single == nil {
		dir, err := os.MkdirTemp("", "duplex-redis-")
		if err != nil {
			t.Fatal(err)
		}
		p := &redisProc{port: freePort(t), dir: dir}
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		shared.single = p
	}
	return shared.single
}

// requireRedis skips the test (fails it under DUPLEX_REQUIRE_ALL=1) when
// redis-server, or for a cluster redis-cli, is not installed, and says so
// on stderr, which shows without -v.
func requireRedis(t testing.TB, cluster bool) {
	t.Helper()
	names := []string{"redis-server"}
	if cluster {
		names = append(names, "redis-cli")
	}
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			fmt.Fprintf(os.Stderr, "redisbroker: %s not found: skipping %s (DUPLEX_REQUIRE_ALL=1 makes it fail)\n", name, t.Name())
		}
		testkit.RequireTool(t, name)
	}
}

// redisCluster is a Redis Cluster of 3 masters, each with a replica.
type redisCluster struct {
	dir   string
	nodes []*redisProc
	url   string // redis+cluster://host:port,...
}

// sharedCluster returns the cluster the tests share, starting it once.
func sharedCluster(t testing.TB) *redisCluster {
	t.Helper()
	requireRedis(t, true)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster == nil {
		c, err := startCluster()
		if err != nil {
			if c != nil {
				c.stop()
			}
			t.Fatalf("redis cluster: %v", err)
		}
		shared.cluster = c
	}
	return shared.cluster
}

// clusterPort returns a free port whose cluster bus port (+10000) is free
// too.
func clusterPort() (int, error) {
	for range 100 {
		p := 20000 + rand.IntN(25000)
		ok := true
		for _, q := range []int{p, p + 10000} {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return p, nil
		}
	}
	return 0, errors.New("no free port pair")
}

func startCluster() (*redisCluster, error) {
	dir, err := os.MkdirTemp("", "duplex-cluster-")
	if err != nil {
		return nil, err
	}
	c := &redisCluster{dir: dir}
	var addrs []string
	for i := range 6 {
		port, err := clusterPort()
		if err != nil {
			return c, err
		}
		nd := filepath.Join(dir, strconv.Itoa(i))
		os.Mkdir(nd, 0o755)
		p := &redisProc{port: port, dir: nd, args: []string{"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000"}}
		if err := p.start(); err != nil {
			return c, err
		}
		c.nodes = append(c.nodes, p)
		addrs = append(addrs, p.addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return c, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.url = "redis+cluster://" + strings.Join(addrs, ",")
	return c, c.waitHealthy(time.Minute)
}

// waitHealthy waits until every running node says cluster_state:ok and
// sees 3 masters with slots, each with a replica.
func (c *redisCluster) waitHealthy(d time.Duration) error {
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		if last = c.check(); last == "" {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cluster not healthy after %v: %s", d, last)
}

// check returns what is not right yet with the cluster, or "".
func (c *redisCluster) check() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, p := range c.nodes {
		if p.cmd == nil {
			return p.addr() + " is down"
		}
		rc := redis.NewClient(&redis.Options{Addr: p.addr(), MaxRetries: -1})
		info, err1 := rc.ClusterInfo(ctx).Result()
		nodes, err2 := rc.ClusterNodes(ctx).Result()
		rc.Close()
		if err := errors.Join(err1, err2); err != nil {
			return err.Error()
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return p.addr() + ": cluster_state not ok"
		}
		masters, replicas := 0, 0
		for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
			f := strings.Fields(line)
			if len(f) < 8 || strings.Contains(f[2], "fail") || f[7] != "connected" {
				return p.addr() + ": " + line
			}
			if strings.Contains(f[2], "master") && len(f) > 8 {
				masters++
			} else if strings.Contains(f[2], "slave") {
				replicas++
			}
		}
		if masters != 3 || replicas != 3 {
			return fmt.Sprintf("%s sees %d masters with slots and %d replicas", p.addr(), masters, replicas)
		}
	}
	return ""
}

// node returns the node listening on addr.
func (c *redisCluster) node(addr string) *redisProc {
	for _, p := range c.nodes {
		if p.addr() == addr {
			return p
		}
	}
	return nil
}

// replicaSynced waits until every replica of master has acknowledged
// everything master wrote.
func (c *redisCluster) replicaSynced(master string, d time.Duration) error {
	rc := redis.NewClient(&redis.Options{Addr: master, MaxRetries: -1})
	defer rc.Close()
	deadline := time.Now().Add(d)
	for {
		info, err := rc.Info(context.Background(), "replication").Result()
		if err != nil {
			return err
		}
		var masterOff, replicaOff int64 = -1, -2
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
				masterOff, _ = strconv.ParseInt(v, 10, 64)
			}
			if strings.HasPrefix(line, "slave0:") {
				for _, kv := range strings.Split(line, ",") {
					if v, ok := strings.CutPrefix(kv, "offset="); ok {
						replicaOff, _ = strconv.ParseInt(v, 10, 64)
					}
				}
			}
		}
		if masterOff == replicaOff {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica of %s at offset %d, master at %d", master, replicaOff, masterOff)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *redisCluster) stop() {
	var wg sync.WaitGroup
	for _, p := range c.nodes {
		wg.Go(p.stop)
	}
	wg.Wait()
	os.RemoveAll(c.dir)
}
