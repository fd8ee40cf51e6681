package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex/internal/wire"
)

// pongTimeout bounds the wait for each pong of a ping round.
const pongTimeout = 10 * time.Second

// pingers is the number of goroutines that send pings and read pongs; idle
// connections have no goroutine of their own, so that holding twenty
// thousand of them costs the load generator little.
const pingers = 64

// runIdle opens cfg.Idle connections, pings each once and waits for every
// pong, samples the server's memory, holds the connections for
// cfg.Duration and pings each again to check that the server kept them.
func runIdle(ctx context.Context, cfg *Config, t target) (*Result, error) {
	res := &Result{Mode: "idle", URL: cfg.URL, Target: cfg.Idle, Size: 8, Hold: cfg.Duration.Seconds()}
	d := newDialer(t, cfg.SourceAddrs, cfg.TLS)
	probe, err := newServerProbe(cfg.ServerPID)
	if err != nil {
		return nil, err
	}
	conns := make([]net.Conn, cfg.Idle)
	frs := sync.Pool{New: func() any { return newFrameReader(nil, 4<<10) }}

	var connected, pongs, errs atomic.Int64
	var phase atomic.Value
	phase.Store("connect")
	phaseStart := time.Now()
	var phaseAt atomic.Int64 // phase start, in ns since phaseStart
	stopTick := ticker(cfg, func() Progress {
		p := Progress{Phase: phase.Load().(string), Connected: int(connected.Load()),
			Target: cfg.Idle, Msgs: pongs.Load(), Errors: errs.Load()}
		p.Elapsed = time.Since(phaseStart) - time.Duration(phaseAt.Load())
		if p.Phase == "hold" {
			p.Length = cfg.Duration
		}
		return p
	})
	setPhase := func(s string) {
		phaseAt.Store(int64(time.Since(phaseStart)))
		phase.Store(s)
	}
	defer func() {
		stopTick()
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
	}()

	cpu0 := selfCPU()
	probe.startCPU()
	start := time.Now()
	// The connections open in two halves, each pinged, with the server's
	// memory sampled between them: the growth over the second half is
	// what each more connection costs, without the costs paid once
	// (code paged in, stacks and pools grown, the heap's minimum size).
	var h Histogram
	open := func(lo, hi int) (int, error) {
		n, err := connectAll(ctx, hi-lo, &connected, func(i int) error {
			fr := frs.Get().(*frameReader)
			defer frs.Put(fr)
			nc, _, err := d.dial(ctx, fr, false)
			if err != nil {
				return err
			}
			fr.reset(nil)
			conns[lo+i] = nc
			return nil
		})
		setPhase("ping")
		if err := pingRound(ctx, conns[lo:hi], &h, &pongs, &errs); err != nil && res.FirstError == "" {
			res.FirstError = err.Error()
		}
		return n, err
	}
	half := cfg.Idle / 2
	n1, firstErr := open(0, half)
	var midRSS, midAnon int64
	if probe.stats != nil && probe.err == nil && ctx.Err() == nil {
		setPhase("settle")
		time.Sleep(settle)
		midRSS, midAnon, probe.err = procMem(probe.pid)
	}
	setPhase("connect")
	n2, err := open(half, cfg.Idle)
	if firstErr == nil {
		firstErr = err
	}
	n := int(connected.Load())
	res.Conns = n
	errs.Add(int64(cfg.Idle - n))
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
		return nil, fmt.Errorf("loadgen: no connection: %w", firstErr)
	}

	setPhase("hold")
	timer := time.NewTimer(cfg.Duration)
	select {
	case <-timer.C:
	case <-ctx.Done():
		timer.Stop()
		res.Interrupted = true
	}
	// Memory is sampled once the connections have been idle for the hold:
	// what they cost at rest, after the burst of handshakes and pings.
	probe.sampleRSS()
	if s := probe.stats; s != nil && probe.err == nil {
		s.MemPerConnRSS = float64(s.RSSAfter-s.RSSBefore) / float64(n)
		s.MemPerConn = s.MemPerConnRSS
		if s.AnonAfter > 0 {
			s.MemPerConn = float64(s.AnonAfter-s.AnonBefore) / float64(n)
		}
		if n2 > 0 && n1 > 0 && midRSS > 0 {
			mid := midAnon
			after := s.AnonAfter
			if mid == 0 || after == 0 {
				mid, after = midRSS, s.RSSAfter
			}
			s.MarginalPerConn = float64(after-mid) / float64(n2)
		}
	}

	if !res.Interrupted {
		// The second round only checks that the server kept every
		// connection; its round trips are not recorded.
		setPhase("ping")
		var discard Histogram
		var alive atomic.Int64
		if err := pingRound(ctx, conns, &discard, &alive, &errs); err != nil && res.FirstError == "" {
			res.FirstError = "after holding: " + err.Error()
		}
	}
	window := time.Since(start)
	clientCPU := selfCPU() - cpu0
	probe.endCPU(window, 0)
	res.Msgs = pongs.Load()
	res.Errors = errs.Load()
	finish(res, window, clientCPU, &h, probe)
	// Throughput means nothing for idle connections.
	res.MsgsPerSec, res.MBPerSec = 0, 0
	return res, nil
}

