// Command gwload measures "duplex serve" with many subscribed clients
// (issue 13): the memory per idle subscribed connection, the CPU of the
// heartbeat, and the CPU per delivered message of a fan-out, for event
// sessions and goroutine sessions (--no-event-loop) in the same run.
//
// For each mode it starts a fresh server from -serve, so that memory is
// the growth of a new process, reads its RSS and CPU time from /proc, and
// stops it. The clients are duplex client connections handed to the
// event loop (Detach), so the load process stays small and answers the
// server's pings without a goroutine per connection.
//
//	go build -o /tmp/duplex ./cmd/duplex
//	cd bench && go run ./gwload -serve /tmp/duplex -conns 19000 -fanout 5000
//
// Linux only (/proc). The server's file limit must allow -conns plus a
// few; so must this process's (ulimit -n).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/duplexws/duplex"
)

var (
	serveBin    = flag.String("serve", "duplex", "the duplex binary to run as the server")
	addr        = flag.String("addr", "127.0.0.1:18480", "address the server listens on")
	modes       = flag.String("modes", "event,goroutine", "session kinds to measure: event, goroutine (--no-event-loop)")
	conns       = flag.Int("conns", 19000, "idle subscribed clients, each on a channel of its own (0: skip)")
	ping        = flag.Duration("ping-interval", 5*time.Second, "the server's --ping-interval in the idle run")
	hold        = flag.Duration("hold", 20*time.Second, "how long the idle run measures the heartbeat's CPU")
	settle      = flag.Duration("settle", 3*time.Second, "wait before reading the idle server's RSS")
	fanout      = flag.Int("fanout", 5000, "subscribers of the one channel of the fan-out run (0: skip)")
	msgs        = flag.Int("msgs", 200, "messages published in the fan-out run")
	size        = flag.Int("size", 64, "bytes of data in each published message")
	compress    = flag.Bool("compress", false, "clients offer permessage-deflate, as Chromium does (client_max_window_bits)")
	extraArgs   = flag.String("args", "", "more flags for duplex serve, space-separated")
	dialers     = flag.Int("dialers", 32, "connections opened at once")
	gogc        = flag.String("gogc", "", "GOGC for the server (empty: the environment's)")
	channels    = flag.Int("channels", 0, "channels the idle clients subscribe to, client i to channel i mod n (0: one channel per client)")
	publishers  = flag.Int("publishers", 4, "concurrent publishers in the fan-out run (each POSTs its share of -msgs in turn)")
	compressRun = flag.Int("compress-conns", 0, "clients of the compression run (0: skip): Chromium's offer answered without compression, without context takeover, with it, and with it in windows of 2^12, 2^10 and 2^9 bytes")
)

const apiKey = "gwload-api-key-0123456789"

func main() {
	flag.Parse()
	if *compressRun > 0 {
		for _, variant := range compressVariants {
			if err := runCompress(variant.name, variant.args); err != nil {
				fmt.Fprintf(os.Stderr, "gwload: compression: %v\n", err)
				os.Exit(1)
			}
		}
	}
	for _, mode := range strings.Split(*modes, ",") {
		if *conns > 0 {
			if err := runIdle(mode); err != nil {
				fmt.Fprintf(os.Stderr, "gwload: %s idle: %v\n", mode, err)
				os.Exit(1)
			}
		}
		if *fanout > 0 {
			if err := runFanout(mode); err != nil {
				fmt.Fprintf(os.Stderr, "gwload: %s fan-out: %v\n", mode, err)
				os.Exit(1)
			}
		}
	}
}

// server is a running duplex serve.
type server struct {
	cmd  *exec.Cmd
	logs bytes.Buffer
}

