package storetest

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/roomcast/roomcast/queue"
)

// BenchMsg is a typical chat message: about 90 bytes of JSON arguments.
var BenchMsg = queue.Message{Namespace: "/", Event: "chat",
	Data: []byte(`["room:lobby",{"from":"alice","text":"hello world, this is a typical chat line"}]`)}

// reportRate reports msgs per second of b's elapsed time.
func reportRate(b *testing.B, msgs int) {
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchAppend measures durable appends to st, as sub-benchmarks of b named
// name/...: one user, one call at a time (latency bound on Redis); one user
// from many goroutines; and one message fanned out to 100 users per call
// (pipelined on Redis).
func BenchAppend(b *testing.B, name string, st queue.Store) {
	ctx := context.Background()
	b.Run(name+"/1user", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.Append(ctx, []string{"u1"}, BenchMsg); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, b.N)
	})
	b.Run(name+"/1user-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := st.Append(ctx, []string{"u2"}, BenchMsg); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, b.N)
	})
	b.Run(name+"/distinct-users-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8)
		var seq atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			users := []string{"p" + strconv.FormatInt(seq.Add(1), 10)}
			for pb.Next() {
				if _, err := st.Append(ctx, users, BenchMsg); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, b.N)
	})
	b.Run(name+"/fanout100", func(b *testing.B) {
		users := make([]string, 100)
		for i := range users {
			users[i] = fmt.Sprintf("f%d", i)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.Append(ctx, users, BenchMsg); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, b.N*len(users))
	})
}

// fill appends 10,000 messages to user and returns the offset before them.
func fill(b *testing.B, st queue.Store, user string) string {
	b.Helper()
	ctx := context.Background()
	floor, err := st.Last(ctx, user)
	if err != nil {
		b.Fatal(err)
	}
	for range 10000 {
		if _, err := st.Append(ctx, []string{user}, BenchMsg); err != nil {
			b.Fatal(err)
		}
	}
	return floor
}

// BenchRead10k reads a backlog of 10,000 messages from st in pages of
// 1,000, as the sub-benchmark name of b; one op is the whole backlog.
func BenchRead10k(b *testing.B, name string, st queue.Store) {
	ctx := context.Background()
	floor := fill(b, st, "r")
	b.Run(name, func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			after, n := floor, 0
			for {
				page, err := st.Read(ctx, "r", after, 1000)
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

// BenchReplay10k replays a 10,000-message backlog of st through Replay
// (subscribe, paged reads, handoff), as the sub-benchmark name of b; one op
// is one replay.
func BenchReplay10k(b *testing.B, name string, st queue.Store) {
	ctx := context.Background()
	floor := fill(b, st, "r")
	b.Run(name, func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			stop, err := queue.Replay(ctx, st, "r", floor, 1000, func(queue.Message) error { n++; return nil }, nil)
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

// BenchLiveDelivery measures Append-to-callback on one subscribed user of
// st, as the sub-benchmark name of b: one op is one message appended and
// delivered live.
func BenchLiveDelivery(b *testing.B, name string, st queue.Store) {
	ctx := context.Background()
	b.Run(name, func(b *testing.B) {
		got := make(chan struct{}, 1024)
		cancel, err := st.Subscribe(ctx, "live", func(m queue.Message, err error) {
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
			if _, err := st.Append(ctx, []string{"live"}, BenchMsg); err != nil {
				b.Fatal(err)
			}
			<-got
		}
		reportRate(b, b.N)
	})
}
