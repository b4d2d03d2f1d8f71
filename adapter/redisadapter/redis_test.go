package redisadapter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/adapter/redisadapter"
	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/socketio"
)

// standalone returns a fleet config over one fresh redis-server.
func standalone(t testing.TB, k kind) (*redistest.Server, fleetConfig) {
	t.Helper()
	rs := redistest.Start(t)
	return rs, fleetConfig{kind: k, newClient: func(name string) redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: rs.Addr(), ClientName: name, MaxRetries: 1, DialTimeout: time.Second})
	}}
}

func forEachKind(t *testing.T, fn func(t *testing.T, k kind)) {
	for _, k := range []kind{classic, sharded} {
		t.Run(k.name, func(t *testing.T) { fn(t, k) })
	}
}

// waitRoomSubscribed waits until the room's shard channel has want
// subscribers (sharded only; a room join subscribes asynchronously).
func waitRoomSubscribed(t *testing.T, k kind, n *node, room string, want int) {
	t.Helper()
	if k.name != sharded.name {
		return
	}
	ch, ok := redisadapter.RoomChannel(n.nsp().Adapter(), room)
	if !ok {
		return
	}
	waitFor(t, "subscribers of "+ch, func() bool {
		var total int64
		count := func(ctx context.Context, c *redis.Client) error {
			m, err := c.PubSubShardNumSub(ctx, ch).Result()
			total += m[ch]
			return err
		}
		ctx := context.Background()
		if cc, ok := n.client.(*redis.ClusterClient); ok {
			mc, err := cc.MasterForKey(ctx, ch)
			if err != nil {
				return false
			}
			_ = count(ctx, mc)
		} else {
			_ = count(ctx, n.client.(*redis.Client))
		}
		return total == int64(want)
	})
}

// TestBroadcastExactlyOnce: a broadcast from one node reaches every
// selected socket on every node exactly once, and no other socket. Each
// client checks it by reading the broadcast, then a marker sent to everyone
// after it: a duplicate (or a stray) would come before the marker.
func TestBroadcastExactlyOnce(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		_, cfg := standalone(t, k)
		nodes := startFleet(t, 3, cfg)
		type member struct {
			c     *client
			rooms []string
		}
		var all []member
		for _, n := range nodes {
			for _, rooms := range [][]string{{"r1"}, {"r1", "r2"}, {"r2", "x"}, nil} {
				all = append(all, member{n.dial(rooms...), rooms})
			}
		}
		for _, n := range nodes {
			for _, r := range []string{"r1", "r2", "x"} {
				waitRoomSubscribed(t, k, n, r, 3)
			}
		}
		in := func(rooms []string, r string) bool { return slices.Contains(rooms, r) }
		tests := []struct {
			name   string
			op     func(n *node) socketio.BroadcastOperator
			wanted func(rooms []string) bool
		}{
			{"everyone", func(n *node) socketio.BroadcastOperator { return n.nsp().Except() },
				func([]string) bool { return true }},
			{"one room", func(n *node) socketio.BroadcastOperator { return n.nsp().To("r1") },
				func(r []string) bool { return in(r, "r1") }},
			{"two rooms, member of both once", func(n *node) socketio.BroadcastOperator { return n.nsp().To("r1", "r2") },
				func(r []string) bool { return in(r, "r1") || in(r, "r2") }},
			{"room except room", func(n *node) socketio.BroadcastOperator { return n.nsp().To("r2").Except("x") },
				func(r []string) bool { return in(r, "r2") && !in(r, "x") }},
			{"everyone except room", func(n *node) socketio.BroadcastOperator { return n.nsp().Except("r1") },
				func(r []string) bool { return !in(r, "r1") }},
		}
		for i, tt := range tests {
			from := nodes[i%len(nodes)]
			if err := tt.op(from).Emit("news", tt.name); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if err := from.nsp().Emit("marker", tt.name); err != nil {
				t.Fatal(err)
			}
			arg, _ := json.Marshal(tt.name)
			for _, m := range all {
				if tt.wanted(m.rooms) {
					m.c.expect("news", string(arg))
				}
				m.c.expect("marker", string(arg))
			}
		}
	})
}

// TestBroadcastOrder: 100 broadcasts from one node arrive in order on the
// others.
func TestBroadcastOrder(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		_, cfg := standalone(t, k)
		nodes := startFleet(t, 3, cfg)
		b, c := nodes[1].dial("room"), nodes[2].dial("room")
		waitRoomSubscribed(t, k, nodes[1], "room", 2)
		for i := range 100 {
			if err := nodes[0].nsp().To("room").Emit("seq", i); err != nil {
				t.Fatal(err)
			}
		}
		for _, cl := range []*client{b, c} {
			for i := range 100 {
				cl.expect("seq", fmt.Sprint(i))
			}
		}
	})
}

