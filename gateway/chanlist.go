package gateway

// chanList is the channels one session subscribes to. Most sessions have
// one, held inline; two or more move to a slice.
type chanList struct {
	one  *channel
	more *[]*channel // every channel, when there are two or more
}

func (l *chanList) len() int {
	switch {
	case l.more != nil:
		return len(*l.more)
	case l.one != nil:
		return 1
	}
	return 0
}

// at returns the i-th channel, 0 <= i < len.
func (l *chanList) at(i int) *channel {
	if l.more != nil {
		return (*l.more)[i]
	}
	return l.one
}

func (l *chanList) add(ch *channel) {
	switch {
	case l.more != nil:
		*l.more = append(*l.more, ch)
	case l.one == nil:
		l.one = ch
	default:
		more := make([]*channel, 2, 4)
		more[0], more[1] = l.one, ch
		l.one, l.more = nil, &more
	}
}

// removeAt removes the i-th channel; the last one takes its place.
func (l *chanList) removeAt(i int) {
	if l.more == nil {
		l.one = nil
		return
	}
	s := *l.more
	last := len(s) - 1
	s[i] = s[last]
	s[last] = nil
	s = s[:last]
	if len(s) == 1 {
		l.one, l.more = s[0], nil
		return
	}
	*l.more = s
}
