package socketio

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/broadcastlog"
	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/parser"
	"github.com/roomcast/roomcast/queue"
)

// loggedRoom starts a server with recovery and a memory broadcast log
// whose n polling clients are all in "room"; it stops with b.
func loggedRoom(b *testing.B, n int) (*adapter.Memory, []*pollingSession) {
	st, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	log := broadcastlog.NewMemory(broadcastlog.MemoryConfig{})
	b.Cleanup(func() { _ = log.Close() })
	srv, err := New(Config{
		Engine:   engineio.Config{PingInterval: time.Hour, PingTimeout: time.Hour, MaxQueueBytes: 1 << 30},
		Recovery: &Recovery{Store: st, Log: log},
	})
	if err != nil {
		b.Fatal(err)
	}
	srv.Sockets().OnConnection(func(s *Socket) { _ = s.Join("room") })
	sessions := make([]*pollingSession, n)
	for i := range sessions {
		sessions[i] = openPolling(b, srv)
	}
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv.Sockets().Adapter().(*adapter.Memory), sessions
}

// loggedMessage is a broadcast of "message" as the log's tail builds it
// at position p, encoded.
func loggedMessage(b *testing.B, p broadcastlog.Position) *adapter.Message {
	proto, err := adapter.NewMessage("/", "message", []any{"hello"})
	if err != nil {
		b.Fatal(err)
	}
	m := &adapter.Message{Packet: parser.Packet{
		Type: proto.Packet.Type, Namespace: "/", ID: parser.NoID, Data: proto.Packet.Data,
	}, Log: p.String(), LogPosition: p}
	m.LogEnd = append([]byte(m.Log), '"', ']')
	m.Frames()
	return m
}

// drainSessions takes what the clients were sent, outside the timer.
func drainSessions(b *testing.B, sessions []*pollingSession) {
	b.StopTimer()
	for _, p := range sessions {
		p.do(b, http.MethodGet, "")
	}
	b.StartTimer()
}

// BenchmarkDeliverLogged is BenchmarkDeliver for broadcasts delivered from
// the broadcast log: every delivery carries a new offset (the socket's log
// position changes), formatted into the socket's tail slab.
func BenchmarkDeliverLogged(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			mem, sessions := loggedRoom(b, n)
			base := uint64(time.Now().Add(time.Hour).UnixMilli())
			msgs := make([]*adapter.Message, b.N)
			for i := range msgs {
				msgs[i] = loggedMessage(b, broadcastlog.Position{Ms: base, Seq: uint64(i)})
				msgs[i].LogPosition = broadcastlog.Position{} // each delivery parses Log, as a message not from the tail does
			}
			opts := adapter.Options{Rooms: []string{"room"}}
			const drainEvery = 32
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if got := mem.DeliverLocal(msgs[i], opts, false); got != n {
					b.Fatalf("delivered to %d, want %d", got, n)
				}
				if i%drainEvery == drainEvery-1 {
					drainSessions(b, sessions)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkDeliverLoggedRun is BenchmarkDeliverLogged for the tail's runs:
// one op hands a run of 8 logged broadcasts to a room, from two publishers
// excepting their own sockets (not in the room), socket by socket
// (adapter.Memory.DeliverLocalRun): each socket gets the 8 in one
// hand-off. Its allocations are per run, none per delivery.
func BenchmarkDeliverLoggedRun(b *testing.B) {
	const run = 8
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			mem, sessions := loggedRoom(b, n)
			base := uint64(time.Now().Add(time.Hour).UnixMilli())
			runs := make([][]*adapter.Message, b.N)
			for i := range runs {
				for j := range run {
					runs[i] = append(runs[i], loggedMessage(b, broadcastlog.Position{Ms: base, Seq: uint64(i*run + j)}))
				}
			}
			except := make([][]string, run)
			for j := range except {
				except[j] = []string{"publisher-" + strconv.Itoa(j%2)}
			}
			rooms := []string{"room"}
			const drainEvery = 4
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if got := mem.DeliverLocalRun(runs[i], rooms, except); got[run-1] != n {
					b.Fatalf("delivered to %d, want %d", got[run-1], n)
				}
				if i%drainEvery == drainEvery-1 {
					drainSessions(b, sessions)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(n)*run*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkRecoverRoomBacklog: one op is the recovery of a client that
// missed 10k broadcasts to its room (memory log and store): from its
// CONNECT with pid and offset to its CONNECT reply, all 10k read.
func BenchmarkRecoverRoomBacklog(b *testing.B) {
	const missed = 10_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := queue.NewMemory(queue.MemoryConfig{})
		if err != nil {
			b.Fatal(err)
		}
		log := broadcastlog.NewMemory(broadcastlog.MemoryConfig{})
		srv, err := New(Config{
			Engine:   engineio.Config{PingInterval: time.Hour, PingTimeout: time.Hour, MaxQueueBytes: 64 << 20},
			Recovery: &Recovery{Store: st, Log: log},
		})
		if err != nil {
			b.Fatal(err)
		}
		nsp := srv.Sockets()
		nsp.OnConnection(func(s *Socket) {
			if !s.Recovered() {
				_ = s.Join("room")
			}
		})
		p := openPolling(b, srv)
		var s *Socket
		for _, x := range nsp.LocalSockets() {
			s = x
		}
		_ = nsp.To("room").Emit("m", 0)
		body := p.do(b, http.MethodGet, "")
		_, _, offset := event(b, body)
		pid := s.PID()
		s.Disconnect(true)
		waitFor(b, "session", func() bool {
			sess, err := st.LoadSession(b.Context(), pid)
			return err == nil && len(sess.Rooms) > 0
		})
		for j := 1; j <= missed; j++ {
			_ = nsp.To("room").Emit("m", j)
		}
		q := &pollingSession{srv: srv}
		open := q.do(b, http.MethodGet, "")
		q.sid = open[strings.Index(open, `"sid":"`)+7:]
		q.sid = q.sid[:strings.IndexByte(q.sid, '"')]
		b.StartTimer()
		q.do(b, http.MethodPost, fmt.Sprintf(`40{"pid":%q,"offset":%q}`, pid, offset))
		got := 0
		for got < missed {
			got += strings.Count(q.do(b, http.MethodGet, ""), "42[")
		}
		b.StopTimer()
		_ = srv.Shutdown(b.Context())
		_ = log.Close()
		_ = st.Close()
	}
}
