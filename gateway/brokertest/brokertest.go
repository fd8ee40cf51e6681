// Package brokertest is the contract of gateway.Broker as a test suite:
// what the gateway relies on from any broker (offsets, history, recovery
// windows, delivery across gateways exactly once and in order). The memory
// broker, the Redis broker (one server and a cluster) run it, and so
// should any new one:
//
//	func TestContract(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T, size int, ttl time.Duration) (a, b gateway.Broker) {
//			// two brokers on one fresh store, closed at the test's end
//		})
//	}
//
// It is imported only by tests.
package brokertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexws/duplex/gateway"
)

// NewFunc returns two brokers that share one store, as two gateways on
// one Redis would have (the same broker twice if it cannot be shared),
// each keeping historySize messages per channel for ttl. The store is
// fresh: no channel of another test shows. NewFunc closes them when t
// ends, and they must tolerate being closed twice.
type NewFunc func(t *testing.T, historySize int, ttl time.Duration) (a, b gateway.Broker)

// manyChannels is how many channels ManyChannels subscribes one broker
// to (1,000 with -short).
const manyChannels = 10000

// Run runs the contract's tests as subtests of t.
func Run(t *testing.T, newBrokers NewFunc) {
	t.Run("Offsets", func(t *testing.T) { testOffsets(t, newBrokers) })
	t.Run("History", func(t *testing.T) { testHistory(t, newBrokers) })
	t.Run("Expiry", func(t *testing.T) { testExpiry(t, newBrokers) })
	t.Run("Delivery", func(t *testing.T) { testDelivery(t, newBrokers) })
	t.Run("ConcurrentPublishers", func(t *testing.T) { testConcurrentPublishers(t, newBrokers) })
	t.Run("Stop", func(t *testing.T) { testStop(t, newBrokers) })
	t.Run("ManyChannels", func(t *testing.T) { testManyChannels(t, newBrokers) })
	t.Run("Close", func(t *testing.T) { testClose(t, newBrokers) })
}

const timeout = 20 * time.Second

func publish(t *testing.T, b gateway.Broker, channel, data string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	off, err := b.Publish(ctx, channel, json.RawMessage(data))
	if err != nil {
		t.Fatalf("Publish(%q, %s): %v", channel, data, err)
	}
	return off
}

func history(t *testing.T, b gateway.Broker, channel string, since uint64) ([]gateway.Message, bool, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	msgs, rec, latest, err := b.History(ctx, channel, since)
	if err != nil {
		t.Fatalf("History(%q, %d): %v", channel, since, err)
	}
	return msgs, rec, latest
}

// testOffsets: offsets grow by one from a base above the clock in µs; the
// first message's Prev is 0, the others' the offset before.
func testOffsets(t *testing.T, newBrokers NewFunc) {
	a, b := newBrokers(t, 10, time.Minute)
	before := uint64(time.Now().Add(-time.Minute).UnixMicro())
	var offs []uint64
	for i := range 5 {
		p := a
		if i%2 == 1 {
			p = b
		}
		offs = append(offs, publish(t, p, "offsets", strconv.Itoa(i)))
	}
	if offs[0] < before {
		t.Errorf("first offset %d; want above the clock in µs (%d)", offs[0], before)
	}
	for i := 1; i < len(offs); i++ {
		if offs[i] != offs[i-1]+1 {
			t.Fatalf("offsets %v: not consecutive", offs)
		}
	}
	msgs, _, _ := history(t, b, "offsets", 0)
	if len(msgs) != 5 || msgs[0].Prev != 0 || msgs[1].Prev != offs[0] || msgs[4].Prev != offs[3] {
		t.Errorf("History = %+v; want 5 messages, Prev 0 then the offset before", msgs)
	}
	if other := publish(t, a, "offsets-other", "0"); other <= before {
		t.Errorf("another channel's first offset %d; want above %d", other, before)
	}
}

