package loadgen

import (
	"testing"
	"time"
)

func TestCentrifugoSentAt(t *testing.T) {
	tests := []struct {
		line string
		want time.Duration
		ok   bool
	}{
		{`{"push":{"channel":"bench/0","pub":{"data":{"t":1234,"p":"xx"},"offset":7}}}`, 1234, true},
		{`{"push":{"channel":"bench/0","join":{"info":{"client":"c"}}}}`, 0, false},
		{`{"id":2,"subscribe":{"recoverable":true,"epoch":"e","offset":7}}`, 0, false},
		{`{"push":{"channel":"bench/0","pub":{"data":{"x":1},"offset":8}}}`, 0, false},
		{`{}`, 0, false},
	}
	for _, tt := range tests {
		got, ok := centrifugoSentAt([]byte(tt.line))
		if got != tt.want || ok != tt.ok {
			t.Errorf("centrifugoSentAt(%s) = %v, %v; want %v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}