// TestBinaryBroadcast: binary attachments survive the trip through Redis.
func TestBinaryBroadcast(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		_, cfg := standalone(t, k)
		nodes := startFleet(t, 2, cfg)
		c := nodes[1].dial()
		payload := []byte{0, 1, 2, 255}
		if err := nodes[0].nsp().Emit("file", payload, map[string]any{"nested": []any{[]byte("abc")}, "n": 1.5}); err != nil {
			t.Fatal(err)
		}
		name, args, _ := c.event()
		if name != "file" || len(args) != 2 {
			t.Fatalf("got %s %v", name, args)
		}
		if b, ok := args[0].([]byte); !ok || string(b) != string(payload) {
			t.Fatalf("attachment %#v", args[0])
		}
		nested := args[1].(map[string]any)["nested"].([]any)[0]
		if b, ok := nested.([]byte); !ok || string(b) != "abc" {
			t.Fatalf("nested attachment %#v", nested)
		}
		if n := args[1].(map[string]any)["n"]; fmt.Sprint(n) != "1.5" {
			t.Fatalf("n = %v", n)
		}
	})
}

// TestClusterOperations: fetchSockets, socketsJoin/Leave and
// disconnectSockets act on every node.
func TestClusterOperations(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		_, cfg := standalone(t, k)
		nodes := startFleet(t, 3, cfg)
		var clients []*client
		for _, n := range nodes {
			clients = append(clients, n.dial("lobby"), n.dial())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()

		socks, err := nodes[0].nsp().In("lobby").FetchSockets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, s := range socks {
			got[s.ID] = s.Node
			if !slices.Contains(s.Rooms, "lobby") || !slices.Contains(s.Rooms, s.ID) {
				t.Errorf("socket %s rooms %v", s.ID, s.Rooms)
			}
			// Another node's socket comes without its handshake's
			// headers (credentials do not cross Redis); a local one keeps them.
			if s.Handshake.URL == "" || (s.Node == nodes[0].name) != (s.Handshake.Headers["user-agent"] != "") {
				t.Errorf("socket %s of node %s: handshake %+v", s.ID, s.Node, s.Handshake)
			}
		}
		want := map[string]string{}
		for i, c := range clients {
			if i%2 == 0 {
				want[c.sid] = c.node.name
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("FetchSockets = %v, want %v", got, want)
		}
		all, err := nodes[1].nsp().FetchSockets(ctx)
		if err != nil || len(all) != len(clients) {
			t.Fatalf("FetchSockets(all) = %d sockets, %v", len(all), err)
		}

		// socketsJoin from node 1: the lobby members everywhere join "vip".
		if err := nodes[1].nsp().In("lobby").SocketsJoin(ctx, "vip"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "vip members", func() bool {
			s, err := nodes[2].nsp().In("vip").FetchSockets(ctx)
			return err == nil && len(s) == 3
		})
		for _, n := range nodes {
			waitRoomSubscribed(t, k, n, "vip", 3)
		}
		if err := nodes[2].nsp().To("vip").Emit("vip-news"); err != nil {
			t.Fatal(err)
		}
		if err := nodes[2].nsp().Emit("marker"); err != nil {
			t.Fatal(err)
		}
		for i, c := range clients {
			if i%2 == 0 {
				c.expect("vip-news", "")
			}
			c.expect("marker", "")
		}

		// socketsLeave
		if err := nodes[0].nsp().In("vip").SocketsLeave(ctx, "vip"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "vip emptied", func() bool {
			s, err := nodes[0].nsp().In("vip").FetchSockets(ctx)
			return err == nil && len(s) == 0
		})

		// A remote socket's own operations.
		target := clients[4] // lobby member on node 2
		var remote socketio.RemoteSocket
		for _, s := range socks {
			if s.ID == target.sid {
				remote = s
			}
		}
		if err := remote.Emit("direct", "hi"); err != nil {
			t.Fatal(err)
		}
		target.expect("direct", `"hi"`)

		// disconnectSockets from node 0: the lobby members everywhere get a
		// DISCONNECT packet.
		if err := nodes[0].nsp().In("lobby").DisconnectSockets(ctx, false); err != nil {
			t.Fatal(err)
		}
		for i, c := range clients {
			if i%2 == 0 {
				if got := c.Read(); got != "41" {
					t.Fatalf("%s: got %q, want the DISCONNECT packet", c.node.name, got)
				}
			}
		}
		waitFor(t, "lobby emptied", func() bool {
			s, err := nodes[1].nsp().FetchSockets(ctx)
			return err == nil && len(s) == 3
		})
	})
}

