package gateway

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/internal/sitest"
)

// TestPresenceAcrossNodes: a user's first socket joining a room is
// announced once to the other members, wherever its sockets are, and its
// last socket leaving likewise; presence and rooms are read from Redis on
// any node; the event stream holds each event once.
func TestPresenceAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	rs := redistest.Start(t)
	cfg := Config{Redis: rs.URL(), Origins: []string{"*"}, APIToken: "api", PresenceRooms: []string{"room:*"}}
	a, b := start(t, withNode(cfg, "a")), start(t, withNode(cfg, "b"))
	tok := func(sub string) string {
		return token(t, map[string]any{"sub": sub, "join": []string{"*"}, "name": strings.ToUpper(sub),
			"info": map[string]any{"color": "red"}})
	}
	dial := func(n *node, sub string) *sitest.Client {
		c := sitest.Dial(t, n.wsURL)
		c.Connect("/", authPayload(tok(sub)))
		return c
	}
	seq := 0
	// call sends a reserved event and reads its ack. An announcement may
	// come first: a logged broadcast is delivered to the room's members at
	// delivery time, so a socket that just joined can get one sent before.
	call := func(c *sitest.Client, ev, arg string) string {
		seq++
		c.Send(fmt.Sprintf(`42%d["%s",%s]`, seq, ev, arg))
		for {
			got := c.Read()
			if strings.HasPrefix(got, `42["roomcast:`) {
				continue
			}
			return strings.TrimPrefix(got, fmt.Sprintf("43%d", seq))
		}
	}
	alice := dial(a, "u1")
	bob, bob2 := dial(b, "u2"), dial(a, "u2")
	if got := call(alice, "join", `"room:1"`); got != `[{"ok":true}]` {
		t.Fatalf("join %s", got)
	}
	if got := call(bob, "join", `"room:1"`); got != `[{"ok":true}]` {
		t.Fatalf("join %s", got)
	}
	if got, _ := readEvent(t, alice); got != `42["roomcast:join",{"info":{"color":"red"},"members":2,"name":"U2","room":"room:1","user":"u2"}]` {
		t.Fatalf("alice got %s", got)
	}
	// u2's second socket, on the other node: no announcement.
	if got := call(bob2, "join", `"room:1"`); got != `[{"ok":true}]` {
		t.Fatalf("join %s", got)
	}
	if got := call(bob, "presence", `{"room":"room:1"}`); got != `[{"count":2,"ok":true,"sockets":3,"users":[`+
		`{"info":{"color":"red"},"name":"U1","sockets":1,"user":"u1"},{"info":{"color":"red"},"name":"U2","sockets":2,"user":"u2"}]}]` {
		t.Fatalf("presence %s", got)
	}
	if got := call(bob, "leave", `"room:1"`); got != `[{"ok":true}]` {
		t.Fatalf("leave %s", got)
	}
	if got := call(bob2, "leave", `"room:1"`); got != `[{"ok":true}]` {
		t.Fatalf("leave %s", got)
	}
	// The next event alice sees is the leave: nothing was sent for u2's
	// second socket joining, nor for its first leaving.
	if got, _ := readEvent(t, alice); got != `42["roomcast:leave",{"info":{"color":"red"},"members":1,"name":"U2","room":"room:1","user":"u2"}]` {
		t.Fatalf("alice got %s", got)
	}
	code, body := do(t, "GET", b.base+"/api/v1/presence?room=room:1", "api", "")
	if code != http.StatusOK || fmt.Sprint(body["count"]) != "1" || fmt.Sprint(body["sockets"]) != "1" {
		t.Fatalf("API presence %d %v", code, body)
	}
	code, body = do(t, "GET", b.base+"/api/v1/rooms", "api", "")
	if code != http.StatusOK || fmt.Sprint(body["rooms"]) != "[map[name:room:1 sockets:1 users:1]]" {
		t.Fatalf("API rooms %d %v", code, body)
	}
	// The stream: one join and one leave of u2, whatever the nodes did.
	c := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer c.Close()
	msgs, err := c.XRange(context.Background(), "socket.io:events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	ids := map[string]bool{}
	for _, m := range msgs {
		count[m.Values["type"].(string)]++
		id := m.Values["id"].(string)
		if ids[id] {
			t.Fatalf("id %s twice in the stream", id)
		}
		ids[id] = true
	}
	// (A socket's connect is recorded after its CONNECT reply: the order
	// across sockets is not the test's.)
	if s := fmt.Sprint(count); s != "map[connect:3 join:2 leave:1 occupied:1]" {
		t.Fatalf("stream %s", s)
	}
}

