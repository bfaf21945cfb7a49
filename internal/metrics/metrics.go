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
	DropGELFIncomplete = "gelf_incomplete" // a chunked GELF message timed out or was evicted before all its chunks came
	DropGELFInvalid    = "gelf_invalid"    // a GELF message was not a valid record (bad chunk, compression, JSON or fields)
	DropGELFTooLarge   = "gelf_too_large"  // a GELF message was larger than the maximum message size
	DropMaxChannels    = "max_channels"    // a record for a new channel past --max-channels
	DropUDPKernel      = "udp_kernel"      // the kernel dropped UDP datagrams: the socket's receive buffer was full
)

// Reasons a syslog connection is refused, used as the "reason" label of
// Metrics.Rejected.
const (
	RejectTLS            = "tls"             // a TLS ClientHello on the plain syslog TCP port
	RejectHTTP           = "http"            // an HTTP request on the plain syslog TCP port
	RejectTLSHandshake   = "tls_handshake"   // a TLS handshake on the syslog TLS port failed or timed out
	RejectMaxConnections = "max_connections" // past --max-connections
	RejectMaxPerAddr     = "max_per_addr"    // past the connections allowed from one address
	RejectIdle           = "idle"            // closed after --idle-timeout without a byte
)

// Why a stream client's connection ended, used as the "reason" label of
// Metrics.ClientsClosed.
const (
	CloseClientGone = "client_gone" // the client closed or its request ended
	CloseSlow       = "slow"        // evicted: its queue stayed full, or a write timed out
	CloseStopping   = "stopping"    // the server shut down
	CloseBusClosed  = "bus_closed"  // the bus ended the subscription
	CloseError      = "error"       // any other write or stream error
	CloseMaxClients = "max_clients" // refused at connect: --max-clients reached
)

// Metrics are the daemon's counters and gauges.
type Metrics struct {
	LinesReceived *prometheus.CounterVec // by transport: tcp, tls, udp, gelf-tcp, gelf-udp
	BytesReceived *prometheus.CounterVec // by transport
	Parsed        *prometheus.CounterVec // syslog messages by the format they were read as
	ParseLibrary  *prometheus.CounterVec // of those, read by a go-syslog machine (no fast path took them), by format
	Truncated     prometheus.Counter     // frames cut at the maximum message size
	InvalidUTF8   prometheus.Counter     // messages whose invalid UTF-8 was replaced
	Published     prometheus.Counter     // records handed to the bus
	Dropped       *prometheus.CounterVec // by reason
	Connections   *prometheus.GaugeVec   // open syslog connections, by transport
	Rejected      *prometheus.CounterVec // syslog connections refused, by reason
	Clients       *prometheus.GaugeVec   // connected stream clients, by kind: ws, sse
	ClientsClosed *prometheus.CounterVec // stream clients closed or refused, by reason
}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		LinesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logviewer_ingest_lines_total", Help: "Syslog and GELF messages received, by transport.",
		}, []string{"transport"}),
		BytesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logviewer_ingest_bytes_total", Help: "Syslog and GELF bytes received, by transport.",
		}, []string{"transport"}),
		Parsed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logviewer_ingest_parsed_total", Help: "Syslog messages by the format they were read as: rfc5424, rfc3164, headerless, raw.",
		}, []string{"format"}),
		ParseLibrary: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logviewer_ingest_parse_library_total",
			Help: "Syslog messages that no hand-written fast path took, so that a go-syslog machine read them (rare and odd forms), by the format they were read as.",
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
			Name: "logviewer_ingest_connections", Help: "Open syslog and GELF connections, by transport.",
		}, []string{"transport"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logviewer_ingest_rejected_total", Help: "Syslog and GELF connections closed before (or without) a record of them, by reason.",
		}, []string{"reason"}),
		Clients: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "logviewer_stream_clients", Help: "Connected stream clients, by kind.",
		}, []string{"kind"}),
		ClientsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logviewer_stream_clients_closed_total", Help: "Stream clients disconnected or refused, by reason.",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.LinesReceived, m.BytesReceived, m.Parsed, m.ParseLibrary, m.Truncated, m.InvalidUTF8,
		m.Published, m.Dropped, m.Connections, m.Rejected, m.Clients, m.ClientsClosed)
	return m
}
