package redisadapter

import (
	"log/slog"

	"github.com/roomcast/roomcast/adapter"
)

// testAdapter returns a namespace adapter that is not connected to Redis,
// for the codec tests and benchmarks.
func testAdapter(uid string, nsp adapter.Namespace, sharded bool) *namespaceAdapter {
	a := &namespaceAdapter{uid: uid, nsp: nsp, b: &broker{prefix: "socket.io", log: slog.Default(), sharded: sharded}}
	a.Memory = adapter.NewMemory(nsp, adapter.MemoryConfig{})
	return a
}

func testClassic(uid string, nsp adapter.Namespace) *classic {
	a := testAdapter(uid, nsp, false)
	p := newClassic(a, false)
	a.proto = p
	return p
}

func testSharded(uid string, nsp adapter.Namespace) *sharded {
	a := testAdapter(uid, nsp, true)
	p := newSharded(a)
	a.proto = p
	return p
}
