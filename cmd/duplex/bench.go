package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/duplexws/duplex/internal/loadgen"
)

var benchCommand = &Command{
	Name:  "bench",
	Usage: "bench [flags] ws://host:port/path",
	Short: "measure an echo server or the gateway's channels: throughput, latency, CPU, memory",
	Long:  benchLong,
}

// Run is set here rather than in the literal: runBench refers to
// benchCommand, which would make an initialization cycle.
func init() { benchCommand.Run = runBench }

const benchLong = `Bench loads a WebSocket echo server with raw frames and verifies every
byte of every echo. Any server that echoes each message with its type
will do; bench/ in the repository has one per library.

Three modes, chosen with --mode (echo unless -n is given):

Echo mode keeps -p messages in flight on each of -c
connections for -d, and reports messages/s, MB/s, round-trip percentiles,
errors and the load generator's own CPU per message. Idle mode (-n) opens
that many connections, pings each once and waits for every pong, then
holds them for -d and pings each again.

Pub/sub mode (--mode pubsub) measures duplex serve's channels: -c
subscribers on the gateway's /ws endpoint (the URL; give the token in it
or with -H), spread over --channels channels (bench/0, bench/1, …; 1: all
on one shared channel; as many as -c: one each). They subscribe, then
--rate publishes a second, of -s bytes of data, go out for -d through the
HTTP API (--publish api, POST /api/publish with --api-key) or the socket
(--publish ws, connections of their own). Bench reports deliveries/s, the
latency from publish to delivery (p50, p99…), and with the server's PID
its CPU per delivery and resident memory per subscriber. --rate 0 holds
idle subscribers for -d instead: memory per idle subscribed client, for
tens of thousands of them with --source-addrs. A missing delivery counts
as an error.

The server's PID comes from --server-pid; in pub/sub mode, for a server on
this machine (a loopback URL), bench finds the process listening on the
URL's port itself.

Given --server-pid, bench reads the server's CPU time and memory from
/proc: CPU per message in echo mode, resident memory per connection in
idle mode (measured before connecting and after the first pings). Pin the
server and bench to different cores (taskset -c) for numbers that mean
something; bench/run.sh does that for every peer library.

While it runs, a progress bar goes to stderr when stderr is a terminal,
and a line per second otherwise.

%FLAGS%

Exit status: 0 when every echo (pong, delivery) was verified, 1 when any
error was counted or the run could not start (a server that does not
echo stops the run at its first answer), 2 for bad usage, 130 when
interrupted (the result so far is still printed).

Examples:
  duplex bench -c 100 -s 1KiB -d 10s --server-pid $(pgrep myserver) ws://127.0.0.1:8080/
  duplex bench --mode pubsub -c 1000 --rate 200 --api-key K -d 10s 'ws://127.0.0.1:8080/ws?token=T'
  duplex bench --mode pubsub -c 19000 --channels 19000 --rate 0 -d 30s \
      --source-addrs 127.0.0.1,127.0.0.2 -H 'Authorization: Bearer T' ws://127.0.0.1:8080/ws`

// benchFlags are the parsed command line of duplex bench.
type benchFlags struct {
	cfg     loadgen.Config
	mode    string
	json    bool
	html    string
	headers listFlag
	tls     tlsFlags
}

