package queue

import (
	"time"

	"github.com/roomcast/roomcast/metrics"
)

// Metric helpers: every one is a no-op on a nil *metrics.Metrics.

func countAppends(m *metrics.Metrics, n int) {
	if m != nil && n > 0 {
		m.QueueAppends.Add(float64(n))
	}
}

func countReplayed(m *metrics.Metrics, n int) {
	if m != nil && n > 0 {
		m.QueueReplayed.Add(float64(n))
	}
}

func observeRedis(m *metrics.Metrics, command string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.RedisCommandDuration.WithLabelValues(command).Observe(time.Since(start).Seconds())
	if err != nil {
		m.RedisErrors.WithLabelValues(command).Inc()
	}
}

// replayCounter is implemented by the Stores of this package so that Replay
// can count what it replays in the Store's metrics.
type replayCounter interface{ countReplayed(n int) }
