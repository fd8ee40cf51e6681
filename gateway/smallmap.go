package gateway

// smallMap is a map that is a slice while it holds few entries, as most
// of presence's do (one session's channels, one channel's members), and a
// Go map past smallMapMax, so that a channel of 100,000 members still
// adds and removes one in constant time. A Go map costs a few hundred
// bytes even for one entry; an idle event session costs about 450 in all
// (docs/scaling.md). Its zero value is empty; it is not safe for
// concurrent use.
type smallMap[K comparable, V any] struct {
	small []smallEntry[K, V]
	big   map[K]V
}

type smallEntry[K comparable, V any] struct {
	k K
	v V
}

const smallMapMax = 8

func (m *smallMap[K, V]) len() int {
	if m.big != nil {
		return len(m.big)
	}
	return len(m.small)
}

func (m *smallMap[K, V]) get(k K) (V, bool) {
	if m.big != nil {
		v, ok := m.big[k]
		return v, ok
	}
	for i := range m.small {
		if m.small[i].k == k {
			return m.small[i].v, true
		}
	}
	var zero V
	return zero, false
}

func (m *smallMap[K, V]) set(k K, v V) {
	if m.big != nil {
		m.big[k] = v
		return
	}
	for i := range m.small {
		if m.small[i].k == k {
			m.small[i].v = v
			return
		}
	}
	if len(m.small) < smallMapMax {
		m.small = append(m.small, smallEntry[K, V]{k, v})
		return
	}
	m.big = make(map[K]V, 2*smallMapMax)
	for _, e := range m.small {
		m.big[e.k] = e.v
	}
	m.big[k] = v
	m.small = nil
}

func (m *smallMap[K, V]) del(k K) {
	if m.big != nil {
		delete(m.big, k)
		return
	}
	for i := range m.small {
		if m.small[i].k == k {
			last := len(m.small) - 1
			m.small[i] = m.small[last]
			m.small[last] = smallEntry[K, V]{}
			m.small = m.small[:last]
			if last == 0 {
				m.small = nil // an empty set keeps no array
			}
			return
		}
	}
}

// all iterates over the entries, in no particular order. The body must
// not change m.
func (m *smallMap[K, V]) all(yield func(K, V) bool) {
	if m.big != nil {
		for k, v := range m.big {
			if !yield(k, v) {
				return
			}
		}
		return
	}
	for _, e := range m.small {
		if !yield(e.k, e.v) {
			return
		}
	}
}
