package redial

import (
	"testing"
	"time"
)

func TestBackoffFullJitterCapped(t *testing.T) {
	c := New("ws://example.com/", &Options{MinDelay: 100 * time.Millisecond, MaxDelay: time.Second})
	for attempt, ceil := range []time.Duration{
		100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, time.Second, time.Second,
	} {
		var largest time.Duration
		for range 1000 {
			d := c.backoff(attempt)
			if d < 0 || d >= ceil {
				t.Fatalf("backoff(%d) = %v; want in [0, %v)", attempt, d, ceil)
			}
			largest = max(largest, d)
		}
		if largest < ceil/2 {
			t.Errorf("backoff(%d): largest of 1000 draws %v; want spread up to %v", attempt, largest, ceil)
		}
	}
	if d := c.backoff(1000); d >= time.Second {
		t.Errorf("backoff(1000) = %v; want below the cap", d)
	}
}
