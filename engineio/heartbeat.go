package engineio

import (
	"time"

	"github.com/roomcast/roomcast/internal/clock"
)

// A server's sessions have their heartbeats on one clock (internal/clock:
// one runtime timer) rather than a timer each: a session is filed under
// the time its heartbeat is next due — the next ping, or the pong's
// deadline — and the clock runs Conn.heartbeat then, which files it again.
// A closed session leaves the clock. A heartbeat runs up to one
// granularity after it was due; the deadlines it checks count from when
// things were due, as before.

// Granularity bounds of the heartbeat clock: a fiftieth of the shorter of
// the ping interval and the ping timeout, within these.
const (
	minHeartbeatGranularity = time.Millisecond
	maxHeartbeatGranularity = 200 * time.Millisecond
)

func newHeartbeatClock(cfg *Config) *clock.Clock[Conn] {
	gran := min(cfg.PingInterval, cfg.PingTimeout) / 50
	gran = min(max(gran, minHeartbeatGranularity), maxHeartbeatGranularity)
	return clock.New(gran, func(c *Conn) *clock.Entry { return &c.hbEntry }, (*Conn).heartbeat)
}
