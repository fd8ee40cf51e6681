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
	}
	reg.MustRegister(m.channels, m.subscriptions, m.published, m.publishFailures, m.deliveries, m.recoveryFailures)
	return m
}
