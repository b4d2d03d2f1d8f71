package queue_test

import (
	"testing"

	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/queue/internal/storetest"
)

// The benchmarks every Store runs (package redisqueue runs them on Redis);
// each gets a fresh Memory store.

func benchStore(b *testing.B) queue.Store {
	b.Helper()
	mem, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = mem.Close() })
	return mem
}

func BenchmarkAppend(b *testing.B)       { storetest.BenchAppend(b, "memory", benchStore(b)) }
func BenchmarkRead10k(b *testing.B)      { storetest.BenchRead10k(b, "memory", benchStore(b)) }
func BenchmarkReplay10k(b *testing.B)    { storetest.BenchReplay10k(b, "memory", benchStore(b)) }
func BenchmarkLiveDelivery(b *testing.B) { storetest.BenchLiveDelivery(b, "memory", benchStore(b)) }
