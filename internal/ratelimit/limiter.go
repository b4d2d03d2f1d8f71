package ratelimit

import (
	"fmt"
	"math"
	"time"
)

// Limiter admits or refuses work charged to an identity key.
//
// Allow never blocks on the network: both implementations decide from
// memory. A rate of 0 means unlimited: Allow always returns true, 0.
type Limiter interface {
	// Allow charges cost tokens to key and reports whether it may proceed;
	// when it may not, retryAfter is how long until it could (a hint, not a
	// promise). A refused call is not charged.
	Allow(key string, cost float64) (ok bool, retryAfter time.Duration)
	// Stats returns the limiter's counters.
	Stats() Stats
	// Close stops the limiter's goroutines. Allow keeps working (from
	// memory only) after Close.
	Close() error
}

var (
	_ Limiter = (*MemoryLimiter)(nil)
	_ Limiter = (*RedisLimiter)(nil)
)

// Defaults of Config.
const (
	DefaultMaxKeys       = 1_000_000
	DefaultSweepInterval = 10 * time.Second
)

// Config is the token bucket every key gets.
type Config struct {
	// Rate is the number of tokens a key earns per second. 0 means
	// unlimited: Allow always succeeds and nothing is tracked. Negative is
	// an error.
	Rate float64
	// Burst is the bucket's size: what an idle key may spend at once.
	// Defaults to max(Rate, 1) (one second's worth).
	Burst float64
	// MaxKeys caps the keys tracked at once. When a shard is full, a new key
	// evicts the least recently used of a few sampled keys of its shard
	// (Stats.Evicted counts them); the evicted key starts again from a full
	// bucket if it comes back. Memory stays bounded and no key is ever
	// refused or left unlimited because the table is full. Defaults to
	// DefaultMaxKeys.
	MaxKeys int
	// SweepInterval is how often buckets that are full again (idle) are
	// dropped. Defaults to DefaultSweepInterval.
	SweepInterval time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

func (c *Config) init() error {
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		return fmt.Errorf("ratelimit: invalid rate %v", c.Rate)
	}
	if c.Burst < 0 || math.IsNaN(c.Burst) || math.IsInf(c.Burst, 0) {
		return fmt.Errorf("ratelimit: invalid burst %v", c.Burst)
	}
	if c.Burst == 0 {
		c.Burst = max(c.Rate, 1)
	}
	if c.MaxKeys < 0 {
		return fmt.Errorf("ratelimit: invalid max keys %d", c.MaxKeys)
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if c.SweepInterval < 0 {
		return fmt.Errorf("ratelimit: invalid sweep interval %v", c.SweepInterval)
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Stats are a limiter's counters since it was made. The gateway maps them
// to metrics.
type Stats struct {
	Keys          int    // keys tracked now
	Allowed       uint64 // Allow calls that returned true (unlimited limiters count nothing)
	Denied        uint64 // Allow calls that returned false, for any reason
	ClusterDenied uint64 // of Denied, those refused because the cluster-wide window was spent
	Swept         uint64 // idle keys dropped by the sweeper
	Evicted       uint64 // keys dropped at the MaxKeys cap
	Syncs         uint64 // successful syncs with Redis
	SyncErrors    uint64 // failed syncs with Redis
	Degraded      bool   // the last sync with Redis failed: limiting is local only
}
