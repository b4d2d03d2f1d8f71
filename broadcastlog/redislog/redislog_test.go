package redislog_test

import (
	"fmt"
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

// startLog starts a redis-server and a log on it with cfg (its Client and
// Prefix set here).
func startLog(t *testing.T, cfg redislog.Config) *redislog.Log {
	t.Helper()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cfg.Client, cfg.Prefix = rdb, t.Name()
	l, err := redislog.New(cfg)
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

// tailFrom starts a tail of l's namespace "/" after the position after
// that sends each batch's data (or "gap") to the returned channel.
func tailFrom(t *testing.T, l *redislog.Log, after string) <-chan []string {
	t.Helper()
	got := make(chan []string, 100)
	cancel, err := l.Tail(t.Context(), "/", after, func(es []broadcastlog.Entry, err error) {
		if err != nil {
			got <- []string{"gap"}
			return
		}
		var batch []string
		for _, e := range es {
			batch = append(batch, string(e.Data))
		}
		got <- batch
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return got
}

func last(t *testing.T, l *redislog.Log) string {
	t.Helper()
	id, err := l.Last(t.Context(), "/")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func appendData(t *testing.T, l *redislog.Log, data ...string) {
	t.Helper()
	for _, d := range data {
		if _, err := l.Append(t.Context(), "/", broadcastlog.Entry{Data: []byte(d)}); err != nil {
			t.Fatal(err)
		}
	}
}

func receive(t *testing.T, got <-chan []string) []string {
	t.Helper()
	select {
	case b := <-got:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("the tail delivered nothing")
		return nil
	}
}

// A tail that keeps up reads again at once; one whose read came back with
// BusyBatch entries or more waits until Linger after that read started,
// so that what is appended meanwhile comes as one batch.
func TestTailLingersWhenBusy(t *testing.T) {
	const linger = 400 * time.Millisecond
	l := startLog(t, redislog.Config{Block: 200 * time.Millisecond, Linger: linger, BusyBatch: 3})

	// Quiet: each entry is delivered well before a linger would end.
	got := tailFrom(t, l, last(t, l))
	for _, d := range []string{`["q",1]`, `["q",2]`, `["q",3]`} {
		start := time.Now()
		appendData(t, l, d)
		if b := receive(t, got); len(b) != 1 || b[0] != d {
			t.Fatalf("quiet tail delivered %v, want [%s]", b, d)
		}
		if d := time.Since(start); d > linger/2 {
			t.Fatalf("a quiet tail took %v to deliver", d)
		}
	}

	// Busy: a tail started before three entries reads them at once, then
	// waits.
	from := last(t, l)
	appendData(t, l, `["b",1]`, `["b",2]`, `["b",3]`)
	got = tailFrom(t, l, from)
	if b := receive(t, got); len(b) != 3 {
		t.Fatalf("first read delivered %v, want the three entries", b)
	}
	busy := time.Now()
	appendData(t, l, `["c",1]`)
	appendData(t, l, `["c",2]`)
	b := receive(t, got)
	if fmt.Sprint(b) != `[["c",1] ["c",2]]` {
		t.Fatalf("after a busy read the tail delivered %v, want both later entries in one batch", b)
	}
	if d := time.Since(busy); d < linger/2 {
		t.Fatalf("a busy tail read again after %v, want about %v", d, linger)
	}
}

// Lingering does not skip the trimming check: entries trimmed (by MaxLen)
// while a busy tail waits are reported as a gap, never read past.
func TestTailTrimmedWhileLingering(t *testing.T) {
	l := startLog(t, redislog.Config{Block: 200 * time.Millisecond, MaxLen: 100, Linger: 2 * time.Second, BusyBatch: 1})
	got := tailFrom(t, l, last(t, l))
	appendData(t, l, `["a"]`)
	if b := receive(t, got); fmt.Sprint(b) != `[["a"]]` {
		t.Fatalf("tail delivered %v", b)
	}
	// The tail lingers (BusyBatch 1) while 400 entries are appended: the
	// oldest of them are trimmed before it reads them.
	start := time.Now()
	for i := range 400 {
		appendData(t, l, `["m",`+strconv.Itoa(i)+`]`)
	}
	if time.Since(start) > time.Second {
		t.Skip("appends too slow to finish within the linger")
	}
	if b := receive(t, got); fmt.Sprint(b) != "[gap]" {
		t.Fatalf("after a trim past its cursor the tail delivered %d entries (%.40v), want the gap reported", len(b), b)
	}
	appendData(t, l, `["after"]`)
	if b := receive(t, got); fmt.Sprint(b) != `[["after"]]` {
		t.Fatalf("after the gap the tail delivered %v", b)
	}
}

// Entries trimmed by the log's own cap (MaxLen) make a read from before
// them expired: Redis does not count trimmed entries in the stream's
// max-deleted-entry-id, the append keeps it up to date.
func TestReadTrimmedByMaxLenIsExpired(t *testing.T) {
	l := startLog(t, redislog.Config{MaxLen: 100})
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
			t.Fatalf("read after %s (trimmed since) = %d entries, %v; want ErrExpired", after, len(got), err)
		}
	}
	// After the oldest entry left, nothing is missing.
	k := slices.Index(ids, first[0].ID)
	if got, err := l.Read(ctx, "/", first[0].ID, 1000); err != nil || len(got) != len(ids)-k-1 {
		t.Fatalf("read after the oldest entry left = %d entries, %v; want %d", len(got), err, len(ids)-k-1)
	}
}
