package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestAllowBucketMath(t *testing.T) {
	t.Parallel()
	type step struct {
		advance   time.Duration
		key       string
		cost      float64
		ok        bool
		retry     time.Duration
		repeatN   int // the step is done this many times (0 means once)
		stepLabel string
	}
	tests := []struct {
		name        string
		rate, burst float64
		steps       []step
		wantKeys    int
		wantAllowed uint64
		wantDenied  uint64
	}{
		{
			name: "burst then rate", rate: 10, burst: 5,
			steps: []step{
				{key: "u", cost: 1, ok: true, repeatN: 5, stepLabel: "the burst"},
				{key: "u", cost: 1, ok: false, retry: 100 * time.Millisecond, stepLabel: "empty"},
				{advance: 50 * time.Millisecond, key: "u", cost: 1, ok: false, retry: 50 * time.Millisecond, stepLabel: "half a token"},
				{advance: 50 * time.Millisecond, key: "u", cost: 1, ok: true, stepLabel: "one token earned"},
				{key: "u", cost: 1, ok: false, retry: 100 * time.Millisecond, stepLabel: "empty again"},
			},
			wantKeys: 1, wantAllowed: 6, wantDenied: 3,
		},
		{
			name: "refill stops at the burst", rate: 10, burst: 5,
			steps: []step{
				{key: "u", cost: 5, ok: true},
				{advance: time.Hour, key: "u", cost: 1, ok: true, repeatN: 5},
				{key: "u", cost: 1, ok: false, retry: 100 * time.Millisecond},
			},
			wantKeys: 1, wantAllowed: 6, wantDenied: 1,
		},
		{
			name: "cost above one", rate: 2, burst: 10,
			steps: []step{
				{key: "connect-ip:a", cost: 5, ok: true},
				{key: "connect-ip:a", cost: 5, ok: true},
				{key: "connect-ip:a", cost: 5, ok: false, retry: 2500 * time.Millisecond},
				{key: "connect-ip:a", cost: 1, ok: false, retry: 500 * time.Millisecond},
				{advance: 2500 * time.Millisecond, key: "connect-ip:a", cost: 5, ok: true},
			},
			wantKeys: 1, wantAllowed: 3, wantDenied: 2,
		},
		{
			name: "cost above the burst leaves a debt", rate: 10, burst: 5,
			steps: []step{
				{key: "u", cost: 8, ok: true, stepLabel: "full bucket pays"},
				{key: "u", cost: 1, ok: false, retry: 400 * time.Millisecond, stepLabel: "3 tokens of debt"},
				{advance: 300 * time.Millisecond, key: "u", cost: 8, ok: false, retry: 500 * time.Millisecond, stepLabel: "needs a full bucket again"},
				{advance: 500 * time.Millisecond, key: "u", cost: 8, ok: true},
			},
			wantKeys: 1, wantAllowed: 2, wantDenied: 2,
		},
		{
			name: "keys are independent", rate: 1, burst: 1,
			steps: []step{
				{key: "user:alice", cost: 1, ok: true},
				{key: "user:alice", cost: 1, ok: false, retry: time.Second},
				{key: "user:bob", cost: 1, ok: true},
				{key: "ip:203.0.113.7", cost: 1, ok: true},
			},
			wantKeys: 3, wantAllowed: 3, wantDenied: 1,
		},
		{
			name: "default burst is one second", rate: 3,
			steps: []step{
				{key: "u", cost: 1, ok: true, repeatN: 3},
				{key: "u", cost: 1, ok: false, retry: 333333334 * time.Nanosecond},
			},
			wantKeys: 1, wantAllowed: 3, wantDenied: 1,
		},
		{
			name: "rate 0 is unlimited", rate: 0, burst: 1,
			steps: []step{
				{key: "u", cost: 1e9, ok: true, repeatN: 100},
			},
			wantKeys: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			l := newMemoryLimiter(t, Config{Rate: tt.rate, Burst: tt.burst, Now: clock.Now})
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				for j := range max(1, s.repeatN) {
					ok, retry := l.Allow(s.key, s.cost)
					if ok != s.ok || retry != s.retry {
						t.Fatalf("step %d %s (#%d): Allow(%q, %v) = %v, %v; want %v, %v",
							i, s.stepLabel, j, s.key, s.cost, ok, retry, s.ok, s.retry)
					}
				}
			}
			st := l.Stats()
			if st.Keys != tt.wantKeys || st.Allowed != tt.wantAllowed || st.Denied != tt.wantDenied {
				t.Fatalf("stats %+v; want keys %d allowed %d denied %d", st, tt.wantKeys, tt.wantAllowed, tt.wantDenied)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{Rate: -1},
		{Rate: 1, Burst: -1},
		{Rate: 1, MaxKeys: -1},
		{Rate: 1, SweepInterval: -time.Second},
	} {
		if l, err := NewMemory(cfg); err == nil {
			_ = l.Close()
			t.Errorf("NewMemory(%+v) accepted", cfg)
		}
	}
	if _, err := NewRedis(RedisConfig{Config: Config{Rate: 1}}); err == nil {
		t.Error("NewRedis without a client accepted")
	}
}

func TestSweepDropsIdleBuckets(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l := newMemoryLimiter(t, Config{Rate: 10, Burst: 10, Now: clock.Now})
	l.Allow("busy", 10)
	l.Allow("light", 1)
	clock.Advance(200 * time.Millisecond) // light is full again, busy holds 2 of 10
	l.t.sweep(l.t.mono())
	if st := l.Stats(); st.Keys != 1 || st.Swept != 1 {
		t.Fatalf("after first sweep %+v; want busy kept, light swept", st)
	}
	if _, ok := l.t.shardOf("busy").buckets["busy"]; !ok {
		t.Fatal("busy was swept while not full")
	}
	clock.Advance(time.Second)
	l.t.sweep(l.t.mono())
	if st := l.Stats(); st.Keys != 0 || st.Swept != 2 {
		t.Fatalf("after second sweep %+v", st)
	}
	// A swept key is the same as a full one.
	if ok, _ := l.Allow("busy", 10); !ok {
		t.Fatal("swept key refused a full burst")
	}
}

func TestSweeperGoroutine(t *testing.T) {
	t.Parallel()
	l := newMemoryLimiter(t, Config{Rate: 1000, Burst: 1, SweepInterval: 5 * time.Millisecond})
	l.Allow("k", 1)
	waitFor(t, "the sweeper to drop the idle key", func() bool { return l.Stats().Keys == 0 })
}

func TestMaxKeysEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	// 8 keys per shard: the eviction sample sees the whole shard.
	l := newMemoryLimiter(t, Config{Rate: 1, Burst: 5, MaxKeys: numShards * evictSample, Now: clock.Now})
	target := l.t.shardOf("probe")
	var keys []string
	for i := 0; len(keys) < evictSample+1; i++ {
		k := fmt.Sprintf("user:%d", i)
		if l.t.shardOf(k) == target {
			keys = append(keys, k)
		}
	}
	for _, k := range keys[:evictSample] {
		clock.Advance(time.Millisecond)
		l.Allow(k, 1)
	}
	clock.Advance(time.Millisecond)
	l.Allow(keys[0], 1) // keys[1] is now the least recently used
	clock.Advance(time.Millisecond)
	l.Allow(keys[evictSample], 1)
	if _, ok := target.buckets[keys[1]]; ok {
		t.Fatalf("%s (least recently used) was not evicted", keys[1])
	}
	if b, ok := target.buckets[keys[0]]; !ok || b.tokens > 3.01 {
		t.Fatalf("%s lost its state: %+v %v", keys[0], b, ok)
	}
	if st := l.Stats(); st.Evicted != 1 || st.Keys != evictSample {
		t.Fatalf("stats %+v", st)
	}
}

