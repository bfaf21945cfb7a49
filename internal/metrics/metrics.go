// Package metrics holds the Prometheus collectors every part of the daemon
// counts into. One Metrics is made per daemon and registered on its own
// registry, so tests and several daemons in one process never share state.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Reasons a record or line is dropped, used as the "reason" label.
const (
	DropSlowSubscriber = "slow_subscriber" // a subscriber's queue overflowed; oldest dropped
	DropBusBuffer      = "bus_buffer"      // the Redis bus buffer overflowed while Redis was away
	DropUDPBuffer      = "udp_read_error"  // a UDP datagram could not be read
	DropUDPKernel      = "udp_kernel"      // the kernel dropped UDP datagrams: the socket's receive buffer was full
)

// Metrics are the daemon's counters and gauges.
type Metrics struct {
	LinesReceived  *prometheus.CounterVec // by transport: tcp, udp
	BytesReceived  *prometheus.CounterVec // by transport
	ParseFallbacks *prometheus.CounterVec // by format used when RFC 5424 did not parse
	Truncated      prometheus.Counter     // frames cut at the maximum message size
	InvalidUTF8    prometheus.Counter     // messages whose invalid UTF-8 was replaced
	Published      prometheus.Counter     // records handed to the bus
	Dropped        *prometheus.CounterVec // by reason
	Connections    *prometheus.GaugeVec   // open syslog connections, by transport
	Clients        *prometheus.GaugeVec   // connected stream clients, by kind: ws, sse
}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		LinesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logviewer_ingest_lines_total", Help: "Syslog messages received, by transport.",
		}, []string{"transport"}),
		BytesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logviewer_ingest_bytes_total", Help: "Syslog bytes received, by transport.",
		}, []string{"transport"}),
		ParseFallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logviewer_ingest_parse_fallbacks_total", Help: "Messages that were not RFC 5424, by the format they were parsed as.",
		}, []string{"format"}),
		Truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "logviewer_ingest_truncated_total", Help: "Messages cut at the maximum message size.",
		}),
		InvalidUTF8: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "logviewer_ingest_invalid_utf8_total", Help: "Messages with invalid UTF-8 replaced by U+FFFD.",
		}),
		Published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "logviewer_published_total", Help: "Records handed to the bus.",
		}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logviewer_dropped_total", Help: "Records or lines dropped, by reason.",
		}, []string{"reason"}),
		Connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "logviewer_ingest_connections", Help: "Open syslog connections, by transport.",
		}, []string{"transport"}),
		Clients: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "logviewer_stream_clients", Help: "Connected stream clients, by kind.",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.LinesReceived, m.BytesReceived, m.ParseFallbacks, m.Truncated, m.InvalidUTF8,
		m.Published, m.Dropped, m.Connections, m.Clients)
	return m
}
