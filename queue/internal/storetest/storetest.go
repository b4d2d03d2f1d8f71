// Package storetest is the test suite every queue.Store passes, shared by
// the tests of package queue (the memory Store) and of package
// queue/redisqueue (the Redis Store): the Store contract (RunContract),
// Replay's gap-free handoff (RunHandoff and the RunReplay functions), the
// benchmarks (the Bench functions) and the helpers they use. It is only
// imported by tests.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/queue"
)

// Config is what the contract tests vary; zero fields take the
// implementation's defaults.
type Config struct {
	MaxLen     int64
	MaxBytes   int64
	Retention  time.Duration
	MaxMembers int
}

// Unbounded is the configuration of the benchmarks that append without
// end: full queues refuse (they no longer trim), so entries leave by age
// only, within a short retention that bounds the memory used.
var Unbounded = Config{MaxLen: 1 << 40, MaxBytes: 1 << 50, Retention: 100 * time.Millisecond}

// Factory makes a fresh, empty Store closed by t.Cleanup.
type Factory func(t testing.TB, cfg Config) queue.Store

// Ctx returns a context that ends with t (30 s at most).
func Ctx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Collector records what a subscription delivers.
type Collector struct {
	mu   sync.Mutex
	msgs []queue.Message
	errs []error
	note chan struct{}
}

// NewCollector returns an empty Collector.
func NewCollector() *Collector { return &Collector{note: make(chan struct{}, 1)} }

// Fn is the subscription callback.
func (c *Collector) Fn(m queue.Message, err error) {
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

// Snapshot returns what was delivered so far.
func (c *Collector) Snapshot() ([]queue.Message, []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]queue.Message(nil), c.msgs...), append([]error(nil), c.errs...)
}

// WaitFor waits until cond holds on the collected messages, or fails t.
func (c *Collector) WaitFor(t testing.TB, what string, cond func([]queue.Message, []error) bool) []queue.Message {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		msgs, errs := c.Snapshot()
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

// WaitN waits until n messages were delivered, or fails t.
func (c *Collector) WaitN(t testing.TB, n int) []queue.Message {
	t.Helper()
	return c.WaitFor(t, fmt.Sprintf("%d messages", n), func(m []queue.Message, _ []error) bool { return len(m) >= n })
}

// SameMessage reports whether a and b carry the same content and ID.
func SameMessage(a, b queue.Message) bool {
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

// IDs returns the IDs of msgs.
func IDs(msgs []queue.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// MustAppend appends m to users, or fails t.
func MustAppend(t testing.TB, st queue.Store, users []string, m queue.Message) []string {
	t.Helper()
	got, err := st.Append(Ctx(t), users, m)
	if err != nil {
		t.Fatalf("Append(%v): %v", users, err)
	}
	if len(got) != len(users) {
		t.Fatalf("Append(%v) returned %d ids", users, len(got))
	}
	return got
}

// MustLast returns user's fresh-session offset, or fails t.
func MustLast(t testing.TB, st queue.Store, user string) string {
	t.Helper()
	off, err := st.Last(Ctx(t), user)
	if err != nil {
		t.Fatalf("Last(%q): %v", user, err)
	}
	return off
}

// ReadAll reads every message after `after` in pages.
func ReadAll(t testing.TB, st queue.Store, user, after string) ([]queue.Message, error) {
	t.Helper()
	var out []queue.Message
	for {
		page, err := st.Read(Ctx(t), user, after, 1000)
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

// MsgN is a small message numbered i.
func MsgN(i int) queue.Message {
	return queue.Message{Namespace: "/", Event: "msg", Data: []byte(fmt.Sprintf(`[%d]`, i))}
}
