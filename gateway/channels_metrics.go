package gateway

import "github.com/prometheus/client_golang/prometheus"

// channelMetrics are the Prometheus series of publish/subscribe, registered
// with the gateway's other series.
type channelMetrics struct {
	channels         prometheus.Gauge
	subscriptions    prometheus.Gauge
	published        *prometheus.CounterVec // by source: ws or api
	publishFailures  prometheus.Counter
	deliveries       prometheus.Counter
	recoveryFailures prometheus.Counter
	limited          *prometheus.CounterVec // by limit: subscriptions, channels, publish_rate
}

func newChannelMetrics(reg *prometheus.Registry) *channelMetrics {
	m := &channelMetrics{
		channels: newGauge(
			"duplex_channels",
			"Channels with subscribers on this gateway."),
		subscriptions: newGauge(
			"duplex_subscriptions",
			"Channel subscriptions of the connections open now."),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duplex_published_total",
			Help: "Messages published through this gateway, by source (ws: a client's publish; api: POST /api/publish).",
		}, []string{"source"}),
		publishFailures: newCounter(
			"duplex_publish_failures_total",
			"Publishes the broker refused or could not be reached for."),
		deliveries: newCounter(
			"duplex_deliveries_total",
			"Live channel messages queued to subscribers of this gateway (one per subscriber)."),
		recoveryFailures: newCounter(
			"duplex_recovery_failures_total",
			"Subscriptions told that messages were lost (recovered:false) after they started."),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duplex_limited_total",
			Help: "Requests refused for a limit, by limit: subscriptions (--max-subscriptions), channels (--max-channels), publish_rate (--publish-rate, --publish-bytes-rate).",
		}, []string{"limit"}),
	}
	reg.MustRegister(m.channels, m.subscriptions, m.published, m.publishFailures, m.deliveries, m.recoveryFailures, m.limited)
	return m
}

// registerMemoryBroker adds the series of the in-memory broker's history
// and its memory budget.
func registerMemoryBroker(reg *prometheus.Registry, b *memoryBroker) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "duplex_history_bytes",
			Help: "What the in-memory broker's history costs, counted against --history-memory.",
		}, func() float64 { return float64(b.stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "duplex_history_limit_bytes",
			Help: "What duplex_history_bytes may reach: --history-memory less the garbage collector's room (0: no limit).",
		}, func() float64 { return float64(b.cfg.memory) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "duplex_history_messages",
			Help: "Messages held in the in-memory broker's history.",
		}, func() float64 { return float64(b.stats().Messages) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "duplex_history_evicted_total",
			Help: "Messages dropped from history to keep within --history-memory (the oldest first) or --max-channels (with the idle channel they were in).",
		}, func() float64 { return float64(b.stats().Evicted) }),
	)
}
