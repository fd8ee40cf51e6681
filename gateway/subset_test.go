package gateway

import "testing"

// TestSubSet: the set holds each subscriber once across the switch from
// slice to map, finds and removes any of them, and visits all.
func TestSubSet(t *testing.T) {
	var ss subSet
	sessions := make([]*session, 3*subSetSmall)
	for i := range sessions {
		sessions[i] = &session{id: uint64(i)}
		ss.add(&subscriber{s: sessions[i]})
		if ss.len() != i+1 {
			t.Fatalf("after %d adds: len %d", i+1, ss.len())
		}
	}
	for i, s := range sessions {
		if sub := ss.get(s); sub == nil || sub.s != s {
			t.Fatalf("get(session %d) = %v", i, sub)
		}
	}
	for i := 0; i < len(sessions); i += 2 {
		ss.remove(sessions[i])
	}
	seen := map[*session]bool{}
	ss.each(func(sub *subscriber) { seen[sub.s] = true })
	for i, s := range sessions {
		if want := i%2 == 1; seen[s] != want || (ss.get(s) != nil) != want {
			t.Errorf("session %d: visited %v, found %v; want %v", i, seen[s], ss.get(s) != nil, want)
		}
	}
	if ss.len() != len(sessions)/2 {
		t.Errorf("len %d; want %d", ss.len(), len(sessions)/2)
	}
	var small subSet
	a, b := &session{}, &session{}
	small.add(&subscriber{s: a})
	small.add(&subscriber{s: b})
	small.remove(a)
	small.remove(a) // absent: no change
	if small.len() != 1 || small.get(b) == nil || small.get(a) != nil {
		t.Errorf("small set after removes: len %d", small.len())
	}
	small.remove(b)
	if small.len() != 0 || small.more != nil || small.one != nil {
		t.Errorf("an emptied small set keeps %d entries, %+v", small.len(), small)
	}
	// One subscriber is held inline: nothing else is made for it.
	var one subSet
	c := &subscriber{s: a}
	one.add(c)
	if one.more != nil || one.get(a) != c || one.len() != 1 {
		t.Errorf("a set of one: %+v", one)
	}
	n := 0
	one.each(func(*subscriber) { n++ })
	one.remove(b) // absent
	if n != 1 || one.len() != 1 {
		t.Errorf("a set of one visited %d, len %d after removing another", n, one.len())
	}
}
