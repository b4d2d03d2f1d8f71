package redisqueue

import (
	"time"

	"github.com/roomcast/roomcast/metrics"
)

// observeRedis records a command's duration and error; a no-op on a nil
// *metrics.Metrics.
func observeRedis(m *metrics.Metrics, command string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.RedisCommandDuration.WithLabelValues(command).Observe(time.Since(start).Seconds())
	if err != nil {
		m.RedisErrors.WithLabelValues(command).Inc()
	}
}