func TestMaxKeysBoundsMemory(t *testing.T) {
	t.Parallel()
	l := newMemoryLimiter(t, Config{Rate: 1, Burst: 1, MaxKeys: 1000})
	for i := range 20000 {
		if ok, _ := l.Allow(fmt.Sprintf("ip:%d", i), 1); !ok {
			t.Fatalf("new key %d refused", i)
		}
	}
	st := l.Stats()
	if st.Keys > 1000+numShards || st.Evicted < 20000-1000-numShards {
		t.Fatalf("stats %+v; want at most ~1000 keys", st)
	}
}

func TestAllowConcurrent(t *testing.T) {
	t.Parallel()
	clock := newFakeClock() // frozen: exactly the burst is admitted
	l := newMemoryLimiter(t, Config{Rate: 1, Burst: 100, Now: clock.Now})
	done := make(chan int)
	for range 8 {
		go func() {
			n := 0
			for range 50 {
				if ok, _ := l.Allow("shared", 1); ok {
					n++
				}
			}
			done <- n
		}()
	}
	total := 0
	for range 8 {
		total += <-done
	}
	if total != 100 {
		t.Fatalf("admitted %d of 400; want the burst, 100", total)
	}
}

func TestTablePendingAndBlock(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	tb := newTable(Config{Rate: 10, Burst: 10, MaxKeys: DefaultMaxKeys, Now: clock.Now}, true)
	now := tb.mono()
	tb.allow("a", 2, now)
	tb.allow("a", 3, now)
	tb.allow("b", 1, now)
	tb.allow("b", 100, now) // refused: not pending
	got := map[string]float64{}
	for _, s := range tb.drainPending(nil) {
		got[s.key] += s.cost
	}
	if len(got) != 2 || got["a"] != 5 || got["b"] != 1 {
		t.Fatalf("drained %v; want a:5 b:1", got)
	}
	if again := tb.drainPending(nil); len(again) != 0 {
		t.Fatalf("second drain %v", again)
	}
	tb.allow("a", 1, now)
	if d := tb.drainPending(nil); len(d) != 1 || d[0] != (spent{"a", 1}) {
		t.Fatalf("drain after more cost %v", d)
	}

	// A cluster-wide block refuses until it ends, and survives a sweep.
	tb.block("a", now+int64(3*time.Second), now)
	tb.block("fresh", now+int64(time.Second), now) // a key this node no longer tracks
	clock.Advance(2 * time.Second)
	now = tb.mono()
	tb.sweep(now)
	if ok, retry := tb.allow("a", 1, now); ok || retry != time.Second {
		t.Fatalf("blocked key: %v, %v; want refused for 1s", ok, retry)
	}
	if ok, _ := tb.allow("fresh", 1, now); !ok {
		t.Fatal("block that ended still refuses")
	}
	clock.Advance(time.Second)
	if ok, _ := tb.allow("a", 1, tb.mono()); !ok {
		t.Fatal("refused after the block ended")
	}
	var st Stats
	tb.stats(&st)
	if st.ClusterDenied != 1 {
		t.Fatalf("stats %+v", st)
	}
}
