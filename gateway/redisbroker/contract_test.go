package redisbroker_test

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/gateway/brokertest"
	"github.com/duplexws/duplex/gateway/redisbroker"
)

// contractBrokers returns a brokertest.NewFunc of brokers on url, each
// pair with keys of a prefix of its own, so the tests share one server.
func contractBrokers(url func(t *testing.T) string) brokertest.NewFunc {
	return func(t *testing.T, size int, ttl time.Duration) (a, b gateway.Broker) {
		var id [6]byte
		rand.Read(id[:])
		o := &redisbroker.Options{HistorySize: size, HistoryTTL: ttl, KeyPrefix: "t" + hex.EncodeToString(id[:]) + ":", Logger: quietLogger()}
		u := url(t)
		var brokers [2]*redisbroker.Broker
		for i := range brokers {
			br, err := redisbroker.New(u, o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { br.Close() })
			brokers[i] = br
		}
		for _, br := range brokers {
			waitFor(t, 10*time.Second, "the broker to reach redis", func() bool { return br.Healthy() == nil })
		}
		return brokers[0], brokers[1]
	}
}

func TestContract(t *testing.T) {
	brokertest.Run(t, contractBrokers(func(t *testing.T) string { return "redis://" + sharedRedis(t).addr() }))
}

func TestClusterContract(t *testing.T) {
	brokertest.Run(t, contractBrokers(func(t *testing.T) string { return sharedCluster(t).url }))
}
