package presence_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/roomcast/roomcast/internal/leakcheck"
	"github.com/roomcast/roomcast/presence"
	"github.com/roomcast/roomcast/presence/internal/presencetest"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func TestMemoryContract(t *testing.T) {
	presencetest.Run(t, func(t *testing.T) presence.Store { return presence.NewMemory(presence.MemoryConfig{}) })
}

// TestMemoryHeapPerSocket: the memory Store's record of a connected
// socket in no room (what presence adds per idle connection on a single
// node).
func TestMemoryHeapPerSocket(t *testing.T) {
	const n = 10000
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%020d", i) // socket ids are 20 bytes
	}
	before := heap()
	m := presence.NewMemory(presence.MemoryConfig{})
	for _, id := range ids {
		if _, err := m.Connect(context.Background(), presence.Socket{Namespace: "/", ID: id, User: "u"}); err != nil {
			t.Fatal(err)
		}
	}
	per := (int64(heap()) - int64(before)) / n
	runtime.KeepAlive(m)
	t.Logf("memory Store heap per connected socket: %d bytes", per)
	if per > 200 {
		t.Fatalf("%d bytes per socket", per)
	}
}
