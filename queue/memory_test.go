package queue

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestNewMemoryConfig(t *testing.T) {
	t.Parallel()
	if _, err := NewMemory(MemoryConfig{Retention: -time.Second}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative retention: %v", err)
	}
	m, err := NewMemory(MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.maxLen != DefaultMaxLen || m.retention != uint64(DefaultRetention.Milliseconds()) || m.maxMembers != DefaultMaxMembers {
		t.Fatalf("defaults: %d %d %d", m.maxLen, m.retention, m.maxMembers)
	}
}

// TestMemorySweep: streams and sessions that expired are dropped from
// memory even if nobody asks for them again; subscribed users are kept.
func TestMemorySweep(t *testing.T) {
	t.Parallel()
	m, err := NewMemory(MemoryConfig{Retention: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	appendTo := func(user string) {
		t.Helper()
		if _, err := m.Append(ctx, []string{user}, Message{Namespace: "/", Event: "msg", Data: []byte(`[1]`)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		appendTo(fmt.Sprint("user", i))
	}
	if err := m.SaveSession(ctx, Session{PID: "p", User: "u"}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	cancel, err := m.Subscribe(ctx, "kept", func(Message, error) {})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	time.Sleep(200 * time.Millisecond)
	m.mu.Lock()
	m.lastSweep = time.Time{} // the next operation sweeps
	m.mu.Unlock()
	appendTo("fresh")
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.users) != 2 || m.users["kept"] == nil || m.users["fresh"] == nil {
		t.Fatalf("%d users left after the sweep, want kept and fresh", len(m.users))
	}
	if len(m.sessions) != 0 {
		t.Fatalf("%d sessions left after the sweep", len(m.sessions))
	}
}
