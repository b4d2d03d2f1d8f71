package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/roomcast/roomcast/engineio"
)

// Every method here is a no-op on a nil *Metrics (and a nil *Transport).

// Connected counts a socket accepted into namespace ns over transport.
func (m *Metrics) Connected(transport, ns string) {
	if m == nil {
		return
	}
	m.Connects.WithLabelValues(ns).Inc()
	m.Connections.WithLabelValues(transport, ns).Inc()
}

// Disconnected counts a socket of namespace ns, on transport, that left
// for reason.
func (m *Metrics) Disconnected(reason engineio.Reason, transport, ns string) {
	if m == nil {
		return
	}
	m.Disconnects.WithLabelValues(string(reason)).Inc()
	m.Connections.WithLabelValues(transport, ns).Dec()
}

// Upgraded moves a socket of namespace ns from one transport to another.
func (m *Metrics) Upgraded(from, to, ns string) {
	if m == nil {
		return
	}
	m.Connections.WithLabelValues(from, ns).Dec()
	m.Connections.WithLabelValues(to, ns).Inc()
}

// ConnectRefused counts a namespace connection refused for reason ("auth",
// "middleware", "invalid namespace", "timeout", "queue", ...).
func (m *Metrics) ConnectRefused(reason string) {
	if m == nil {
		return
	}
	m.ConnectErrors.WithLabelValues(reason).Inc()
}

// ConnectionClosed counts the end of an Engine.IO connection for reason;
// only a slow consumer has a family of its own.
func (m *Metrics) ConnectionClosed(reason engineio.Reason) {
	if m == nil || reason != engineio.ReasonSlowConsumer {
		return
	}
	m.SlowConsumerDisconnect.Inc()
}

// VolatileDropped counts a volatile packet dropped because its client was
// not ready.
func (m *Metrics) VolatileDropped() {
	if m == nil {
		return
	}
	m.DroppedVolatile.Inc()
}

// Recovery counts a connection state recovery attempt by result
// (RecoveryResults).
func (m *Metrics) Recovery(result string) {
	if m == nil || result == "" {
		return
	}
	m.Recoveries.WithLabelValues(result).Inc()
}

// HandedOver counts a polling session moved with its websocket upgrade:
// in when this node took it over, out when it gave it away.
func (m *Metrics) HandedOver(in bool) {
	if m == nil {
		return
	}
	d := "out"
	if in {
		d = "in"
	}
	m.Handovers.WithLabelValues(d).Inc()
}

// APIRequest counts an HTTP API request by route and status code.
func (m *Metrics) APIRequest(route string, code int) {
	if m == nil {
		return
	}
	m.APIRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
}

// Broadcast records a broadcast handled on this node (remote: received
// from another node) that was handed to n sockets, published at published
// (zero: unknown). It does no label lookup: the adapters call it once per
// broadcast.
func (m *Metrics) Broadcast(remote bool, n int, published time.Time) {
	if m == nil {
		return
	}
	scope := 0
	if remote {
		scope = 1
	}
	m.broadcasts[scope].Inc()
	m.Deliveries.Add(float64(n))
	if !published.IsZero() {
		m.BroadcastLatency.Observe(time.Since(published).Seconds())
	}
}

// RedisCommand records the duration of a Redis command started at start,
// and its failure when err is not nil.
func (m *Metrics) RedisCommand(command string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.RedisCommandDuration.WithLabelValues(command).Observe(time.Since(start).Seconds())
	if err != nil {
		m.RedisErrors.WithLabelValues(command).Inc()
	}
}

// RedisOp records one kind of Redis operation (a command or an adapter
// operation: "publish", "subscribe", "xadd"...). Resolve it once with
// Metrics.RedisOp and keep it: recording then does no label lookup. Its
// methods are no-ops on a nil *RedisOp (no metrics).
type RedisOp struct {
	dur  prometheus.Observer
	errs prometheus.Counter
}

// RedisOp returns the recorder of operation op, or nil without metrics.
func (m *Metrics) RedisOp(op string) *RedisOp {
	if m == nil {
		return nil
	}
	return &RedisOp{dur: m.RedisCommandDuration.WithLabelValues(op), errs: m.RedisErrors.WithLabelValues(op)}
}

// Done records an operation started at start, and its failure when err is
// not nil.
func (o *RedisOp) Done(start time.Time, err error) {
	if o == nil {
		return
	}
	o.dur.Observe(time.Since(start).Seconds())
	if err != nil {
		o.errs.Inc()
	}
}

// Took records an operation that took d.
func (o *RedisOp) Took(d time.Duration) {
	if o != nil {
		o.dur.Observe(d.Seconds())
	}
}

// Failed counts a failure of the operation.
func (o *RedisOp) Failed() {
	if o != nil {
		o.errs.Inc()
	}
}

// RedisError counts a failed Redis operation.
func (m *Metrics) RedisError(operation string) {
	if m == nil {
		return
	}
	m.RedisErrors.WithLabelValues(operation).Inc()
}

// QueueAppended counts n durable messages appended to users' queues.
func (m *Metrics) QueueAppended(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.QueueAppends.Add(float64(n))
}

// QueueReplay counts n durable messages replayed to reconnecting clients.
func (m *Metrics) QueueReplay(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.QueueReplayed.Add(float64(n))
}

// SetNodes records the number of gateway nodes seen in the cluster.
func (m *Metrics) SetNodes(n int) {
	if m == nil {
		return
	}
	m.Nodes.Set(float64(n))
}

// Transport counts the packets of one transport; a connection keeps the one
// of its current transport so that counting a packet is one atomic add.
type Transport struct {
	sent, received prometheus.Counter
}

func (m *Metrics) newTransport(transport string) *Transport {
	return &Transport{
		sent:     m.PacketsSent.WithLabelValues(transport),
		received: m.PacketsReceived.WithLabelValues(transport),
	}
}

// Transport returns the packet counters of transport ("polling",
// "websocket"); nil on a nil *Metrics.
func (m *Metrics) Transport(transport string) *Transport {
	if m == nil {
		return nil
	}
	if t, ok := m.transports[transport]; ok {
		return t
	}
	return m.newTransport(transport)
}

// Sent counts a packet queued to a client.
func (t *Transport) Sent() {
	if t != nil {
		t.sent.Inc()
	}
}

// Received counts a packet received from a client.
func (t *Transport) Received() {
	if t != nil {
		t.received.Inc()
	}
}

// LimitRefused counts one refusal by limit, one of Limits.
func (m *Metrics) LimitRefused(limit string) {
	if m == nil {
		return
	}
	m.LimitRefusals.WithLabelValues(limit).Inc()
}
