package redisqueue

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/internal/leakcheck"
	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/queue/internal/storetest"
)

func TestMain(m *testing.M) {
	redis.SetLogger(discardLogger{}) // the fault tests make go-redis log every failed dial
	leakcheck.VerifyTestMain(m)
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

var prefixSeq atomic.Int64

// uniquePrefix gives every store on a shared server its own key space.
func uniquePrefix() string { return fmt.Sprintf("t%d", prefixSeq.Add(1)) }

// testClient connects to addr with short timeouts, so that a dead server
// fails calls within about a second.
func testClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:            addr,
		DialTimeout:     500 * time.Millisecond,
		ReadTimeout:     time.Second,
		WriteTimeout:    time.Second,
		MaxRetries:      1,
		MinRetryBackoff: 10 * time.Millisecond,
		MaxRetryBackoff: 50 * time.Millisecond,
		Protocol:        2,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// newRedisStore makes a Store with a fresh prefix on client.
func newRedisStore(t testing.TB, client redis.UniversalClient, cfg storetest.Config) *Store {
	t.Helper()
	r, err := New(Config{
		Client: client, Prefix: uniquePrefix(), MaxLen: cfg.MaxLen, MaxBytes: cfg.MaxBytes, Retention: cfg.Retention,
		MaxMembers: cfg.MaxMembers, Logger: quietLog,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// redisFactory starts one redis-server for t and gives each store its own
// prefix on it.
func redisFactory(t *testing.T) storetest.Factory {
	t.Helper()
	srv := redistest.Start(t)
	client := testClient(t, srv.Addr())
	return func(t testing.TB, cfg storetest.Config) queue.Store {
		t.Helper()
		return newRedisStore(t, client, cfg)
	}
}
