package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of RedisConfig.
const (
	DefaultPrefix       = "socket.io"
	DefaultSyncInterval = 100 * time.Millisecond
	DefaultWindow       = 10 * time.Second
	DefaultSyncTimeout  = time.Second
)

// RedisConfig configures a RedisLimiter.
type RedisConfig struct {
	// Config is every key's local token bucket.
	Config
	// Client is the shared Redis (a *redis.Client, *redis.ClusterClient or
	// any redis.UniversalClient). Required.
	Client redis.Cmdable
	// Prefix starts every key: <prefix>:rl:{<key>}:<window>. Defaults to
	// DefaultPrefix.
	Prefix string
	// SyncInterval is how often the cost spent on this node is sent to
	// Redis and the cluster-wide totals read back. It bounds the overshoot
	// (see the package doc). Defaults to DefaultSyncInterval.
	SyncInterval time.Duration
	// SyncTimeout bounds one sync. Defaults to DefaultSyncTimeout.
	SyncTimeout time.Duration
	// Window is the cluster-wide fixed window: a key may spend
	// Rate × Window + Burst per window across all nodes. Windows are
	// aligned on the wall clock (Unix time), so nodes need roughly
	// synchronised clocks. Defaults to DefaultWindow.
	Window time.Duration
	// OnError, if set, is called from the sync goroutine with every failed
	// sync (at most once per SyncInterval); the error wraps ErrUnavailable.
	// Limiting goes on locally meanwhile. It must not block.
	OnError func(error)
}

// RedisLimiter is a Limiter held cluster-wide: every node keeps the local
// token buckets of MemoryLimiter and, every SyncInterval, adds what its keys
// spent to per-key window counters in Redis with one pipeline; a key whose
// cluster-wide total exceeds Rate × Window + Burst is refused on this node
// until the window ends. Allow never waits for Redis.
type RedisLimiter struct {
	t         *table // nil when unlimited
	client    redis.Cmdable
	prefix    string
	window    time.Duration
	allowance float64
	interval  time.Duration
	timeout   time.Duration
	onError   func(error)

	syncs, syncErrors atomic.Uint64
	degraded          atomic.Bool

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewRedis returns a RedisLimiter. It starts a sweeper and a sync goroutine
// (none when cfg.Rate is 0), stopped by Close.
func NewRedis(cfg RedisConfig) (*RedisLimiter, error) {
	if err := cfg.Config.init(); err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		return nil, errors.New("ratelimit: RedisConfig.Client is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.SyncInterval < 0 || cfg.SyncTimeout < 0 || cfg.Window < 0 {
		return nil, errors.New("ratelimit: negative interval, timeout or window")
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.SyncTimeout == 0 {
		cfg.SyncTimeout = DefaultSyncTimeout
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	l := &RedisLimiter{
		client:    cfg.Client,
		prefix:    cfg.Prefix,
		window:    cfg.Window,
		allowance: cfg.Rate*cfg.Window.Seconds() + cfg.Burst,
		interval:  cfg.SyncInterval,
		timeout:   cfg.SyncTimeout,
		onError:   cfg.OnError,
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	if cfg.Rate == 0 {
		return l, nil
	}
	l.t = newTable(cfg.Config, true)
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		l.t.sweeper(cfg.SweepInterval, l.ctx.Done())
	}()
	go func() {
		defer l.wg.Done()
		l.syncLoop()
	}()
	return l, nil
}

// Allow charges cost to key; see Limiter. It reads only memory.
func (l *RedisLimiter) Allow(key string, cost float64) (bool, time.Duration) {
	if l.t == nil {
		return true, 0
	}
	return l.t.allow(key, cost, l.t.mono())
}

// Stats returns the limiter's counters.
func (l *RedisLimiter) Stats() Stats {
	var st Stats
	if l.t != nil {
		l.t.stats(&st)
	}
	st.Syncs = l.syncs.Load()
	st.SyncErrors = l.syncErrors.Load()
	st.Degraded = l.degraded.Load()
	return st
}

// Close stops the goroutines, abandoning a sync in flight, and waits for
// them. Cost not yet synced is not sent. It is safe to call more than once.
func (l *RedisLimiter) Close() error {
	l.cancel()
	l.wg.Wait()
	return nil
}

// windowKey is the Redis counter of key in window number w.
func (l *RedisLimiter) windowKey(key string, w int64) string {
	return l.prefix + ":rl:{" + key + "}:" + strconv.FormatInt(w, 10)
}

func (l *RedisLimiter) syncLoop() {
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	var batch []spent
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-tick.C:
			batch = l.sync(batch[:0])
		}
	}
}

// sync sends the cost spent since the last sync and blocks the keys whose
// cluster-wide total is over the allowance. It returns batch for reuse.
func (l *RedisLimiter) sync(batch []spent) []spent {
	batch = l.t.drainPending(batch)
	if len(batch) == 0 && !l.degraded.Load() {
		return batch
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
	defer cancel()
	wall := l.t.now()
	start := int64(wall.Sub(l.t.base)) // the same instant on the monotonic clock
	w := wall.UnixNano() / int64(l.window)
	var err error
	var totals []*redis.FloatCmd
	if len(batch) == 0 {
		// Degraded with nothing to send: find out whether Redis is back.
		err = l.client.Ping(ctx).Err()
	} else {
		pipe := l.client.Pipeline()
		totals = make([]*redis.FloatCmd, len(batch))
		for i, s := range batch {
			k := l.windowKey(s.key, w)
			totals[i] = pipe.IncrByFloat(ctx, k, s.cost)
			// Longer than a window so that a clock a little behind still
			// finds the counter.
			pipe.PExpire(ctx, k, 2*l.window)
		}
		_, err = pipe.Exec(ctx)
	}
	if err != nil {
		if l.ctx.Err() != nil {
			return batch // closing
		}
		// The batch's cost is dropped: the local buckets already charged
		// it, and Redis will not learn of it.
		l.syncErrors.Add(1)
		l.degraded.Store(true)
		if l.onError != nil {
			l.onError(fmt.Errorf("%w: sync of %d keys: %w", ErrUnavailable, len(batch), err))
		}
		return batch
	}
	l.syncs.Add(1)
	l.degraded.Store(false)
	now := l.t.mono()
	end := (w + 1) * int64(l.window)
	until := start + (end - wall.UnixNano())
	for i, s := range batch {
		if totals[i].Val() > l.allowance {
			l.t.block(s.key, until, now)
		}
	}
	return batch
}