// TestPresenceHeapPerIdleConnection measures what the gateway's presence
// tracker keeps on the heap for an idle connection (a signed-in socket in
// no room but its own): the heap with N sockets connected, less the heap
// once the tracker has forgotten them. (The memory Store's own record is
// measured in package presence; with Redis it is in Redis.)
func TestPresenceHeapPerIdleConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1000 connections")
	}
	n := start(t, Config{ConnectRate: 1e6, HandshakeRate: 1e6, MaxConnsPerIP: 1 << 20, MaxConnsPerUser: 1 << 20})
	tok := token(t, map[string]any{"sub": "u", "name": "Some One"})
	const conns = 1000
	for range conns {
		c := sitest.Dial(t, n.wsURL)
		c.Connect("/", authPayload(tok))
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	tr := n.g.tracker
	// A socket is tracked by its OnConnection, just after its CONNECT reply.
	waitFor(t, "every socket tracked", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.socks) == conns
	})
	with := heap()
	tr.mu.Lock()
	tr.socks = make(map[string]*presenceSocket) // the sockets' disconnects find nothing to end
	tr.mu.Unlock()
	without := heap()
	per := (int64(with) - int64(without)) / conns
	t.Logf("presence tracker heap per idle connection: %d bytes (%d sockets)", per, conns)
	if per > 400 {
		t.Fatalf("the tracker keeps %d bytes per idle connection, want at most 400", per)
	}
}

// TestPresenceRebuiltAfterRedisLoss: the node writes its sockets' presence
// again from its own state when Redis lost it (resync, which the Store's
// sweep loop calls when it finds the node's entries gone).
func TestPresenceRebuiltAfterRedisLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	rs := redistest.Start(t)
	n := start(t, Config{Redis: rs.URL(), Origins: []string{"*"}, APIToken: "api"})
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", authPayload(token(t, map[string]any{"sub": "u1", "join": []string{"*"}})))
	c.Send(`421["join","room:1"]`)
	if got := c.Read(); got != `431[{"ok":true}]` {
		t.Fatalf("join %s", got)
	}
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rc.Close()
	if err := rc.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if _, body := do(t, "GET", n.base+"/api/v1/presence?room=room:1", "api", ""); fmt.Sprint(body["count"]) != "0" {
		t.Fatalf("presence after the loss %v", body)
	}
	n.g.tracker.resync()
	if code, body := do(t, "GET", n.base+"/api/v1/presence?room=room:1", "api", ""); code != http.StatusOK || fmt.Sprint(body["count"]) != "1" {
		t.Fatalf("presence after the rebuild %d %v", code, body)
	}
}

