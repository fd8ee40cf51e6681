package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/testkit"
)

// data returns a JSON string of n bytes.
func data(n int) json.RawMessage {
	return json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`)
}

func TestMemoryBudgetDropsOldestFirst(t *testing.T) {
	// Room for 10 messages of 1000 bytes and the channels they are in.
	msg := data(1000)
	per := entryCost(msg) + channelCost("c0")
	b := newMemoryBrokerConfig(memoryConfig{size: 100, ttl: time.Minute, memory: 10 * per})
	defer b.Close()
	ctx := context.Background()
	// Two channels written in turn, then ten more each to its own: the
	// oldest go first, whatever their channel.
	first := map[string]uint64{}
	for i := range 30 {
		ch := fmt.Sprintf("c%d", i%2)
		if i >= 20 {
			ch = fmt.Sprintf("n%d", i)
		}
		off, err := b.Publish(ctx, ch, msg)
		if err != nil {
			t.Fatal(err)
		}
		if first[ch] == 0 {
			first[ch] = off
		}
	}
	st := b.stats()
	if st.Bytes > 10*per {
		t.Errorf("history costs %d; want at most the budget %d", st.Bytes, 10*per)
	}
	if st.Messages < 8 || st.Evicted != uint64(30-st.Messages) {
		t.Errorf("%d messages held, %d evicted; want about 10 held, the rest evicted", st.Messages, st.Evicted)
	}
	for i := 20; i < 30; i++ {
		ch := fmt.Sprintf("n%d", i)
		msgs, rec, _, _ := b.History(ctx, ch, 0)
		if i >= 30-st.Messages && (len(msgs) != 1 || !rec) {
			t.Errorf("newest channel %s: %d messages, recovered %v; want its message", ch, len(msgs), rec)
		}
	}
	// c0 and c1 lost everything: a client resuming from their start is
	// told it cannot recover, and the channels, idle, are forgotten.
	for _, ch := range []string{"c0", "c1"} {
		msgs, rec, latest, _ := b.History(ctx, ch, first[ch])
		if len(msgs) != 0 || rec {
			t.Errorf("%s after eviction: %d messages, recovered %v (latest %d); want none, false", ch, len(msgs), rec, latest)
		}
	}
	if st.Channels != st.Messages {
		t.Errorf("%d channels for %d messages; want the emptied ones forgotten", st.Channels, st.Messages)
	}
}

func TestMemoryBudgetKeepsSubscribedChannel(t *testing.T) {
	msg := data(500)
	b := newMemoryBrokerConfig(memoryConfig{size: 100, ttl: time.Minute, memory: 4 * (entryCost(msg) + channelCost("x0"))})
	defer b.Close()
	ctx := context.Background()
	var got []uint64
	stop := b.Subscribe("sub", func(m Message) { got = append(got, m.Offset) })
	defer stop()
	first, _ := b.Publish(ctx, "sub", msg)
	for i := range 20 {
		b.Publish(ctx, fmt.Sprintf("x%d", i), msg)
	}
	last, _ := b.Publish(ctx, "sub", msg)
	// The subscribed channel survives its history: offsets go on from
	// where they were, and live delivery is untouched.
	if last != first+1 || len(got) != 2 {
		t.Errorf("offsets %d then %d, delivered %v; want consecutive, both delivered", first, last, got)
	}
	if _, rec, _, _ := b.History(ctx, "sub", first-1); rec {
		t.Error("History from before the evicted message: recovered; want false")
	}
}

func TestMemoryBudgetStaleRecordsBounded(t *testing.T) {
	// A channel of one message, published to many times: every record
	// but the last goes stale, and the order must not grow with them.
	b := newMemoryBrokerConfig(memoryConfig{size: 1, ttl: time.Minute, memory: 1 << 30})
	defer b.Close()
	for range 20000 {
		b.Publish(context.Background(), "c", json.RawMessage(`1`))
	}
	b.qmu.Lock()
	n, held := len(b.order)-b.head, b.held
	b.qmu.Unlock()
	if held != 1 || n > 2*held+1100 {
		t.Errorf("%d records for %d message held; want stale records swept", n, held)
	}
}

func TestMemoryBrokerNoHistory(t *testing.T) {
	b := newMemoryBrokerConfig(memoryConfig{size: 0, ttl: time.Minute})
	defer b.Close()
	ctx := context.Background()
	var got int
	stop := b.Subscribe("c", func(Message) { got++ })
	first, _ := b.Publish(ctx, "c", json.RawMessage(`1`))
	second, _ := b.Publish(ctx, "c", json.RawMessage(`2`))
	if got != 2 || second != first+1 {
		t.Errorf("delivered %d, offsets %d %d; want 2, consecutive", got, first, second)
	}
	msgs, rec, latest, _ := b.History(ctx, "c", first)
	if len(msgs) != 0 || rec || latest != second {
		t.Errorf("History(first) = %d messages, %v, %d; want none, not recovered, latest %d", len(msgs), rec, latest, second)
	}
	if _, rec, _, _ := b.History(ctx, "c", second); !rec {
		t.Error("History(latest): not recovered; want recovered, there is nothing to miss")
	}
	stop()
	// Nothing held and nobody listening: a publish leaves no channel.
	b.Publish(ctx, "other", json.RawMessage(`3`))
	if st := b.stats(); st.Channels != 0 || st.Bytes != 0 {
		t.Errorf("after publishing with no history and no subscriber: %+v; want nothing held", st)
	}
}

func TestMemoryBrokerMaxChannels(t *testing.T) {
	// The idle channel published to least recently makes room, with its
	// history; a subscribed channel keeps its history however many
	// channels come and go.
	b := newMemoryBrokerConfig(memoryConfig{size: 10, ttl: time.Minute, maxChannels: 3})
	defer b.Close()
	ctx := context.Background()
	stopA := b.Subscribe("a", func(Message) {})
	defer stopA()
	aFirst, _ := b.Publish(ctx, "a", json.RawMessage(`1`))
	for _, ch := range []string{"c0", "c1", "c0", "c2"} {
		if _, err := b.Publish(ctx, ch, json.RawMessage(`1`)); err != nil {
			t.Fatalf("Publish(%s): %v", ch, err)
		}
	}
	for ch, alive := range map[string]bool{"c0": true, "c1": false, "c2": true} {
		if _, _, latest, _ := b.History(ctx, ch, 0); (latest != 0) != alive {
			t.Errorf("%s: latest %d; want it alive: %v (c0 was published to after c1)", ch, latest, alive)
		}
	}
	if st := b.stats(); st.Channels != 3 || st.Evicted != 1 {
		t.Errorf("%+v; want 3 channels, the message of c1 evicted", st)
	}
	for i := range 50 {
		b.Publish(ctx, fmt.Sprintf("x%d", i), json.RawMessage(`1`))
	}
	if msgs, rec, _, _ := b.History(ctx, "a", aFirst-1); len(msgs) != 1 || !rec {
		t.Errorf("subscribed channel a: %d messages, recovered %v; want its history intact", len(msgs), rec)
	}
	// Every channel subscribed: no room.
	stop0 := b.Subscribe("x48", func(Message) {})
	defer stop0()
	stop1 := b.Subscribe("x49", func(Message) {})
	if _, err := b.Publish(ctx, "new", json.RawMessage(`1`)); !errors.Is(err, ErrTooManyChannels) {
		t.Errorf("Publish to a new channel with every channel subscribed: %v; want ErrTooManyChannels", err)
	}
	if _, err := b.Publish(ctx, "x48", json.RawMessage(`2`)); err != nil {
		t.Errorf("Publish to an existing channel at the limit: %v", err)
	}
	// A channel left by its last subscriber is idle again.
	stop1()
	if _, err := b.Publish(ctx, "new", json.RawMessage(`1`)); err != nil {
		t.Errorf("Publish after x49 lost its subscriber: %v", err)
	}
	// Subscriptions are the gateway's to bound: never refused here.
	got := 0
	stop := b.Subscribe("s", func(Message) { got++ })
	defer stop()
	if _, err := b.Publish(ctx, "s", json.RawMessage(`1`)); err != nil || got != 1 {
		t.Errorf("Publish to a subscribed channel beyond the limit: %v, delivered %d", err, got)
	}
}

func TestLiveHistory(t *testing.T) {
	for _, tt := range []struct {
		memory int64
		gogc   int
		want   int64
	}{
		{256 << 20, 100, 128 << 20},
		{300, 50, 200},
		{300, -1, 300}, // GOGC=off
		{0, 100, 0},    // no bound
		{-1, 100, 0},
	} {
		if got := liveHistory(tt.memory, tt.gogc); got != tt.want {
			t.Errorf("liveHistory(%d, %d) = %d; want %d", tt.memory, tt.gogc, got, tt.want)
		}
	}
}

// TestMemoryBudgetConcurrent publishes, subscribes, reads history and
// sweeps at once under a small budget, then checks that the totals the
// budget is enforced on are exactly what the channels hold, and that each
// subscriber saw its channel's offsets in order.
func TestMemoryBudgetConcurrent(t *testing.T) {
	msg := data(200)
	b := newMemoryBrokerConfig(memoryConfig{size: 20, ttl: time.Minute, memory: 40 * entryCost(msg), maxChannels: 30})
	defer b.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 1500 {
				ch := fmt.Sprintf("c%d", (w*7+i)%40)
				if _, err := b.Publish(ctx, ch, msg); err != nil && !errors.Is(err, ErrTooManyChannels) {
					t.Errorf("Publish: %v", err)
					return
				}
				if i%50 == 0 {
					b.History(ctx, ch, 0)
				}
				if i%500 == 0 {
					b.sweepNow()
				}
			}
		})
	}
	for s := range 3 {
		wg.Go(func() {
			var last uint64
			stop := b.Subscribe(fmt.Sprintf("c%d", s), func(m Message) {
				if last != 0 && m.Offset != last+1 {
					t.Errorf("subscriber %d: offset %d after %d", s, m.Offset, last)
				}
				last = m.Offset
			})
			time.Sleep(20 * time.Millisecond)
			stop()
		})
	}
	wg.Wait()
	b.evict()

	var want tally
	b.mu.Lock()
	for name, c := range b.chans {
		c.mu.Lock()
		want.bytes += channelCost(name)
		for i := range c.held() {
			want.bytes += entryCost(c.at(i).data)
			want.held++
		}
		c.mu.Unlock()
	}
	b.mu.Unlock()
	b.qmu.Lock()
	got := tally{b.bytes, b.held}
	b.qmu.Unlock()
	if got != want {
		t.Errorf("totals %+v; the channels hold %+v", got, want)
	}
	if got.bytes > b.cfg.memory {
		t.Errorf("history costs %d after evict; budget %d", got.bytes, b.cfg.memory)
	}
}

// BenchmarkMemoryBrokerPublish: the cost of the budget's bookkeeping on
// a publish, to 1000 channels of 100 messages, with the budget off, far
// from full, and evicting on every publish.
func BenchmarkMemoryBrokerPublish(b *testing.B) {
	msg := data(1 << 10)
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("c%d", i)
	}
	for _, bc := range []struct {
		name   string
		memory int64
	}{{"off", 0}, {"room", 1 << 40}, {"evicting", 10 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			br := newMemoryBrokerConfig(memoryConfig{size: 100, ttl: time.Hour, memory: bc.memory})
			defer br.Close()
			ctx := context.Background()
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				br.Publish(ctx, names[i%len(names)], msg)
				i++
			}
		})
	}
}

func TestMemoryBrokerHistoryLimit(t *testing.T) {
	b := newMemoryBroker(5, time.Minute)
	defer b.Close()
	ctx := context.Background()
	var offs []uint64
	for i := range 8 { // 3 fall out of the history of 5
		off, _ := b.Publish(ctx, "c", json.RawMessage(strconv.Itoa(i)))
		offs = append(offs, off)
	}
	for _, tt := range []struct {
		since     uint64
		limit     int
		want      []uint64
		recovered bool
	}{
		{offs[3], 2, offs[4:6], true},
		{offs[3], -1, offs[4:], true},
		{offs[0], 2, offs[3:5], false}, // offs[1], offs[2] are gone
		{0, 10, offs[3:], false},
		{offs[5], 0, nil, true},
		{offs[7], 3, nil, true},
		{^uint64(0), 3, nil, false},
	} {
		msgs, rec, latest, err := b.HistoryLimit(ctx, "c", tt.since, tt.limit)
		var got []uint64
		for _, m := range msgs {
			got = append(got, m.Offset)
		}
		if err != nil || !slices.Equal(got, tt.want) || rec != tt.recovered || latest != offs[7] {
			t.Errorf("HistoryLimit(since %d, limit %d) = %v, %v, %d, %v; want %v, %v, %d",
				tt.since, tt.limit, got, rec, latest, err, tt.want, tt.recovered, offs[7])
		}
	}
}

// TestMemoryBrokerRoutesToGateway: with its own memory broker a gateway's
// subscriptions cost the broker nothing (no channel until a publish); a
// subscribed channel whose history has expired is kept, so its offsets
// go on without a gap for the subscriber; once the last subscriber
// leaves, a channel that holds nothing is forgotten.
func TestMemoryBrokerRoutesToGateway(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	ts := startGateway(t, Options{HistoryTTL: time.Minute})
	mb := ts.g.channels.mem
	if mb == nil {
		t.Fatal("the gateway's own memory broker does not route to it")
	}
	c := ts.connect(t, gwToken)
	c.sendJSON(`{"type":"subscribe","channel":"q"}`)
	c.expect("subscribed")
	if n := mb.stats().Channels; n != 0 {
		t.Fatalf("a channel with only a subscriber made %d broker channels; want 0", n)
	}
	first := ts.publishN(t, "q", 1, 1)
	c.expectMessages("q", first, 1, 1)
	if n := mb.stats().Channels; n != 1 {
		t.Fatalf("after a publish: %d broker channels; want 1", n)
	}
	// Expire the history as the sweeper would after the TTL.
	mb.mu.Lock()
	cutoff := time.Now().Add(time.Hour)
	for _, ch := range mb.chans {
		ch.mu.Lock()
		var tl tally
		ch.expire(cutoff, &tl)
		mb.settle(tl)
		ch.mu.Unlock()
	}
	mb.mu.Unlock()
	mb.sweepNow()
	if st := mb.stats(); st.Channels != 1 || st.Messages != 0 {
		t.Fatalf("a subscribed channel after its history expired: %+v; want it kept, empty", st)
	}
	// The next message follows the last one: no gap, no recovered:false.
	next := ts.publishN(t, "q", 2, 1)
	if next != first+1 {
		t.Fatalf("offset after expiry %d; want %d", next, first+1)
	}
	if got := c.barrier(); len(got) != 1 || got[0].Type != "message" || got[0].Offset != next {
		t.Fatalf("after expiry the subscriber got %v; want only the message at %d", got, next)
	}
	mb.mu.Lock()
	for _, ch := range mb.chans {
		ch.mu.Lock()
		var tl tally
		ch.expire(time.Now().Add(time.Hour), &tl)
		mb.settle(tl)
		ch.mu.Unlock()
	}
	mb.mu.Unlock()
	c.sendJSON(`{"type":"unsubscribe","channel":"q"}`)
	c.expectNothing() // the unsubscribe is done once this barrier returns
	waitFor(t, 5*time.Second, "the empty channel to be forgotten", func() bool { return mb.stats().Channels == 0 })
}
