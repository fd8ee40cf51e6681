package redisbroker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/redis/go-redis/v9"
)

// BenchmarkChannels is the load test of issue 14: many channels with one
// subscriber each, spread over two "duplex serve" processes on one Redis
// (or a Redis Cluster of 3 masters with replicas), and a steady rate of
// publishes to random channels through the HTTP API. It reports
//
//	delivered/expected    must be exactly 1: every message delivered once
//	redis-cpu-µs/publish  CPU of every redis-server (INFO CPU), per publish
//	redis-cpu-net-µs/publish  the same less what Redis spends idle, measured
//	                      before the run (a cluster's gossip and replication)
//	masters-cpu-µs/publish  on a cluster: the masters' share (replicas apart),
//	masters-cpu-net-µs/publish  and the same less the masters' idle CPU
//	node-cpu-µs/publish   CPU of both node processes, per publish
//	p50-ms, p99-ms        from the publish call to the subscriber reading it
//
// It runs once whatever b.N is. The environment sizes it:
//
//	DUPLEX_CHANNELS           channels, default 100
//	DUPLEX_CHANNELS_PER_CONN  channels per WebSocket, default 1 (the
//	                          subscribers of 100,000 channels need 100)
//	DUPLEX_CHANNELS_RATE      publishes per second, default 200
//	DUPLEX_CHANNELS_DURATION  default 10s
//	DUPLEX_CHANNELS_CLUSTER   1: a Redis Cluster of 3 masters + 3 replicas
//	DUPLEX_CHANNELS_KILL      1 (with the cluster): SIGKILL a master half
//	                          way through; its replica takes over
//
//	DUPLEX_CHANNELS=10000 go test -run '^$' -bench Channels -benchtime 1x ./gateway/redisbroker
//
// The subscribers and the publisher run in the benchmark's process, the
// nodes and Redis in their own, all on this machine's cores. Every
// subscriber checks that the offsets of each of its channels follow each
// other (no gap, no duplicate) and that no "subscribed" with recovered
// false comes unasked.
func BenchmarkChannels(b *testing.B) {
	channels := envInt(b, "DUPLEX_CHANNELS", 100)
	perConn := envInt(b, "DUPLEX_CHANNELS_PER_CONN", 1)
	rate := envInt(b, "DUPLEX_CHANNELS_RATE", 200)
	duration := envDuration(b, "DUPLEX_CHANNELS_DURATION", 10*time.Second)
	useCluster := os.Getenv("DUPLEX_CHANNELS_CLUSTER") == "1"
	kill := useCluster && os.Getenv("DUPLEX_CHANNELS_KILL") == "1"

	var url string
	var redisAddrs []string
	var cl *redisCluster
	if useCluster {
		cl = sharedCluster(b)
		url = cl.url
		for _, p := range cl.nodes {
			redisAddrs = append(redisAddrs, p.addr())
		}
	} else {
		rs := startRedis(b)
		url = rs.url
		redisAddrs = []string{fmt.Sprintf("127.0.0.1:%d", rs.port)}
	}
	bin := buildDuplex(b)
	nodes := []*procNode{startProcNodeURL(b, bin, url), startProcNodeURL(b, bin, url)}

	// Subscribe: channel i on node i%2, perConn channels per connection,
	// 100 connections at a time.
	conns := (channels + perConn - 1) / perConn
	subs := make([]*chanSub, conns)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100)
	var dialErr atomic.Value
	for c := range subs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var names []string
			for i := c * perConn; i < min((c+1)*perConn, channels); i++ {
				names = append(names, "user/"+strconv.Itoa(i))
			}
			s, err := dialChanSub(nodes[c%len(nodes)].ws, names)
			if err != nil {
				dialErr.Store(err)
				return
			}
			subs[c] = s
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
	time.Sleep(time.Second) // the nodes' PUB/SUB subscriptions settle

	// What Redis spends idle (a cluster's gossip and replication pings,
	// the nodes' health PINGs), to tell it apart from publishing's cost.
	idle := min(duration/2, 5*time.Second)
	idle0, idleM0 := redisCPU(b, redisAddrs), mastersCPU(redisAddrs)
	time.Sleep(idle)
	idleCPU, idleMasters := redisCPU(b, redisAddrs)-idle0, mastersCPU(redisAddrs)-idleM0

	redisCPU0 := redisCPU(b, redisAddrs)
	masters0 := mastersCPU(redisAddrs)
	nodeCPU0 := nodes[0].cpu(b) + nodes[1].cpu(b)
	b.ResetTimer()
	start := time.Now()
	var published, failed atomic.Int64
	jobs := make(chan int, 1024)
	var pubs sync.WaitGroup
	for range 16 {
		pubs.Go(func() {
			for i := range jobs {
				ch := rand.IntN(channels)
				n := nodes[i%len(nodes)]
				data := fmt.Sprintf(`{"t":%d}`, time.Now().UnixNano())
				if err := n.publishTo("user/"+strconv.Itoa(ch), data); err != nil {
					failed.Add(1)
					continue
				}
				published.Add(1)
			}
		})
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	killed := false
	for i := 0; time.Since(start) < duration; i++ {
		<-tick.C
		if kill && !killed && time.Since(start) > duration/2 {
			killed = true
			go killAMaster(b, cl)
		}
		select {
		case jobs <- i:
		default: // the publishers fell behind: counted by msgs/s
		}
	}
	tick.Stop()
	close(jobs)
	pubs.Wait()
	elapsed := time.Since(start)
	expected := published.Load()
	deadline := time.Now().Add(30 * time.Second)
	for delivered.Load() < expected && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // duplicates would arrive by now
	b.StopTimer()
	nodeCPU := nodes[0].cpu(b) + nodes[1].cpu(b) - nodeCPU0
	rCPU := redisCPU(b, redisAddrs) - redisCPU0
	mCPU := mastersCPU(redisAddrs) - masters0

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
	var all []time.Duration
	for _, s := range subs {
		s.mu.Lock()
		all = append(all, s.samples...)
		s.mu.Unlock()
	}
	slices.Sort(all)
	var p50, p99 time.Duration
	if len(all) > 0 {
		p50, p99 = all[len(all)*50/100], all[len(all)*99/100]
	}
	n := max(expected, 1)
	idleShare := time.Duration(float64(idleCPU) * float64(elapsed) / float64(idle))
	b.ReportMetric(float64(got)/float64(n), "delivered/expected")
	b.ReportMetric(float64(rCPU.Microseconds())/float64(n), "redis-cpu-µs/publish")
	b.ReportMetric(float64((rCPU-idleShare).Microseconds())/float64(n), "redis-cpu-net-µs/publish")
	if useCluster {
		b.ReportMetric(float64(mCPU.Microseconds())/float64(n), "masters-cpu-µs/publish")
		mIdle := time.Duration(float64(idleMasters) * float64(elapsed) / float64(idle))
		b.ReportMetric(float64((mCPU-mIdle).Microseconds())/float64(n), "masters-cpu-net-µs/publish")
	}
	b.ReportMetric(float64(nodeCPU.Microseconds())/float64(n), "node-cpu-µs/publish")
	b.ReportMetric(float64(p50)/1e6, "p50-ms")
	b.ReportMetric(float64(p99)/1e6, "p99-ms")
	b.ReportMetric(float64(expected)/elapsed.Seconds(), "publishes/s")
	b.Logf("%d channels (%d per connection) on 2 nodes, cluster %v, kill %v: %d published (%d failed) in %v, %d delivered; redis CPU %v (idle: %v per %v), node CPU %v, p50 %v, p99 %v",
		channels, perConn, useCluster, kill, expected, failed.Load(), elapsed.Round(time.Millisecond), got, rCPU, idleCPU, idle, nodeCPU, p50, p99)
}