// testHistory: what History returns and when it says recovered.
func testHistory(t *testing.T, newBrokers NewFunc) {
	a, b := newBrokers(t, 3, time.Minute)
	if msgs, rec, latest := history(t, a, "h", 0); len(msgs) != 0 || !rec || latest != 0 {
		t.Errorf("History of a channel that does not exist = %v, %v, %d; want nothing, recovered, 0", msgs, rec, latest)
	}
	if _, rec, _ := history(t, a, "h", 12345); rec {
		t.Error("History(since 12345) of a channel that does not exist: recovered; want not (the channel was reset)")
	}
	var offs []uint64
	for i := range 3 {
		offs = append(offs, publish(t, a, "h", strconv.Itoa(i)))
	}
	check := func(since uint64, wantFrom int, wantRec bool) {
		t.Helper()
		msgs, rec, latest := history(t, b, "h", since)
		if rec != wantRec || latest != offs[len(offs)-1] {
			t.Errorf("History(since %d) recovered %v latest %d; want %v, %d", since, rec, latest, wantRec, offs[len(offs)-1])
		}
		var want []uint64
		for i := wantFrom; i < len(offs); i++ {
			if i >= len(offs)-3 {
				want = append(want, offs[i])
			}
		}
		var got []uint64
		for _, m := range msgs {
			got = append(got, m.Offset)
			if m.Channel != "h" || string(m.Data) != strconv.Itoa(int(m.Offset-offs[0])) {
				t.Errorf("History(since %d): message %+v; want channel h, data %d", since, m, m.Offset-offs[0])
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("History(since %d) offsets %v; want %v", since, got, want)
		}
	}
	check(0, 0, true)             // the first message is held
	check(offs[0], 1, true)       // after the first
	check(offs[2], 3, true)       // up to date
	check(offs[0]-1, 0, true)     // the base: from the start
	check(offs[2]+1, 3, false)    // beyond the latest: a reset
	check(offs[0]-1000, 0, false) // below the base: an earlier life
	offs = append(offs, publish(t, b, "h", "3"), publish(t, b, "h", "4"))
	check(0, 2, false)       // the first message is gone
	check(offs[0], 2, false) // the second is gone
	check(offs[1], 2, true)  // the third is held
	msgs, rec, latest := history(t, a, "h", math.MaxUint64)
	if len(msgs) != 0 || rec || latest != offs[4] {
		t.Errorf("History(latest only) = %v, %v, %d; want nothing, not recovered, %d", msgs, rec, latest, offs[4])
	}
}

// testExpiry: messages go after the TTL, and a channel published to again
// gets offsets above its old ones.
func testExpiry(t *testing.T, newBrokers NewFunc) {
	ttl := 300 * time.Millisecond
	a, b := newBrokers(t, 10, ttl)
	first := publish(t, a, "e", "1")
	time.Sleep(ttl + ttl/2)
	if msgs, rec, _ := history(t, b, "e", first-1); rec || len(msgs) != 0 {
		t.Errorf("after the TTL: %v, recovered %v; want nothing, not recovered", msgs, rec)
	}
	again := publish(t, b, "e", "2")
	if again <= first {
		t.Errorf("offset after expiry %d; want above %d", again, first)
	}
	// The broker may have kept the channel (its offsets go on: first is
	// followed by again) or forgotten it (a new base: first is of an
	// earlier life, which nothing covers).
	if _, rec, _ := history(t, a, "e", first); rec != (again == first+1) {
		t.Errorf("History(since %d) after a publish at %d: recovered %v; want %v", first, again, rec, again == first+1)
	}
}

// recorder collects the deliveries of one subscription and checks that
// they come one call at a time.
type recorder struct {
	inCall     atomic.Bool
	concurrent atomic.Bool
	stopped    atomic.Bool
	late       atomic.Int32 // deliveries after stop returned

	mu   sync.Mutex
	msgs []gateway.Message // guarded by mu
	more chan struct{}     // one slot: msgs grew
}

func newRecorder() *recorder { return &recorder{more: make(chan struct{}, 1)} }

func (r *recorder) deliver(m gateway.Message) {
	if r.inCall.Swap(true) {
		r.concurrent.Store(true)
	}
	defer r.inCall.Store(false)
	if r.stopped.Load() {
		r.late.Add(1)
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

func (r *recorder) snapshot() []gateway.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gateway.Message(nil), r.msgs...)
}

// waitFor waits until cond holds for what was delivered, or d passes.
func (r *recorder) waitFor(d time.Duration, cond func([]gateway.Message) bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for !cond(r.snapshot()) {
		select {
		case <-r.more:
		case <-deadline.C:
			return cond(r.snapshot())
		}
	}
	return true
}

// subscribeLive subscribes to channel on sub and publishes warm-up
// messages {"warm":N} through pub until one arrives: the subscription is
// live from then on.
func subscribeLive(t *testing.T, sub, pub gateway.Broker, channel string) (*recorder, func()) {
	t.Helper()
	r := newRecorder()
	stop := sub.Subscribe(channel, r.deliver)
	t.Cleanup(stop)
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		publish(t, pub, channel, fmt.Sprintf(`{"warm":%d}`, i))
		if r.waitFor(min(time.Duration(i+1)*20*time.Millisecond, time.Second), func(ms []gateway.Message) bool { return len(ms) > 0 }) {
			return r, stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery on %q within %v of subscribing", channel, timeout)
		}
	}
}

