package gateway

import "time"

// NewMemoryBroker gives external tests (broker_contract_test.go) the
// default broker.
func NewMemoryBroker(historySize int, ttl time.Duration) Broker {
	return newMemoryBroker(historySize, ttl)
}