func startServer(mode string, args ...string) (*server, error) {
	a := []string{"serve", "--addr", *addr, "--no-auth", "--api-key", apiKey,
		"--max-connections", "-1", "--log-format", "json"}
	if mode == "goroutine" {
		a = append(a, "--no-event-loop")
	}
	a = append(a, args...)
	if *extraArgs != "" {
		a = append(a, strings.Fields(*extraArgs)...)
	}
	s := &server{cmd: exec.Command(*serveBin, a...)}
	if *gogc != "" {
		s.cmd.Env = append(os.Environ(), "GOGC="+*gogc)
	}
	// The server logs a line per connection: keep only the last bytes.
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, &tail{b: &s.logs}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + *addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("server not healthy after 10s: %v\n%s", err, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// tail keeps the last 8 KiB written to it.
type tail struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if t.b.Len() > 8<<10 {
		rest := append([]byte(nil), t.b.Bytes()[t.b.Len()-8<<10:]...)
		t.b.Reset()
		t.b.Write(rest)
	}
	return len(p), nil
}

// rss returns the resident set of pid in bytes (VmRSS).
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// cpu returns the user plus system time pid has used.
func cpu(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields count from after ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

// client is one subscribed client on the event loop.
type client struct {
	c        *duplex.EventConn
	received atomic.Int64 // channel messages
	sub      chan struct{}
	closed   atomic.Bool
}

var handler = &duplex.EventHandler{
	OnMessage: func(c *duplex.EventConn, typ duplex.MessageType, p []byte) {
		cl := c.Value().(*client)
		switch {
		case bytes.HasPrefix(p, []byte(`{"type":"message"`)):
			cl.received.Add(1)
			received.Add(1)
		case bytes.HasPrefix(p, []byte(`{"type":"subscribed"`)):
			close(cl.sub)
		}
	},
	OnClose: func(c *duplex.EventConn, err error) {
		if cl, ok := c.Value().(*client); ok {
			cl.closed.Store(true)
		}
		closedConns.Add(1)
	},
}

var received, closedConns atomic.Int64

// dial opens a client subscribed to channel.
func dial(ctx context.Context, channel string) (*client, error) {
	var opts duplex.DialOptions
	if *compress {
		opts.Compression = &duplex.CompressionOptions{}
	}
	c, _, err := duplex.Dial(ctx, "ws://"+*addr+"/ws", &opts)
	if err != nil {
		return nil, err
	}
	// Subscribe before detaching, and wait for the answer, so the client
	// is subscribed once dial returns.
	if err := c.Write(ctx, duplex.MessageText, []byte(`{"type":"subscribe","channel":"`+channel+`"}`)); err != nil {
		c.CloseNow()
		return nil, err
	}
	_, p, err := c.Read(ctx)
	if err != nil {
		c.CloseNow()
		return nil, err
	}
	if !bytes.HasPrefix(p, []byte(`{"type":"subscribed"`)) {
		c.CloseNow()
		return nil, fmt.Errorf("subscribe: got %s", p)
	}
	cl := &client{sub: make(chan struct{})}
	close(cl.sub)
	ec, err := c.Detach(handler)
	if err != nil {
		c.CloseNow()
		return nil, err
	}
	ec.SetValue(cl)
	cl.c = ec
	return cl, nil
}

// openAll opens n clients, client i on channel name(i).
func openAll(n int, name func(i int) string) ([]*client, error) {
	out := make([]*client, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range *dialers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				cl, err := dial(ctx, name(i))
				cancel()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("client %d: %w", i, err)
					}
					mu.Unlock()
					next.Store(int64(n))
					return
				}
				out[i] = cl
			}
		})
	}
	wg.Wait()
	return out, firstErr
}

func closeAll(cs []*client) {
	for _, cl := range cs {
		if cl != nil {
			cl.c.CloseNow()
		}
	}
}

