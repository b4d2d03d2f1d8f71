package adapter

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// benchSocket is a Socket that counts what it is handed.
type benchSocket struct {
	id string
	n  atomic.Int64
}

func (s *benchSocket) ID() string                  { return s.id }
func (s *benchSocket) Deliver(*Message, bool) bool { s.n.Add(1); return true }
func (s *benchSocket) Info() SocketInfo            { return SocketInfo{ID: s.id} }
func (s *benchSocket) Disconnect(bool)             {}
func (s *benchSocket) DeliverWithAck(m *Message, _ func([]any)) bool {
	return s.Deliver(m, false)
}

func benchMessage(b *testing.B) *Message {
	b.Helper()
	m, err := NewMessage("/", "chat", []any{map[string]any{"user": "alice", "text": "hello, world", "n": 42}})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkEncodeBroadcast measures what a classic broadcast costs the
// sender before PUBLISH: the packet as generic values, then MessagePack.
func BenchmarkEncodeBroadcast(b *testing.B) {
	m := benchMessage(b)
	a := &RedisAdapter{uid: "0123456789abcdef", nsp: stubNamespace("/")}
	opts := Options{Rooms: []string{"room"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.encodeBroadcast(m, opts); err != nil {
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
			sender := &RedisAdapter{uid: "sender", nsp: stubNamespace("/")}
			payload, err := sender.encodeBroadcast(benchMessage(b), Options{Rooms: []string{"room"}})
			if err != nil {
				b.Fatal(err)
			}
			a := &RedisAdapter{uid: "receiver", nsp: stubNamespace("/"), channel: "socket.io#/#"}
			a.Memory = NewMemory(a.nsp, MemoryConfig{})
			socks := make([]*benchSocket, members)
			for i := range socks {
				socks[i] = &benchSocket{id: "s" + strconv.Itoa(i)}
				if err := a.AddAll(socks[i], "room"); err != nil {
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
	a := &ShardedAdapter{uid: "0123456789abcdef", nsp: stubNamespace("/")}
	b.ReportAllocs()
	for b.Loop() {
		packet, err := packetValue(m)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.encode(msgBroadcast, map[string]any{"packet": packet, "opts": optionsValue(Options{Rooms: []string{"room"}}, nil)}); err != nil {
			b.Fatal(err)
		}
	}
}