// TestServerSideEmit: with and without acks, one answer per other node.
func TestServerSideEmit(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		_, cfg := standalone(t, k)
		var mu sync.Mutex
		got := map[string][]any{}
		cfg.setup = func(n *node) {
			n.nsp().OnServerSideEmit("hello", func(args []any, ack func(...any)) {
				mu.Lock()
				got[n.name] = args
				mu.Unlock()
			})
			n.nsp().OnServerSideEmit("ping", func(args []any, ack func(...any)) {
				ack("pong from "+n.name, args[0], []byte{7})
			})
		}
		nodes := startFleet(t, 3, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := nodes[0].nsp().ServerSideEmit(ctx, "hello", "world", 42); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "serverSideEmit handlers", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) == 2
		})
		mu.Lock()
		if _, self := got["n0"]; self {
			t.Error("the sender's own handler ran")
		}
		for name, args := range got {
			if fmt.Sprint(args) != "[world 42]" {
				t.Errorf("%s got %v", name, args)
			}
		}
		mu.Unlock()

		answers, err := nodes[1].nsp().ServerSideEmitWithAck(ctx, "ping", 7)
		if err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, a := range answers {
			if len(a) != 3 {
				t.Fatalf("answer %v", a)
			}
			if b, ok := a[2].([]byte); !ok || b[0] != 7 {
				t.Errorf("binary answer %#v", a[2])
			}
			texts = append(texts, fmt.Sprintf("%v %v", a[0], a[1]))
		}
		sort.Strings(texts)
		if fmt.Sprint(texts) != "[pong from n0 7 pong from n2 7]" {
			t.Fatalf("answers %v", texts)
		}
	})
}

// TestServerSideEmitTimeout: a node that does not answer makes
// ServerSideEmitWithAck time out with the answers that came.
func TestServerSideEmitTimeout(t *testing.T) {
	_, cfg := standalone(t, classic)
	cfg.setup = func(n *node) {
		n.nsp().OnServerSideEmit("ping", func(args []any, ack func(...any)) {
			if n.name != "n2" {
				ack("pong")
			}
		})
	}
	cfg.requestTimeout = 500 * time.Millisecond
	nodes := startFleet(t, 3, cfg)
	start := time.Now()
	answers, err := nodes[0].nsp().ServerSideEmitWithAck(context.Background(), "ping")
	if !errors.Is(err, adapter.ErrAckTimeout) {
		t.Fatalf("err = %v, want ErrAckTimeout", err)
	}
	if len(answers) != 1 {
		t.Fatalf("answers %v", answers)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
}

// TestBroadcastWithAck: client counts then acks from every node.
func TestBroadcastWithAck(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		_, cfg := standalone(t, k)
		nodes := startFleet(t, 3, cfg)
		var clients []*client
		for _, n := range nodes {
			clients = append(clients, n.dial("q"), n.dial("q"), n.dial())
		}
		type result struct {
			answers [][]any
			err     error
		}
		done := make(chan result, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a, err := nodes[0].nsp().To("q").EmitWithAck(ctx, "question", 1)
			done <- result{a, err}
		}()
		for i, c := range clients {
			if i%3 == 2 {
				continue
			}
			name, args, id := c.event()
			if name != "question" || id < 0 || fmt.Sprint(args) != "[1]" {
				t.Fatalf("got %s %v id %d", name, args, id)
			}
			c.ack(id, fmt.Sprintf(`["answer %d",{"i":%d}]`, i, i))
		}
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		var got []string
		for _, a := range r.answers {
			got = append(got, fmt.Sprint(a))
		}
		sort.Strings(got)
		want := []string{"[answer 0 map[i:0]]", "[answer 1 map[i:1]]", "[answer 3 map[i:3]]", "[answer 4 map[i:4]]", "[answer 6 map[i:6]]", "[answer 7 map[i:7]]"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("answers %v, want %v", got, want)
		}
	})
}

// TestBroadcastWithAckNodeDies: a node that reported its client count and
// dies before its clients answer makes the broadcast time out, with the
// answers from the others.
func TestBroadcastWithAckNodeDies(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		_, cfg := standalone(t, k)
		nodes := startFleet(t, 3, cfg)
		a, b, c := nodes[0].dial(), nodes[1].dial(), nodes[2].dial()
		type result struct {
			answers [][]any
			err     error
			took    time.Duration
		}
		done := make(chan result, 1)
		go func() {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			ans, err := nodes[0].nsp().Except().EmitWithAck(ctx, "question")
			done <- result{ans, err, time.Since(start)}
		}()
		for _, cl := range []*client{a, b} {
			_, _, id := cl.event()
			cl.ack(id, `["ok"]`)
		}
		_, _, id := c.event()    // c got it: its node reported one client...
		_ = nodes[2].mgr.Close() // ...and loses Redis before c answers
		c.ack(id, `["too late"]`)
		r := <-done
		if !errors.Is(r.err, socketio.ErrAckTimeout) {
			t.Fatalf("err = %v, want ErrAckTimeout", r.err)
		}
		if len(r.answers) != 2 {
			t.Fatalf("answers %v", r.answers)
		}
		if r.took < 1500*time.Millisecond || r.took > 4*time.Second {
			t.Fatalf("returned after %v, want about the 2s timeout", r.took)
		}
	})
}

