package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/internal/leakcheck"
	"github.com/roomcast/roomcast/internal/redistest"
)

// counterFactory makes a fresh Counter and a way to read a key's count.
type counterFactory func(t *testing.T) (Counter, func(key string) int)

func memoryCounterFactory(t *testing.T) (Counter, func(string) int) {
	c := NewMemoryCounter()
	t.Cleanup(func() { _ = c.Close() })
	return c, c.Count
}

func redisCounterFactory(t *testing.T) (Counter, func(string) int) {
	srv := redistest.Start(t)
	c := newRedisCounter(t, RedisCounterConfig{Client: testClient(t, srv.Addr()), Prefix: uniquePrefix(), Node: "n1"})
	return c, func(key string) int {
		t.Helper()
		n, err := c.Count(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

func TestCounterContract(t *testing.T) {
	for name, factory := range map[string]counterFactory{"memory": memoryCounterFactory, "redis": redisCounterFactory} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c, count := factory(t)
			r1, err := c.Acquire(ctx, "user:alice", 2)
			if err != nil {
				t.Fatal(err)
			}
			r2, err := c.Acquire(ctx, "user:alice", 2)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Acquire(ctx, "user:alice", 2); !errors.Is(err, ErrTooMany) {
				t.Fatalf("third acquire with max 2: %v; want ErrTooMany", err)
			}
			if _, err := c.Acquire(ctx, "user:bob", 2); err != nil {
				t.Fatalf("another key: %v", err)
			}
			r1()
			r1() // idempotent
			r1()
			if n := count("user:alice"); n != 1 {
				t.Fatalf("count after releasing one (thrice) = %d; want 1", n)
			}
			r3, err := c.Acquire(ctx, "user:alice", 2)
			if err != nil {
				t.Fatalf("acquire after release: %v", err)
			}
			r2()
			r3()
			if n := count("user:alice"); n != 0 {
				t.Fatalf("count after releasing all = %d", n)
			}
			// max <= 0: no cap, still counted.
			var rs []func()
			for range 5 {
				r, err := c.Acquire(ctx, "ip:x", 0)
				if err != nil {
					t.Fatal(err)
				}
				rs = append(rs, r)
			}
			if n := count("ip:x"); n != 5 {
				t.Fatalf("uncapped count = %d", n)
			}
			for _, r := range rs {
				r()
			}
		})
	}
}

func TestRedisCounterTwoNodesLiveFiltering(t *testing.T) {
	srv := redistest.Start(t)
	prefix := uniquePrefix()
	var live atomic.Value
	live.Store([]string{"a", "b"})
	liveNodes := func() []string { return live.Load().([]string) }
	a := newRedisCounter(t, RedisCounterConfig{Client: testClient(t, srv.Addr()), Prefix: prefix, Node: "a", LiveNodes: liveNodes})
	b := newRedisCounter(t, RedisCounterConfig{Client: testClient(t, srv.Addr()), Prefix: prefix, Node: "b", LiveNodes: liveNodes})
	ctx := context.Background()
	const max = 3
	ra1, err := a.Acquire(ctx, "user:alice", max)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Acquire(ctx, "user:alice", max); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(ctx, "user:alice", max); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*RedisCounter{a, b} {
		if _, err := c.Acquire(ctx, "user:alice", max); !errors.Is(err, ErrTooMany) {
			t.Fatalf("node %s: fourth acquire across nodes: %v; want ErrTooMany", c.node, err)
		}
	}
	raw := testClient(t, srv.Addr())
	hash := prefix + ":conns:{user:alice}"
	if got := raw.HGetAll(ctx, hash).Val(); got["a"] != "2" || got["b"] != "1" || len(got) != 2 {
		t.Fatalf("HGETALL %s = %v", hash, got)
	}
	// Node b's lease expires (it crashed): its connection stops counting.
	live.Store([]string{"a"})
	if n, _ := a.Count(ctx, "user:alice"); n != 2 {
		t.Fatalf("count without b = %d", n)
	}
	if _, err := a.Acquire(ctx, "user:alice", max); err != nil {
		t.Fatalf("acquire once b is dead: %v", err)
	}
	// A node missing from its own list still counts itself.
	live.Store([]string{})
	if _, err := a.Acquire(ctx, "user:alice", max); !errors.Is(err, ErrTooMany) {
		t.Fatalf("node a holds 3 itself: %v", err)
	}
	ra1()
	ra1()
	if got := raw.HGet(ctx, hash, "a").Val(); got != "2" {
		t.Fatalf("a's field after a double release = %q; want 2", got)
	}
	if ttl := raw.PTTL(ctx, hash).Val(); ttl <= 0 || ttl > DefaultCounterKeyTTL {
		t.Fatalf("PTTL %v", ttl)
	}
	// A field at zero is deleted, and the hash with its last field.
	rb, err := b.Acquire(ctx, "user:carol", 1)
	if err != nil {
		t.Fatal(err)
	}
	rb()
	if n := raw.Exists(ctx, prefix+":conns:{user:carol}").Val(); n != 0 {
		t.Fatalf("empty hash left behind")
	}
}