// killAMaster kills one master of the cluster and restarts it once its
// replica has taken over, so the cluster is whole for what follows.
func killAMaster(b *testing.B, c *redisCluster) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{c.nodes[0].addr()}})
	defer cc.Close()
	m, err := cc.MasterForKey(context.Background(), "duplex:{user/0}:live")
	if err != nil {
		b.Errorf("kill: %v", err)
		return
	}
	victim := c.node(m.Options().Addr)
	victim.kill()
	b.Logf("killed the master %s", victim.addr())
	b.Cleanup(func() {
		if victim.cmd == nil {
			victim.start()
		}
		c.waitHealthy(time.Minute)
	})
}

// redisCPU sums used_cpu_sys and used_cpu_user of INFO CPU over addrs.
func redisCPU(b *testing.B, addrs []string) time.Duration {
	var total time.Duration
	for _, addr := range addrs {
		rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		info, err := rc.Info(context.Background(), "cpu").Result()
		rc.Close()
		if err != nil {
			continue // a master killed on purpose
		}
		for _, line := range strings.Split(info, "\r\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "used_cpu_sys" || k == "used_cpu_user" {
				s, _ := strconv.ParseFloat(v, 64)
				total += time.Duration(s * float64(time.Second))
			}
		}
	}
	return total
}

