package ratelimit

import (
	"context"
	"sync/atomic"
)

// Counter counts the connections each key holds and caps them.
type Counter interface {
	// Acquire counts one more connection for key unless it already holds
	// max (then ErrTooMany). max <= 0 means no cap; the connection is still
	// counted. release gives the connection back; calling it more than once
	// is harmless.
	Acquire(ctx context.Context, key string, max int) (release func(), err error)
	// Close stops the counter's goroutines.
	Close() error
}

var (
	_ Counter = (*MemoryCounter)(nil)
	_ Counter = (*RedisCounter)(nil)
)

// once returns a func that runs f the first time it is called only.
func once(f func()) func() {
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			f()
		}
	}
}
