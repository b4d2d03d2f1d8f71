package ratelimit

import (
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"time"
)

// numShards is the number of independently locked parts of a table.
const numShards = 64

// evictSample is how many keys of a full shard are looked at to choose the
// one to evict.
const evictSample = 8

// bucket is one key's state. Times are nanoseconds on the table's monotonic
// clock (see table.mono).
type bucket struct {
	tokens       float64 // may be negative after a cost larger than the burst
	last         int64   // when tokens was last brought up to date
	pending      float64 // cost spent but not yet sent to Redis (Redis limiter only)
	blockedUntil int64   // cluster-wide window spent until then (Redis limiter only)
}

type shard struct {
	mu      sync.Mutex
	buckets map[string]bucket
	dirty   []string // keys whose pending went above 0 since the last drain

	allowed, denied, clusterDenied, swept, evicted uint64
	_                                              [64]byte // keep shards' locks on separate cache lines
}

// table is a sharded map of token buckets: the state and math both
// limiters share.
type table struct {
	rate     float64 // tokens per second, > 0
	burst    float64
	shardCap int
	track    bool // accumulate pending cost for a Redis sync
	now      func() time.Time
	base     time.Time
	seed     maphash.Seed
	shards   [numShards]shard
}

func newTable(cfg Config, track bool) *table {
	t := &table{
		rate:     cfg.Rate,
		burst:    cfg.Burst,
		shardCap: max(1, (cfg.MaxKeys+numShards-1)/numShards),
		track:    track,
		now:      cfg.Now,
		seed:     maphash.MakeSeed(),
	}
	t.base = t.now()
	for i := range t.shards {
		t.shards[i].buckets = make(map[string]bucket)
	}
	return t
}

// mono returns the table's clock reading in nanoseconds since it was made.
// time.Time.Sub uses the monotonic reading when both times have one.
func (t *table) mono() int64 { return int64(t.now().Sub(t.base)) }

func (t *table) shardOf(key string) *shard {
	return &t.shards[maphash.String(t.seed, key)%numShards]
}

// refill brings b's tokens up to date at now.
func (t *table) refill(b *bucket, now int64) {
	if elapsed := now - b.last; elapsed > 0 {
		// Multiply before dividing: exact for round rates and durations.
		b.tokens = math.Min(t.burst, b.tokens+float64(elapsed)*t.rate/1e9)
		b.last = now
	}
}

// allow is Limiter.Allow at time now.
func (t *table) allow(key string, cost float64, now int64) (bool, time.Duration) {
	s := t.shardOf(key)
	s.mu.Lock()
	b, ok := s.buckets[key]
	if ok {
		t.refill(&b, now)
	} else {
		if len(s.buckets) >= t.shardCap {
			t.evictLocked(s)
		}
		key = strings.Clone(key) // do not keep the caller's backing array alive
		b = bucket{tokens: t.burst, last: now}
	}
	if b.blockedUntil > now {
		s.denied++
		s.clusterDenied++
		s.buckets[key] = b
		s.mu.Unlock()
		return false, time.Duration(b.blockedUntil - now)
	}
	// A cost larger than the burst could never be paid in full: it is
	// admitted when the bucket is full and leaves it in debt.
	need := math.Min(cost, t.burst)
	if b.tokens >= need {
		b.tokens -= cost
		if t.track {
			if b.pending == 0 {
				s.dirty = append(s.dirty, key)
			}
			b.pending += cost
		}
		s.allowed++
		s.buckets[key] = b
		s.mu.Unlock()
		return true, 0
	}
	s.denied++
	s.buckets[key] = b
	s.mu.Unlock()
	return false, time.Duration(math.Ceil((need - b.tokens) / t.rate * 1e9))
}

// evictLocked drops the least recently used of a few keys of s (Go's map
// iteration starts at a random place).
func (t *table) evictLocked(s *shard) {
	var victim string
	oldest := int64(math.MaxInt64)
	n := 0
	for k, b := range s.buckets {
		if b.last < oldest {
			victim, oldest = k, b.last
		}
		if n++; n == evictSample {
			break
		}
	}
	if n > 0 {
		delete(s.buckets, victim)
		s.evicted++
	}
}

// sweep drops the buckets that are full again and hold nothing for Redis:
// forgetting them changes no decision.
func (t *table) sweep(now int64) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, b := range s.buckets {
			t.refill(&b, now)
			if b.tokens >= t.burst && b.pending == 0 && b.blockedUntil <= now {
				delete(s.buckets, k)
				s.swept++
			}
		}
		s.mu.Unlock()
	}
}

// spent is one key's cost to send to Redis.
type spent struct {
	key  string
	cost float64
}

// drainPending appends every key's pending cost to out and zeroes it. It
// visits the dirty keys only, not the whole table.
func (t *table) drainPending(out []spent) []spent {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, k := range s.dirty {
			// A key evicted since loses its pending cost.
			if b, ok := s.buckets[k]; ok && b.pending > 0 {
				out = append(out, spent{k, b.pending})
				b.pending = 0
				s.buckets[k] = b
			}
		}
		clear(s.dirty)
		s.dirty = s.dirty[:0]
		s.mu.Unlock()
	}
	return out
}

// block refuses key until the monotonic time until. A key evicted or swept
// since its cost was drained is tracked again.
func (t *table) block(key string, until, now int64) {
	s := t.shardOf(key)
	s.mu.Lock()
	b, ok := s.buckets[key]
	if !ok {
		if len(s.buckets) >= t.shardCap {
			t.evictLocked(s)
		}
		b = bucket{tokens: t.burst, last: now}
	}
	if until > b.blockedUntil {
		b.blockedUntil = until
	}
	s.buckets[key] = b
	s.mu.Unlock()
}

// stats fills the table's part of Stats.
func (t *table) stats(st *Stats) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		st.Keys += len(s.buckets)
		st.Allowed += s.allowed
		st.Denied += s.denied
		st.ClusterDenied += s.clusterDenied
		st.Swept += s.swept
		st.Evicted += s.evicted
		s.mu.Unlock()
	}
}

// sweeper calls sweep every interval until stop is closed.
func (t *table) sweeper(interval time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			t.sweep(t.mono())
		}
	}
}
