package gateway

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

func TestWindowCovers(t *testing.T) {
	// A channel whose offsets start after 1000, holding 1006..1010.
	w := Window{Base: 1000, Oldest: 1006, Latest: 1010}
	for _, tt := range []struct {
		since uint64
		want  bool
	}{
		{1010, true},  // up to date
		{1005, true},  // the next one, 1006, is held
		{1007, true},  //
		{1004, false}, // 1005 is gone
		{0, false},    // from the start: 1001 is gone
		{1000, false}, // the same
		{999, false},  // an offset of an earlier life of the channel
		{1011, false}, // beyond the latest: the channel was reset
	} {
		if got := w.Covers(tt.since); got != tt.want {
			t.Errorf("%+v.Covers(%d) = %v; want %v", w, tt.since, got, tt.want)
		}
	}
	full := Window{Base: 1000, Oldest: 1001, Latest: 1003}
	if !full.Covers(0) || !full.Covers(1000) {
		t.Errorf("%+v does not cover 0 and 1000; want it to, it holds the first message", full)
	}
	none := Window{}
	if !none.Covers(0) || none.Covers(5) {
		t.Errorf("a channel that does not exist: Covers(0) = %v, Covers(5) = %v; want true, false", none.Covers(0), none.Covers(5))
	}
	expired := Window{Base: 1000, Latest: 1010}
	if expired.Covers(1009) || !expired.Covers(1010) {
		t.Errorf("a channel with nothing held covers only its latest offset")
	}
}

func TestMemoryBrokerHistory(t *testing.T) {
	b := newMemoryBroker(10, time.Minute)
	defer b.Close()
	ctx := context.Background()
	var got []Message
	stop := b.Subscribe("c", func(m Message) { got = append(got, m) })
	var offs []uint64
	for i := range 25 {
		off, err := b.Publish(ctx, "c", json.RawMessage(strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
	}
	stop()
	for i, m := range got {
		if m.Offset != offs[i] || string(m.Data) != strconv.Itoa(i) {
			t.Fatalf("delivery %d = %+v; want offset %d", i, m, offs[i])
		}
		if i == 0 && m.Prev != 0 || i > 0 && m.Prev != offs[i-1] {
			t.Fatalf("delivery %d: Prev %d", i, m.Prev)
		}
		if i > 0 && m.Offset != offs[i-1]+1 {
			t.Fatalf("offsets not consecutive: %d after %d", m.Offset, offs[i-1])
		}
	}
	if offs[0] < uint64(time.Now().Add(-time.Minute).UnixMicro()) {
		t.Errorf("first offset %d; want it above the clock's microseconds", offs[0])
	}
	msgs, rec, latest, err := b.History(ctx, "c", offs[20])
	if err != nil || !rec || latest != offs[24] || len(msgs) != 4 || msgs[0].Offset != offs[21] || string(msgs[3].Data) != "24" {
		t.Errorf("History(since %d) = %v, %v, %d, %v", offs[20], msgs, rec, latest, err)
	}
	msgs, rec, _, _ = b.History(ctx, "c", offs[10])
	if rec || len(msgs) != 10 || msgs[0].Offset != offs[15] {
		t.Errorf("History(since %d) = %d messages, recovered %v; want the 10 held, recovered false", offs[10], len(msgs), rec)
	}
	msgs, rec, latest, _ = b.History(ctx, "c", ^uint64(0))
	if len(msgs) != 0 || rec || latest != offs[24] {
		t.Errorf("History(max) = %v, %v, %d; want only the latest", msgs, rec, latest)
	}
}

func TestMemoryBrokerExpiry(t *testing.T) {
	b := newMemoryBroker(100, 50*time.Millisecond)
	defer b.Close()
	ctx := context.Background()
	first, _ := b.Publish(ctx, "c", json.RawMessage(`1`))
	time.Sleep(80 * time.Millisecond)
	msgs, rec, latest, _ := b.History(ctx, "c", first-1)
	if len(msgs) != 0 || rec || latest != first {
		t.Errorf("after the TTL: %v, recovered %v, latest %d; want nothing held, not recovered", msgs, rec, latest)
	}
	// Once swept, the channel is forgotten, and its next life starts
	// above every offset of the last.
	b.sweepNow()
	if _, _, latest, _ := b.History(ctx, "c", 0); latest != 0 {
		t.Errorf("forgotten channel has latest %d; want 0", latest)
	}
	again, _ := b.Publish(ctx, "c", json.RawMessage(`2`))
	if again <= first+1 {
		t.Errorf("offset after the channel was forgotten: %d; want above %d", again, first)
	}
	if msgs, rec, _, _ := b.History(ctx, "c", first); rec || len(msgs) != 1 {
		t.Errorf("since an offset of the old life: %d messages, recovered %v; want 1, false", len(msgs), rec)
	}
	if msgs, rec, _, _ := b.History(ctx, "c", 0); !rec || len(msgs) != 1 || msgs[0].Prev != 0 {
		t.Errorf("since 0: %v, recovered %v; want the first message, recovered", msgs, rec)
	}
	b.Close()
	if _, err := b.Publish(ctx, "c", json.RawMessage(`3`)); err != ErrBrokerClosed {
		t.Errorf("Publish after Close: %v; want ErrBrokerClosed", err)
	}
}
