package queue

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/internal/redistest"
)

// benchMsg is a typical chat message: about 90 bytes of JSON arguments.
var benchMsg = Message{Namespace: "/", Event: "chat",
	Data: []byte(`["room:lobby",{"from":"alice","text":"hello world, this is a typical chat line"}]`)}

// unbounded is the store configuration of the benchmarks that append
// without end: full queues refuse (they no longer trim), so entries leave
// by age only, within a short retention that bounds the memory used.
var unbounded = storeConfig{MaxLen: 1 << 40, MaxBytes: 1 << 50, Retention: 100 * time.Millisecond}

// benchStores gives each benchmark a Memory store and a Redis store on its
// own redis-server (default go-redis pool).
func benchStores(b *testing.B, cfg storeConfig) []struct {
	name string
	st   Store
	cli  *redis.Client
} {
	b.Helper()
	mem, err := NewMemory(MemoryConfig{MaxLen: cfg.MaxLen, MaxBytes: cfg.MaxBytes, Retention: cfg.Retention})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = mem.Close() })
	srv := redistest.Start(b)
	cli := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	b.Cleanup(func() { _ = cli.Close() })
	return []struct {
		name string
		st   Store
		cli  *redis.Client
	}{{"memory", mem, nil}, {"redis", newRedisStore(b, cli, cfg), cli}}
}

func reportRate(b *testing.B, msgs int) {
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkAppend measures durable appends: one user, one call at a time
// (latency bound on Redis); one user from many goroutines; and one
// message fanned out to 100 users per call (pipelined on Redis).
func BenchmarkAppend(b *testing.B) {
	for _, s := range benchStores(b, unbounded) {
		ctx := context.Background()
		b.Run(s.name+"/1user", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.st.Append(ctx, []string{"u1"}, benchMsg); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, b.N)
		})
		b.Run(s.name+"/1user-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.st.Append(ctx, []string{"u2"}, benchMsg); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRate(b, b.N)
		})
		b.Run(s.name+"/distinct-users-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			var seq atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				users := []string{"p" + strconv.FormatInt(seq.Add(1), 10)}
				for pb.Next() {
					if _, err := s.st.Append(ctx, users, benchMsg); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRate(b, b.N)
		})
		b.Run(s.name+"/fanout100", func(b *testing.B) {
			users := make([]string, 100)
			for i := range users {
				users[i] = fmt.Sprintf("f%d", i)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.st.Append(ctx, users, benchMsg); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, b.N*len(users))
		})
	}
}

// BenchmarkRead10k reads a backlog of 10,000 messages in pages of 1,000;
// one op is the whole backlog.
func BenchmarkRead10k(b *testing.B) {
	for _, s := range benchStores(b, storeConfig{}) {
		ctx := context.Background()
		floor, err := s.st.Last(ctx, "r")
		if err != nil {
			b.Fatal(err)
		}
		for range 10000 {
			if _, err := s.st.Append(ctx, []string{"r"}, benchMsg); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				after, n := floor, 0
				for {
					page, err := s.st.Read(ctx, "r", after, 1000)
					if err != nil {
						b.Fatal(err)
					}
					n += len(page)
					if len(page) < 1000 {
						break
					}
					after = page[len(page)-1].ID
				}
				if n != 10000 {
					b.Fatalf("read %d messages", n)
				}
			}
			reportRate(b, b.N*10000)
		})
	}
}

// BenchmarkReplay10k replays a 10,000-message backlog through Replay
// (subscribe, paged reads, handoff); one op is one replay.
func BenchmarkReplay10k(b *testing.B) {
	for _, s := range benchStores(b, storeConfig{}) {
		ctx := context.Background()
		floor, err := s.st.Last(ctx, "r")
		if err != nil {
			b.Fatal(err)
		}
		for range 10000 {
			if _, err := s.st.Append(ctx, []string{"r"}, benchMsg); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				stop, err := Replay(ctx, s.st, "r", floor, 1000, func(Message) error { n++; return nil }, nil)
				if err != nil {
					b.Fatal(err)
				}
				stop()
				if n != 10000 {
					b.Fatalf("replayed %d", n)
				}
			}
			reportRate(b, b.N*10000)
		})
	}
}

// BenchmarkRedisMemoryPerMessage appends b.N typical messages spread over
// 100 users and reports Redis's used_memory growth per message.
func BenchmarkRedisMemoryPerMessage(b *testing.B) {
	srv := redistest.Start(b)
	cli := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	b.Cleanup(func() { _ = cli.Close() })
	st := newRedisStore(b, cli, storeConfig{})
	ctx := context.Background()
	users := make([][]string, 100)
	for i := range users {
		users[i] = []string{fmt.Sprintf("m%d", i)}
	}
	before := usedMemory(b, cli)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := st.Append(ctx, users[i%len(users)], benchMsg); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	after := usedMemory(b, cli)
	b.ReportMetric(float64(after-before)/float64(b.N), "redis-bytes/msg")
	b.ReportMetric(float64(len(benchMsg.Data)), "data-bytes/msg")
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

// BenchmarkLiveDelivery measures Append-to-callback on one subscribed
// user: one op is one message appended and delivered live.
func BenchmarkLiveDelivery(b *testing.B) {
	for _, s := range benchStores(b, unbounded) {
		ctx := context.Background()
		b.Run(s.name, func(b *testing.B) {
			got := make(chan struct{}, 1024)
			cancel, err := s.st.Subscribe(ctx, "live", func(m Message, err error) {
				if err == nil {
					got <- struct{}{}
				}
			})
			if err != nil {
				b.Fatal(err)
			}
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.st.Append(ctx, []string{"live"}, benchMsg); err != nil {
					b.Fatal(err)
				}
				<-got
			}
			reportRate(b, b.N)
		})
	}
}
