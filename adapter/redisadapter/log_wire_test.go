package redisadapter

import (
	"reflect"
	"testing"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/internal/msgpack"
)

// TestLoggedBroadcastWire: a broadcast relayed with its broadcast log
// position carries it as opts.log (a member the Node adapters ignore: they
// read rooms, except and flags), and a Roomcast node that receives it
// delivers it to no socket (it takes it from the log).
func TestLoggedBroadcastWire(t *testing.T) {
	m, err := adapter.NewMessage("/", "ev", []any{1})
	if err != nil {
		t.Fatal(err)
	}
	a := testClassic("me", stubNamespace("/"))
	b, err := a.encode(m, adapter.Options{Rooms: []string{"r"}, Log: "1700000000000-3"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := msgpack.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	wantOpts := map[string]any{"rooms": []any{"r"}, "except": []any{}, "flags": map[string]any{}, "log": "1700000000000-3"}
	if got := v.([]any)[2]; !reflect.DeepEqual(got, wantOpts) {
		t.Fatalf("opts %#v, want %#v", got, wantOpts)
	}
	other := testClassic("other", stubNamespace("/"))
	_, opts, err := other.decodeBroadcast(b)
	if err != nil || opts.Log != "1700000000000-3" {
		t.Fatalf("decoded opts %+v, %v", opts, err)
	}
	if n := other.a.DeliverLocal(m, opts, true); n != 0 {
		t.Fatalf("a logged broadcast was delivered to %d sockets from the relay", n)
	}
}
