package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex/internal/wire"
)

// Pub/sub mode measures the gateway's channels (docs/protocol.md): Conns
// subscribers on its /ws endpoint, spread over Channels channels, each
// subscribed to one, and Rate publishes a second through the HTTP API or
// the socket for Duration. Every publish carries its send time, so each
// delivery gives a latency from publish to subscriber. With Rate 0 the
// subscribers stay idle for Duration: what issue 13 measures as memory
// per idle subscribed client.

// channelPrefix names the channels pub/sub mode uses: bench/0, bench/1, …
const channelPrefix = "bench/"

// histShards spreads the deliveries' latencies over this many histograms,
// each behind its own lock: one per subscriber would cost 30 KiB each.
const histShards = 64

// pubsubRun is the state a pub/sub run shares between its goroutines.
type pubsubRun struct {
	cfg    *Config
	base   time.Time // publish times are offsets from it
	shards [histShards]struct {
		mu sync.Mutex
		h  Histogram
	}
	delivered atomic.Int64
	errs      atomic.Int64
	stopping  atomic.Bool
	firstMu   sync.Mutex
	firstErr  error // guarded by firstMu
}

func (ps *pubsubRun) fail(err error) {
	ps.errs.Add(1)
	ps.firstMu.Lock()
	if ps.firstErr == nil {
		ps.firstErr = err
	}
	ps.firstMu.Unlock()
}

// subscriber is one subscribed connection. After subscribe, only its own
// reading goroutine touches it.
type subscriber struct {
	nc      net.Conn
	fr      *frameReader
	key     [4]byte
	channel int
	out     []byte // reused for pongs

	centrifugo bool // speaks Centrifugo's protocol (centrifugo.go)
}

func channelName(i int) string { return channelPrefix + strconv.Itoa(i) }

// subscribe sends the subscribe message and waits for its answer.
func (s *subscriber) subscribe(ctx context.Context) error {
	if s.centrifugo {
		return s.subscribeCentrifugo(ctx)
	}
	if dl, ok := ctx.Deadline(); ok {
		s.nc.SetDeadline(dl)
		defer s.nc.SetDeadline(noDeadline)
	}
	msg := []byte(`{"type":"subscribe","channel":"` + channelName(s.channel) + `"}`)
	if _, err := s.nc.Write(buildFrame(wire.OpText, 0, s.key, msg)); err != nil {
		return fmt.Errorf("loadgen: write subscribe: %w", err)
	}
	h, p, err := s.nextData()
	if err != nil {
		return fmt.Errorf("loadgen: the answer to subscribe: %w", err)
	}
	switch {
	case h.Opcode == wire.OpText && bytes.Contains(p, []byte(`"type":"subscribed"`)):
		return nil
	case h.Opcode == wire.OpText && bytes.Contains(p, []byte(`"type":"error"`)):
		return fmt.Errorf("loadgen: subscribe %s: server answered %s", channelName(s.channel), quoteStart(p))
	}
	return fmt.Errorf("loadgen: subscribe %s got %s (opcode %d), not \"subscribed\": is this the gateway's /ws endpoint?",
		channelName(s.channel), quoteStart(p), h.Opcode)
}

// pong answers a ping (RFC 6455 §5.5.3: with its payload). The gateway
// pings idle clients and closes those that do not answer.
func (s *subscriber) pong(p []byte) error {
	s.out = appendFrame(s.out[:0], wire.OpPong, 0, s.key, p)
	if _, err := s.nc.Write(s.out); err != nil {
		return fmt.Errorf("loadgen: write pong: %w", err)
	}
	return nil
}

// nextData returns the next data frame, answering pings and skipping
// pongs on the way; a close frame from the server is an error naming its
// code and reason.
func (s *subscriber) nextData() (wire.Header, []byte, error) {
	for {
		h, p, err := s.fr.next()
		if err != nil {
			return h, nil, err
		}
		switch h.Opcode {
		case wire.OpPing:
			if err := s.pong(p); err != nil {
				return h, nil, err
			}
		case wire.OpPong:
		case wire.OpClose:
			code, reason, _ := wire.ParseClose(p)
			return h, nil, fmt.Errorf("server closed with %d %q", code, reason)
		default:
			return h, p, nil
		}
	}
}