// checkStream checks that r got the messages of offs, with data "0", "1",
// … in order after the warm-up ones, each once, every Prev the offset
// before, and nothing else.
func checkStream(t *testing.T, r *recorder, offs []uint64, d time.Duration) {
	t.Helper()
	real := func(ms []gateway.Message) []gateway.Message {
		for i, m := range ms {
			if !strings.HasPrefix(string(m.Data), `{"warm"`) {
				return ms[i:]
			}
		}
		return nil
	}
	r.waitFor(d, func(ms []gateway.Message) bool { return len(real(ms)) >= len(offs) })
	all := r.snapshot()
	for i := 1; i < len(all); i++ {
		if all[i].Prev != all[i-1].Offset {
			t.Fatalf("delivery %d: offset %d prev %d after offset %d: a gap or a duplicate", i, all[i].Offset, all[i].Prev, all[i-1].Offset)
		}
	}
	got := real(all)
	if len(got) != len(offs) {
		t.Fatalf("delivered %d messages after the warm-up; want %d", len(got), len(offs))
	}
	for i, m := range got {
		if m.Offset != offs[i] || string(m.Data) != strconv.Itoa(i) {
			t.Fatalf("delivery %d: offset %d data %s; want offset %d data %d", i, m.Offset, m.Data, offs[i], i)
		}
	}
	if r.concurrent.Load() {
		t.Error("deliver was called concurrently")
	}
}

// testDelivery: a message published through either broker reaches the
// subscriptions of both, exactly once, in order.
func testDelivery(t *testing.T, newBrokers NewFunc) {
	a, b := newBrokers(t, 1000, time.Minute)
	ra, _ := subscribeLive(t, a, b, "d")
	rb, _ := subscribeLive(t, b, a, "d")
	ra2 := newRecorder() // a second subscription on a, not waited for
	t.Cleanup(a.Subscribe("d", ra2.deliver))
	var offs []uint64
	for i := range 300 {
		p := a
		if i%3 != 0 {
			p = b
		}
		offs = append(offs, publish(t, p, "d", strconv.Itoa(i)))
	}
	checkStream(t, ra, offs, timeout)
	checkStream(t, rb, offs, timeout)
	ra2.waitFor(timeout, func(ms []gateway.Message) bool { return len(ms) > 0 && ms[len(ms)-1].Offset == offs[len(offs)-1] })
	got := ra2.snapshot()
	for i := 1; i < len(got); i++ {
		if got[i].Prev != got[i-1].Offset {
			t.Fatalf("second subscription: offset %d prev %d after %d", got[i].Offset, got[i].Prev, got[i-1].Offset)
		}
	}
	if len(got) == 0 || got[len(got)-1].Offset != offs[len(offs)-1] {
		t.Errorf("second subscription on one broker: did not get the last message")
	}
}

