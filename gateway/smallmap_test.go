package gateway

import (
	"maps"
	"testing"
)

// smallMap behaves as a Go map through its switch from slice to map, in
// adds, overwrites, deletes and iteration.
func TestSmallMap(t *testing.T) {
	var m smallMap[int, string]
	want := map[int]string{}
	check := func(step string) {
		t.Helper()
		if m.len() != len(want) {
			t.Fatalf("%s: len = %d; want %d", step, m.len(), len(want))
		}
		got := maps.Collect(m.all)
		if !maps.Equal(got, want) {
			t.Fatalf("%s: entries = %v; want %v", step, got, want)
		}
		for k, v := range want {
			if g, ok := m.get(k); !ok || g != v {
				t.Fatalf("%s: get(%d) = %q, %v; want %q", step, k, g, ok, v)
			}
		}
		if _, ok := m.get(-1); ok {
			t.Fatalf("%s: get(-1) found an entry", step)
		}
	}
	check("empty")
	for i := range 3 * smallMapMax {
		m.set(i, "a")
		want[i] = "a"
		m.set(i, "b") // overwrite
		want[i] = "b"
		check("after set")
		if small := i < smallMapMax; small != (m.big == nil) {
			t.Fatalf("%d entries: big = %v", i+1, m.big != nil)
		}
	}
	for i := 0; i < 3*smallMapMax; i += 2 {
		m.del(i)
		delete(want, i)
		check("after del")
	}
	m.del(-1)
	check("after del of a missing key")

	var s smallMap[string, bool]
	s.set("x", true)
	s.del("x")
	if s.small != nil || s.len() != 0 {
		t.Fatalf("emptied small map keeps %v", s.small)
	}
}