// read records every delivery until the connection ends.
func (s *subscriber) read(ps *pubsubRun, shard int) {
	if s.centrifugo {
		s.readCentrifugo(ps, shard)
		return
	}
	var local Histogram // flushed to the shard every few deliveries
	var n int
	flush := func() {
		if n == 0 {
			return
		}
		sh := &ps.shards[shard]
		sh.mu.Lock()
		sh.h.Merge(&local)
		sh.mu.Unlock()
		local = Histogram{}
		n = 0
	}
	defer flush()
	for {
		h, p, err := s.nextData()
		if err != nil {
			if !ps.stopping.Load() {
				ps.fail(fmt.Errorf("loadgen: subscriber on %s: %w", channelName(s.channel), err))
			}
			return
		}
		switch h.Opcode {
		case wire.OpText:
			t, ok := sentAt(p)
			if !ok || !h.Fin {
				if bytes.Contains(p, []byte(`"type":"error"`)) || !h.Fin {
					ps.fail(fmt.Errorf("loadgen: subscriber on %s got %s", channelName(s.channel), quoteStart(p)))
				}
				continue // another message: an unasked "subscribed", say
			}
			local.Record(time.Since(ps.base) - t)
			ps.delivered.Add(1)
			if n++; n == 16 {
				flush()
			}
		default:
			ps.fail(fmt.Errorf("loadgen: subscriber on %s: unexpected opcode %d", channelName(s.channel), h.Opcode))
		}
	}
}

// publishData is the data of every publish: its send time, in nanoseconds
// after the run's base, and padding up to the message size.
func publishData(t time.Duration, pad []byte) []byte {
	b := make([]byte, 0, 32+len(pad))
	b = append(b, `{"t":`...)
	b = strconv.AppendInt(b, int64(t), 10)
	b = append(b, `,"p":"`...)
	b = append(b, pad...)
	return append(b, `"}`...)
}

// sentAt finds the send time in a delivered message:
// {"type":"message","channel":…,"offset":…,"data":{"t":123,"p":"…"}}.
func sentAt(p []byte) (time.Duration, bool) {
	if !bytes.Contains(p, []byte(`"type":"message"`)) {
		return 0, false
	}
	i := bytes.Index(p, []byte(`{"t":`))
	if i < 0 {
		return 0, false
	}
	p = p[i+5:]
	var v int64
	n := 0
	for ; n < len(p) && p[n] >= '0' && p[n] <= '9'; n++ {
		v = v*10 + int64(p[n]-'0')
	}
	return time.Duration(v), n > 0
}

// padding returns the padding that makes a publish's data size bytes.
func padding(size int) []byte {
	n := max(size-len(publishData(time.Hour, nil)), 0)
	return bytes.Repeat([]byte("x"), n)
}

