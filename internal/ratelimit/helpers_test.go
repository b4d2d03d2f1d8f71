package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/internal/leakcheck"
)

func TestMain(m *testing.M) {
	redis.SetLogger(discardLogger{}) // the fault tests make go-redis log every failed dial
	leakcheck.VerifyTestMain(m)
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// fakeClock is a settable clock for the bucket math.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var prefixSeq atomic.Int64

// uniquePrefix gives every test on a shared server its own key space.
func uniquePrefix() string { return fmt.Sprintf("rltest%d", prefixSeq.Add(1)) }

// testClient connects to addr with short timeouts, so that a dead server
// fails calls within about a second.
func testClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:            addr,
		DialTimeout:     300 * time.Millisecond,
		ReadTimeout:     500 * time.Millisecond,
		WriteTimeout:    500 * time.Millisecond,
		MaxRetries:      1,
		MinRetryBackoff: 10 * time.Millisecond,
		MaxRetryBackoff: 50 * time.Millisecond,
		Protocol:        2,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newMemoryLimiter(t testing.TB, cfg Config) *MemoryLimiter {
	t.Helper()
	l, err := NewMemory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func newRedisLimiter(t testing.TB, cfg RedisConfig) *RedisLimiter {
	t.Helper()
	l, err := NewRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func newRedisCounter(t testing.TB, cfg RedisCounterConfig) *RedisCounter {
	t.Helper()
	c, err := NewRedisCounter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// errorCounter is an OnError callback that counts.
type errorCounter struct {
	n    atomic.Int64
	last atomic.Value // error
}

func (e *errorCounter) OnError(err error) {
	e.n.Add(1)
	e.last.Store(err)
}