// pingRound sends one ping on every open connection, then waits for every
// pong, from pingers goroutines that each own a share of the connections.
// A connection that fails is closed and set to nil. It returns the first
// error.
func pingRound(ctx context.Context, conns []net.Conn, h *Histogram, pongs, errs *atomic.Int64) error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	workers := min(pingers, len(conns))
	for w := range workers {
		wg.Go(func() {
			var local Histogram
			r := rand.New(rand.NewPCG(uint64(w), 0x1d1e))
			fr := newFrameReader(nil, 4<<10)
			frame := make([]byte, 0, 32)
			sentAt := make([]time.Time, 0, len(conns)/workers+1)
			fail := func(i int, err error) {
				errs.Add(1)
				conns[i].Close()
				conns[i] = nil
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
			var payload [8]byte
			for i := w; i < len(conns); i += workers {
				sentAt = append(sentAt, time.Time{})
				if conns[i] == nil || ctx.Err() != nil {
					continue
				}
				binary.BigEndian.PutUint64(payload[:], uint64(i))
				frame = appendFrame(frame[:0], wire.OpPing, 0, randomKey(r), payload[:])
				sentAt[len(sentAt)-1] = time.Now()
				if _, err := conns[i].Write(frame); err != nil {
					fail(i, fmt.Errorf("loadgen: write ping: %w", err))
				}
			}
			for k, i := 0, w; i < len(conns); k, i = k+1, i+workers {
				if conns[i] == nil || ctx.Err() != nil {
					continue
				}
				binary.BigEndian.PutUint64(payload[:], uint64(i))
				if err := awaitPong(conns[i], fr, payload[:]); err != nil {
					fail(i, err)
					continue
				}
				local.Record(time.Since(sentAt[k]))
				pongs.Add(1)
			}
			mu.Lock()
			h.Merge(&local)
			mu.Unlock()
		})
	}
	wg.Wait()
	return first
}

// awaitPong reads frames on nc until the pong that answers the ping with
// payload want (RFC 6455 §5.5.3: a pong echoes the ping's payload).
func awaitPong(nc net.Conn, fr *frameReader, want []byte) error {
	nc.SetReadDeadline(time.Now().Add(pongTimeout))
	defer nc.SetReadDeadline(noDeadline)
	fr.reset(nc)
	for {
		h, p, err := fr.next()
		if err != nil {
			if errors.Is(err, errProtocol) {
				return err
			}
			return fmt.Errorf("loadgen: read pong: %w", err)
		}
		switch h.Opcode {
		case wire.OpPong:
			if string(p) == string(want) {
				return nil
			}
			// An unsolicited pong (RFC 6455 §5.5.3) is allowed: skip it.
		case wire.OpClose:
			code, reason, _ := wire.ParseClose(p)
			return fmt.Errorf("%w: server sent close %d %q", errProtocol, code, reason)
		case wire.OpPing:
		default:
			return fmt.Errorf("%w: data frame (opcode %d) on an idle connection", errProtocol, h.Opcode)
		}
	}
}

// settle is how long idle mode waits after the first half of the
// connections before it samples the server's memory.
const settle = time.Second