func runPubSub(ctx context.Context, cfg *Config, t target) (*Result, error) {
	res := &Result{Mode: "pubsub", URL: cfg.URL, Target: cfg.Conns, Size: cfg.Size,
		Channels: cfg.Channels, PublishVia: cfg.PublishVia, Rate: cfg.Rate, Hold: cfg.Duration.Seconds(),
		Protocol: cfg.Protocol}
	var pub publisher
	if cfg.Rate > 0 {
		var err error
		if pub, err = newPublisher(cfg, t); err != nil {
			return nil, err
		}
		defer pub.close()
	}
	probe, err := newServerProbe(cfg.ServerPID)
	if err != nil {
		return nil, err
	}
	ps := &pubsubRun{cfg: cfg, base: time.Now()}
	d := newDialer(t, cfg.SourceAddrs, cfg.TLS)
	subs := make([]*subscriber, cfg.Conns)
	var readers sync.WaitGroup
	defer func() {
		ps.stopping.Store(true)
		for _, s := range subs {
			if s != nil {
				s.nc.Close()
			}
		}
		readers.Wait()
	}()

	var connected atomic.Int64
	var phase atomic.Value
	phase.Store("connect")
	phaseAt := time.Now()
	var phaseMu sync.Mutex
	setPhase := func(s string) {
		phaseMu.Lock()
		phaseAt = time.Now()
		phaseMu.Unlock()
		phase.Store(s)
	}
	stopTick := ticker(cfg, func() Progress {
		phaseMu.Lock()
		at := phaseAt
		phaseMu.Unlock()
		p := Progress{Phase: phase.Load().(string), Elapsed: time.Since(at), Connected: int(connected.Load()),
			Target: cfg.Conns, Msgs: ps.delivered.Load(), Errors: ps.errs.Load()}
		if p.Phase == "run" || p.Phase == "hold" {
			p.Length = cfg.Duration
		}
		return p
	})
	defer stopTick()

	cpu0 := selfCPU()
	// As in idle mode, the subscribers come in two halves with the
	// server's memory sampled between them, so the growth over the
	// second half is the cost of one more, without costs paid once.
	open := func(lo, hi int) (int, error) {
		before := connected.Load()
		_, err := connectAll(ctx, hi-lo, &connected, func(i int) error {
			i += lo
			fr := newFrameReader(nil, 1<<10)
			nc, _, err := d.dial(ctx, fr, false)
			if err != nil {
				return err
			}
			r := rand.New(rand.NewPCG(uint64(i), 0x5b5))
			s := &subscriber{nc: nc, fr: fr, key: randomKey(r), channel: i % cfg.Channels,
				centrifugo: cfg.Protocol == ProtocolCentrifugo}
			sctx, cancel := context.WithTimeout(ctx, dialTimeout)
			err = s.subscribe(sctx)
			cancel()
			if err != nil {
				nc.Close()
				return err
			}
			subs[i] = s
			readers.Go(func() { s.read(ps, i%histShards) })
			return nil
		})
		return int(connected.Load() - before), err
	}
	half := cfg.Conns / 2
	n1, firstErr := open(0, half)
	var midRSS, midAnon int64
	if probe.stats != nil && probe.err == nil && ctx.Err() == nil && n1 > 0 {
		setPhase("settle")
		time.Sleep(settle)
		midRSS, midAnon, probe.err = procMem(probe.pid)
	}
	setPhase("connect")
	n2, err := open(half, cfg.Conns)
	if firstErr == nil {
		firstErr = err
	}
	n := n1 + n2
	res.Conns = n
	ps.errs.Add(int64(cfg.Conns - n))
	if firstErr != nil {
		res.FirstError = firstErr.Error()
		if isPortExhaustion(firstErr) {
			res.FirstError += " (out of local ports: spread connections with source addresses)"
		}
	}
	if n == 0 {
		if firstErr == nil {
			firstErr = ctx.Err()
		}
		return nil, fmt.Errorf("loadgen: no subscriber: %w", firstErr)
	}
	perChannel := make([]int64, cfg.Channels)
	for _, s := range subs {
		if s != nil {
			perChannel[s.channel]++
		}
	}

	sampleMem := func() {
		probe.sampleRSS()
		s := probe.stats
		if s == nil || probe.err != nil {
			return
		}
		s.MemPerConnRSS = float64(s.RSSAfter-s.RSSBefore) / float64(n)
		s.MemPerConn = s.MemPerConnRSS
		if s.AnonAfter > 0 {
			s.MemPerConn = float64(s.AnonAfter-s.AnonBefore) / float64(n)
		}
		if n1 > 0 && n2 > 0 && midRSS > 0 {
			mid, after := midAnon, s.AnonAfter
			if mid == 0 || after == 0 {
				mid, after = midRSS, s.RSSAfter
			}
			s.MarginalPerConn = float64(after-mid) / float64(n2)
		}
	}

	var h Histogram
	start := time.Now()
	if cfg.Rate <= 0 {
		// The CPU of the connections' aftermath (the handshakes' garbage
		// collected) is not the hold's: what idle subscribers cost, such
		// as heartbeats, is measured after a settle.
		if probe.stats != nil && probe.err == nil {
			setPhase("settle")
			time.Sleep(settle)
		}
		start = time.Now()
		probe.startCPU()
		// Idle subscribers: memory is sampled after the hold, at rest.
		setPhase("hold")
		timer := time.NewTimer(cfg.Duration)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			res.Interrupted = true
		}
		sampleMem()
	} else {
		if probe.stats != nil && probe.err == nil {
			setPhase("settle")
			time.Sleep(settle)
		}
		sampleMem() // before the messages, whose buffers would count
		probe.startCPU()
		setPhase("run")
		start = time.Now()
		stopSampler := sampleRate(cfg.Duration, res, ps.delivered.Load)
		publishes, expected, pubErr := publishFor(ctx, ps, pub, perChannel)
		res.Publishes, res.Expected = publishes, expected
		if pubErr != nil {
			ps.fail(pubErr)
		}
		res.Interrupted = ctx.Err() != nil
		// Deliveries still in flight get drainTimeout to arrive.
		setPhase("drain")
		dl := time.Now().Add(drainTimeout)
		for ps.delivered.Load() < expected && time.Now().Before(dl) && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		stopSampler()
	}
	window := time.Since(start)
	clientCPU := selfCPU() - cpu0
	ps.stopping.Store(true)
	for _, s := range subs {
		if s != nil {
			s.nc.Close()
		}
	}
	readers.Wait()
	for i := range ps.shards {
		h.Merge(&ps.shards[i].h)
	}
	res.Msgs = ps.delivered.Load()
	if missing := res.Expected - res.Msgs; missing > 0 && !res.Interrupted {
		ps.fail(fmt.Errorf("loadgen: %d of %d deliveries missing %v after the last publish", missing, res.Expected, drainTimeout))
	}
	res.Errors = ps.errs.Load()
	if res.FirstError == "" && ps.firstErr != nil {
		res.FirstError = ps.firstErr.Error()
	}
	probe.endCPU(window, res.Msgs)
	finish(res, window, clientCPU, &h, probe)
	res.MBPerSec = 0
	if res.Mode == "pubsub" && cfg.Rate <= 0 {
		res.MsgsPerSec = 0
	}
	return res, nil
}