// parseBenchFlags returns the parsed flags, or the exit status to return
// at once (after help, or a usage error already reported on stderr).
func parseBenchFlags(args []string, stdout, stderr io.Writer) (*benchFlags, int, bool) {
	cmd := benchCommand
	bf := &benchFlags{}
	fs := cmd.flagSet(stdout)
	size := byteSize(1024)
	var sources string
	fs.StringVar(&bf.mode, "mode", "", "`echo`, idle or pubsub (default echo, or idle with -n)")
	fs.IntVar(&bf.cfg.Conns, "c", 50, "echo `connections`, or subscribers in pubsub mode")
	fs.Var(&size, "s", "message `size` in bytes; KiB and MiB suffixes work")
	fs.IntVar(&bf.cfg.Pipeline, "p", 1, "messages in flight per connection (pipeline `depth`)")
	fs.DurationVar(&bf.cfg.Duration, "d", 10*time.Second, "how long to send, or in idle mode to hold")
	fs.BoolVar(&bf.cfg.Compress, "compress", false, "offer permessage-deflate (no context takeover) and send\nevery message compressed at level 1")
	fs.BoolVar(&bf.cfg.Text, "text", false, "send text messages instead of binary ones")
	fs.IntVar(&bf.cfg.Idle, "n", 0, "idle mode: hold this many `connections`")
	fs.StringVar(&sources, "source-addrs", "", "comma-separated local `IPs` to spread connections over,\ne.g. 127.0.0.1,127.0.0.2, so that many do not run out of ports")
	fs.IntVar(&bf.cfg.ServerPID, "server-pid", 0, "the server's process `ID`, to read its CPU time and memory")
	fs.BoolVar(&bf.json, "json", false, "print the result as JSON")
	fs.StringVar(&bf.html, "html", "", "also write a self-contained HTML report with charts to `file`")
	fs.IntVar(&bf.cfg.Channels, "channels", 1, "pubsub: spread the subscribers over this many `channels`")
	fs.Float64Var(&bf.cfg.Rate, "rate", 100, "pubsub: `publishes` per second in all; 0 holds idle subscribers")
	fs.StringVar(&bf.cfg.PublishVia, "publish", "", "pubsub: publish through the HTTP `api` or the socket (ws)\n(default api with --api-key, else ws)")
	fs.StringVar(&bf.cfg.APIKey, "api-key", "", "pubsub: the server's API `key`, for --publish api")
	fs.IntVar(&bf.cfg.Publishers, "publishers", 4, "pubsub: concurrent `publishers`")
	fs.Var(&bf.headers, "H", "add a request `header` \"Name: value\" to every handshake; repeatable")
	fs.BoolVar(&bf.tls.insecure, "insecure", false, "wss: skip TLS certificate verification (self-signed servers)")
	fs.StringVar(&bf.tls.ca, "ca", "", "wss: trust the CA certificates in PEM `file` instead of the system's")
	fs.StringVar(&bf.tls.cert, "cert", "", "wss: present the client certificate in PEM `file` (with --key)")
	fs.StringVar(&bf.tls.key, "key", "", "wss: the private key of --cert, a PEM `file`")

	pos, code, done := cmd.parse(fs, args, stderr)
	if done {
		return nil, code, true
	}
	if len(pos) != 1 {
		return nil, cmd.usageError(stderr, "want one URL, got %d arguments", len(pos)), true
	}
	bf.cfg.URL = withScheme(pos[0])
	bf.cfg.Size = int(size)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch bf.mode {
	case "":
		bf.mode = "echo"
		if set["n"] {
			bf.mode = "idle"
		}
	case "echo", "idle", "pubsub":
	default:
		return nil, cmd.usageError(stderr, "--mode is echo, idle or pubsub, not %q", bf.mode), true
	}
	bf.cfg.PubSub = bf.mode == "pubsub"
	var problem string
	switch {
	case bf.mode == "idle" && !set["n"]:
		problem = "idle mode needs -n connections"
	case bf.mode != "idle" && set["n"]:
		problem = "-n selects idle mode, not " + bf.mode
	case bf.mode != "pubsub" && (set["channels"] || set["rate"] || set["publish"] || set["api-key"] || set["publishers"]):
		problem = "--channels, --rate, --publish, --api-key and --publishers are for --mode pubsub"
	case bf.cfg.PubSub && (set["p"] || set["compress"] || set["text"]):
		problem = "-p, --compress and --text are for echo mode"
	case bf.cfg.PubSub && (bf.cfg.Channels <= 0 || bf.cfg.Channels > bf.cfg.Conns):
		problem = "--channels must be between 1 and -c"
	case bf.cfg.PubSub && (bf.cfg.Rate < 0 || bf.cfg.Publishers <= 0):
		problem = "--rate must not be negative, --publishers must be positive"
	case bf.cfg.PubSub && bf.cfg.PublishVia != "" && bf.cfg.PublishVia != "api" && bf.cfg.PublishVia != "ws":
		problem = "--publish is api or ws"
	case bf.cfg.PubSub && bf.cfg.PublishVia == "api" && bf.cfg.APIKey == "":
		problem = "--publish api needs --api-key"
	case set["n"] && set["c"]:
		problem = "-c and -n are exclusive: -n selects idle mode"
	case set["n"] && bf.cfg.Idle <= 0:
		problem = "-n must be positive"
	case bf.cfg.Conns <= 0:
		problem = "-c must be positive"
	case bf.cfg.Pipeline <= 0:
		problem = "-p must be positive"
	case bf.cfg.Duration <= 0:
		problem = "-d must be positive"
	case size == 0:
		problem = "-s must be positive"
	}
	if problem != "" {
		return nil, cmd.usageError(stderr, "%s", problem), true
	}
	header, err := parseHeaders(bf.headers)
	if err != nil {
		return nil, cmd.usageError(stderr, "%v", err), true
	}
	bf.cfg.Header = header
	if bf.cfg.TLS, err = bf.tls.config(); err != nil {
		return nil, cmd.usageError(stderr, "%v", err), true
	}
	for _, s := range strings.Split(sources, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, cmd.usageError(stderr, "--source-addrs: %q is not an IP address", s), true
		}
		bf.cfg.SourceAddrs = append(bf.cfg.SourceAddrs, ip)
	}
	return bf, 0, false
}