func runIdle(mode string) error {
	srv, err := startServer(mode, "--ping-interval", ping.String())
	if err != nil {
		return err
	}
	defer srv.stop()
	pid := srv.cmd.Process.Pid
	rss0, err := rss(pid)
	if err != nil {
		return err
	}
	m0 := goMem()
	closedConns.Store(0)
	start := time.Now()
	cs, err := openAll(*conns, func(i int) string {
		if *channels > 0 {
			i %= *channels
		}
		return "c" + strconv.Itoa(i)
	})
	defer closeAll(cs)
	if err != nil {
		return err
	}
	opened := time.Since(start)
	time.Sleep(*settle)
	rss1, err := rss(pid)
	if err != nil {
		return err
	}
	per := float64(rss1-rss0) / float64(*conns)
	m1 := goMem()
	var parts []string
	for _, k := range []string{"go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_next_gc_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes"} {
		parts = append(parts, fmt.Sprintf("%s %.0f", strings.TrimSuffix(strings.TrimPrefix(k, "go_memstats_"), "_bytes"), (m1[k]-m0[k])/float64(*conns)))
	}
	nch := *channels
	if nch == 0 {
		nch = *conns
	}
	fmt.Printf("%-9s idle: %d clients subscribed to %d channels, opened in %v; server RSS %.1f MB -> %.1f MB: %.0f B per connection\n",
		mode, *conns, nch, opened.Round(time.Millisecond), float64(rss0)/1e6, float64(rss1)/1e6, per)

	fmt.Printf("%-9s idle: Go runtime, growth per connection: %s\n", mode, strings.Join(parts, ", "))
	cpu0, _ := cpu(pid)
	t0 := time.Now()
	time.Sleep(*hold)
	cpu1, _ := cpu(pid)
	wall := time.Since(t0)
	fmt.Printf("%-9s heartbeat: --ping-interval %v, %d idle clients, %v: server CPU %v = %.2f%% of a core; %d clients closed\n",
		mode, *ping, *conns, wall.Round(time.Millisecond), cpu1-cpu0, 100*float64(cpu1-cpu0)/float64(wall), closedConns.Load())
	return nil
}

