// Package metrics defines Roomcast's Prometheus metric families.
//
// A Metrics value is created against a Registerer passed in by the caller (never
// the global registry) and handed to the engine, the Socket.IO server, the
// adapters and the queue. They record through its methods (m.Connected,
// m.Disconnected, ...), which are no-ops on a nil *Metrics: library users
// who do not want metrics pay nothing and call sites need no nil checks.
// Label values that are known up front are initialised in New so every
// family is present from the first scrape; the disconnect reasons are
// engineio.Reasons.
//
// The exported fields are the families themselves, for tests and for the
// adapter and queue packages until they record through methods too.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/roomcast/roomcast/engineio"
)

// RecoveryResults are the label values of roomcast_recoveries_total.
var RecoveryResults = []string{"recovered", "expired", "unknown", "error"}

// Metrics holds every Roomcast metric family.
type Metrics struct {
	Connections            *prometheus.GaugeVec   // transport, namespace
	Connects               *prometheus.CounterVec // namespace
	ConnectErrors          *prometheus.CounterVec // reason
	Disconnects            *prometheus.CounterVec // reason
	PacketsReceived        *prometheus.CounterVec // transport
	PacketsSent            *prometheus.CounterVec // transport
	Broadcasts             *prometheus.CounterVec // scope: local, remote
	Deliveries             prometheus.Counter
	BroadcastLatency       prometheus.Histogram
	RedisCommandDuration   *prometheus.HistogramVec // command
	RedisErrors            *prometheus.CounterVec   // operation
	QueueAppends           prometheus.Counter
	QueueReplayed          prometheus.Counter
	Recoveries             *prometheus.CounterVec // result
	Handovers              *prometheus.CounterVec // direction: in, out
	SlowConsumerDisconnect prometheus.Counter
	Nodes                  prometheus.Gauge
	DroppedVolatile        prometheus.Counter
	APIRequests            *prometheus.CounterVec // route, code
	LimitRefusals          *prometheus.CounterVec // limit

	transports map[string]*Transport // the per-transport packet counters
	broadcasts [2]prometheus.Counter // scope local, remote
}

// Limits are the label values of roomcast_limit_refusals_total: each limit
// of docs/SECURITY.md that refuses something.
var Limits = []string{
	"event_rate", "ip_event_rate", "connect_rate", "handshake_rate",
	"conns_per_user", "conns_per_ip",
	"dm_forbidden", "too_large", "queue_full", "durable_budget",
	"token_expired",
}

// Options tunes New.
type Options struct {
	// Namespaces are initialised as label values of the per-namespace families.
	// Defaults to {"/"}.
	Namespaces []string
	// ProcessCollectors adds the Go runtime and process collectors. Off by
	// default so tests can register several Metrics in one process.
	ProcessCollectors bool
}

