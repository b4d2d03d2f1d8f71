package redislog_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/broadcastlog"
	"github.com/roomcast/roomcast/broadcastlog/redislog"
	"github.com/roomcast/roomcast/internal/redistest"
)

// The layout measurements of docs/ARCHITECTURE.md ("Broadcast log"): one
// stream per namespace (redislog) against one stream per room, with the
// same Lua append (XADD with MINID trimming), 200 rooms, a ~100-byte
// packet. Reported: Redis memory per logged broadcast, Redis CPU per
// append (INFO commandstats), and the replay of a client in 50 rooms that
// missed 10k broadcasts (2.5k of them to its rooms).

const (
	layoutRooms  = 200
	clientRooms  = 50
	layoutMissed = 10_000
)

var payload = []byte(`["chat",{"text":"` + strings.Repeat("x", 64) + `","user":"alice"},{"room":"room:17"}]`)

func layoutClient(b *testing.B) (*redis.Client, func() (mem int64, usec float64)) {
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 8})
	b.Cleanup(func() { _ = rdb.Close() })
	info := func() (int64, float64) {
		s, _ := rdb.Info(context.Background(), "memory", "commandstats").Result()
		var mem int64
		var usec float64
		for _, line := range strings.Split(s, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				mem, _ = strconv.ParseInt(v, 10, 64)
			}
			if v, ok := strings.CutPrefix(line, "cmdstat_evalsha:"); ok {
				for _, kv := range strings.Split(v, ",") {
					if u, ok := strings.CutPrefix(kv, "usec="); ok {
						usec, _ = strconv.ParseFloat(u, 64)
					}
				}
			}
		}
		return mem, usec
	}
	return rdb, info
}

func room(i int) string { return fmt.Sprintf("room:%d", i%layoutRooms) }

// BenchmarkLayoutAppend: one op is one logged broadcast.
func BenchmarkLayoutAppend(b *testing.B) {
	for _, layout := range []string{"per-namespace", "per-room"} {
		b.Run(layout, func(b *testing.B) {
			rdb, info := layoutClient(b)
			l, err := redislog.New(redislog.Config{Client: rdb, Prefix: "bench", Retention: time.Hour, MaxLen: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			stream := func(i int) string { // the namespace the entry goes to
				if layout == "per-room" {
					return "/#" + room(i)
				}
				return "/"
			}
			for i := range layoutRooms { // create the streams first
				_, _ = l.Last(ctx, stream(i))
			}
			mem0, usec0 := info()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := l.Append(ctx, stream(i), broadcastlog.Entry{Rooms: []string{room(i)}, Data: payload}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			mem1, usec1 := info()
			b.ReportMetric(float64(mem1-mem0)/float64(b.N), "redis-bytes/entry")
			b.ReportMetric((usec1-usec0)/float64(b.N), "redis-usec/entry")
		})
	}
}

// BenchmarkLayoutReplay: one op is the replay of a client in 50 rooms
// that missed 10k broadcasts over 200 rooms.
func BenchmarkLayoutReplay(b *testing.B) {
	for _, layout := range []string{"per-namespace", "per-room"} {
		b.Run(layout, func(b *testing.B) {
			rdb, _ := layoutClient(b)
			l, err := redislog.New(redislog.Config{Client: rdb, Prefix: "bench", Retention: time.Hour, MaxLen: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			start := map[string]string{}
			nsp := func(i int) string {
				if layout == "per-room" {
					return "/#" + room(i)
				}
				return "/"
			}
			for i := range layoutRooms {
				start[nsp(i)], _ = l.Last(ctx, nsp(i))
			}
			for i := range layoutMissed {
				if _, err := l.Append(ctx, nsp(i), broadcastlog.Entry{Rooms: []string{room(i)}, Data: payload}); err != nil {
					b.Fatal(err)
				}
			}
			mine := map[string]bool{}
			for i := range clientRooms {
				mine[room(i)] = true
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got := 0
				switch layout {
				case "per-namespace":
					after := start["/"]
					for {
						page, err := l.Read(ctx, "/", after, broadcastlog.DefaultPageSize)
						if err != nil {
							b.Fatal(err)
						}
						for _, e := range page {
							if mine[e.Rooms[0]] {
								got++
							}
						}
						if len(page) < broadcastlog.DefaultPageSize {
							break
						}
						after = page[len(page)-1].ID
					}
				case "per-room":
					// One pipelined round of 50 reads, then more pages where
					// a room has more (here: none beyond the first page).
					pipe := rdb.Pipeline()
					var cmds []*redis.XMessageSliceCmd
					for r := range clientRooms {
						cmds = append(cmds, pipe.XRangeN(ctx, "bench:log:{/#"+room(r)+"}", "("+start["/#"+room(r)], "+", broadcastlog.DefaultPageSize))
					}
					if _, err := pipe.Exec(ctx); err != nil {
						b.Fatal(err)
					}
					for _, c := range cmds {
						got += len(c.Val())
					}
				}
				if got != layoutMissed*clientRooms/layoutRooms {
					b.Fatalf("replayed %d", got)
				}
			}
		})
	}
}
