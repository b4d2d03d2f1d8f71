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

// Defaults of RedisCounterConfig.
const (
	DefaultCounterTimeout = time.Second
	DefaultRetryInterval  = time.Second
	DefaultCounterKeyTTL  = 24 * time.Hour
)

// RedisCounterConfig configures a RedisCounter.
type RedisCounterConfig struct {
	// Client is the shared Redis. Required.
	Client redis.Cmdable
	// Prefix starts every key: <prefix>:conns:{<key>}. Defaults to
	// DefaultPrefix.
	Prefix string
	// Node is this node's id: its field in every key's hash. Required.
	Node string
	// LiveNodes returns the ids of the nodes whose connections count (the
	// gateway's registry of nodes holding a lease); this node always counts.
	// A crashed node's connections stop counting once it leaves the list.
	// It is called on every Acquire and must be fast. nil counts every node
	// that ever wrote a field.
	LiveNodes func() []string
	// Timeout bounds each Redis round trip of Acquire and release.
	// Defaults to DefaultCounterTimeout.
	Timeout time.Duration
	// RetryInterval is how often releases that could not reach Redis are
	// tried again. Defaults to DefaultRetryInterval.
	RetryInterval time.Duration
	// KeyTTL is the expiry set on a key's hash at every Acquire: the hash of
	// a key nobody acquired for that long is dropped, with the fields of
	// nodes that crashed. Defaults to DefaultCounterKeyTTL.
	KeyTTL time.Duration
	// OnError, if set, is called with every Redis error (wrapping
	// ErrUnavailable). It must not block.
	OnError func(error)
}

