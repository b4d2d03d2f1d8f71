package redisadapter_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/internal/redistest"
)

// TestRedisOutage: Redis is killed and comes back on the same port. While it
// is away Ready fails (within seconds), local delivery keeps working, a
// publish fails loudly (ErrUnavailable and roomcast_redis_errors_total), and
// neither goroutines nor memory grow; once it is back, Ready recovers within
// 10 s and broadcasts flow between the nodes again (the subscriptions were
// re-established, room channels included).
func TestRedisOutage(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		rs, cfg := standalone(t, k)
		nodes := startFleet(t, 2, cfg)
		a, b := nodes[0].dial("room"), nodes[1].dial("room")
		waitRoomSubscribed(t, k, nodes[0], "room", 2)

		rs.Kill()
		killed := time.Now()
		for _, n := range nodes {
			waitForWithin(t, 5*time.Second, n.name+" not ready", func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				return errors.Is(n.mgr.Ready(ctx), adapter.ErrUnavailable)
			})
		}
		t.Logf("%s: not ready %v after the kill", k.name, time.Since(killed).Round(time.Millisecond))

		before := redisErrors(nodes[0], "publish")
		err := nodes[0].nsp().To("room").Emit("during", 1)
		if !errors.Is(err, adapter.ErrUnavailable) {
			t.Fatalf("Emit during the outage: %v, want ErrUnavailable", err)
		}
		a.expect("during", "1") // the local member got it anyway
		if after := redisErrors(nodes[0], "publish"); after <= before {
			t.Fatalf("redis_errors_total{publish} %v -> %v", before, after)
		}
		if redisErrors(nodes[0], "subscribe") == 0 {
			t.Fatal("no subscribe error counted")
		}

		// Nothing grows while Redis is away (the supervisor retries with
		// backoff; each attempt cleans up after itself).
		g0, h0 := usage()
		time.Sleep(3 * time.Second)
		g1, h1 := usage()
		if g1 > g0+2 {
			t.Errorf("goroutines %d -> %d while Redis is away", g0, g1)
		}
		if h1 > h0+4<<20 {
			t.Errorf("heap %d -> %d bytes while Redis is away", h0, h1)
		}

		rs.Restart()
		back := time.Now()
		for _, n := range nodes {
			n.waitReady()
		}
		if d := time.Since(back); d > 10*time.Second {
			t.Fatalf("ready %v after Redis came back", d)
		}
		t.Logf("%s: ready again %v after Redis came back", k.name, time.Since(back).Round(time.Millisecond))
		waitRoomSubscribed(t, k, nodes[0], "room", 2)

		for i, n := range nodes {
			if err := n.nsp().To("room").Emit("after", i); err != nil {
				t.Fatalf("%s: Emit after the outage: %v", n.name, err)
			}
		}
		// One local and one remote delivery each: in either order.
		for _, c := range []*client{a, b} {
			got := map[string]bool{}
			for range 2 {
				name, args, _ := c.event()
				got[fmt.Sprint(name, args)] = true
			}
			if !got["after[0]"] || !got["after[1]"] {
				t.Fatalf("%s got %v", c.node.name, got)
			}
		}
	})
}

func usage() (goroutines int, heap uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapAlloc
}

// TestGoRedisResubscribes checks what go-redis does on its own: after
// Redis restarts, a PubSub reconnects and re-subscribes its channels,
// patterns and shard channels. (The adapters do not rely on it: on a Redis
// Cluster go-redis re-subscribes every shard channel in one command, which
// fails across slots; see package internal/redispubsub.)
func TestGoRedisResubscribes(t *testing.T) {
	rs := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr(), MaxRetries: 1})
	t.Cleanup(func() { _ = client.Close() })
	ctx := context.Background()
	ps := client.Subscribe(ctx, "chan")
	if err := ps.PSubscribe(ctx, "pat*"); err != nil {
		t.Fatal(err)
	}
	if err := ps.SSubscribe(ctx, "shard"); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 100)
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for {
			msg, err := ps.ReceiveTimeout(ctx, time.Second)
			if err != nil {
				if errors.Is(err, redis.ErrClosed) {
					return
				}
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if m, ok := msg.(*redis.Message); ok {
				got <- m.Channel
			}
		}
	}()
	t.Cleanup(func() { _ = ps.Close(); <-recvDone })

	publish := func() {
		_ = client.Publish(ctx, "chan", "x").Err()
		_ = client.Publish(ctx, "pattern", "x").Err()
		_ = client.SPublish(ctx, "shard", "x").Err()
	}
	await := func(what string) {
		t.Helper()
		seen := map[string]bool{}
		deadline := time.Now().Add(10 * time.Second)
		for len(seen) < 3 {
			publish()
			select {
			case ch := <-got:
				seen[ch] = true
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: received only %v", what, seen)
			}
		}
	}
	await("before the restart")
	rs.Kill()
	time.Sleep(500 * time.Millisecond)
	rs.Restart()
	await("after the restart")
}
