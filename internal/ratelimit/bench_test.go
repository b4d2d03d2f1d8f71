package ratelimit

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func BenchmarkAllow(b *testing.B) {
	b.Run("memory/existing key", func(b *testing.B) {
		l := newMemoryLimiter(b, Config{Rate: 1e12, Burst: 1e12})
		l.Allow("user:alice", 1)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			l.Allow("user:alice", 1)
		}
	})
	b.Run("memory/10k keys parallel", func(b *testing.B) {
		l := newMemoryLimiter(b, Config{Rate: 1e12, Burst: 1e12})
		keys := make([]string, 10000)
		for i := range keys {
			keys[i] = "user:" + strconv.Itoa(i)
			l.Allow(keys[i], 1)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				l.Allow(keys[i%len(keys)], 1)
				i++
			}
		})
	})
	b.Run("memory/denied", func(b *testing.B) {
		l := newMemoryLimiter(b, Config{Rate: 1e-9, Burst: 1})
		l.Allow("user:alice", 1)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			l.Allow("user:alice", 1)
		}
	})
	b.Run("redis/existing key", func(b *testing.B) {
		// Allow never touches Redis: a client to nowhere, with a sync
		// interval longer than the benchmark, shows the hot path alone.
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
		b.Cleanup(func() { _ = c.Close() })
		l := newRedisLimiter(b, RedisConfig{Config: Config{Rate: 1e12, Burst: 1e12}, Client: c, SyncInterval: time.Hour})
		l.Allow("user:alice", 1)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			l.Allow("user:alice", 1)
		}
	})
	b.Run("unlimited", func(b *testing.B) {
		l := newMemoryLimiter(b, Config{})
		b.ReportAllocs()
		for b.Loop() {
			l.Allow("user:alice", 1)
		}
	})
}

func TestAllowExistingKeyDoesNotAllocate(t *testing.T) {
	l := newMemoryLimiter(t, Config{Rate: 1e12, Burst: 1e12})
	l.Allow("user:alice", 1)
	if n := testing.AllocsPerRun(1000, func() { l.Allow("user:alice", 1) }); n != 0 {
		t.Fatalf("Allow on an existing key: %v allocs; want 0", n)
	}
}
