package gateway

// subSet is a channel's subscribers. Most channels of a large gateway have
// one (a user's own channel), so one subscriber is held inline; a second
// moves them to a small slice, and more than subSetSmall to a map, so that
// joining and leaving stay cheap for a channel with many.
type subSet struct {
	one  *subscriber // the only subscriber, when more is nil
	more *subMore
}

// subMore holds the subscribers of a channel with two or more.
type subMore struct {
	small []*subscriber
	big   map[*session]*subscriber
}

const subSetSmall = 8

func (ss *subSet) len() int {
	switch m := ss.more; {
	case m == nil && ss.one == nil:
		return 0
	case m == nil:
		return 1
	case m.big != nil:
		return len(m.big)
	default:
		return len(m.small)
	}
}

func (ss *subSet) get(s *session) *subscriber {
	m := ss.more
	if m == nil {
		if ss.one != nil && ss.one.s == s {
			return ss.one
		}
		return nil
	}
	if m.big != nil {
		return m.big[s]
	}
	for _, sub := range m.small {
		if sub.s == s {
			return sub
		}
	}
	return nil
}

// add adds sub, whose session is not in the set.
func (ss *subSet) add(sub *subscriber) {
	m := ss.more
	switch {
	case m == nil && ss.one == nil:
		ss.one = sub
		return
	case m == nil:
		m = &subMore{small: make([]*subscriber, 0, 2)}
		m.small = append(m.small, ss.one)
		ss.one, ss.more = nil, m
	}
	if m.big == nil && len(m.small) < subSetSmall {
		m.small = append(m.small, sub)
		return
	}
	if m.big == nil {
		m.big = make(map[*session]*subscriber, 2*subSetSmall)
		for _, x := range m.small {
			m.big[x.s] = x
		}
		m.small = nil
	}
	m.big[sub.s] = sub
}

func (ss *subSet) remove(s *session) {
	m := ss.more
	if m == nil {
		if ss.one != nil && ss.one.s == s {
			ss.one = nil
		}
		return
	}
	if m.big != nil {
		delete(m.big, s)
		return
	}
	for i, sub := range m.small {
		if sub.s == s {
			last := len(m.small) - 1
			m.small[i] = m.small[last]
			m.small[last] = nil
			m.small = m.small[:last]
			if last == 0 {
				ss.more = nil
			}
			return
		}
	}
}

// each calls f for every subscriber, in no particular order.
func (ss *subSet) each(f func(*subscriber)) {
	m := ss.more
	switch {
	case m == nil:
		if ss.one != nil {
			f(ss.one)
		}
	case m.big != nil:
		for _, sub := range m.big {
			f(sub)
		}
	default:
		for _, sub := range m.small {
			f(sub)
		}
	}
}