// testConcurrentPublishers: publishers racing on both brokers get distinct,
// consecutive offsets, and the subscriber sees each message once in order.
func testConcurrentPublishers(t *testing.T, newBrokers NewFunc) {
	a, b := newBrokers(t, 1000, time.Minute)
	r, _ := subscribeLive(t, a, b, "cp")
	const writers, each = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	var mu sync.Mutex
	seen := map[uint64]string{}
	for w := range writers {
		p := a
		if w%2 == 1 {
			p = b
		}
		wg.Go(func() {
			for i := range each {
				data := fmt.Sprintf(`"%d-%d"`, w, i)
				off, err := p.Publish(context.Background(), "cp", json.RawMessage(data))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				seen[off] = data
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct offsets for %d publishes", len(seen), writers*each)
	}
	r.waitFor(timeout, func(ms []gateway.Message) bool {
		n := 0
		for _, m := range ms {
			if seen[m.Offset] != "" {
				n++
			}
		}
		return n >= writers*each
	})
	all := r.snapshot()
	n := 0
	for i, m := range all {
		if i > 0 && m.Prev != all[i-1].Offset {
			t.Fatalf("offset %d prev %d after %d", m.Offset, m.Prev, all[i-1].Offset)
		}
		if want, ok := seen[m.Offset]; ok {
			n++
			if string(m.Data) != want {
				t.Fatalf("offset %d: data %s; want %s", m.Offset, m.Data, want)
			}
		}
	}
	if n != writers*each {
		t.Errorf("delivered %d of %d", n, writers*each)
	}
}

// testStop: no delivery starts after stop returns, and stopping twice is
// harmless.
func testStop(t *testing.T, newBrokers NewFunc) {
	a, b := newBrokers(t, 100, time.Minute)
	r, stop := subscribeLive(t, a, b, "s")
	other, _ := subscribeLive(t, a, b, "s2")
	for i := range 20 {
		publish(t, b, "s", strconv.Itoa(i))
	}
	stop()
	r.stopped.Store(true)
	stop()
	for i := range 20 {
		publish(t, b, "s", strconv.Itoa(20+i))
	}
	// A delivery on another channel, published after, shows the broker
	// has processed what came before.
	last := publish(t, b, "s2", "0")
	other.waitFor(timeout, func(ms []gateway.Message) bool { return ms[len(ms)-1].Offset == last })
	time.Sleep(50 * time.Millisecond)
	if n := r.late.Load(); n > 0 {
		t.Errorf("%d deliveries after stop returned", n)
	}
}

// testManyChannels: one broker subscribed to manyChannels channels gets
// one message on each, published through the other.
func testManyChannels(t *testing.T, newBrokers NewFunc) {
	n := manyChannels
	if testing.Short() {
		n = 1000
	}
	a, b := newBrokers(t, 10, time.Minute)
	recs := make([]*recorder, n)
	for i := range recs {
		recs[i] = newRecorder()
		t.Cleanup(a.Subscribe(fmt.Sprintf("many/%d", i), recs[i].deliver))
	}
	// Warm up every channel until each has had a delivery.
	parallel := func(f func(i int) error) {
		t.Helper()
		var wg sync.WaitGroup
		var failed atomic.Value
		next := atomic.Int64{}
		for range 16 {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					if err := f(i); err != nil {
						failed.Store(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(timeout + time.Duration(n)*time.Millisecond)
	for round := 0; ; round++ {
		waiting := 0
		parallel(func(i int) error {
			if len(recs[i].snapshot()) > 0 {
				return nil
			}
			_, err := b.Publish(context.Background(), fmt.Sprintf("many/%d", i), json.RawMessage(fmt.Sprintf(`{"warm":%d}`, round)))
			return err
		})
		time.Sleep(time.Duration(100*(round+1)) * time.Millisecond)
		for _, r := range recs {
			if len(r.snapshot()) == 0 {
				waiting++
			}
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d channels had no delivery", waiting, n)
		}
	}
	offs := make([]uint64, n)
	parallel(func(i int) error {
		off, err := b.Publish(context.Background(), fmt.Sprintf("many/%d", i), json.RawMessage(`0`))
		offs[i] = off
		return err
	})
	for i, r := range recs {
		checkStream(t, r, offs[i:i+1], timeout)
	}
}

// testClose: Publish and History fail with ErrBrokerClosed after Close.
func testClose(t *testing.T, newBrokers NewFunc) {
	a, _ := newBrokers(t, 10, time.Minute)
	publish(t, a, "x", "1")
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := a.Publish(context.Background(), "x", json.RawMessage(`2`)); !errors.Is(err, gateway.ErrBrokerClosed) {
		t.Errorf("Publish after Close: %v; want ErrBrokerClosed", err)
	}
	if _, _, _, err := a.History(context.Background(), "x", 0); !errors.Is(err, gateway.ErrBrokerClosed) {
		t.Errorf("History after Close: %v; want ErrBrokerClosed", err)
	}
	a.Subscribe("x", func(gateway.Message) {})() // harmless after Close
}