// TestServerCountAndNodes: the number of nodes, and the node registry.
func TestServerCountAndNodes(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		_, cfg := standalone(t, k)
		nodes := startFleet(t, 3, cfg)
		ctx := context.Background()
		if n, err := nodes[1].nsp().ServerCount(ctx); err != nil || n != 3 {
			t.Fatalf("ServerCount = %d, %v", n, err)
		}
		ids, err := nodes[0].mgr.Nodes(ctx)
		sort.Strings(ids)
		if err != nil || fmt.Sprint(ids) != "[n0 n1 n2]" {
			t.Fatalf("Nodes = %v, %v", ids, err)
		}
		nodes[2].stop()
		waitFor(t, "server count 2", func() bool {
			n, err := nodes[0].nsp().ServerCount(ctx)
			return err == nil && n == 2
		})
		ids, err = nodes[1].mgr.Nodes(ctx)
		sort.Strings(ids)
		if err != nil || fmt.Sprint(ids) != "[n0 n1]" {
			t.Fatalf("Nodes after a close = %v, %v", ids, err)
		}
	})
}

// TestLocalFlag: Local() broadcasts stay on the node.
func TestLocalFlag(t *testing.T) {
	_, cfg := standalone(t, classic)
	nodes := startFleet(t, 2, cfg)
	a, b := nodes[0].dial(), nodes[1].dial()
	if err := nodes[0].nsp().Local().Emit("local-only"); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].nsp().Emit("marker"); err != nil {
		t.Fatal(err)
	}
	a.expect("local-only", "")
	a.expect("marker", "")
	b.expect("marker", "")
}

// TestNamespaces: namespaces share the node's pub/sub connection and do not
// see each other's broadcasts.
func TestNamespaces(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		_, cfg := standalone(t, k)
		cfg.setup = func(n *node) {
			if _, err := n.srv.Of("/chat"); err != nil {
				t.Fatal(err)
			}
		}
		nodes := startFleet(t, 2, cfg)
		root := nodes[1].dial()
		chat := &client{Client: root.Client, node: nodes[1]}
		chat.sid = chat.Connect("/chat", "")
		ctx := context.Background()
		nsp, _ := nodes[0].srv.Namespace("/chat")
		waitFor(t, "chat server count", func() bool {
			n, err := nsp.ServerCount(ctx)
			return err == nil && n == 2
		})
		if err := nsp.Emit("in-chat"); err != nil {
			t.Fatal(err)
		}
		if err := nodes[0].nsp().Emit("in-root"); err != nil {
			t.Fatal(err)
		}
		// One connection carries both namespaces, in publish order.
		if got := root.Read(); got != `42/chat,["in-chat"]` {
			t.Fatalf("got %q", got)
		}
		if got := root.Read(); got != `42["in-root"]` {
			t.Fatalf("got %q", got)
		}
		// Both namespaces share one pub/sub connection.
		if n := subscriberConns(t, nodes[0]); n != 1 {
			t.Fatalf("%d pub/sub connections, want 1", n)
		}
	})
}

// subscriberConns counts n's connections in subscribed state, from CLIENT
// LIST on a standalone server (its client sets its name on every
// connection).
func subscriberConns(t *testing.T, n *node) int {
	t.Helper()
	list, err := n.client.(*redis.Client).ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		f := map[string]string{}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		if f["name"] == n.name && (f["sub"] != "0" || f["psub"] != "0" || f["ssub"] != "0") {
			count++
		}
	}
	return count
}

// TestBroadcastAsyncOrder: asynchronous broadcasts are pipelined yet reach
// the other nodes in order, and each reports success.
func TestBroadcastAsyncOrder(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		_, cfg := standalone(t, k)
		nodes := startFleet(t, 2, cfg)
		c := nodes[1].dial("room")
		waitRoomSubscribed(t, k, nodes[1], "room", 1)
		const n = 300
		errs := make(chan error, n)
		for i := range n {
			nodes[0].nsp().To("room").EmitAsync(func(err error) { errs <- err }, "seq", i)
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatalf("async publish: %v", err)
			}
		}
		for i := range n {
			c.expect("seq", fmt.Sprint(i))
		}
	})
}
