package engineio

import (
	"sync"
	"time"
)

// heartbeatClock drives the heartbeats of a server's sessions from one
// runtime timer rather than one per session: each session is filed under
// the tick (a multiple of the clock's granularity since its base) at or
// after the time its heartbeat is next due — the next ping, or the pong's
// deadline — and when the timer reaches a tick, the sessions filed up to
// it run their heartbeat, which files them again. A session is filed
// under one tick at most (filing it again moves it), and leaves the clock
// when it ends, so the clock holds nothing of a closed session. A
// heartbeat runs up to one granularity after it was due; the deadlines it
// checks count from when things were due, as before.
type heartbeatClock struct {
	gran time.Duration
	base time.Time

	mu      sync.Mutex
	ticks   map[int64][]*Conn // by tick; a Conn's hbTick and hbIdx say where it is
	timer   *time.Timer
	armed   int64 // the tick the timer is set for; 0: none
	pending []*Conn
}

// Granularity bounds of a heartbeat clock: a fiftieth of the shorter of the
// ping interval and the ping timeout, within these.
const (
	minHeartbeatGranularity = time.Millisecond
	maxHeartbeatGranularity = 200 * time.Millisecond
)

func newHeartbeatClock(cfg *Config) *heartbeatClock {
	gran := min(cfg.PingInterval, cfg.PingTimeout) / 50
	gran = min(max(gran, minHeartbeatGranularity), maxHeartbeatGranularity)
	return &heartbeatClock{gran: gran, base: time.Now(), ticks: make(map[int64][]*Conn)}
}

// tickOf is the first tick at or after t.
func (k *heartbeatClock) tickOf(t time.Time) int64 {
	n := int64((t.Sub(k.base) + k.gran - 1) / k.gran)
	return max(n, 1)
}

// schedule files c for a heartbeat at due (moving it if it was filed).
// Called with c.mu held.
func (k *heartbeatClock) schedule(c *Conn, due time.Time) {
	n := k.tickOf(due)
	k.mu.Lock()
	defer k.mu.Unlock()
	if c.hbTick == n {
		return
	}
	k.removeLocked(c)
	k.ticks[n] = append(k.ticks[n], c)
	c.hbTick, c.hbIdx = n, len(k.ticks[n])-1
	if k.armed == 0 || n < k.armed {
		k.armLocked(n)
	}
}

// unschedule takes c off the clock (its session ended).
func (k *heartbeatClock) unschedule(c *Conn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.removeLocked(c)
	if len(k.ticks) == 0 && k.timer != nil {
		k.timer.Stop()
		k.armed = 0
	}
}

func (k *heartbeatClock) removeLocked(c *Conn) {
	if c.hbTick == 0 {
		return
	}
	cs := k.ticks[c.hbTick]
	last := len(cs) - 1
	if moved := cs[last]; moved != c {
		cs[c.hbIdx] = moved
		moved.hbIdx = c.hbIdx
	}
	cs[last] = nil
	if last == 0 {
		delete(k.ticks, c.hbTick)
	} else {
		k.ticks[c.hbTick] = cs[:last]
	}
	c.hbTick, c.hbIdx = 0, 0
}

func (k *heartbeatClock) armLocked(n int64) {
	k.armed = n
	d := time.Until(k.base.Add(time.Duration(n) * k.gran))
	if k.timer == nil {
		k.timer = time.AfterFunc(d, k.fire)
	} else {
		k.timer.Reset(d)
	}
}

// fire runs on the timer's goroutine: the sessions filed up to now run
// their heartbeat, one after the other (a heartbeat queues a ping or
// closes a session, and never writes).
func (k *heartbeatClock) fire() {
	last := int64(time.Since(k.base) / k.gran)
	k.mu.Lock()
	due := k.pending[:0]
	next := int64(0)
	for n, cs := range k.ticks {
		if n > last {
			if next == 0 || n < next {
				next = n
			}
			continue
		}
		for _, c := range cs {
			c.hbTick, c.hbIdx = 0, 0
		}
		due = append(due, cs...)
		delete(k.ticks, n)
	}
	k.armed = 0
	if next != 0 {
		k.armLocked(next)
	}
	k.pending = nil // in use until the heartbeats ran
	k.mu.Unlock()
	for i, c := range due {
		c.heartbeat()
		due[i] = nil
	}
	k.mu.Lock()
	if cap(due) <= 1024 {
		k.pending = due[:0]
	}
	k.mu.Unlock()
}
