package redisadapter_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/queue/redisqueue"
	"github.com/roomcast/roomcast/socketio"
)

// sessionStore is a Store shared by the nodes of a test fleet whose
// SaveSession can be made slow (so that a move stored after the answer is
// caught, not raced) or failing.
type sessionStore struct {
	queue.Store
	delay time.Duration
	fail  atomic.Bool
}

func (s *sessionStore) SaveSession(ctx context.Context, sess queue.Session, ttl time.Duration) error {
	if s.fail.Load() {
		return errors.New("session store down")
	}
	time.Sleep(s.delay)
	return s.Store.SaveSession(ctx, sess, ttl)
}

// movedFleet starts two nodes with recovery over one Store; node n1's
// session saves take delay and can be made to fail.
func movedFleet(t *testing.T, k kind, requestTimeout, delay time.Duration) (nodes []*node, shared queue.Store, slow *sessionStore) {
	t.Helper()
	_, cfg := standalone(t, k)
	mem, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mem.Close() })
	fast := &sessionStore{Store: mem}
	slow = &sessionStore{Store: mem, delay: delay}
	cfg.requestTimeout = requestTimeout
	cfg.recovery = func(name string) *socketio.Recovery {
		st := fast
		if name == "n1" {
			st = slow
		}
		return &socketio.Recovery{Store: st}
	}
	return startFleet(t, 2, cfg), mem, slow
}

// A SocketsJoin (the API's sockets/join) returns only once the node of
// each selected socket applied it and stored the socket's recovery session
// with the room: a crash of that node right after the answer recovers it.
// Likewise SocketsLeave. A node that cannot store the move makes the call
// fail with ErrUnavailable.
func TestSocketsJoinConfirmedByEveryNode(t *testing.T) {
	for _, k := range []kind{classic, sharded} {
		t.Run(k.name, func(t *testing.T) {
			nodes, st, slow := movedFleet(t, k, 0, 100*time.Millisecond)
			c := nodes[1].dial()
			s, ok := nodes[1].nsp().Socket(c.sid)
			if !ok {
				t.Fatal("socket not found")
			}
			pid := s.PID()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			rooms := func() []string {
				t.Helper()
				sess, err := st.LoadSession(ctx, pid)
				if err != nil {
					t.Fatal(err)
				}
				return sess.Rooms
			}

			if err := nodes[0].nsp().In(c.sid).SocketsJoin(ctx, "moved-in"); err != nil {
				t.Fatal(err)
			}
			if got := rooms(); !slices.Contains(got, "moved-in") {
				t.Fatalf("node n1's session rooms %v right after SocketsJoin on n0, want moved-in", got)
			}
			if err := nodes[0].nsp().In(c.sid).SocketsLeave(ctx, "moved-in"); err != nil {
				t.Fatal(err)
			}
			if got := rooms(); slices.Contains(got, "moved-in") {
				t.Fatalf("node n1's session rooms %v right after SocketsLeave on n0, want no moved-in", got)
			}

			slow.fail.Store(true)
			err := nodes[0].nsp().In(c.sid).SocketsJoin(ctx, "unstored")
			if !errors.Is(err, adapter.ErrUnavailable) {
				t.Fatalf("SocketsJoin with n1's store down = %v, want ErrUnavailable", err)
			}
		})
	}
}

// A node that does not answer makes SocketsJoin fail with ErrAckTimeout
// after the request timeout, not succeed.
func TestSocketsJoinNotConfirmedTimesOut(t *testing.T) {
	for _, k := range []kind{classic, sharded} {
		t.Run(k.name, func(t *testing.T) {
			// n1 stores, but after the request timeout.
			nodes, _, _ := movedFleet(t, k, 300*time.Millisecond, time.Second)
			c := nodes[1].dial()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := nodes[0].nsp().In(c.sid).SocketsJoin(ctx, "late")
			if !errors.Is(err, adapter.ErrAckTimeout) {
				t.Fatalf("SocketsJoin with a slow n1 = %v, want ErrAckTimeout", err)
			}
			if d := time.Since(start); d > 900*time.Millisecond {
				t.Fatalf("SocketsJoin took %v, want about the request timeout (300ms)", d)
			}
		})
	}
}

// BenchmarkSocketsJoinRemote measures a SocketsJoin (the API's sockets/join)
// from node n0 of one socket on node n1, sessions in a Redis store on the
// same redis-server: the count, the request, n1's apply and session SET,
// and its answer.
func BenchmarkSocketsJoinRemote(b *testing.B) {
	for _, k := range []kind{classic, sharded} {
		b.Run(k.name, func(b *testing.B) {
			rs, cfg := standalone(b, k)
			client := redis.NewClient(&redis.Options{Addr: rs.Addr()})
			b.Cleanup(func() { _ = client.Close() })
			st, err := redisqueue.New(redisqueue.Config{Client: client, Prefix: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			cfg.recovery = func(string) *socketio.Recovery { return &socketio.Recovery{Store: st} }
			nodes := startFleet(b, 2, cfg)
			c := nodes[1].dial()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := nodes[0].nsp().In(c.sid).SocketsJoin(ctx, "bench-room"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
