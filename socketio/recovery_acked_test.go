package socketio

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/internal/sitest"
	"github.com/roomcast/roomcast/queue/redisqueue"
)

var ackedPrefixSeq atomic.Int64

// redisNode is one recovery-enabled server on its own Store and Redis
// client: a node of a fleet sharing one redis-server.
type redisNode struct {
	srv    *Server
	url    string
	store  *redisqueue.Store
	client *redis.Client
}

func startRedisNode(t testing.TB, addr, prefix string) *redisNode {
	t.Helper()
	client := redis.NewClient(&redis.Options{
		Addr: addr, DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: 1, Protocol: 2,
	})
	st, err := redisqueue.New(redisqueue.Config{Client: client, Prefix: prefix, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{
		Engine: engineio.Config{PingInterval: time.Second, PingTimeout: time.Second},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Recovery: &Recovery{
			Store: st,
			User:  func(s *Socket) string { u, _ := s.Handshake().Auth["user"].(string); return u },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = st.Close()
		_ = client.Close()
	})
	return &redisNode{srv: srv, url: serve(t, srv), store: st, client: client}
}

// crash makes the node lose its Redis at once, as a SIGKILL would: nothing
// it did not store already (a debounced save, the disconnect-time save)
// reaches Redis from now on.
func (n *redisNode) crash() {
	_ = n.store.Close()
	_ = n.client.Close()
}

// TestAckedRoomsSurviveANodeCrash: a client's join and leave have returned
// (the gateway acks them then); its node crashes at once, without its
// disconnect-time save; the client recovers on another node with exactly
// the rooms it was acknowledged.
func TestAckedRoomsSurviveANodeCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	rs := redistest.Start(t)
	prefix := "acked" + strconv.FormatInt(ackedPrefixSeq.Add(1), 10)
	a, b := startRedisNode(t, rs.Addr(), prefix), startRedisNode(t, rs.Addr(), prefix)

	c := sitest.Dial(t, b.url)
	c.Send(`40{"user":"alice"}`)
	first, _ := readConnect(t, c)
	s, ok := b.srv.Sockets().Socket(first.SID)
	if !ok {
		t.Fatal("socket not found on b")
	}
	if err := s.Join("gone"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // "gone" is in the stored session, however it gets there
	if err := s.Join("late"); err != nil {
		t.Fatal(err)
	}
	if err := s.Leave("gone"); err != nil {
		t.Fatal(err)
	}
	b.crash()
	c.Conn.Close(websocket.StatusGoingAway, "")

	c2 := sitest.Dial(t, a.url)
	c2.Send(fmt.Sprintf(`40{"user":"alice","pid":%q,"offset":%q}`, first.PID, s.Offset()))
	reply, _ := readConnect(t, c2)
	if reply.SID != first.SID {
		t.Fatalf("not recovered on a: %+v", reply)
	}
	s2, ok := a.srv.Sockets().Socket(first.SID)
	if !ok || !s2.Recovered() {
		t.Fatalf("socket %s on a: found %v, recovered %v", first.SID, ok, ok && s2.Recovered())
	}
	if !s2.InRoom("late") || s2.InRoom("gone") {
		t.Fatalf("recovered rooms %v, want late and not gone", s2.Rooms())
	}
}

// TestJoinFailsWhenTheSessionCannotBeStored: with the Store gone, a join
// is refused and leaves the socket out of the room; a leave is refused
// and leaves it in.
func TestJoinFailsWhenTheSessionCannotBeStored(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	rs := redistest.Start(t)
	n := startRedisNode(t, rs.Addr(), "fail"+strconv.FormatInt(ackedPrefixSeq.Add(1), 10))
	c := sitest.Dial(t, n.url)
	c.Send(`40{"user":"bob"}`)
	first, _ := readConnect(t, c)
	s, _ := n.srv.Sockets().Socket(first.SID)
	if err := s.Join("kept"); err != nil {
		t.Fatal(err)
	}
	rs.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.JoinContext(ctx, "new"); err == nil || s.InRoom("new") {
		t.Fatalf("join without a Store: err %v, in room %v", err, s.InRoom("new"))
	}
	if err := s.LeaveContext(ctx, "kept"); err == nil || !s.InRoom("kept") {
		t.Fatalf("leave without a Store: err %v, in room %v", err, s.InRoom("kept"))
	}
}

// BenchmarkJoinRedis measures Socket.JoinContext of a recovery-enabled
// socket against a real redis-server (a plain room: the session save),
// and the Redis commands per join.
//
//	go test -run '^$' -bench BenchmarkJoinRedis -benchtime 2000x ./socketio/
func BenchmarkJoinRedis(b *testing.B) {
	rs := redistest.Start(b)
	n := startRedisNode(b, rs.Addr(), "bench")
	c := sitest.Dial(b, n.url)
	c.Send(`40{"user":"carol"}`)
	f := c.Read()
	if !strings.HasPrefix(f, "40") {
		b.Fatalf("connect: %s", f)
	}
	var reply connectReply
	if err := json.Unmarshal([]byte(f[2:]), &reply); err != nil {
		b.Fatal(err)
	}
	sid := reply.SID
	s, _ := n.srv.Sockets().Socket(sid)
	ctx := context.Background()
	commands := func() int64 {
		info, err := n.client.Info(ctx, "stats").Result()
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
				x, _ := strconv.ParseInt(v, 10, 64)
				return x
			}
		}
		return 0
	}
	rooms := []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"}
	b.ReportAllocs()
	before := commands()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.JoinContext(ctx, rooms[i%len(rooms)]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(commands()-before-1)/float64(b.N), "redis-cmds/op")
}
