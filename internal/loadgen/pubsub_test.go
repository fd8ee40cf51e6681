package loadgen

import (
	"testing"
	"time"
)

func TestSentAt(t *testing.T) {
	// Sizes are exact for send times of 13 digits (1000s to 2.7h into
	// the run), a few bytes short before.
	data := publishData(1234567*time.Millisecond, padding(64))
	if len(data) != 64 {
		t.Errorf("publishData with padding(64) is %d bytes; want 64", len(data))
	}
	for _, tt := range []struct {
		msg  string
		want time.Duration
		ok   bool
	}{
		{`{"type":"message","channel":"bench/0","offset":7,"data":` + string(data) + `}`, 1234567 * time.Millisecond, true},
		{`{"type":"message","channel":"bench/0","offset":7,"data":{"t":5}}`, 5, true},
		{`{"type":"subscribed","channel":"bench/0","offset":7}`, 0, false},
		{`{"type":"message","channel":"bench/0","offset":7,"data":{"other":1}}`, 0, false},
		{`{"type":"message","data":{"t":"x"}}`, 0, false},
	} {
		got, ok := sentAt([]byte(tt.msg))
		if got != tt.want || ok != tt.ok {
			t.Errorf("sentAt(%s) = %v, %v; want %v, %v", tt.msg, got, ok, tt.want, tt.ok)
		}
	}
}
