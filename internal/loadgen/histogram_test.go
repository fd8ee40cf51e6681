package loadgen

import (
	"math"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.50, 500 * time.Microsecond},
		{0.90, 900 * time.Microsecond},
		{0.99, 990 * time.Microsecond},
		{0.999, 999 * time.Microsecond},
		{1, 1000 * time.Microsecond},
		{0, 1 * time.Microsecond},
	}
	for _, tt := range tests {
		got := h.Quantile(tt.q)
		// A quantile reads as its bucket's highest value: never below the
		// truth, and above it by at most 1/64.
		if got < tt.want || float64(got) > float64(tt.want)*(1+1.0/64) {
			t.Errorf("Quantile(%v) = %v; want %v (+1/64)", tt.q, got, tt.want)
		}
	}
	if got, want := h.Count(), uint64(1000); got != want {
		t.Errorf("Count() = %d; want %d", got, want)
	}
	if got, want := h.Mean(), 500500*time.Nanosecond; got != want {
		t.Errorf("Mean() = %v; want %v", got, want)
	}
	if got, want := h.Min(), time.Microsecond; got != want {
		t.Errorf("Min() = %v; want %v", got, want)
	}
	if got, want := h.Max(), time.Millisecond; got != want {
		t.Errorf("Max() = %v; want %v", got, want)
	}
}

func TestHistogramSmallValuesExact(t *testing.T) {
	var h Histogram
	for _, v := range []time.Duration{3, 3, 3, 7, 100} {
		h.Record(v)
	}
	if got := h.Quantile(0.5); got != 3 {
		t.Errorf("Quantile(0.5) = %v; want 3ns", got)
	}
	if got := h.Quantile(0.8); got != 7 {
		t.Errorf("Quantile(0.8) = %v; want 7ns", got)
	}
	if got := h.Quantile(1); got != 100 {
		t.Errorf("Quantile(1) = %v; want 100ns", got)
	}
}

func TestHistogramEmptyAndNegative(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Errorf("empty histogram: p99 %v, mean %v, max %v; want zeros", h.Quantile(0.99), h.Mean(), h.Max())
	}
	h.Record(-time.Second)
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("after Record(-1s): Quantile(0.5) = %v; want 0", got)
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for i := range 2000 {
		d := time.Duration(i*i) * time.Nanosecond
		all.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	if m != all {
		t.Errorf("merging halves differs from recording all: p99 %v vs %v", m.Quantile(0.99), all.Quantile(0.99))
	}
}

// TestBucketsTile checks that the buckets cover every value once, in
// order, and are at most 1/64 of their value wide.
func TestBucketsTile(t *testing.T) {
	next := uint64(0)
	for b := range numBuckets {
		lo, hi := bucketRange(b)
		if lo != next {
			t.Fatalf("bucket %d starts at %d; want %d", b, lo, next)
		}
		if bucketOf(lo) != b || bucketOf(hi) != b {
			t.Fatalf("bucket %d = [%d, %d], but bucketOf gives %d and %d", b, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= subCount && float64(hi-lo+1) > float64(lo)/64 {
			t.Fatalf("bucket %d = [%d, %d] is wider than 1/64 of its start", b, lo, hi)
		}
		next = hi + 1
	}
	if next != 0 { // wrapped past math.MaxUint64
		t.Fatalf("buckets end at %d; want %d", next-1, uint64(math.MaxUint64))
	}
}