func runBench(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	bf, code, done := parseBenchFlags(args, stdout, stderr)
	if done {
		return code
	}
	if bf.cfg.PubSub && bf.cfg.ServerPID == 0 {
		if pid, port, ok := localServer(bf.cfg.URL); ok {
			bf.cfg.ServerPID = pid
			fmt.Fprintf(stderr, "bench: measuring the server process %d, listening on port %d (--server-pid to choose)\n", pid, port)
		}
	}
	pp := &progressPrinter{w: stderr, tty: isTerminal(stderr)}
	bf.cfg.Progress = pp.update
	bf.cfg.ProgressInterval = time.Second
	if pp.tty {
		bf.cfg.ProgressInterval = 200 * time.Millisecond
	}
	res, err := loadgen.Run(ctx, bf.cfg)
	pp.clear()
	if err != nil {
		fmt.Fprintf(stderr, "duplex bench: %v\n", strings.TrimPrefix(err.Error(), "loadgen: "))
		return exitError
	}
	res.URL = redactURL(res.URL) // the text, the JSON and the HTML title
	if bf.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	} else {
		err = loadgen.WriteText(stdout, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "duplex bench: %v\n", err)
		return exitError
	}
	if bf.html != "" {
		if err := writeHTMLFile(bf.html, res); err != nil {
			fmt.Fprintf(stderr, "duplex bench: %v\n", err)
			return exitError
		}
	}
	switch {
	case res.Interrupted:
		return exitInterrupted
	case res.Errors > 0:
		return exitError
	}
	return exitOK
}

// localServer finds the process serving rawURL when its host is a
// loopback address.
func localServer(rawURL string) (pid, port int, ok bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, 0, false
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return 0, 0, false
	}
	port, err = strconv.Atoi(u.Port())
	if err != nil {
		port = 80
		if u.Scheme == "wss" || u.Scheme == "https" {
			port = 443
		}
	}
	pid, err = loadgen.ListenerPID(port)
	return pid, port, err == nil
}

func writeHTMLFile(name string, res *loadgen.Result) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := loadgen.WriteHTML(f, res); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}

// byteSize is a flag value in bytes that accepts suffixes: 64KiB, 64k, 1MiB.
type byteSize int

func (b *byteSize) String() string {
	switch n := int(*b); {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	default:
		return strconv.Itoa(n)
	}
}

func (b *byteSize) Set(s string) error {
	num := strings.TrimRight(s, "KkMmGgiBb")
	unit := strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(s[len(num):], "B"), "b"))
	mult := map[string]int{"": 1, "k": 1 << 10, "ki": 1 << 10, "m": 1 << 20, "mi": 1 << 20}[unit]
	n, err := strconv.Atoi(num)
	if err != nil || mult == 0 || n < 0 {
		return fmt.Errorf("bad size %q: want bytes, or a number with KiB or MiB", s)
	}
	*b = byteSize(n * mult)
	return nil
}

// progressPrinter shows loadgen's progress: a bar redrawn in place on a
// terminal, a line per call elsewhere (logs, CI).
type progressPrinter struct {
	w      io.Writer
	tty    bool
	drawn  bool
	prev   loadgen.Progress
	prevAt time.Time
}

func (pp *progressPrinter) update(p loadgen.Progress) {
	now := time.Now()
	var rate float64 // over the last interval, or the phase so far
	if p.Phase == pp.prev.Phase && !pp.prevAt.IsZero() {
		rate = float64(p.Msgs-pp.prev.Msgs) / now.Sub(pp.prevAt).Seconds()
	} else if p.Elapsed > 0 {
		rate = float64(p.Msgs) / p.Elapsed.Seconds()
	}
	pp.prev, pp.prevAt = p, now

	var done float64 // fraction of the phase, for the bar
	var what string
	switch {
	case p.Phase == "connect":
		done = float64(p.Connected) / float64(max(p.Target, 1))
		what = fmt.Sprintf("%s/%s connected", commas(int64(p.Connected)), commas(int64(p.Target)))
	case p.Phase == "ping":
		done = float64(p.Msgs) / float64(max(p.Connected, 1))
		what = fmt.Sprintf("%s/%s pongs", commas(p.Msgs), commas(int64(p.Connected)))
	case p.Length > 0:
		done = p.Elapsed.Seconds() / p.Length.Seconds()
		what = fmt.Sprintf("%s/%s", p.Elapsed.Round(100*time.Millisecond), p.Length)
	default:
		what = p.Elapsed.Round(100 * time.Millisecond).String()
	}
	if p.Phase == "run" || p.Phase == "drain" {
		what += fmt.Sprintf("  %s msgs  %s msg/s", commas(p.Msgs), commas(int64(rate)))
	}
	what += fmt.Sprintf("  %s errors", commas(p.Errors))
	if !pp.tty {
		fmt.Fprintf(pp.w, "bench: %s %s\n", p.Phase, what)
		return
	}
	const width = 24
	fill := int(min(max(done, 0), 1) * width)
	fmt.Fprintf(pp.w, "\r\x1b[K%-7s [%s%s] %s", p.Phase, strings.Repeat("#", fill), strings.Repeat(".", width-fill), what)
	pp.drawn = true
}

// clear erases the bar so that the result starts on a clean line.
func (pp *progressPrinter) clear() {
	if pp.drawn {
		fmt.Fprint(pp.w, "\r\x1b[K")
		pp.drawn = false
	}
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
