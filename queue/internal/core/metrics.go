package core

import "github.com/roomcast/roomcast/metrics"

// CountAppends counts n stored messages; a no-op on a nil *metrics.Metrics.
func CountAppends(m *metrics.Metrics, n int) {
	if m != nil && n > 0 {
		m.QueueAppends.Add(float64(n))
	}
}

// Meter lets queue.Replay count what it replays in the metrics of the Store
// it replays from. A Store embeds one under an unexported alias
// (type meter = core.Meter), which adds nothing to the Store's API: Meter
// has no exported field or method.
type Meter struct{ m *metrics.Metrics }

// NewMeter returns the Meter of a Store recording into m (nil: none).
func NewMeter(m *metrics.Metrics) Meter { return Meter{m} }

func (m Meter) countReplayed(n int) {
	if m.m != nil && n > 0 {
		m.m.QueueReplayed.Add(float64(n))
	}
}

// CountReplayed counts n messages replayed from st, when st embeds a Meter.
func CountReplayed(st any, n int) {
	if c, ok := st.(interface{ countReplayed(int) }); ok {
		c.countReplayed(n)
	}
}
