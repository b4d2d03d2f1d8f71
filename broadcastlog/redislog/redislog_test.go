package redislog_test

import (
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/broadcastlog"
	"github.com/roomcast/roomcast/broadcastlog/redislog"
	"github.com/roomcast/roomcast/internal/logtest"
	"github.com/roomcast/roomcast/internal/redistest"
)

func newLog(t testing.TB, rdb redis.UniversalClient, retention time.Duration) *redislog.Log {
	l, err := redislog.New(redislog.Config{Client: rdb, Prefix: t.Name(), Retention: retention, Block: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestRedis(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	logtest.Run(t, func(t testing.TB, retention time.Duration) broadcastlog.Log {
		return newLog(t, rdb, retention)
	})
}

// TestRedisLost: a position handed out before Redis lost the stream reads
// as expired, not as a log with a hole.
func TestRedisLost(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	l := newLog(t, rdb, time.Minute)
	ctx := t.Context()
	id, err := l.Append(ctx, "/", broadcastlog.Entry{Data: []byte(`["a"]`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := l.Append(ctx, "/", broadcastlog.Entry{Data: []byte(`["b"]`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(ctx, "/", id, 0); err != broadcastlog.ErrExpired {
		t.Fatalf("read after a lost stream: %v, want ErrExpired", err)
	}
}

func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	logtest.Run(t, func(t testing.TB, retention time.Duration) broadcastlog.Log {
		return newLog(t, rdb, retention)
	})
}

// TestTailRedisRestart: Redis without persistence is killed and restarted
// under a tail, and a broadcast is appended to the new, empty Redis. The
// tail must report the gap (ErrExpired) instead of reading on in the new
// stream from its old cursor as if nothing had been lost.
func TestTailRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	l := newLog(t, rdb, time.Minute)
	ctx := t.Context()
	last, err := l.Last(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 100)
	cancel, err := l.Tail(ctx, "/", last, func(es []broadcastlog.Entry, err error) {
		if err != nil {
			got <- "gap"
			return
		}
		for _, e := range es {
			got <- string(e.Data)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	if _, err := l.Append(ctx, "/", broadcastlog.Entry{Data: []byte(`["a"]`)}); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g != `["a"]` {
		t.Fatalf("tail got %s", g)
	}
	srv.Kill()
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := l.Append(ctx, "/", broadcastlog.Entry{Data: []byte(`["b"]`)}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no append after the restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case g := <-got:
		if g != "gap" {
			t.Fatalf("after Redis lost the stream the tail delivered %s, want the gap reported", g)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tail reported nothing after Redis lost the stream")
	}
}

// AppendAsync: appends queued together share round trips, keep their queue
// order in the log, and each done gets its entry's position; after
// SCRIPT FLUSH (Redis lost its scripts) they still go in; after Close,
// ErrClosed.
func TestAppendAsync(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	l := newLog(t, rdb, time.Minute)
	ctx := t.Context()
	last, err := l.Last(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	ids := make([]string, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		if i == n/2 {
			if err := rdb.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		l.AppendAsync("/", broadcastlog.Entry{Rooms: []string{"r"}, Data: []byte(`["m",` + strconv.Itoa(i) + `]`)}, func(id string, err error) {
			defer wg.Done()
			if err != nil {
				t.Errorf("append %d: %v", i, err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	var got []broadcastlog.Entry
	for after := last; ; {
		page, err := l.Read(ctx, "/", after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].ID
	}
	if len(got) != n {
		t.Fatalf("%d entries logged, want %d", len(got), n)
	}
	for i, e := range got {
		if string(e.Data) != `["m",`+strconv.Itoa(i)+`]` || e.ID != ids[i] {
			t.Fatalf("entry %d: %s at %s, done was told %s", i, e.Data, e.ID, ids[i])
		}
	}
	_ = l.Close()
	done := make(chan error, 1)
	l.AppendAsync("/", broadcastlog.Entry{Data: []byte(`["late"]`)}, func(_ string, err error) { done <- err })
	if err := <-done; err != broadcastlog.ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}

// Entries trimmed by the log's own cap (MaxLen) make a read from before
// them expired: Redis does not count trimmed entries in the stream's
// max-deleted-entry-id, the append keeps it up to date.
func TestReadTrimmedByMaxLenIsExpired(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	l, err := redislog.New(redislog.Config{Client: rdb, Prefix: t.Name(), MaxLen: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	ctx := t.Context()
	start, err := l.Last(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 400 { // approximate trimming drops whole stream nodes (100 entries)
		id, err := l.Append(ctx, "/", broadcastlog.Entry{Data: []byte(`["m",` + strconv.Itoa(i) + `]`)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	first, err := l.Read(ctx, "/", "", 1)
	if err != nil || len(first) != 1 || first[0].ID == ids[0] {
		t.Fatalf("oldest entry after 400 appends with MaxLen 100: %v, %v; want the first ones trimmed", first, err)
	}
	for _, after := range []string{start, ids[0], ids[50]} {
		if got, err := l.Read(ctx, "/", after, 0); err != broadcastlog.ErrExpired {
			t.Fatalf("read after %s (trimmed since) = %d entries from %s, %v; want ErrExpired", after, len(got), got[0].ID, err)
		}
	}
	// After the oldest entry left, nothing is missing.
	k := slices.Index(ids, first[0].ID)
	if got, err := l.Read(ctx, "/", first[0].ID, 1000); err != nil || len(got) != len(ids)-k-1 {
		t.Fatalf("read after the oldest entry left = %d entries, %v; want %d", len(got), err, len(ids)-k-1)
	}
}
