package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/roomcast/roomcast/hook"
	"github.com/roomcast/roomcast/presence"
)

// memoryLifecycleSource is the lifecycle hook's source without Redis: the
// events this node decided (OnLifecycle), in a queue of at most max
// events waiting; beyond it the oldest are dropped, counted and logged.
// The batch being delivered is out of the queue: it is retried until it
// is delivered or the node stops (then it is lost, as the queue is).
type memoryLifecycleSource struct {
	max int
	m   *lifecycleMetrics
	log *slog.Logger

	mu       sync.Mutex
	queue    []hook.LifecycleEvent
	inflight int
	lastWarn time.Time
	wake     chan struct{} // one token: the queue is not empty
}

var _ lifecycleSource = (*memoryLifecycleSource)(nil)

func newMemoryLifecycleSource(max int, m *lifecycleMetrics, log *slog.Logger) *memoryLifecycleSource {
	return &memoryLifecycleSource{max: max, m: m, log: log, wake: make(chan struct{}, 1)}
}

// push is the OnLifecycle listener: it never blocks.
func (s *memoryLifecycleSource) push(events []presence.Event) {
	if len(events) == 0 {
		return
	}
	s.mu.Lock()
	for _, e := range events {
		s.queue = append(s.queue, lifecycleEvent(e))
	}
	dropped := len(s.queue) - s.max
	if dropped > 0 {
		s.queue = append(s.queue[:0], s.queue[dropped:]...)
		s.m.events.WithLabelValues(lifecycleDropped).Add(float64(dropped))
		if now := time.Now(); now.Sub(s.lastWarn) > 10*time.Second {
			s.lastWarn = now
			s.log.Warn("roomcast gateway: lifecycle hook queue full; dropping the oldest events", "dropped", dropped, "queue", s.max)
		}
	}
	s.m.pending.Set(float64(len(s.queue) + s.inflight))
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *memoryLifecycleSource) next(ctx context.Context, max int) (lifecycleBatch, error) {
	for {
		s.mu.Lock()
		if n := min(len(s.queue), max); n > 0 {
			b := lifecycleBatch{events: append([]hook.LifecycleEvent(nil), s.queue[:n]...)}
			s.queue = append(s.queue[:0], s.queue[n:]...)
			s.inflight = n
			s.mu.Unlock()
			return b, nil
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return lifecycleBatch{}, ctx.Err()
		case <-s.wake:
		}
	}
}

func (s *memoryLifecycleSource) ack(context.Context, lifecycleBatch) error {
	s.mu.Lock()
	s.inflight = 0
	s.m.pending.Set(float64(len(s.queue)))
	s.mu.Unlock()
	return nil
}

func (s *memoryLifecycleSource) keep(context.Context, lifecycleBatch) {}

func (s *memoryLifecycleSource) pending(context.Context) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.queue) + s.inflight), true
}

// stop logs what is lost: a node without Redis keeps its events in memory.
func (s *memoryLifecycleSource) stop() {
	s.mu.Lock()
	n := len(s.queue) + s.inflight
	s.queue, s.inflight = nil, 0
	s.mu.Unlock()
	if n > 0 {
		s.m.events.WithLabelValues(lifecycleDropped).Add(float64(n))
		s.log.Warn("roomcast gateway: lifecycle hook: events not delivered at shutdown (no --redis)", "events", n)
	}
}