// RedisCounter is a Counter held cluster-wide. Each key is a Redis hash with
// one field per node (<prefix>:conns:{<key>} <node> <count>); a key's count
// is the sum over the live nodes. Acquire is one round trip: a script
// sums the live fields and increments this node's only if the sum is under
// the cap, atomically, so racing nodes never both take the last place.
//
// When Redis cannot be reached, Acquire fails open to a per-node cap: the
// connection is admitted if this node holds fewer than max for the key (so
// at most N × max across N nodes), and the error is reported. Refusing every
// connection whenever Redis blips would turn a Redis incident into a full
// outage, while the per-node cap still bounds what one identity can hold.
type RedisCounter struct {
	client   redis.Cmdable
	prefix   string
	node     string
	live     func() []string
	timeout  time.Duration
	retry    time.Duration
	ttlMs    int64
	onError  func(error)
	local    *MemoryCounter // this node's connections per key, Redis or not
	errors   atomic.Uint64
	fallback atomic.Uint64

	mu      sync.Mutex
	pending map[string]int // releases Redis has not taken yet

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// CounterStats are a RedisCounter's counters.
type CounterStats struct {
	Keys            int    // keys with connections on this node
	Errors          uint64 // Redis errors (each also passed to OnError)
	Fallbacks       uint64 // Acquires decided by the per-node cap because Redis failed
	PendingReleases int    // releases waiting for Redis
}

// acquireScript: KEYS[1] hash, ARGV[1] node, ARGV[2] max (<= 0: no cap),
// ARGV[3] TTL in ms, ARGV[4:] live nodes (none: every field counts).
// Returns {admitted 0|1, count}.
var acquireScript = redis.NewScript(`
local key, node, max, ttl = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local n = 0
if #ARGV > 3 then
  local seen = {}
  for i = 4, #ARGV do
    local f = ARGV[i]
    if not seen[f] then
      seen[f] = true
      local v = tonumber(redis.call('HGET', key, f) or '0') or 0
      if v > 0 then n = n + v end
    end
  end
else
  for _, s in ipairs(redis.call('HVALS', key)) do
    local v = tonumber(s) or 0
    if v > 0 then n = n + v end
  end
end
if max > 0 and n >= max then
  return {0, n}
end
redis.call('HINCRBY', key, node, 1)
redis.call('PEXPIRE', key, ttl)
return {1, n + 1}
`)

// releaseScript: KEYS[1] hash, ARGV[1] node, ARGV[2] how many. A field at
// zero is deleted (and the hash with its last field).
var releaseScript = redis.NewScript(`
local v = redis.call('HINCRBY', KEYS[1], ARGV[1], -tonumber(ARGV[2]))
if v <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return v
`)

// NewRedisCounter returns a RedisCounter. It starts one goroutine that
// retries failed releases, stopped by Close.
func NewRedisCounter(cfg RedisCounterConfig) (*RedisCounter, error) {
	if cfg.Client == nil {
		return nil, errors.New("ratelimit: RedisCounterConfig.Client is required")
	}
	if cfg.Node == "" {
		return nil, errors.New("ratelimit: RedisCounterConfig.Node is required")
	}
	if cfg.Timeout < 0 || cfg.RetryInterval < 0 || cfg.KeyTTL < 0 {
		return nil, errors.New("ratelimit: negative timeout, interval or TTL")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultCounterTimeout
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.KeyTTL == 0 {
		cfg.KeyTTL = DefaultCounterKeyTTL
	}
	c := &RedisCounter{
		client:  cfg.Client,
		prefix:  cfg.Prefix,
		node:    cfg.Node,
		live:    cfg.LiveNodes,
		timeout: cfg.Timeout,
		retry:   cfg.RetryInterval,
		ttlMs:   max(1, cfg.KeyTTL.Milliseconds()),
		onError: cfg.OnError,
		local:   NewMemoryCounter(),
		pending: make(map[string]int),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.retryLoop()
	}()
	return c, nil
}

func (c *RedisCounter) hashKey(key string) string { return c.prefix + ":conns:{" + key + "}" }

func (c *RedisCounter) report(err error) {
	c.errors.Add(1)
	if c.onError != nil {
		c.onError(fmt.Errorf("%w: %w", ErrUnavailable, err))
	}
}

// Acquire counts a connection for key cluster-wide; see Counter and the
// type's doc for what happens when Redis fails. It returns ctx's error if
// ctx ends first, and ErrClosed after Close.
func (c *RedisCounter) Acquire(ctx context.Context, key string, max int) (func(), error) {
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	args := []any{c.node, max, c.ttlMs}
	if c.live != nil {
		args = append(args, c.node)
		for _, n := range c.live() {
			args = append(args, n)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	res, err := acquireScript.Run(rctx, c.client, []string{c.hashKey(key)}, args...).Int64Slice()
	cancel()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("acquire script answered %v", res)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c.report(fmt.Errorf("acquire %q: %w", key, err))
		c.fallback.Add(1)
		if !c.local.tryAdd(key, max) {
			return nil, ErrTooMany
		}
		// Redis never counted this one: give it back locally only.
		return once(func() { c.local.add(key, -1) }), nil
	}
	if res[0] == 0 {
		return nil, ErrTooMany
	}
	c.local.add(key, 1)
	return once(func() {
		c.local.add(key, -1)
		c.release(key, 1)
	}), nil
}

// release takes n connections of key off this node's field, or queues them
// for the retry loop when Redis fails.
func (c *RedisCounter) release(key string, n int) {
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	err := releaseScript.Run(ctx, c.client, []string{c.hashKey(key)}, c.node, n).Err()
	cancel()
	if err != nil {
		c.mu.Lock()
		c.pending[key] += n
		c.mu.Unlock()
		if c.ctx.Err() == nil {
			c.report(fmt.Errorf("release %q: %w", key, err))
		}
	}
}

func (c *RedisCounter) retryLoop() {
	tick := time.NewTicker(c.retry)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
			c.retryReleases()
		}
	}
}

// retryReleases sends the queued releases again, one script call each;
// the ones that fail stay queued.
func (c *RedisCounter) retryReleases() {
	c.mu.Lock()
	queued := c.pending
	if len(queued) == 0 {
		c.mu.Unlock()
		return
	}
	c.pending = make(map[string]int)
	c.mu.Unlock()
	for key, n := range queued {
		if c.ctx.Err() != nil {
			c.mu.Lock()
			c.pending[key] += n
			c.mu.Unlock()
			continue
		}
		c.release(key, n)
	}
}

// Count returns key's connections cluster-wide: the sum of the live nodes'
// fields (every field when LiveNodes is nil).
func (c *RedisCounter) Count(ctx context.Context, key string) (int, error) {
	fields, err := c.client.HGetAll(ctx, c.hashKey(key)).Result()
	if err != nil {
		return 0, fmt.Errorf("%w: count %q: %w", ErrUnavailable, key, err)
	}
	var live map[string]bool
	if c.live != nil {
		live = map[string]bool{c.node: true}
		for _, n := range c.live() {
			live[n] = true
		}
	}
	total := 0
	for node, v := range fields {
		if live != nil && !live[node] {
			continue
		}
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			total += n
		}
	}
	return total, nil
}

// Stats returns the counter's counters.
func (c *RedisCounter) Stats() CounterStats {
	c.mu.Lock()
	pending := 0
	for _, n := range c.pending {
		pending += n
	}
	c.mu.Unlock()
	return CounterStats{
		Keys:            c.local.Keys(),
		Errors:          c.errors.Load(),
		Fallbacks:       c.fallback.Load(),
		PendingReleases: pending,
	}
}

// Close stops the retry goroutine and waits for it. Releases still queued
// are dropped: this node's fields stay too high until its id leaves
// LiveNodes or KeyTTL passes. Releases called after Close update only the
// local count. It is safe to call more than once.
func (c *RedisCounter) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}
