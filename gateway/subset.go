package gateway

// subSet is the set of a channel's subscribers: a slice while it is small,
// as most channels are (one user's, one room's), and a map past
// subSetSmall, so that a channel of 100,000 subscribers still adds and
// removes one in constant time.
type subSet struct {
	small []*subscriber
	big   map[*session]*subscriber
}

const subSetSmall = 8

func (ss *subSet) len() int {
	if ss.big != nil {
		return len(ss.big)
	}
	return len(ss.small)
}

func (ss *subSet) get(s *session) *subscriber {
	if ss.big != nil {
		return ss.big[s]
	}
	for _, sub := range ss.small {
		if sub.s == s {
			return sub
		}
	}
	return nil
}

// add adds sub, whose session is not in the set.
func (ss *subSet) add(sub *subscriber) {
	if ss.big == nil && len(ss.small) < subSetSmall {
		ss.small = append(ss.small, sub)
		return
	}
	if ss.big == nil {
		ss.big = make(map[*session]*subscriber, 2*subSetSmall)
		for _, x := range ss.small {
			ss.big[x.s] = x
		}
		ss.small = nil
	}
	ss.big[sub.s] = sub
}

func (ss *subSet) remove(s *session) {
	if ss.big != nil {
		delete(ss.big, s)
		return
	}
	for i, sub := range ss.small {
		if sub.s == s {
			last := len(ss.small) - 1
			ss.small[i] = ss.small[last]
			ss.small[last] = nil
			ss.small = ss.small[:last]
			if last == 0 {
				ss.small = nil
			}
			return
		}
	}
}

// each calls f for every subscriber, in no particular order.
func (ss *subSet) each(f func(*subscriber)) {
	if ss.big != nil {
		for _, sub := range ss.big {
			f(sub)
		}
		return
	}
	for _, sub := range ss.small {
		f(sub)
	}
}
