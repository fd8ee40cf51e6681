// Command histmem measures the memory of duplex serve's history (issue 15,
// items 2 and 3). It starts a gateway with the default options in a child
// process, drives it over loopback, and reads the child's resident set
// from /proc (Linux). From the repository root:
//
//	go build -o /tmp/histmem ./internal/histmem
//	/tmp/histmem                         # every scenario
//	/tmp/histmem -run publish            # 800 × 1 MiB publishes to 800 channels
//	/tmp/histmem -run history            # 8 concurrent pagings of 100 × 1 MiB
//	/tmp/histmem -run tiny               # 200000 tiny publishes to 200000 channels
//	/tmp/histmem -- --history-memory 128MiB   # gateway flags after --
//
// publish: one WebSocket publishes N messages of about 1 MiB, each to its
// own channel, then waits for its ping to be answered. The per-connection
// publish rate limits are lifted for it (--publish-rate=-1
// --publish-bytes-rate=-1): they are what stops one client, and the point
// here is what the server holds once messages are in.
//
// tiny: one WebSocket publishes 200000 messages of 7 bytes, each to its
// own channel.
//
// history: the API publishes 100 messages of about 1 MiB to one channel;
// then 8 clients at once read the channel's whole history through
// GET /api/history, page by page, and discard it.
//
// It lives in the main module rather than bench/ because it needs nothing
// but duplex and the gateway; importing the gateway from bench/ would pull
// prometheus in and, through it, a newer klauspost/compress into the peer
// comparison.
//
// Growth is the child's peak VmRSS during the scenario (sampled every 2 ms
// and VmHWM, reset before the scenario) minus its VmRSS just before it.
//
// Measured on 2026-12-03 (2 cores, Go 1.26.8, default options):
//
//	scenario                              before issue 15   after
//	publish, 800 × 1 MiB                  +1051 MiB         +261 MiB
//	publish, --history-memory=-1          (no bound)        +1056 MiB
//	publish, GOGC=200                                       +260 MiB
//	history, 8 readers × 100 MiB          +1739 MiB         +0 to +2 MiB
//	history, --history-page-bytes=200MiB                    +0 MiB (one page each)
//	tiny, 200000 × {"n":1}                +178 MiB          +86 to +102 MiB (100000 channels left)
//	tiny, --max-channels=-1                                 +115 MiB (200000 channels)
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/gateway"
)

const apiKey = "histmem-key"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-child" {
		child(os.Args[2:])
		return
	}
	run := flag.String("run", "publish,history,tiny", "scenarios, comma-separated: publish, history, tiny")
	n := flag.Int("n", 800, "publish: messages, each to its own channel")
	tiny := flag.Int("tiny", 200000, "tiny: messages, each to its own channel")
	readers := flag.Int("readers", 8, "history: concurrent readers")
	flag.Parse()
	for _, sc := range strings.Split(*run, ",") {
		var err error
		switch sc {
		case "publish":
			err = scenario(sc, flag.Args(), func(addr string) error { return publish(addr, *n) })
		case "history":
			err = scenario(sc, flag.Args(), func(addr string) error { return history(addr, *readers) })
		case "tiny":
			err = scenario(sc, flag.Args(), func(addr string) error { return publishTiny(addr, *tiny) })
		default:
			err = fmt.Errorf("unknown scenario %q", sc)
		}
		if err != nil {
			log.Fatalf("%s: %v", sc, err)
		}
	}
}

// child serves a gateway with the default options plus args.
func child(args []string) {
	var o gateway.Options
	fs := flag.NewFlagSet("child", flag.ExitOnError)
	o.RegisterFlags(fs)
	o.NoAuth = true
	o.APIKey = apiKey
	fs.Parse(args)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g, err := gateway.New(o, logger)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr())
	log.Fatal(o.HTTPServer(g, logger).Serve(ln))
}

