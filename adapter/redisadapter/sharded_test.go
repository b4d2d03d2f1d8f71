package redisadapter_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/adapter/redisadapter"
	"github.com/roomcast/roomcast/internal/redistest"
)

// shardSubscribers counts the subscribers of a shard channel.
func shardSubscribers(t *testing.T, n *node, ch string) int64 {
	t.Helper()
	ctx := context.Background()
	var c redis.Cmdable = n.client
	if cc, ok := n.client.(*redis.ClusterClient); ok {
		m, err := cc.MasterForKey(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		c = m
	}
	res, err := c.PubSubShardNumSub(ctx, ch).Result()
	if err != nil {
		t.Fatal(err)
	}
	return res[ch]
}

// TestShardedRoomIsolation: a node without a member of a room neither
// subscribes to the room's channel nor receives its broadcasts; it
// subscribes with its first member and unsubscribes with its last.
func TestShardedRoomIsolation(t *testing.T) {
	_, cfg := standalone(t, sharded)
	nodes := startFleet(t, 3, cfg)
	a, b, c := nodes[0].dial("solo"), nodes[1].dial("solo"), nodes[2].dial()
	ch, ok := redisadapter.RoomChannel(nodes[0].nsp().Adapter(), "solo")
	if !ok {
		t.Fatal("no channel for the room")
	}
	waitFor(t, "two subscribers", func() bool { return shardSubscribers(t, nodes[0], ch) == 2 })

	r1, r2 := remoteBroadcasts(nodes[1]), remoteBroadcasts(nodes[2])
	for i := range 10 {
		if err := nodes[0].nsp().To("solo").Emit("solo-news", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := nodes[0].nsp().Emit("marker"); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client{a, b} {
		for i := range 10 {
			cl.expect("solo-news", fmt.Sprint(i))
		}
		cl.expect("marker", "")
	}
	c.expect("marker", "")
	if got := remoteBroadcastsSince(t, nodes[1], r1, 11); got != 11 {
		t.Errorf("member node received %v remote broadcasts, want 11", got)
	}
	if got := remoteBroadcastsSince(t, nodes[2], r2, 1); got != 1 {
		t.Errorf("node without members received %v remote broadcasts, want 1 (the marker)", got)
	}

	// The last member on node 1 leaves: node 1 unsubscribes.
	s, _ := nodes[1].nsp().Socket(b.sid)
	s.Leave("solo")
	waitFor(t, "one subscriber", func() bool { return shardSubscribers(t, nodes[0], ch) == 1 })
	r1 = remoteBroadcasts(nodes[1])
	if err := nodes[0].nsp().To("solo").Emit("solo-news", "only a"); err != nil {
		t.Fatal(err)
	}
	a.expect("solo-news", `"only a"`)
	if err := nodes[0].nsp().Emit("marker"); err != nil {
		t.Fatal(err)
	}
	b.expect("marker", "")
	if got := remoteBroadcastsSince(t, nodes[1], r1, 1); got != 1 {
		t.Errorf("node whose member left received %v remote broadcasts, want 1 (the marker)", got)
	}

	// Its socket's own id room has no channel: connecting subscribes to
	// nothing new.
	if _, ok := redisadapter.RoomChannel(nodes[0].nsp().Adapter(), c.sid); ok {
		t.Error("a socket id room has its own channel")
	}
}

// TestShardedCluster: the sharded adapter on a three-master Redis Cluster.
// Room channels spread over the masters; each member gets each broadcast
// exactly once, and cluster-wide operations work.
func TestShardedCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	cfg := fleetConfig{kind: sharded, newClient: func(name string) redis.UniversalClient {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), ClientName: name})
	}}
	nodes := startFleet(t, 3, cfg)

	// Ten rooms; client i of node n joins the rooms r<j> with (i+j+n) % 3 == 0.
	rooms := make([]string, 10)
	for j := range rooms {
		rooms[j] = fmt.Sprintf("room-%d", j)
	}
	type member struct {
		c     *client
		rooms []string
	}
	var members []member
	for n, nd := range nodes {
		for i := range 3 {
			var mine []string
			for j, r := range rooms {
				if (i+j+n)%3 == 0 {
					mine = append(mine, r)
				}
			}
			members = append(members, member{nd.dial(mine...), mine})
		}
	}
	masters := map[string]bool{}
	for _, r := range rooms {
		ch, _ := redisadapter.RoomChannel(nodes[0].nsp().Adapter(), r)
		m, err := nodes[0].client.(*redis.ClusterClient).MasterForKey(context.Background(), ch)
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Options().Addr] = true
		waitFor(t, "subscribers of "+ch, func() bool { return shardSubscribers(t, nodes[0], ch) == 3 })
	}
	if len(masters) < 2 {
		t.Fatalf("the room channels all live on %v", masters)
	}

	// Each node broadcasts to each room, then an end marker on the same
	// channel: a member reads news then end, once per (node, room).
	for n, nd := range nodes {
		for _, r := range rooms {
			if err := nd.nsp().To(r).Emit("news", fmt.Sprintf("%d/%s", n, r)); err != nil {
				t.Fatal(err)
			}
			if err := nd.nsp().To(r).Emit("end", fmt.Sprintf("%d/%s", n, r)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, m := range members {
		want := map[string]int{}
		for n := range nodes {
			for _, r := range m.rooms {
				want[fmt.Sprintf("%d/%s", n, r)] = 0
			}
		}
		for range 2 * len(want) {
			name, args, _ := m.c.event()
			key := fmt.Sprint(args[0])
			state, ok := want[key]
			switch {
			case !ok:
				t.Fatalf("%s got %s %s, not a member", m.c.sid, name, key)
			case name == "news" && state == 0:
				want[key] = 1
			case name == "end" && state == 1:
				want[key] = 2
			default:
				t.Fatalf("%s got %s %s in state %d", m.c.sid, name, key, state)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := nodes[2].nsp().ServerCount(ctx); err != nil || n != 3 {
		t.Fatalf("ServerCount = %d, %v", n, err)
	}
	socks, err := nodes[1].nsp().In(rooms[0]).FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids, want []string
	for _, s := range socks {
		ids = append(ids, s.ID)
	}
	for _, m := range members {
		if slices.Contains(m.rooms, rooms[0]) {
			want = append(want, m.c.sid)
		}
	}
	sort.Strings(ids)
	sort.Strings(want)
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("FetchSockets = %v, want %v", ids, want)
	}
	// No stray or duplicate broadcast is left on any connection.
	for _, m := range members {
		m.c.expectSilence(200 * time.Millisecond)
	}
}

// TestShardedClusterOutage: the master that holds a room's channel dies and
// comes back; the nodes report not ready meanwhile, then re-subscribe on it
// (one SSUBSCRIBE per channel, on the slot's master) and the room's
// broadcasts flow again.
func TestShardedClusterOutage(t *testing.T) {
	cl := redistest.StartCluster(t)
	cfg := fleetConfig{kind: sharded, newClient: func(name string) redis.UniversalClient {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), ClientName: name, MaxRetries: 1})
	}}
	nodes := startFleet(t, 2, cfg)
	a, b := nodes[0].dial("fragile"), nodes[1].dial("fragile")
	ch, _ := redisadapter.RoomChannel(nodes[0].nsp().Adapter(), "fragile")
	waitFor(t, "subscribers", func() bool { return shardSubscribers(t, nodes[0], ch) == 2 })
	m, err := nodes[0].client.(*redis.ClusterClient).MasterForKey(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	var victim *redistest.Server
	for _, s := range cl.Nodes {
		if s.Addr() == m.Options().Addr {
			victim = s
		}
	}
	if victim == nil {
		t.Fatalf("no cluster node at %s", m.Options().Addr)
	}

	victim.Kill()
	for _, n := range nodes {
		waitForWithin(t, 5*time.Second, n.name+" not ready", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			return n.mgr.Ready(ctx) != nil
		})
	}
	victim.Restart()
	back := time.Now()
	for _, n := range nodes {
		n.waitReady()
	}
	t.Logf("ready again %v after the master came back", time.Since(back).Round(time.Millisecond))
	waitForWithin(t, 10*time.Second, "subscribers again", func() bool { return shardSubscribers(t, nodes[0], ch) == 2 })
	waitForWithin(t, 10*time.Second, "publish accepted", func() bool {
		return nodes[0].nsp().To("fragile").Emit("back") == nil
	})
	a.expect("back", "")
	b.expect("back", "")
}

// TestClassicOnCluster: the classic adapter over a Redis Cluster client
// (PUBLISH reaches every node of the cluster; PUBSUB NUMSUB is summed).
func TestClassicOnCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	cfg := fleetConfig{kind: classic, newClient: func(name string) redis.UniversalClient {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), ClientName: name})
	}}
	nodes := startFleet(t, 3, cfg)
	var clients []*client
	for _, n := range nodes {
		clients = append(clients, n.dial("r"))
	}
	if err := nodes[1].nsp().To("r").Emit("news", "x"); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.expect("news", `"x"`)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	socks, err := nodes[2].nsp().FetchSockets(ctx)
	if err != nil || len(socks) != 3 {
		t.Fatalf("FetchSockets = %d, %v", len(socks), err)
	}
}
