package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex/internal/wire"
)

// echoConn is one echo connection and everything it reuses. Only its own
// goroutine touches it during the run, except the atomic counters, which
// the progress ticker reads.
type echoConn struct {
	nc      net.Conn
	fr      *frameReader
	op      wire.Opcode
	frame   []byte // the masked frame, sent again and again
	stampAt int    // offset of the stamp in frame, or -1
	key     [4]byte
	want    []byte // the payload every echo must carry, stamp aside
	stamped bool
	inf     *inflater // set when messages are compressed
	msg     []byte    // reassembles fragmented echoes
	depth   int
	sentAt  []time.Duration // ring of send times, indexed by sequence
	sent    uint64          // messages sent
	got     uint64          // echoes received
	base    time.Time
	hist    Histogram

	msgs     atomic.Int64
	errs     atomic.Int64
	firstErr error
}

// errMismatch marks an echo that arrived whole but differs from what was
// sent. The connection goes on.
var errMismatch = errors.New("loadgen: echo differs from the message sent")

func runEcho(ctx context.Context, cfg *Config, t target) (*Result, error) {
	res := &Result{
		Mode: "echo", URL: cfg.URL, Target: cfg.Conns, Size: cfg.Size,
		Pipeline: cfg.Pipeline, Compress: cfg.Compress, Text: cfg.Text,
	}
	probe, err := newServerProbe(cfg.ServerPID)
	if err != nil {
		return nil, err
	}

	op := wire.OpBinary
	if cfg.Text {
		op = wire.OpText
	}
	payload := makePayload(cfg.Size, cfg.Text, 1)
	var wire1 []byte // the payload as sent: compressed or not
	var rsv byte
	if cfg.Compress {
		wire1, rsv = compress(payload), wire.RSV1
	}
	// Large messages get a buffer that holds a few, small ones 64 KiB.
	bufSize := max(64<<10, 2*(cfg.Size+wire.MaxHeaderSize))

	d := newDialer(t, cfg.SourceAddrs, cfg.TLS)
	conns := make([]*echoConn, cfg.Conns)
	var connected atomic.Int64
	phaseStart := time.Now()
	stopTick := ticker(cfg, func() Progress {
		return Progress{Phase: "connect", Elapsed: time.Since(phaseStart),
			Connected: int(connected.Load()), Target: cfg.Conns}
	})
	n, firstErr := connectAll(ctx, cfg.Conns, &connected, func(i int) error {
		fr := newFrameReader(nil, bufSize)
		nc, deflate, err := d.dial(ctx, fr, cfg.Compress)
		if err != nil {
			return err
		}
		if cfg.Compress && !deflate {
			nc.Close()
			return errors.New("loadgen: the server declined permessage-deflate")
		}
		r := rand.New(rand.NewPCG(uint64(i), 0xec40))
		ec := &echoConn{nc: nc, fr: fr, op: op, key: randomKey(r), want: payload,
			stampAt: -1, depth: cfg.Pipeline, sentAt: make([]time.Duration, cfg.Pipeline)}
		if cfg.Compress {
			ec.frame = buildFrame(op, rsv, ec.key, wire1)
			ec.inf = newInflater(cfg.Size)
		} else {
			ec.frame = buildFrame(op, 0, ec.key, payload)
			if cfg.Size >= stampSize {
				ec.stamped = true
				ec.stampAt = len(ec.frame) - cfg.Size
			}
		}
		conns[i] = ec
		return nil
	})
	stopTick()
	res.Conns = n
	res.Errors = int64(cfg.Conns - n)
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	if n == 0 {
		if firstErr == nil {
			firstErr = ctx.Err()
		}
		return nil, fmt.Errorf("loadgen: no connection: %w", firstErr)
	}
	live := conns[:0]
	for _, ec := range conns {
		if ec != nil {
			live = append(live, ec)
		}
	}
	conns = live
	if err := conns[0].probe(); err != nil {
		for _, ec := range conns {
			ec.nc.Close()
		}
		return nil, err
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	cpu0 := selfCPU()
	probe.startCPU()
	start := time.Now()
	stopTick = ticker(cfg, func() Progress {
		p := Progress{Phase: "run", Elapsed: time.Since(start), Length: cfg.Duration,
			Connected: len(conns), Target: cfg.Conns}
		if stop.Load() {
			p.Phase, p.Length = "drain", 0
		}
		for _, ec := range conns {
			p.Msgs += ec.msgs.Load()
			p.Errors += ec.errs.Load()
		}
		p.Errors += res.Errors
		return p
	})
	for _, ec := range conns {
		ec.base = start
		wg.Go(func() { ec.run(&stop) })
	}
	stopSampler := sampleRate(cfg.Duration, res, func() (n int64) {
		for _, ec := range conns {
			n += ec.msgs.Load()
		}
		return n
	})

	timer := time.NewTimer(cfg.Duration)
	select {
	case <-timer.C:
	case <-ctx.Done():
		timer.Stop()
		res.Interrupted = true
	}
	stop.Store(true)
	// Echoes still in flight get drainTimeout to arrive; a cancelled run
	// does not wait for them.
	dl := time.Now().Add(drainTimeout)
	if res.Interrupted {
		dl = time.Now()
	}
	for _, ec := range conns {
		ec.nc.SetDeadline(dl)
	}
	wg.Wait()
	window := time.Since(start)
	clientCPU := selfCPU() - cpu0
	stopTick()
	stopSampler()

	var h Histogram
	for _, ec := range conns {
		ec.nc.Close()
		h.Merge(&ec.hist)
		res.Msgs += ec.msgs.Load()
		res.Errors += ec.errs.Load()
		if res.FirstError == "" && ec.firstErr != nil {
			res.FirstError = ec.firstErr.Error()
		}
	}
	probe.endCPU(window, res.Msgs)
	probe.sampleRSS()
	finish(res, window, clientCPU, &h, probe)
	return res, nil
}

// probe sends one message and checks its echo before the run, so that a
// server that does not echo (a wrong path, the gateway's /ws) stops the
// run with a message that says so, not with a table of errors.
func (ec *echoConn) probe() error {
	ec.base = time.Now()
	ec.nc.SetDeadline(time.Now().Add(dialTimeout))
	defer ec.nc.SetDeadline(noDeadline)
	err := ec.send()
	if err == nil {
		err = ec.receive()
	}
	if err != nil {
		kind := "binary"
		if ec.op == wire.OpText {
			kind = "text"
		}
		return fmt.Errorf("loadgen: %w: the first message (%s %s) got %s; bench measures echo servers (duplex serve's /echo; for the gateway's channels use --mode pubsub)",
			ErrNotEcho, sizeString(len(ec.want)), kind, strings.TrimPrefix(err.Error(), "loadgen: "))
	}
	ec.hist = Histogram{}
	ec.msgs.Store(0)
	return nil
}

// ErrNotEcho is returned by Run in echo mode when the server's answer to
// the first message is not its echo.
var ErrNotEcho = errors.New("the server does not echo")

// run keeps depth messages in flight until stop is set, then collects the
// echoes still outstanding.
func (ec *echoConn) run(stop *atomic.Bool) {
	for range ec.depth {
		if err := ec.send(); err != nil {
			ec.fail(err)
			return
		}
	}
	for ec.got < ec.sent {
		err := ec.receive()
		if err != nil && !errors.Is(err, errMismatch) {
			if stop.Load() && isTimeout(err) {
				err = fmt.Errorf("loadgen: %d echoes missing %v after the end: %w", ec.sent-ec.got, drainTimeout, err)
			}
			ec.fail(err)
			return
		}
		if err != nil {
			ec.fail(err)
		}
		if !stop.Load() {
			if err := ec.send(); err != nil {
				ec.fail(err)
				return
			}
		}
	}
}

func (ec *echoConn) fail(err error) {
	ec.errs.Add(1)
	if ec.firstErr == nil {
		ec.firstErr = err
	}
}

// send writes the next message, stamping its sequence number into the
// prebuilt frame: only the stamp's bytes are masked again.
func (ec *echoConn) send() error {
	if ec.stamped {
		s := ec.frame[ec.stampAt : ec.stampAt+stampSize]
		putStamp(s, ec.sent)
		wire.Mask(ec.key, 0, s)
	}
	ec.sentAt[ec.sent%uint64(ec.depth)] = time.Since(ec.base)
	if _, err := ec.nc.Write(ec.frame); err != nil {
		return fmt.Errorf("loadgen: write: %w", err)
	}
	ec.sent++
	return nil
}

// receive reads one whole echo, records its round trip and verifies it.
func (ec *echoConn) receive() error {
	h, p, err := ec.fr.next()
	if err != nil {
		return ec.readError(err)
	}
	first := h
	if !h.Fin || h.Opcode.IsControl() {
		if p, first, err = ec.assemble(h, p); err != nil {
			return err
		}
	}
	seq := ec.got
	ec.got++
	ec.hist.Record(time.Since(ec.base) - ec.sentAt[seq%uint64(ec.depth)])
	if first.Opcode != ec.op {
		if first.Opcode == wire.OpText && first.RSV == 0 {
			return fmt.Errorf("%w: opcode %d, sent %d: %s", errMismatch, first.Opcode, ec.op, quoteStart(p))
		}
		return fmt.Errorf("%w: opcode %d, sent %d", errMismatch, first.Opcode, ec.op)
	}
	if first.RSV&wire.RSV1 != 0 {
		if ec.inf == nil {
			return fmt.Errorf("%w: compressed echo without permessage-deflate", errProtocol)
		}
		if p, err = ec.inf.inflate(p); err != nil {
			return fmt.Errorf("%w: inflate: %v", errMismatch, err)
		}
	}
	if err := ec.verify(p, seq); err != nil {
		return err
	}
	ec.msgs.Add(1)
	return nil
}

// quoteStart quotes the first bytes of a reply that is not an echo.
func quoteStart(p []byte) string {
	if len(p) > 80 {
		return fmt.Sprintf("%q…", p[:80])
	}
	return fmt.Sprintf("%q", p)
}

func (ec *echoConn) verify(p []byte, seq uint64) error {
	if len(p) != len(ec.want) {
		if ec.op == wire.OpText {
			return fmt.Errorf("%w: echo %d has %d bytes, sent %d: %s", errMismatch, seq, len(p), len(ec.want), quoteStart(p))
		}
		return fmt.Errorf("%w: echo %d has %d bytes, sent %d", errMismatch, seq, len(p), len(ec.want))
	}
	from := 0
	if ec.stamped {
		var s [stampSize]byte
		putStamp(s[:], seq)
		if !bytes.Equal(p[:stampSize], s[:]) {
			return fmt.Errorf("%w: echo %d carries stamp %q", errMismatch, seq, p[:stampSize])
		}
		from = stampSize
	}
	if !bytes.Equal(p[from:], ec.want[from:]) {
		i := from
		for p[i] == ec.want[i] {
			i++
		}
		return fmt.Errorf("%w: echo %d differs at byte %d", errMismatch, seq, i)
	}
	return nil
}

// assemble collects a message sent in several frames, starting from the
// frame h (RFC 6455 §5.4), skipping pings and pongs between them. Servers
// may fragment; gorilla, for one, sends a large message as a frame plus
// an empty final continuation.
func (ec *echoConn) assemble(h wire.Header, p []byte) ([]byte, wire.Header, error) {
	var first wire.Header
	started := false
	ec.msg = ec.msg[:0]
	for {
		switch {
		case h.Opcode == wire.OpClose:
			code, reason, _ := wire.ParseClose(p)
			return nil, h, fmt.Errorf("%w: server sent close %d %q", errProtocol, code, reason)
		case h.Opcode.IsControl():
			// A ping needs no pong here: the run ends before any server
			// would time out a connection for it.
		case !started && h.Opcode == wire.OpContinuation, started && h.Opcode != wire.OpContinuation:
			return nil, h, fmt.Errorf("%w: opcode %d out of order", errProtocol, h.Opcode)
		default:
			if !started {
				first, started = h, true
			}
			ec.msg = append(ec.msg, p...)
			if h.Fin {
				return ec.msg, first, nil
			}
		}
		var err error
		if h, p, err = ec.fr.next(); err != nil {
			return nil, h, ec.readError(err)
		}
	}
}

func (ec *echoConn) readError(err error) error {
	if errors.Is(err, errProtocol) {
		return err
	}
	return fmt.Errorf("loadgen: read: %w", err)
}

// sampleRate records into res.Timeline the rate at which count grows,
// about twenty times over a run of length d (at most once a second), until
// the returned function is called.
func sampleRate(d time.Duration, res *Result, count func() int64) (stop func()) {
	step := min(max(d/20, 100*time.Millisecond), time.Second)
	res.Timeline = &Timeline{StepSeconds: step.Seconds(), MsgsPerSec: []float64{}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(step)
		defer tk.Stop()
		prev, at := int64(0), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tk.C:
				n := count()
				res.Timeline.MsgsPerSec = append(res.Timeline.MsgsPerSec, float64(n-prev)/now.Sub(at).Seconds())
				prev, at = n, now
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
