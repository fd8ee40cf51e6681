package gateway_test

import (
	"testing"
	"time"

	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/gateway/brokertest"
)

// TestMemoryBrokerContract holds the default broker to the contract every
// broker keeps (gateway/brokertest). Both "gateways" share the one
// broker: it cannot be shared between processes.
func TestMemoryBrokerContract(t *testing.T) {
	brokertest.Run(t, func(t *testing.T, size int, ttl time.Duration) (a, b gateway.Broker) {
		m := gateway.NewMemoryBroker(size, ttl)
		t.Cleanup(func() { m.Close() })
		return m, m
	})
}
