package gateway

import (
	"net/http"
	"strconv"

	"github.com/duplexws/duplex"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Prometheus series of one Gateway. Each Gateway has its
// own registry, so several can live in one process (tests do) and a user
// mounting the gateway keeps the default registry for their own series.
// Children of labelled vectors that every message touches are resolved
// once, here, rather than per message.
type metrics struct {
	reg *prometheus.Registry

	connections      prometheus.Gauge
	connectionsTotal prometheus.Counter
	messagesIn       prometheus.Counter
	messagesOut      prometheus.Counter
	bytesIn          prometheus.Counter
	bytesOut         prometheus.Counter
	authFailures     *prometheus.CounterVec // by reason
	refusals         *prometheus.CounterVec // by HTTP status
	closes           *prometheus.CounterVec // by close code
	pingRTT          prometheus.Histogram
	pongTimeouts     prometheus.Counter
	slowConsumers    prometheus.Counter
	queueDrops       prometheus.Counter

	// Issue 15: bounds on what clients without credentials can take.
	httpConnections prometheus.Gauge   // non-WebSocket connections (LimitListener)
	httpEvicted     prometheus.Counter // closed to make room for a new one
	httpRefused     prometheus.Counter // refused: every connection was busy
	authRateLimited prometheus.Counter // 429s for too many failed authentications
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.connections = newGauge(
		"duplex_connections",
		"WebSocket connections open now.")
	m.connectionsTotal = newCounter(
		"duplex_connections_total",
		"WebSocket connections accepted.")
	messages := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "duplex_messages_total",
		Help: "WebSocket data messages, by direction (in: from clients).",
	}, []string{"direction"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "duplex_message_bytes_total",
		Help: "Payload bytes of WebSocket data messages, uncompressed, by direction.",
	}, []string{"direction"})
	m.messagesIn, m.messagesOut = messages.WithLabelValues("in"), messages.WithLabelValues("out")
	m.bytesIn, m.bytesOut = bytes.WithLabelValues("in"), bytes.WithLabelValues("out")
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "duplex_auth_failures_total",
		Help: "Requests refused for their credentials, by reason.",
	}, []string{"reason"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "duplex_handshake_refusals_total",
		Help: "WebSocket upgrades refused before the handshake, by HTTP status.",
	}, []string{"status"})
	m.closes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "duplex_closes_total",
		Help: "WebSocket connections ended, by close code (1006: lost without a close frame; 3xxx, 4xxx: application codes).",
	}, []string{"code"})
	m.pingRTT = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "duplex_ping_rtt_seconds",
		Help:    "Round trip of the server's heartbeat pings.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	m.pongTimeouts = newCounter(
		"duplex_pong_timeouts_total",
		"Connections closed because a pong did not come in time.")
	m.slowConsumers = newCounter(
		"duplex_slow_consumer_closes_total",
		"Connections closed with 1013 because their send queue was full.")
	m.queueDrops = newCounter(
		"duplex_send_queue_drops_total",
		"Outgoing messages dropped because their connection's send queue was full or closing.")
	m.httpConnections = newGauge(
		"duplex_http_connections",
		"Connections that are not WebSockets open now (counted with --max-http-connections).")
	m.httpEvicted = newCounter(
		"duplex_http_connections_evicted_total",
		"Idle HTTP connections closed to make room for a new one (--max-http-connections reached).")
	m.httpRefused = newCounter(
		"duplex_http_connections_refused_total",
		"New connections refused with 503 because every HTTP connection was busy with a request.")
	m.authRateLimited = newCounter(
		"duplex_auth_rate_limited_total",
		"Requests refused with 429 because their address failed authentication too often (--auth-failure-limit).")
	for _, c := range []prometheus.Collector{
		m.httpConnections, m.httpEvicted, m.httpRefused, m.authRateLimited,
		m.connections, m.connectionsTotal, messages, bytes, m.authFailures,
		m.refusals, m.closes, m.pingRTT, m.pongTimeouts, m.slowConsumers, m.queueDrops,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		f(c)
	}
	// Series that are zero until something goes wrong are still listed,
	// so dashboards and alerts see them from the start.
	for _, r := range []string{reasonMissing, reasonInvalidToken, reasonExpired, reasonNotYetValid, reasonInvalidBasic, reasonUnsupportedAlg} {
		m.authFailures.WithLabelValues(r)
	}
	for _, s := range []int{400, 401, 403, 405, 426, 429, 503} {
		m.refusals.WithLabelValues(strconv.Itoa(s))
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *metrics) refused(status int) {
	m.refusals.WithLabelValues(strconv.Itoa(status)).Inc()
}

// closed counts a connection's end. Application codes are grouped so a
// client cannot create a series per code it makes up.
func (m *metrics) closed(code duplex.StatusCode) {
	var label string
	switch {
	case code >= 3000 && code < 4000:
		label = "3xxx"
	case code >= 4000 && code < 5000:
		label = "4xxx"
	case code >= 1000 && code < 1016:
		label = strconv.Itoa(int(code))
	default:
		label = "other"
	}
	m.closes.WithLabelValues(label).Inc()
}

func newGauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

func newCounter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}
