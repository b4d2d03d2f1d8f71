package queue_test

import (
	"testing"

	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/queue/internal/storetest"
)

// memoryFactory makes Memory stores for the shared tests.
func memoryFactory(t testing.TB, cfg storetest.Config) queue.Store {
	t.Helper()
	m, err := queue.NewMemory(queue.MemoryConfig{MaxLen: cfg.MaxLen, MaxBytes: cfg.MaxBytes, Retention: cfg.Retention, MaxMembers: cfg.MaxMembers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// The contract every Store implements (package redisqueue runs it against
// a real redis-server).
func TestMemoryContract(t *testing.T) {
	t.Parallel()
	storetest.RunContract(t, memoryFactory)
}
