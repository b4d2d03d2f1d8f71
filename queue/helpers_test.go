package queue

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/internal/leakcheck"
	"github.com/roomcast/roomcast/internal/redistest"
)

func TestMain(m *testing.M) {
	redis.SetLogger(discardLogger{}) // the fault tests make go-redis log every failed dial
	leakcheck.VerifyTestMain(m)
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// storeConfig is what the contract tests vary; zero fields take the
// implementation's defaults.
type storeConfig struct {
	MaxLen     int64
	MaxBytes   int64
	Retention  time.Duration
	MaxMembers int
}

// factory makes a fresh, empty Store closed by t.Cleanup.
type factory func(t testing.TB, cfg storeConfig) Store

func memoryFactory(t testing.TB, cfg storeConfig) Store {
	t.Helper()
	m, err := NewMemory(MemoryConfig{MaxLen: cfg.MaxLen, MaxBytes: cfg.MaxBytes, Retention: cfg.Retention, MaxMembers: cfg.MaxMembers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

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
func newRedisStore(t testing.TB, client redis.UniversalClient, cfg storeConfig) *Redis {
	t.Helper()
	r, err := NewRedis(RedisConfig{
		Client: client, Prefix: uniquePrefix(), MaxLen: cfg.MaxLen, Retention: cfg.Retention,
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
func redisFactory(t *testing.T) factory {
	t.Helper()
	srv := redistest.Start(t)
	client := testClient(t, srv.Addr())
	return func(t testing.TB, cfg storeConfig) Store {
		t.Helper()
		return newRedisStore(t, client, cfg)
	}
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// collector records what a subscription delivers.
type collector struct {
	mu   sync.Mutex
	msgs []Message
	errs []error
	note chan struct{}
}

func newCollector() *collector { return &collector{note: make(chan struct{}, 1)} }

func (c *collector) fn(m Message, err error) {
	c.mu.Lock()
	if err != nil {
		c.errs = append(c.errs, err)
	} else {
		c.msgs = append(c.msgs, m)
	}
	c.mu.Unlock()
	select {
	case c.note <- struct{}{}:
	default:
	}
}

func (c *collector) snapshot() ([]Message, []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...), append([]error(nil), c.errs...)
}

// waitFor waits until cond holds on the collected messages, or fails t.
func (c *collector) waitFor(t testing.TB, what string, cond func([]Message, []error) bool) []Message {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		msgs, errs := c.snapshot()
		if cond(msgs, errs) {
			return msgs
		}
		select {
		case <-c.note:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s: have %d messages, errors %v", what, len(msgs), errs)
		}
	}
}

func (c *collector) waitN(t testing.TB, n int) []Message {
	t.Helper()
	return c.waitFor(t, fmt.Sprintf("%d messages", n), func(m []Message, _ []error) bool { return len(m) >= n })
}

// sameMessage reports whether a and b carry the same content and ID.
func sameMessage(a, b Message) bool {
	if a.ID != b.ID || a.Namespace != b.Namespace || a.Event != b.Event || !bytes.Equal(a.Data, b.Data) ||
		len(a.Attachments) != len(b.Attachments) {
		return false
	}
	for i := range a.Attachments {
		if !bytes.Equal(a.Attachments[i], b.Attachments[i]) {
			return false
		}
	}
	return true
}

func ids(msgs []Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func mustAppend(t testing.TB, st Store, users []string, m Message) []string {
	t.Helper()
	got, err := st.Append(testCtx(t), users, m)
	if err != nil {
		t.Fatalf("Append(%v): %v", users, err)
	}
	if len(got) != len(users) {
		t.Fatalf("Append(%v) returned %d ids", users, len(got))
	}
	return got
}

func mustLast(t testing.TB, st Store, user string) string {
	t.Helper()
	off, err := st.Last(testCtx(t), user)
	if err != nil {
		t.Fatalf("Last(%q): %v", user, err)
	}
	return off
}

// readAll reads every message after `after` in pages.
func readAll(t testing.TB, st Store, user, after string) ([]Message, error) {
	t.Helper()
	var out []Message
	for {
		page, err := st.Read(testCtx(t), user, after, 1000)
		if err != nil {
			return out, err
		}
		out = append(out, page...)
		if len(page) < 1000 {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

func msgN(i int) Message {
	return Message{Namespace: "/", Event: "msg", Data: []byte(fmt.Sprintf(`[%d]`, i))}
}
