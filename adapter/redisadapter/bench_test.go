package redisadapter

import (
	"github.com/roomcast/roomcast/adapter"
	"strconv"
	"sync/atomic"
	"testing"
)

// benchSocket is a Socket that counts what it is handed.
type benchSocket struct {
	id string
	n  atomic.Int64
}

func (s *benchSocket) ID() string                          { return s.id }
func (s *benchSocket) Deliver(*adapter.Message, bool) bool { s.n.Add(1); return true }
func (s *benchSocket) Info() adapter.SocketInfo            { return adapter.SocketInfo{ID: s.id} }
func (s *benchSocket) Disconnect(bool)                     {}
func (s *benchSocket) DeliverWithAck(m *adapter.Message, _ func([]any)) bool {
	return s.Deliver(m, false)
}

func benchMessage(b *testing.B) *adapter.Message {
	b.Helper()
	m, err := adapter.NewMessage("/", "chat", []any{map[string]any{"user": "alice", "text": "hello, world", "n": 42}})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkEncodeBroadcast measures what a classic broadcast costs the
// sender before PUBLISH: the packet as generic values, then MessagePack.
func BenchmarkEncodeBroadcast(b *testing.B) {
	m := benchMessage(b)
	a := testClassic("0123456789abcdef", stubNamespace("/"))
	opts := adapter.Options{Rooms: []string{"room"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.encode(m, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReceiveBroadcast measures the receiving side of a classic
// broadcast: decoding the message once and handing it to the room's local
// members, at 1, 100 and 10k members.
func BenchmarkReceiveBroadcast(b *testing.B) {
	for _, members := range []int{1, 100, 10000} {
		b.Run(strconv.Itoa(members)+" members", func(b *testing.B) {
			sender := testClassic("sender", stubNamespace("/"))
			payload, err := sender.encode(benchMessage(b), adapter.Options{Rooms: []string{"room"}})
			if err != nil {
				b.Fatal(err)
			}
			a := testClassic("receiver", stubNamespace("/"))
			socks := make([]*benchSocket, members)
			for i := range socks {
				socks[i] = &benchSocket{id: "s" + strconv.Itoa(i)}
				if err := a.a.AddAll(socks[i], "room"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				a.onMessage("socket.io#/#room#", payload)
			}
			b.StopTimer()
			if got := socks[0].n.Load(); got == 0 {
				b.Fatal("nothing delivered")
			}
		})
	}
}

// BenchmarkShardedEncode measures the sharded adapter's JSON message.
func BenchmarkShardedEncode(b *testing.B) {
	m := benchMessage(b)
	a := testSharded("0123456789abcdef", stubNamespace("/"))
	b.ReportAllocs()
	for b.Loop() {
		packet, err := packetValue(m)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.encode(msgBroadcast, map[string]any{"packet": packet, "opts": optionsValue(adapter.Options{Rooms: []string{"room"}}, nil)}); err != nil {
			b.Fatal(err)
		}
	}
}
