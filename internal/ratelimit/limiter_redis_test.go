package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/internal/leakcheck"
	"github.com/roomcast/roomcast/internal/redistest"
)

// waitWindowStart sleeps until just after the next wall-clock window starts,
// so that a test's traffic falls in one window.
func waitWindowStart(window time.Duration) time.Time {
	now := time.Now()
	next := now.Truncate(window).Add(window + 20*time.Millisecond)
	time.Sleep(time.Until(next))
	return next.Truncate(window)
}

// hammer calls Allow on key from each limiter as fast as the machine lets
// it, until deadline, and returns what each admitted.
func hammer(limiters []*RedisLimiter, key string, deadline time.Time) []int {
	got := make([]int, len(limiters))
	var wg sync.WaitGroup
	for i, l := range limiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if ok, _ := l.Allow(key, 1); ok {
					got[i]++
				}
				time.Sleep(200 * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	return got
}

func TestRedisLimiterTwoNodesShareTheAllowance(t *testing.T) {
	srv := redistest.Start(t)
	const (
		rate   = 100.0
		burst  = 10.0
		window = 2 * time.Second
		sync   = 50 * time.Millisecond
	)
	prefix := uniquePrefix()
	var nodes []*RedisLimiter
	for range 2 {
		nodes = append(nodes, newRedisLimiter(t, RedisConfig{
			Config: Config{Rate: rate, Burst: burst},
			Client: testClient(t, srv.Addr()), Prefix: prefix,
			SyncInterval: sync, Window: window,
		}))
	}
	start := waitWindowStart(window)
	end := start.Add(window)
	got := hammer(nodes, "user:alice", end.Add(-150*time.Millisecond))
	total := got[0] + got[1]

	allowance := rate*window.Seconds() + burst // 210
	// Alone, each node's bucket would admit burst + rate × 1.83 s ≈ 193: 386
	// together. Held cluster-wide, they may overshoot by what both admit
	// between the total crossing the allowance and their next syncs: about
	// 2 × rate × sync = 10; allow for a sync delayed by the race detector.
	slack := 2 * (burst + rate*2*sync.Seconds())
	t.Logf("admitted %v = %d; allowance %v, slack %v", got, total, allowance, slack)
	if float64(total) > allowance+slack {
		t.Fatalf("two nodes admitted %d in one window; cluster allowance %v (+%v slack)", total, allowance, slack)
	}
	if float64(total) < allowance-burst {
		t.Fatalf("two nodes admitted only %d; the allowance is %v", total, allowance)
	}
	for i, l := range nodes {
		ok, retry := l.Allow("user:alice", 1)
		if ok || retry <= 0 || retry > time.Until(end)+10*time.Millisecond {
			t.Errorf("node %d after the window was spent: Allow = %v, %v; want refused until the window ends in %v",
				i, ok, retry, time.Until(end))
		}
		if st := l.Stats(); st.ClusterDenied == 0 || st.Syncs == 0 || st.Degraded {
			t.Errorf("node %d stats %+v", i, st)
		}
	}
	// Another key is not affected.
	if ok, _ := nodes[0].Allow("user:bob", 1); !ok {
		t.Error("user:bob refused")
	}
	// The counter is where the package doc says, with an expiry.
	c := testClient(t, srv.Addr())
	key := prefix + ":rl:{user:alice}:" + strconv.FormatInt(start.UnixNano()/int64(window), 10)
	v, err := c.Get(context.Background(), key).Float64()
	if err != nil || v < float64(total)-1 {
		t.Errorf("GET %s = %v, %v; want about %d", key, v, err, total)
	}
	if ttl := c.PTTL(context.Background(), key).Val(); ttl <= 0 || ttl > 2*window {
		t.Errorf("PTTL %s = %v", key, ttl)
	}
	// The next window starts afresh.
	time.Sleep(time.Until(end) + 20*time.Millisecond)
	if ok, retry := nodes[1].Allow("user:alice", 1); !ok {
		t.Errorf("next window: Allow = false, %v", retry)
	}
}

func TestRedisLimiterRedisDown(t *testing.T) {
	// Registered first, so it runs after every other cleanup: the limiter,
	// its client and the server are gone, and so must their goroutines be.
	t.Cleanup(func() { leakcheck.Check(t) })
	srv := redistest.Start(t)
	var errs errorCounter
	l := newRedisLimiter(t, RedisConfig{
		Config:       Config{Rate: 100, Burst: 10},
		Client:       testClient(t, srv.Addr()),
		Prefix:       uniquePrefix(),
		SyncInterval: 20 * time.Millisecond,
		OnError:      errs.OnError,
	})
	l.Allow("user:alice", 10)
	waitFor(t, "a first sync", func() bool { return l.Stats().Syncs > 0 })

	srv.Kill()
	begin := time.Now()
	admitted := 0
	for time.Since(begin) < 500*time.Millisecond {
		if ok, _ := l.Allow("user:alice", 1); ok {
			admitted++
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(begin)
	// Local limiting goes on: never more than burst + rate × elapsed (an
	// unlimited fallback would admit every one of the ~500 calls).
	if limit := 10 + 100*elapsed.Seconds() + 1; admitted > int(limit) || admitted < 40 {
		t.Fatalf("with Redis down admitted %d in %v; want local limiting (≤ %v)", admitted, elapsed, limit)
	}
	waitFor(t, "the failure to be reported", func() bool {
		st := l.Stats()
		return st.Degraded && st.SyncErrors > 0 && errs.n.Load() > 0
	})
	if err, _ := errs.last.Load().(error); !errors.Is(err, ErrUnavailable) {
		t.Errorf("OnError got %v; want it to wrap ErrUnavailable", err)
	}
	// Allow never waits for the dead server.
	t0 := time.Now()
	for range 1000 {
		l.Allow("user:bob", 1)
	}
	if d := time.Since(t0); d > 100*time.Millisecond {
		t.Errorf("1000 Allow calls took %v with Redis down", d)
	}

	srv.Restart()
	waitFor(t, "recovery", func() bool { return !l.Stats().Degraded })
}

func TestRedisLimiterUnlimited(t *testing.T) {
	t.Parallel()
	// No server is needed: an unlimited limiter never talks to Redis.
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	l := newRedisLimiter(t, RedisConfig{Client: c})
	for range 100 {
		if ok, _ := l.Allow("k", 1e6); !ok {
			t.Fatal("rate 0 refused")
		}
	}
	if st := l.Stats(); st.Keys != 0 || st.Syncs != 0 || st.SyncErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRedisOnCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { _ = client.Close() })
	prefix := uniquePrefix()
	var errs errorCounter
	l := newRedisLimiter(t, RedisConfig{
		Config: Config{Rate: 1, Burst: 1}, Client: client, Prefix: prefix,
		SyncInterval: 20 * time.Millisecond, Window: time.Minute, OnError: errs.OnError,
	})
	// Many keys, spread over the three masters, in one sync.
	for i := range 100 {
		l.Allow("user:"+strconv.Itoa(i), 1)
	}
	waitFor(t, "a sync", func() bool { return l.Stats().Syncs > 0 })
	if errs.n.Load() != 0 {
		t.Fatalf("sync errors: %v", errs.last.Load())
	}

	c := newRedisCounter(t, RedisCounterConfig{Client: client, Prefix: prefix, Node: "a", OnError: errs.OnError})
	ctx := context.Background()
	for i := range 20 {
		if _, err := c.Acquire(ctx, "ip:10.0.0."+strconv.Itoa(i), 1); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Acquire(ctx, "ip:10.0.0."+strconv.Itoa(i), 1); !errors.Is(err, ErrTooMany) {
			t.Fatalf("second acquire: %v", err)
		}
	}
	if errs.n.Load() != 0 {
		t.Fatalf("errors: %v", errs.last.Load())
	}
}