func TestRedisCounterRacingNodes(t *testing.T) {
	srv := redistest.Start(t)
	prefix := uniquePrefix()
	var counters []*RedisCounter
	for _, node := range []string{"a", "b"} {
		counters = append(counters, newRedisCounter(t, RedisCounterConfig{Client: testClient(t, srv.Addr()), Prefix: prefix, Node: node}))
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := counters[i%2].Acquire(context.Background(), "ip:203.0.113.7", 10); err == nil {
				admitted.Add(1)
			} else if !errors.Is(err, ErrTooMany) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := admitted.Load(); n != 10 {
		t.Fatalf("admitted %d of 40 racing acquires with max 10", n)
	}
}

func TestRedisCounterRedisDown(t *testing.T) {
	t.Cleanup(func() { leakcheck.Check(t) }) // runs last: see TestRedisLimiterRedisDown
	srv := redistest.Start(t)
	var errs errorCounter
	c := newRedisCounter(t, RedisCounterConfig{
		Client: testClient(t, srv.Addr()), Prefix: uniquePrefix(), Node: "a",
		Timeout: 500 * time.Millisecond, RetryInterval: 50 * time.Millisecond, OnError: errs.OnError,
	})
	ctx := context.Background()
	before, err := c.Acquire(ctx, "user:alice", 3)
	if err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	// Fail open to the per-node cap: this node already holds one of 3.
	var fallback []func()
	for range 2 {
		r, err := c.Acquire(ctx, "user:alice", 3)
		if err != nil {
			t.Fatalf("acquire with Redis down: %v; want admitted under the per-node cap", err)
		}
		fallback = append(fallback, r)
	}
	if _, err := c.Acquire(ctx, "user:alice", 3); !errors.Is(err, ErrTooMany) {
		t.Fatalf("acquire over the per-node cap with Redis down: %v", err)
	}
	if errs.n.Load() == 0 || c.Stats().Fallbacks != 3 {
		t.Fatalf("errors %d, stats %+v", errs.n.Load(), c.Stats())
	}
	if err, _ := errs.last.Load().(error); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("OnError got %v", err)
	}
	before() // Redis counted it: the release is queued
	for _, r := range fallback {
		r() // Redis never counted these: local only
	}
	if st := c.Stats(); st.PendingReleases != 1 || st.Keys != 0 {
		t.Fatalf("stats after releases with Redis down %+v", st)
	}

	srv.Restart()
	waitFor(t, "the queued release to reach Redis", func() bool { return c.Stats().PendingReleases == 0 })
	// The restarted Redis has no data: the release left nothing behind.
	raw := testClient(t, srv.Addr())
	if n := raw.Exists(ctx, c.hashKey("user:alice")).Val(); n != 0 {
		t.Fatal("release of an unknown connection left a hash")
	}
	if _, err := c.Acquire(ctx, "user:alice", 1); err != nil {
		t.Fatalf("acquire after recovery: %v", err)
	}
}

func TestRedisCounterConfigAndClose(t *testing.T) {
	t.Parallel()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	if _, err := NewRedisCounter(RedisCounterConfig{Client: client}); err == nil {
		t.Error("no node accepted")
	}
	if _, err := NewRedisCounter(RedisCounterConfig{Node: "a"}); err == nil {
		t.Error("no client accepted")
	}
	c, err := NewRedisCounter(RedisCounterConfig{Client: client, Node: "a"})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	_ = c.Close()
	if _, err := c.Acquire(context.Background(), "k", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("acquire after close: %v", err)
	}
}
