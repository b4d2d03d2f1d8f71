package queue_test

import (
	"testing"

	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/queue/internal/storetest"
)

// The benchmarks every Store runs (package redisqueue runs them on Redis);
// each gets a fresh Memory store.

func benchStore(b *testing.B, cfg storetest.Config) queue.Store {
	b.Helper()
	mem, err := queue.NewMemory(queue.MemoryConfig{MaxLen: cfg.MaxLen, MaxBytes: cfg.MaxBytes, Retention: cfg.Retention})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = mem.Close() })
	return mem
}

// Append and LiveDelivery append without end: their stores are unbounded.
func BenchmarkAppend(b *testing.B) {
	storetest.BenchAppend(b, "memory", benchStore(b, storetest.Unbounded))
}
func BenchmarkRead10k(b *testing.B) {
	storetest.BenchRead10k(b, "memory", benchStore(b, storetest.Config{}))
}
func BenchmarkReplay10k(b *testing.B) {
	storetest.BenchReplay10k(b, "memory", benchStore(b, storetest.Config{}))
}
func BenchmarkLiveDelivery(b *testing.B) {
	storetest.BenchLiveDelivery(b, "memory", benchStore(b, storetest.Unbounded))
}