// TestPresenceCoalescedAndMoved: above --presence-coalesce-above members a
// room's joins and leaves become one roomcast:presence count per interval;
// a socket moved by the API's sockets/join is in presence too.
func TestPresenceCoalescedAndMoved(t *testing.T) {
	t.Parallel()
	n := start(t, Config{APIToken: "api", PresenceRooms: []string{"*"}, PresenceCoalesceAbove: 1,
		PresenceCoalesceInterval: 100 * time.Millisecond})
	dial := func(sub string) *sitest.Client {
		c := sitest.Dial(t, n.wsURL)
		c.Connect("/", authPayload(token(t, map[string]any{"sub": sub, "join": []string{"*"}})))
		return c
	}
	a, b, c := dial("a"), dial("b"), dial("c")
	for i, cl := range []*sitest.Client{a, b} {
		cl.Send(fmt.Sprintf(`42%d["join","big"]`, i))
		if got := cl.Read(); got != fmt.Sprintf(`43%d[{"ok":true}]`, i) {
			t.Fatalf("join %s", got)
		}
	}
	// b's join makes two members: above 1, so a gets the count, not b's join.
	if got, _ := readEvent(t, a); got != `42["roomcast:presence",{"members":2,"room":"big","sockets":2}]` {
		t.Fatalf("a got %s", got)
	}
	// c is moved in by the API: presence follows.
	if code, body := do(t, "POST", n.base+"/api/v1/sockets/join", "api", `{"users":["c"],"join":["big"]}`); code != http.StatusOK {
		t.Fatalf("sockets/join %d %v", code, body)
	}
	if got, _ := readEvent(t, c); got != `42["roomcast:presence",{"members":3,"room":"big","sockets":3}]` {
		t.Fatalf("c got %s", got)
	}
	if _, body := do(t, "GET", n.base+"/api/v1/presence?room=big", "api", ""); fmt.Sprint(body["count"]) != "3" {
		t.Fatalf("presence %v", body)
	}
	if code, _ := do(t, "POST", n.base+"/api/v1/sockets/leave", "api", `{"users":["c"],"leave":["big"]}`); code != http.StatusOK {
		t.Fatalf("sockets/leave %d", code)
	}
	if _, body := do(t, "GET", n.base+"/api/v1/presence?room=big", "api", ""); fmt.Sprint(body["count"]) != "2" {
		t.Fatalf("presence after the API's leave %v", body)
	}
}

// TestPresenceLeaveWaitsForTheRecoveryWindow: a socket whose transport
// closes (it may recover) stays present until the recovery window ends;
// then its leave is announced. An explicit disconnect leaves at once.
func TestPresenceLeaveWaitsForTheRecoveryWindow(t *testing.T) {
	t.Parallel()
	const window = 600 * time.Millisecond
	n := start(t, Config{PresenceRooms: []string{"*"}, RecoveryWindow: window, APIToken: "api"})
	dial := func(sub string) *sitest.Client {
		c := sitest.Dial(t, n.wsURL)
		c.Connect("/", authPayload(token(t, map[string]any{"sub": sub, "join": []string{"*"}})))
		c.Send(`421["join","r"]`)
		for {
			if got := c.Read(); got == `431[{"ok":true}]` {
				return c
			}
		}
	}
	a := dial("a")
	b := dial("b")
	if got, _ := readEvent(t, a); got != `42["roomcast:join",{"members":2,"room":"r","user":"b"}]` {
		t.Fatalf("a got %s", got)
	}
	_ = b.Conn.CloseNow() // a cut transport
	closed := time.Now()
	count := func() string {
		_, body := do(t, "GET", n.base+"/api/v1/presence?room=r", "api", "")
		return fmt.Sprint(body["count"])
	}
	time.Sleep(window / 3)
	if got := count(); got != "2" {
		t.Fatalf("b left presence before the recovery window ended: count %s", got)
	}
	if got, _ := readEvent(t, a); got != `42["roomcast:leave",{"members":1,"room":"r","user":"b"}]` {
		t.Fatalf("a got %s", got)
	}
	if d := time.Since(closed); d < window {
		t.Fatalf("the leave came %v after the close, before the window (%v)", d, window)
	}
	if got := count(); got != "1" {
		t.Fatalf("count after the window %s", got)
	}
	// An explicit disconnect: no wait.
	c := dial("c")
	if got, _ := readEvent(t, a); !strings.Contains(got, `"user":"c"`) {
		t.Fatalf("a got %s", got)
	}
	c.Send("41")
	start := time.Now()
	if got, _ := readEvent(t, a); got != `42["roomcast:leave",{"members":1,"room":"r","user":"c"}]` {
		t.Fatalf("a got %s", got)
	}
	if d := time.Since(start); d > window/2 {
		t.Fatalf("an explicit disconnect left after %v", d)
	}
}
