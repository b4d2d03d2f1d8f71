package redispresence

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/adapter/redisadapter"
	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/presence"
)

// benchNamespace and benchSocket stand in for socketio's: the adapter
// needs only their ids and what FetchSockets reports of them.
type benchNamespace struct{}

func (benchNamespace) Name() string                            { return "/" }
func (benchNamespace) HandleServerSideEmit([]any, func([]any)) {}

type benchSocket struct{ id, user string }

func (s benchSocket) ID() string                                      { return s.id }
func (benchSocket) Deliver(*adapter.Message, bool) bool               { return true }
func (benchSocket) DeliverWithAck(*adapter.Message, func([]any)) bool { return true }
func (benchSocket) Disconnect(bool)                                   {}
func (s benchSocket) Info() adapter.SocketInfo {
	// What a gateway socket reports: the handshake's shape, its session.
	return adapter.SocketInfo{ID: s.id, Data: map[string]any{"user": s.user, "name": "User " + s.user},
		Handshake: adapter.Handshake{Time: time.RFC1123, URL: "/socket.io/?EIO=4&transport=websocket", Issued: 1795485349246,
			Headers: map[string]string{}, Query: map[string]string{}, Auth: map[string]any{}}}
}

// commands is Redis's count of processed commands.
func commands(b *testing.B, c *redis.Client) int64 {
	b.Helper()
	info, err := c.Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no total_commands_processed")
	return 0
}

// BenchmarkRoomMembers compares answering "who is in this room" from the
// presence Store (one pipeline and one HMGET for a page of 100, or one
// pipeline for the counts) with today's FetchSockets across three nodes
// (a request to every node over pub/sub, each answering with its members'
// sockets), for rooms of 100, 10k and 100k members spread over the nodes.
// It reports Redis commands per query (INFO total_commands_processed, less
// the INFO itself), the pub/sub messages between the nodes per query (a
// pattern subscription on every channel counts them) and, for
// FetchSockets, the sockets carried back. Each size is set up once, in its
// own sub-benchmark, so one size can be run alone (the 100k setup writes
// 100k entries first, about a minute on a small box); FetchSockets gets a
// 60 s request timeout so that its latency is measured rather than cut at
// the default 5 s:
//
//	go test -run '^$' -bench 'BenchmarkRoomMembers/members=(100|10000)$' -benchtime 200x ./presence/redispresence
//	go test -run '^$' -bench 'BenchmarkRoomMembers/members=100000$' -benchtime 5x ./presence/redispresence
func BenchmarkRoomMembers(b *testing.B) {
	srv := redistest.Start(b)
	probe := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2})
	b.Cleanup(func() { _ = probe.Close() })
	for _, size := range []int{100, 10000, 100000} {
		b.Run(fmt.Sprintf("members=%d", size), func(b *testing.B) {
			roomMembers(b, srv, probe, size)
		})
	}
}

// roomMembers sets up a room of size members over three nodes and runs the
// three ways of reading it.
func roomMembers(b *testing.B, srv *redistest.Server, probe *redis.Client, size int) {
	ctx := context.Background()
	prefix := uniquePrefix()
	var adapters []adapter.Adapter
	for i := range 3 {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2})
		cl, err := redisadapter.New(ctx, redisadapter.Config{Client: c, Prefix: prefix, Node: fmt.Sprint("n", i), Logger: quiet,
			RequestTimeout: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		a, err := cl.Factory()(benchNamespace{})
		if err != nil {
			b.Fatal(err)
		}
		adapters = append(adapters, a)
		b.Cleanup(func() { _ = a.Close(); _ = cl.Close(); _ = c.Close() })
	}
	stores := make([]*Store, 3)
	for i := range stores {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2})
		b.Cleanup(func() { _ = c.Close() })
		st, err := New(ctx, Config{Client: c, Prefix: prefix, Node: fmt.Sprint("n", i), Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		stores[i] = st
	}
	const workers = 8
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := w; i < size; i += workers {
				s := benchSocket{id: fmt.Sprintf("sock%06d", i), user: fmt.Sprintf("user%06d", i)}
				if err := adapters[i%3].AddAll(s, s.id, "big"); err != nil {
					errs <- err
					return
				}
				if _, err := stores[i%3].Join(ctx, presence.Socket{Namespace: "/", ID: s.id, User: s.user, Info: []byte(`{"name":"User ` + s.user + `"}`)}, "big"); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	// The pub/sub messages between the nodes: a pattern subscription on
	// every channel of the prefix sees each request and each answer.
	var msgs atomic.Int64
	sub := probe.PSubscribe(ctx, prefix+"*")
	b.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(ctx); err != nil {
		b.Fatal(err)
	}
	go func() {
		for range sub.Channel() {
			msgs.Add(1)
		}
	}()
	run := func(name string, fn func() int) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			got := 0
			msgs.Store(0)
			before := commands(b, probe)
			for b.Loop() {
				got = fn()
			}
			after := commands(b, probe)
			time.Sleep(50 * time.Millisecond) // the probe's last messages
			b.ReportMetric(float64(after-before-1)/float64(b.N), "redis-cmds/op")
			b.ReportMetric(float64(msgs.Load())/float64(b.N), "node-msgs/op")
			b.ReportMetric(float64(got), "members")
		})
	}
	run("presence-page100", func() int {
		p, err := stores[0].Members(ctx, "/", "big", "", 100)
		if err != nil || p.Users != size {
			b.Fatalf("%v %+v", err, p.Users)
		}
		return len(p.Members)
	})
	run("presence-counts", func() int {
		p, err := stores[0].Members(ctx, "/", "big", "", 0)
		if err != nil || p.Users != size {
			b.Fatal(err)
		}
		return p.Users
	})
	run("fetchsockets", func() int {
		socks, err := adapters[0].FetchSockets(ctx, adapter.Options{Rooms: []string{"big"}})
		if err != nil || len(socks) != size {
			b.Fatalf("%v %d", err, len(socks))
		}
		return len(socks)
	})
}

// BenchmarkJoinLeave is the cost of one socket joining and leaving a room
// of 1000 members: the join and leave scripts and their events' appends.
//
//	go test -run '^$' -bench BenchmarkJoinLeave ./presence/redispresence
func BenchmarkJoinLeave(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2})
	b.Cleanup(func() { _ = c.Close() })
	st, err := New(ctx, Config{Client: c, Prefix: uniquePrefix(), Node: "n", Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	for i := range 1000 {
		if _, err := st.Join(ctx, presence.Socket{Namespace: "/", ID: fmt.Sprint("m", i), User: fmt.Sprint("u", i)}, "r"); err != nil {
			b.Fatal(err)
		}
	}
	s := presence.Socket{Namespace: "/", ID: "x", User: "ux"}
	b.ReportAllocs()
	before := commands(b, c)
	for b.Loop() {
		if _, err := st.Join(ctx, s, "r"); err != nil {
			b.Fatal(err)
		}
		if _, err := st.Leave(ctx, s, "r"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(commands(b, c)-before-1)/float64(b.N), "redis-cmds/op")
}