func runFanout(mode string) error {
	srv, err := startServer(mode, "--ping-interval", "-1s", "--send-queue", strconv.Itoa(max(256, *msgs+16)), "--publish-rate", "-1")
	if err != nil {
		return err
	}
	defer srv.stop()
	pid := srv.cmd.Process.Pid
	cs, err := openAll(*fanout, func(int) string { return "fan" })
	defer closeAll(cs)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(strings.Repeat("x", max(*size-2, 0)))
	body := []byte(`{"channel":"fan","data":` + string(data) + `}`)
	received.Store(0)
	want := int64(*fanout) * int64(*msgs)
	hc := &http.Client{Timeout: 10 * time.Second}
	cpu0, _ := cpu(pid)
	t0 := time.Now()
	var next atomic.Int64
	errs := make(chan error, *publishers)
	for range *publishers {
		go func() {
			for next.Add(1) <= int64(*msgs) {
				req, _ := http.NewRequest("POST", "http://"+*addr+"/api/publish", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+apiKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("publish: %s", resp.Status)
					return
				}
			}
			errs <- nil
		}()
	}
	for range *publishers {
		if err := <-errs; err != nil {
			return err
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	wall := time.Since(t0)
	cpu1, _ := cpu(pid)
	got := received.Load()
	if got < want {
		return fmt.Errorf("%d of %d messages delivered in 60s", got, want)
	}
	fmt.Printf("%-9s fan-out: %d messages of %d B from %d publishers to %d subscribers (%d deliveries) in %v: server CPU %v = %.2f µs per delivery\n",
		mode, *msgs, *size, *publishers, *fanout, got, wall.Round(time.Millisecond), (cpu1 - cpu0).Round(time.Millisecond),
		float64(cpu1-cpu0)/float64(time.Microsecond)/float64(got))
	return nil
}

// wchar returns the bytes pid has written with write system calls
// (sockets included), from /proc/PID/io.
func wchar(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("no wchar")
}

// jsonEvent is a message like those a real-time app sends: similar
// fields, a few values changing.
func jsonEvent(i int) string {
	return fmt.Sprintf(`{"id":%d,"user":{"id":%d,"name":"user-%d","avatar":"https://cdn.example.com/avatars/%d.png","roles":["member","reader"]},`+
		`"type":"comment.created","room":"general","text":"Message number %d of the load test, with a sentence that repeats in every message so that context helps.",`+
		`"ts":"2026-12-03T07:%02d:%02dZ","reactions":{"like":%d,"love":%d,"laugh":0},"tags":["chat","load","compression","duplex"],"meta":{"client":"gwload","version":"1.0.%d"},`+
		`"thread":{"id":%d,"title":"Weekly planning for the real-time gateway","participants":["ada","grace","linus","ken","rob","barbara"],"unread":%d,"pinned":false,`+
		`"last":{"author":"user-%d","excerpt":"We measured memory per idle connection and bytes on the wire for each compression choice; the numbers are in the README."}},`+
		`"attachments":[{"kind":"image","url":"https://cdn.example.com/uploads/%d/screenshot.png","width":1280,"height":720,"bytes":%d}],"edited":false,"visibility":"room"}`,
		1000+i, i%97, i%97, i%97, i, i%60, (i*7)%60, i%13, i%5, i%10, 500+i%7, i%11, (i+3)%97, 9000+i, 150000+i*31)
}

// compressVariants are the answers of duplex serve to Chromium's offer
// that the compression run compares.
var compressVariants = []struct {
	name string
	args []string
}{
	{"off", []string{"--compress=false"}},
	{"no context takeover", nil},
	{"context takeover", []string{"--compress-context-takeover"}},
	{"takeover, window 12", []string{"--compress-context-takeover", "--compress-window-bits", "12"}},
	{"takeover, window 10", []string{"--compress-context-takeover", "--compress-window-bits", "10"}},
	{"takeover, window 9", []string{"--compress-context-takeover", "--compress-window-bits", "9"}},
}

// runCompress measures permessage-deflate as a browser negotiates it:
// every client offers "permessage-deflate; client_max_window_bits"
// (Chromium's offer, which duplex.Dial sends), sends one message of
// about 1 KiB and receives -msgs such messages on one channel. It prints
// the server's RSS growth per connection at three points: idle and
// subscribed, after one message each way (the first compressed message
// is when a connection's history is allocated), and after the traffic;
// and the bytes it wrote per delivered message.
func runCompress(name string, args []string) error {
	*compress = true
	srv, err := startServer("event", append(args, "--ping-interval", "-1s", "--publish-rate", "-1")...)
	if err != nil {
		return err
	}
	defer srv.stop()
	pid := srv.cmd.Process.Pid
	rss0, _ := rss(pid)
	n := *compressRun
	cs, err := openAll(n, func(int) string { return "fan" })
	defer closeAll(cs)
	if err != nil {
		return err
	}
	time.Sleep(*settle)
	rssIdle, _ := rss(pid)
	for i, cl := range cs {
		if err := cl.c.Write(context.Background(), duplex.MessageText, []byte(jsonEvent(i))); err != nil {
			return err
		}
	}
	received.Store(0)
	w0, _ := wchar(pid)
	hc := &http.Client{Timeout: 10 * time.Second}
	var rssOne int64
	for i := range *msgs {
		if i == 1 {
			// The first message has reached every client: one message
			// each way.
			if err := waitReceived(int64(n), name); err != nil {
				return err
			}
			time.Sleep(*settle)
			rssOne, _ = rss(pid)
		}
		data := jsonEvent(i)
		req, _ := http.NewRequest("POST", "http://"+*addr+"/api/publish", strings.NewReader(`{"channel":"fan","data":`+data+`}`))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("publish: %s", resp.Status)
		}
	}
	want := int64(n) * int64(*msgs)
	if err := waitReceived(want, name); err != nil {
		return err
	}
	w1, _ := wchar(pid)
	time.Sleep(*settle)
	rss1, _ := rss(pid)
	per := func(r int64) float64 { return float64(r-rss0) / float64(n) }
	fmt.Printf("compress  %-19s: %d clients, %d messages of %d B JSON each: %.0f B on the wire per delivery (headers included); server RSS per connection: %.0f B idle, %.0f B after one message each way, %.0f B after the traffic\n",
		name, n, *msgs, len(jsonEvent(0)), float64(w1-w0)/float64(want), per(rssIdle), per(rssOne), per(rss1))
	return nil
}

// waitReceived waits up to a minute until the clients have received want
// messages since the count was reset.
func waitReceived(want int64, name string) error {
	deadline := time.Now().Add(60 * time.Second)
	for received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := received.Load(); got < want {
		return fmt.Errorf("%s: %d of %d messages delivered", name, got, want)
	}
	return nil
}

// goMem reads the server's go_memstats gauges from /metrics.
func goMem() map[string]float64 {
	m := map[string]float64{}
	resp, err := http.Get("http://" + *addr + "/metrics")
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && strings.HasPrefix(f[0], "go_memstats_") {
			v, _ := strconv.ParseFloat(f[1], 64)
			m[f[0]] = v
		}
	}
	return m
}
