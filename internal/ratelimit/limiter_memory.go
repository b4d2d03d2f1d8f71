package ratelimit

import (
	"sync"
	"time"
)

// MemoryLimiter is a Limiter for a single node: one token bucket per key,
// in memory.
type MemoryLimiter struct {
	t    *table // nil when unlimited
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// NewMemory returns a MemoryLimiter. It starts one sweeper goroutine
// (none when cfg.Rate is 0), stopped by Close.
func NewMemory(cfg Config) (*MemoryLimiter, error) {
	if err := cfg.init(); err != nil {
		return nil, err
	}
	l := &MemoryLimiter{stop: make(chan struct{})}
	if cfg.Rate == 0 {
		return l, nil
	}
	l.t = newTable(cfg, false)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.t.sweeper(cfg.SweepInterval, l.stop)
	}()
	return l, nil
}

// Allow charges cost to key; see Limiter.
func (l *MemoryLimiter) Allow(key string, cost float64) (bool, time.Duration) {
	if l.t == nil {
		return true, 0
	}
	return l.t.allow(key, cost, l.t.mono())
}

// Stats returns the limiter's counters.
func (l *MemoryLimiter) Stats() Stats {
	var st Stats
	if l.t != nil {
		l.t.stats(&st)
	}
	return st
}

// Close stops the sweeper and waits for it. It is safe to call more than
// once.
func (l *MemoryLimiter) Close() error {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	return nil
}