// scenario starts a child with extra flags, runs drive against it and
// prints the child's memory.
func scenario(name string, extra []string, drive func(addr string) error) error {
	args := append([]string{"-child", "--publish-rate=-1", "--publish-bytes-rate=-1"}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("child: %w", err)
	}
	addr = strings.TrimSpace(addr)
	pid := cmd.Process.Pid

	var prepare func(string) error
	if name == "history" {
		prepare = fillChannel
	}
	if prepare != nil {
		if err := prepare(addr); err != nil {
			return err
		}
	}
	time.Sleep(200 * time.Millisecond)
	base := status(pid, "VmRSS")
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) // resets VmHWM
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if v := status(pid, "VmRSS"); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	start := time.Now()
	err = drive(addr)
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		return err
	}
	hwm := max(status(pid, "VmHWM"), peak.Load())
	end := status(pid, "VmRSS")
	fmt.Printf("%-8s flags %v: RSS before %d MiB, peak %d MiB (growth %d MiB), after %d MiB, in %v\n",
		name, extra, base>>20, hwm>>20, (hwm-base)>>20, end>>20, elapsed.Round(time.Millisecond))
	fmt.Printf("%-8s %s\n", "", metrics(addr))
	return nil
}

// status returns a field of /proc/pid/status, in bytes.
func status(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// metrics returns the history series of the child's /metrics.
func metrics(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "duplex_history_") || strings.HasPrefix(l, "duplex_limited_total") {
			out = append(out, l)
		}
	}
	return strings.Join(out, ", ")
}

// payload is a JSON string of about size bytes.
func payload(size int) []byte {
	b := bytes.Repeat([]byte("x"), size)
	b[0], b[size-1] = '"', '"'
	return b
}

// publish sends n publishes of about 1 MiB over one WebSocket.
func publish(addr string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, _, err := duplex.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	data := payload(1<<20 - 100)
	errs := make(chan error, 1)
	go func() {
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				errs <- err
				return
			}
			if bytes.HasPrefix(p, []byte(`{"type":"pong"`)) {
				errs <- nil
				return
			}
			if bytes.HasPrefix(p, []byte(`{"type":"error"`)) {
				errs <- errors.New(string(p))
				return
			}
		}
	}()
	var msg []byte
	for i := range n {
		msg = fmt.Appendf(msg[:0], `{"type":"publish","channel":"c%d","data":`, i)
		msg = append(msg, data...)
		msg = append(msg, '}')
		if err := c.Write(ctx, duplex.MessageText, msg); err != nil {
			return err
		}
	}
	if err := c.Write(ctx, duplex.MessageText, []byte(`{"type":"ping","t":1}`)); err != nil {
		return err
	}
	return <-errs
}

// publishTiny sends n publishes of {"n":1} over one WebSocket, each to
// its own channel.
func publishTiny(addr string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, _, err := duplex.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	errs := make(chan error, 1)
	go func() {
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				errs <- err
				return
			}
			if bytes.HasPrefix(p, []byte(`{"type":"pong"`)) {
				errs <- nil
				return
			}
		}
	}()
	var msg []byte
	for i := range n {
		msg = fmt.Appendf(msg[:0], `{"type":"publish","channel":"tiny-%d","data":{"n":1}}`, i)
		if err := c.Write(ctx, duplex.MessageText, msg); err != nil {
			return err
		}
	}
	if err := c.Write(ctx, duplex.MessageText, []byte(`{"type":"ping","t":1}`)); err != nil {
		return err
	}
	return <-errs
}

// fillChannel publishes 100 messages of about 1 MiB to channel h.
func fillChannel(addr string) error {
	data := payload(1<<20 - 100)
	for range 100 {
		body := append(append([]byte(`{"channel":"h","data":`), data...), '}')
		req, _ := http.NewRequest("POST", "http://"+addr+"/api/publish", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("publish: %s", resp.Status)
		}
	}
	return nil
}

// history has readers clients read all of channel h at once, page by
// page, each checking that it got 100 messages in offset order.
func history(addr string, readers int) error {
	errs := make(chan error, readers)
	for range readers {
		go func() { errs <- readAll(addr) }()
	}
	var err error
	for range readers {
		err = errors.Join(err, <-errs)
	}
	return err
}

func readAll(addr string) error {
	var since uint64
	got, pages := 0, 0
	for {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/api/history?channel=h&since=%d", addr, since), nil)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		var page struct {
			Messages []struct {
				Offset uint64          `json:"offset"`
				Data   json.RawMessage `json:"data"`
			} `json:"messages"`
			Next uint64 `json:"next"`
			More bool   `json:"more"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("page %d: %w", pages, err)
		}
		for _, m := range page.Messages {
			if since != 0 && m.Offset != since+1 {
				return fmt.Errorf("offset %d after %d", m.Offset, since)
			}
			since = m.Offset
			got++
		}
		pages++
		if !page.More {
			break
		}
		since = page.Next
	}
	if got != 100 {
		return fmt.Errorf("read %d messages in %d pages; want 100", got, pages)
	}
	return nil
}
