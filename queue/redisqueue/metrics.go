package redisqueue

import (
	"time"

	"github.com/roomcast/roomcast/metrics"
)

// observeRedis records a command's duration and error; a no-op on a nil
// *metrics.Metrics.
func observeRedis(m *metrics.Metrics, command string, start time.Time, err error) {
	m.RedisCommand(command, start, err)
}
