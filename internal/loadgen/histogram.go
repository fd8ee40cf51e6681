package loadgen

import (
	"math/bits"
	"time"
)

// Histogram counts durations in log-linear buckets, like HdrHistogram with
// two significant decimal digits: values below 128ns get a bucket each, and
// every power of two above that is split into 64 equal buckets, so any
// reported value is within 1/64 (1.6%) of a recorded one. Recording is a
// few instructions and never allocates; the zero value is ready to use.
// A Histogram is not safe for concurrent use: keep one per goroutine and
// Merge them.
type Histogram struct {
	counts [numBuckets]uint64
	total  uint64
	sum    uint64 // nanoseconds
	min    uint64
	max    uint64
}

const (
	subBits    = 7
	subCount   = 1 << subBits // buckets below 128ns, one per nanosecond
	subHalf    = subCount / 2 // buckets per power of two above that
	numBuckets = (64-subBits)*subHalf + subCount
)

// bucketOf maps v to its bucket: v itself below subCount, else the top
// subBits bits of v, offset by 64 buckets per extra bit.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits
	return e*subHalf + int(v>>e)
}

// bucketRange returns the smallest and largest values of bucket b.
func bucketRange(b int) (lo, hi uint64) {
	if b < subCount {
		return uint64(b), uint64(b)
	}
	e := b/subHalf - 1
	m := uint64(b%subHalf + subHalf)
	return m << e, (m+1)<<e - 1
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketOf(v)]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
	h.sum += v
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.total += o.total
	h.sum += o.sum
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Max returns the largest recorded value exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min returns the smallest recorded value exactly.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean returns the exact mean of the recorded values.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / h.total)
}

// Quantile returns the value at or below which a fraction q of the recorded
// values fall (q in [0, 1]), as the highest value of its bucket, clamped to
// the recorded range: the same convention as HdrHistogram, so p99 never
// reads better than the truth by more than the bucket width.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(b)
			hi = min(max(hi, h.min), h.max)
			return time.Duration(hi)
		}
	}
	return time.Duration(h.max)
}
