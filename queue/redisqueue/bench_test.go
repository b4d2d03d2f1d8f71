package redisqueue

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/queue/internal/storetest"
)

// The benchmarks every Store runs (package queue runs them on Memory);
// each gets a Store on its own redis-server (default go-redis pool).

func benchStore(b *testing.B, cfg storetest.Config) *Store {
	b.Helper()
	srv := redistest.Start(b)
	cli := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	b.Cleanup(func() { _ = cli.Close() })
	return newRedisStore(b, cli, cfg)
}

// Append and LiveDelivery append without end: their stores are unbounded.
func BenchmarkAppend(b *testing.B) {
	storetest.BenchAppend(b, "redis", benchStore(b, storetest.Unbounded))
}
func BenchmarkRead10k(b *testing.B) {
	storetest.BenchRead10k(b, "redis", benchStore(b, storetest.Config{}))
}
func BenchmarkReplay10k(b *testing.B) {
	storetest.BenchReplay10k(b, "redis", benchStore(b, storetest.Config{}))
}
func BenchmarkLiveDelivery(b *testing.B) {
	storetest.BenchLiveDelivery(b, "redis", benchStore(b, storetest.Unbounded))
}

// BenchmarkRedisMemoryPerMessage appends b.N typical messages spread over
// 100 users and reports Redis's used_memory growth per message.
func BenchmarkRedisMemoryPerMessage(b *testing.B) {
	srv := redistest.Start(b)
	cli := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	b.Cleanup(func() { _ = cli.Close() })
	st := newRedisStore(b, cli, storetest.Config{MaxLen: 1 << 40, MaxBytes: 1 << 50}) // b.N messages stay
	ctx := context.Background()
	users := make([][]string, 100)
	for i := range users {
		users[i] = []string{fmt.Sprintf("m%d", i)}
	}
	before := usedMemory(b, cli)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := st.Append(ctx, users[i%len(users)], storetest.BenchMsg); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	after := usedMemory(b, cli)
	b.ReportMetric(float64(after-before)/float64(b.N), "redis-bytes/msg")
	b.ReportMetric(float64(len(storetest.BenchMsg.Data)), "data-bytes/msg")
}

func usedMemory(b *testing.B, c *redis.Client) int64 {
	b.Helper()
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no used_memory in INFO memory")
	return 0
}
