package gateway

import (
	"errors"
	"fmt"
	"math"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
)

// Defaults and bounds of the limits on channels, history and publishing
// (Options; issue 15).
const (
	DefaultHistoryMemory    = 256 << 20
	DefaultMaxChannels      = 100000
	DefaultMaxSubscriptions = 100000

	DefaultMaxConnectionSubscriptions = 1000
	DefaultPublishRate                = 100
	DefaultPublishBytesRate           = 1 << 20
	DefaultHistoryPageBytes           = 4 << 20

	// MaxHistorySize bounds HistorySize: a replay goes through one
	// client's send queue, and a larger history only costs memory.
	MaxHistorySize = 10000
)

// Errors sent to clients in {"type":"error"} messages when a limit is
// reached (docs/protocol.md).
var (
	errChannelLimit      = errors.New("channel limit reached")
	errSubscriptionLimit = errors.New("subscription limit reached")
	errPublishRate       = errors.New("publish rate exceeded")
)

// limitDefaults sets the zero limits to their defaults; withDefaults
// calls it.
func (o *Options) limitDefaults() {
	if o.HistoryMemory == 0 {
		o.HistoryMemory = DefaultHistoryMemory
	}
	if o.MaxChannels == 0 {
		o.MaxChannels = DefaultMaxChannels
	}
	if o.MaxSubscriptions == 0 {
		o.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if o.MaxConnectionSubscriptions <= 0 {
		o.MaxConnectionSubscriptions = DefaultMaxConnectionSubscriptions
	}
	if o.PublishRate == 0 {
		o.PublishRate = DefaultPublishRate
	}
	if o.PublishBytesRate == 0 {
		o.PublishBytesRate = DefaultPublishBytesRate
	}
	if o.HistoryPageBytes <= 0 {
		o.HistoryPageBytes = DefaultHistoryPageBytes
	}
}

// validateLimits reports limits out of range; Validate calls it.
func (o *Options) validateLimits() []error {
	var errs []error
	if o.HistorySize > MaxHistorySize {
		errs = append(errs, fmt.Errorf("--history-size %d: at most %d", o.HistorySize, MaxHistorySize))
	}
	// redisbroker.Options takes HistorySize 0 or less as its default, so
	// "no history" would silently keep 100 messages there: refuse it
	// until the Redis broker can keep none.
	if o.HistorySize < 0 && strings.HasPrefix(o.BrokerURL, "redis") {
		errs = append(errs, errors.New("--history-size 0 (no history) is not supported with a Redis broker yet"))
	}
	return errs
}

// memoryConfig returns the bounds of the in-memory broker for o, with
// defaults applied.
func (o *Options) memoryConfig() memoryConfig {
	return memoryConfig{
		size:        max(o.HistorySize, 0),
		ttl:         o.HistoryTTL,
		memory:      liveHistory(o.HistoryMemory, gcPercent()),
		maxChannels: max(o.MaxChannels, 0),
	}
}

// liveHistory is what the messages held may cost for the history to take
// memory bytes of the process (0: no bound). The garbage collector lets
// the heap grow to (1+GOGC/100) times what is live before it collects,
// and a history that keeps dropping its oldest messages is all the while
// leaving its old data behind for it: with the default GOGC=100, a
// history of 128 MiB of messages takes 256 MiB of the heap at its peak.
// Measured with internal/histmem: 800 messages of 1 MiB through a budget of
// 256 MiB counted on live bytes alone grew the resident set by 517 MiB.
func liveHistory(memory int64, gogc int) int64 {
	if memory <= 0 {
		return 0
	}
	if gogc <= 0 {
		return memory // GOGC=off: only a memory limit collects
	}
	return max(memory*100/int64(100+gogc), 1)
}

// gcPercent returns the garbage collector's GOGC setting, -1 for off.
func gcPercent() int {
	s := []rtmetrics.Sample{{Name: "/gc/gogc:percent"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 {
		return 100
	}
	v := s[0].Value.Uint64()
	if v > math.MaxInt32 {
		return -1
	}
	return int(v)
}

// historySizeValue is --history-size: 0 on the command line means no
// history, which Options spells as a negative HistorySize (its zero is
// the default).
type historySizeValue int

func (v *historySizeValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("want 0 (no history) to %d", MaxHistorySize)
	}
	if n == 0 {
		n = -1
	}
	*v = historySizeValue(n)
	return nil
}

func (v *historySizeValue) String() string {
	if v == nil {
		return ""
	}
	return strconv.Itoa(max(int(*v), 0))
}