// publishFor publishes at cfg.Rate for cfg.Duration from cfg.Publishers
// goroutines, round-robin over the channels, and returns how many
// publishes succeeded and how many deliveries they call for. It stops at
// the first failed publish: the server refusing publishes makes the rest
// of the run meaningless.
func publishFor(ctx context.Context, ps *pubsubRun, pub publisher, perChannel []int64) (publishes, expected int64, err error) {
	cfg := ps.cfg
	workers := cfg.Publishers
	interval := time.Duration(float64(time.Second) * float64(workers) / cfg.Rate)
	pad := padding(cfg.Size)
	start := time.Now()
	end := start.Add(cfg.Duration)
	var (
		pubs, exp atomic.Int64
		once      sync.Once
		first     error
		failed    atomic.Bool
		wg        sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			next := start.Add(interval * time.Duration(w) / time.Duration(workers))
			for k := 0; ; k++ {
				if wait := time.Until(next); wait > 0 {
					t := time.NewTimer(wait)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						return
					}
				}
				if !time.Now().Before(end) || failed.Load() || ctx.Err() != nil {
					return
				}
				ch := (w + k*workers) % len(perChannel)
				data := publishData(time.Since(ps.base), pad)
				if err := pub.publish(ctx, w, channelName(ch), data); err != nil {
					if ctx.Err() == nil {
						once.Do(func() { first = err })
						failed.Store(true)
					}
					return
				}
				pubs.Add(1)
				exp.Add(perChannel[ch])
				next = next.Add(interval)
			}
		})
	}
	wg.Wait()
	return pubs.Load(), exp.Load(), first
}