// mastersCPU sums the CPU of the servers of addrs that are masters now.
func mastersCPU(addrs []string) time.Duration {
	var total time.Duration
	for _, addr := range addrs {
		rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		info, err := rc.Info(context.Background(), "replication", "cpu").Result()
		rc.Close()
		if err != nil || !strings.Contains(info, "role:master") {
			continue
		}
		for _, line := range strings.Split(info, "\r\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "used_cpu_sys" || k == "used_cpu_user" {
				s, _ := strconv.ParseFloat(v, 64)
				total += time.Duration(s * float64(time.Second))
			}
		}
	}
	return total
}

func startProcNodeURL(b *testing.B, bin, url string) *procNode {
	return startProcNode(b, bin, &redisServer{url: url})
}

func (n *procNode) publishTo(channel, data string) error {
	return n.post(`{"channel":"` + channel + `","data":` + data + `}`)
}

// chanSub is one WebSocket subscribed to some channels.
type chanSub struct {
	c       *duplex.Conn
	mu      sync.Mutex
	fail    error             // guarded by mu
	samples []time.Duration   // guarded by mu
	last    map[string]uint64 // offset of the last message of each channel
}

func dialChanSub(url string, channels []string) (*chanSub, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, _, err := duplex.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	s := &chanSub{c: c, last: make(map[string]uint64, len(channels))}
	for _, ch := range channels {
		if err := c.Write(ctx, duplex.MessageText, []byte(`{"type":"subscribe","channel":"`+ch+`"}`)); err != nil {
			return nil, err
		}
	}
	for range channels {
		_, p, err := c.Read(ctx)
		if err != nil {
			return nil, err
		}
		var m struct {
			Channel string
			Type    string
			Offset  uint64
		}
		if json.Unmarshal(p, &m); m.Type != "subscribed" {
			return nil, fmt.Errorf("subscribe: %s", p)
		}
		s.last[m.Channel] = m.Offset
	}
	return s, nil
}

func (s *chanSub) read(delivered *atomic.Int64) {
	var m struct {
		Type    string
		Channel string
		Offset  uint64
		Data    struct{ T int64 }
	}
	for {
		_, p, err := s.c.Read(context.Background())
		if err != nil {
			return
		}
		now := time.Now().UnixNano()
		m.Data.T = 0
		if err := json.Unmarshal(p, &m); err != nil || m.Type != "message" {
			s.setErr(fmt.Errorf("unexpected %s", p))
			return
		}
		if last := s.last[m.Channel]; last != 0 && m.Offset != last+1 {
			s.setErr(fmt.Errorf("%s: offset %d after %d", m.Channel, m.Offset, last))
			return
		}
		s.last[m.Channel] = m.Offset
		s.mu.Lock()
		s.samples = append(s.samples, time.Duration(now-m.Data.T))
		s.mu.Unlock()
		delivered.Add(1)
	}
}

func (s *chanSub) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail == nil {
		s.fail = err
	}
}

func (s *chanSub) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail
}