// New creates the families and registers them with reg.
func New(reg prometheus.Registerer, opts Options) (*Metrics, error) {
	if len(opts.Namespaces) == 0 {
		opts.Namespaces = []string{"/"}
	}
	m := &Metrics{
		Connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roomcast_connections",
			Help: "Open Socket.IO connections by transport and namespace.",
		}, []string{"transport", "namespace"}),
		Connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_connects_total",
			Help: "Accepted namespace connections.",
		}, []string{"namespace"}),
		ConnectErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_connect_errors_total",
			Help: "Refused namespace connections by reason.",
		}, []string{"reason"}),
		Disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_disconnects_total",
			Help: "Socket disconnections by reason.",
		}, []string{"reason"}),
		PacketsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_packets_received_total",
			Help: "Socket.IO packets received from clients.",
		}, []string{"transport"}),
		PacketsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_packets_sent_total",
			Help: "Socket.IO packets queued to clients.",
		}, []string{"transport"}),
		Broadcasts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_broadcasts_total",
			Help: "Broadcasts handled, by origin scope (local: published on this node, remote: received from another node).",
		}, []string{"scope"}),
		Deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomcast_deliveries_total",
			Help: "Packets handed to sockets by broadcasts.",
		}),
		BroadcastLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "roomcast_broadcast_latency_seconds",
			Help:    "Time from publish to the last local socket's enqueue, per broadcast.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		RedisCommandDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "roomcast_redis_command_duration_seconds",
			Help:    "Duration of Redis commands issued by the adapter and queue.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"command"}),
		RedisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_redis_errors_total",
			Help: "Redis operations that failed.",
		}, []string{"operation"}),
		QueueAppends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomcast_queue_appends_total",
			Help: "Durable messages appended to per-user queues.",
		}),
		QueueReplayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomcast_queue_replayed_total",
			Help: "Durable messages replayed to reconnecting clients.",
		}),
		Recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_recoveries_total",
			Help: "Connection state recovery attempts by result.",
		}, []string{"result"}),
		Handovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_handovers_total",
			Help: "Polling sessions moved between nodes with their websocket upgrade, by direction (in: taken over here, out: given to another node).",
		}, []string{"direction"}),
		SlowConsumerDisconnect: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomcast_slow_consumer_disconnects_total",
			Help: "Connections closed because their send queue exceeded its byte cap.",
		}),
		Nodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roomcast_nodes",
			Help: "Gateway nodes seen in the cluster, this one included.",
		}),
		DroppedVolatile: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomcast_volatile_dropped_total",
			Help: "Volatile packets dropped because the connection was not ready.",
		}),
		LimitRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_limit_refusals_total",
			Help: "Requests refused by a limit of the trust boundary (docs/SECURITY.md), by limit.",
		}, []string{"limit"}),
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_api_requests_total",
			Help: "HTTP API requests by route and status code.",
		}, []string{"route", "code"}),
	}
	cs := []prometheus.Collector{
		m.Connections, m.Connects, m.ConnectErrors, m.Disconnects, m.PacketsReceived,
		m.PacketsSent, m.Broadcasts, m.Deliveries, m.BroadcastLatency,
		m.RedisCommandDuration, m.RedisErrors, m.QueueAppends, m.QueueReplayed,
		m.Recoveries, m.Handovers, m.SlowConsumerDisconnect, m.Nodes, m.DroppedVolatile, m.APIRequests, m.LimitRefusals,
	}
	if opts.ProcessCollectors {
		cs = append(cs,
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.transports = make(map[string]*Transport, 2)
	for _, tr := range []string{"polling", "websocket"} {
		m.transports[tr] = m.newTransport(tr)
		for _, ns := range opts.Namespaces {
			m.Connections.WithLabelValues(tr, ns)
		}
		m.PacketsReceived.WithLabelValues(tr)
		m.PacketsSent.WithLabelValues(tr)
	}
	for _, ns := range opts.Namespaces {
		m.Connects.WithLabelValues(ns)
	}
	for _, r := range engineio.Reasons() {
		m.Disconnects.WithLabelValues(string(r))
	}
	for _, r := range []string{"auth", "middleware", "invalid namespace", "timeout", "queue", "handover"} {
		m.ConnectErrors.WithLabelValues(r)
	}
	for i, s := range []string{"local", "remote"} {
		m.broadcasts[i] = m.Broadcasts.WithLabelValues(s)
	}
	for _, l := range Limits {
		m.LimitRefusals.WithLabelValues(l)
	}
	for _, r := range RecoveryResults {
		m.Recoveries.WithLabelValues(r)
	}
	for _, d := range []string{"in", "out"} {
		m.Handovers.WithLabelValues(d)
	}
	for _, c := range []string{"publish", "subscribe", "request", "xadd", "xrange"} {
		m.RedisCommandDuration.WithLabelValues(c)
		m.RedisErrors.WithLabelValues(c)
	}
	m.Nodes.Set(1)
	return m, nil
}
