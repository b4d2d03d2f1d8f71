package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/internal/sitest"
	"github.com/roomcast/roomcast/presence"
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
//
// It measures in a process of its own: in the package's run, earlier
// tests' servers are still letting go of memory (sessions kept for their
// recovery window, writers ending), which moved the difference by up to
// 300 bytes per connection.
func TestPresenceHeapPerIdleConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1000 connections")
	}
	if os.Getenv("ROOMCAST_HEAP_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPresenceHeapPerIdleConnection$", "-test.v")
		cmd.Env = append(os.Environ(), "ROOMCAST_HEAP_CHILD=1")
		out, err := cmd.CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "presence_test.go") {
				t.Log(strings.TrimSpace(line))
			}
		}
		if err != nil {
			t.Fatalf("the measuring process failed: %v\n%s", err, out)
		}
		return
	}
	n := start(t, Config{ConnectRate: 1e6, HandshakeRate: 1e6, MaxConnsPerIP: 1 << 20, MaxConnsPerUser: 1 << 20})
	tok := token(t, map[string]any{"sub": "u", "name": "Some One"})
	const conns = 1000
	for range conns {
		c := sitest.Dial(t, n.wsURL)
		c.Connect("/", authPayload(tok))
	}
	gcHeap := func() uint64 {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	// The connects' tail is still settling (writers end a second or two
	// after their last flush and give their buffers back; sessions are
	// stored on goroutines of their own): read the heap once it held
	// still over a whole idle-clock tick, so that neither reading
	// includes what the other does not (a 300ms wait read 507 bytes on a
	// loaded machine, against 262).
	heap := func() uint64 {
		h := gcHeap()
		for range 10 {
			// Longer than a tick of the engine's 1s idle clock, whose
			// ticks end the writers of quiet connections in batches.
			time.Sleep(1100 * time.Millisecond)
			next := gcHeap()
			if d := int64(next) - int64(h); d < 8<<10 && d > -8<<10 {
				return next
			}
			h = next
		}
		return h
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

// commandStats reads INFO commandstats: calls per command ("publish",
// "hscan", ...) and their total.
func commandStats(t testing.TB, c *redis.Client) (map[string]int64, int64) {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int64{}
	var total int64
	for _, line := range strings.Split(info, "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
		calls[name] = n
		total += n
	}
	return calls, total
}

// TestPresenceAnsweredWithoutFanOut: a room of 10k member users spread over
// three nodes is answered by the presence event, GET /api/v1/presence and
// GET /api/v1/rooms on any node from Redis alone: no message between the
// nodes (nothing PUBLISHed, nothing seen by a pattern subscription on
// every channel) and a few Redis commands per query, whatever the room's
// size. The same probe sees the FetchSockets path (GET /api/v1/sockets)
// ask the other nodes, so it can tell a fan-out when there is one.
func TestPresenceAnsweredWithoutFanOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server, writes 10k presence entries")
	}
	rs := redistest.Start(t)
	cfg := Config{Redis: rs.URL(), Origins: []string{"*"}, APIToken: "api"}
	nodes := []*node{start(t, withNode(cfg, "n1")), start(t, withNode(cfg, "n2")), start(t, withNode(cfg, "n3"))}
	const members = 10000
	ctx := t.Context()
	// The members' entries are written by the node that owns them, as its
	// tracker would for its sockets (10k sockets are not dialled here).
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < members; i += 8 {
				ps := presence.Socket{Namespace: "/", ID: fmt.Sprintf("s%05d", i), User: fmt.Sprintf("u%05d", i),
					Info: []byte(`{"name":"User ` + strconv.Itoa(i) + `"}`)}
				if _, err := nodes[i%3].g.presence.Join(ctx, ps, "big"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c := sitest.Dial(t, nodes[0].wsURL)
	c.Connect("/", authPayload(token(t, map[string]any{"sub": "asker", "join": []string{"*"}})))

	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rc.Close()
	probe := rc.PSubscribe(ctx, "*")
	defer probe.Close()
	if _, err := probe.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	var received atomic.Int64
	go func() {
		for range probe.Channel() {
			received.Add(1)
		}
	}()
	// seen counts the pub/sub messages the probe received since its last
	// call, once they have had 300ms to arrive.
	seen := func() int {
		time.Sleep(300 * time.Millisecond)
		return int(received.Swap(0))
	}
	seen() // whatever the setup published

	const queries = 20
	before, total0 := commandStats(t, rc)
	for i := range queries {
		c.Send(fmt.Sprintf(`42%d["presence",{"room":"big","limit":100}]`, i))
		got := c.Read()
		want := fmt.Sprintf(`43%d[{"count":%d,`, i, members)
		if !strings.HasPrefix(got, want) {
			t.Fatalf("presence on n1: %.200s, want %s...", got, want)
		}
		code, body := do(t, "GET", nodes[1].base+"/api/v1/presence?room=big&limit=100", "api", "")
		if code != http.StatusOK || fmt.Sprint(body["count"]) != strconv.Itoa(members) || len(body["users"].([]any)) == 0 {
			t.Fatalf("API presence on n2: %d count %v", code, body["count"])
		}
		code, body = do(t, "GET", nodes[2].base+"/api/v1/rooms", "api", "")
		if code != http.StatusOK || !strings.Contains(fmt.Sprint(body["rooms"]), fmt.Sprintf("name:big sockets:%d users:%d", members, members)) {
			t.Fatalf("API rooms on n3: %d %v", code, body)
		}
	}
	after, total1 := commandStats(t, rc)
	msgs := seen()
	pubs := after["publish"] - before["publish"] + after["spublish"] - before["spublish"]
	perQuery := float64(total1-total0-1) / (3 * queries) // less the second INFO
	t.Logf("%d queries of a %d-member room over 3 nodes: %.1f Redis commands per query, %d PUBLISH, %d pub/sub messages",
		3*queries, members, perQuery, pubs, msgs)
	if pubs != 0 || msgs != 0 {
		t.Fatalf("presence queries sent %d PUBLISH and %d pub/sub messages between nodes, want none", pubs, msgs)
	}
	// A page is 4 commands (a pipeline of HLEN, HLEN, HSCAN; an HMGET),
	// rooms 3 (ZRANGEBYSCORE; HLEN, HLEN); the margin is for the nodes'
	// own background (heartbeats, log tails) during the loop.
	if perQuery > 8 {
		t.Fatalf("%.1f Redis commands per presence query, want a few", perQuery)
	}

	// The probe does see a fan-out: FetchSockets asks every node.
	before, _ = commandStats(t, rc)
	if code, _ := do(t, "GET", nodes[0].base+"/api/v1/sockets?room=big", "api", ""); code != http.StatusOK {
		t.Fatalf("API sockets %d", code)
	}
	after, _ = commandStats(t, rc)
	n := seen()
	t.Logf("one FetchSockets: %d PUBLISH, %d pub/sub messages", after["publish"]-before["publish"], n)
	if n < 3 || after["publish"]-before["publish"] < 3 {
		t.Fatalf("the probe saw %d messages (%d PUBLISH) for a FetchSockets over three nodes, want its request and two answers",
			n, after["publish"]-before["publish"])
	}
}

// TestPresenceRebuiltAfterRedisRestart: Redis without persistence is
// killed and restarted under two nodes with members in a room. The nodes
// close their sockets (the user streams and the broadcast log are gone:
// they must recover, and are told they were not recovered); the clients
// come back as new sockets, as the official client does, and rejoin.
// Presence on any node is then exactly the new sockets, and stays so past
// the old sockets' recovery window and two sweep rounds: no entry of the
// lost state comes back, no live node is mistaken for a dead one (no
// "node lost" disconnect in the new event stream).
func TestPresenceRebuiltAfterRedisRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server, waits for the sweep loop")
	}
	rs := redistest.Start(t)
	cfg := Config{Redis: rs.URL(), Origins: []string{"*"}, APIToken: "api", RecoveryWindow: time.Second}
	a, b := start(t, withNode(cfg, "a")), start(t, withNode(cfg, "b"))
	nodes := []*node{a, b, b}
	join := func(i int) *sitest.Client {
		c := sitest.Dial(t, nodes[i].wsURL)
		c.Connect("/", authPayload(token(t, map[string]any{"sub": fmt.Sprint("u", i%2), "join": []string{"*"}})))
		c.Send(`421["join","room:1"]`)
		if got := c.Read(); got != `431[{"ok":true}]` {
			t.Fatalf("join %s", got)
		}
		return c
	}
	var old []*sitest.Client
	for i := range nodes {
		old = append(old, join(i))
	}
	counts := func(n *node) string {
		code, body := do(t, "GET", n.base+"/api/v1/presence?room=room:1", "api", "")
		return fmt.Sprint(code, " ", body["count"], " ", body["sockets"])
	}
	if got := counts(a); got != "200 2 3" {
		t.Fatalf("presence before the restart: %s", got)
	}
	rs.Kill()
	rs.Restart()
	restarted := time.Now()
	for _, c := range old {
		c.ExpectClosed()
	}
	// Like the official client, connect again whenever a socket is closed,
	// until all stay for three checks in a row (a socket attached before a
	// node's log tail or user-queue check reported the gap is closed too,
	// seen up to ~2s after it connected; see TestRedisOutageIsLoud).
	clients := make([]*sitest.Client, len(nodes))
	for round, quiet := 0, 0; quiet < 3; round++ {
		redialled := false
		for i := range nodes {
			if clients[i] == nil || !stillOpen(clients[i]) {
				clients[i] = join(i)
				redialled = true
			}
		}
		if redialled {
			quiet = 0
		} else {
			quiet++
		}
		if round == 20 {
			t.Fatal("sockets connected after the restart are still being closed")
		}
		time.Sleep(time.Second)
	}
	deadline := restarted.Add(30 * time.Second)
	for counts(a) != "200 2 3" || counts(b) != "200 2 3" {
		if time.Now().After(deadline) {
			t.Fatalf("presence not right 30s after the restart: a %s, b %s", counts(a), counts(b))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("presence right %v after Redis restarted", time.Since(restarted).Round(10*time.Millisecond))
	// The old sockets' window ends; two sweep rounds pass: a node that
	// swept the other as dead would have written its leave and "node
	// lost" events by then.
	time.Sleep(11 * time.Second)
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rc.Close()
	msgs, err := rc.XRange(context.Background(), "socket.io:events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, m := range msgs {
		types = append(types, fmt.Sprint(m.Values["type"]))
		if strings.Contains(fmt.Sprint(m.Values["event"]), "node lost") {
			t.Errorf("a live node was swept after the restart: %v", m.Values["event"])
		}
	}
	t.Logf("event stream after the restart: %v", types)
	if got := counts(b); got != "200 2 3" {
		_, body := do(t, "GET", b.base+"/api/v1/presence?room=room:1", "api", "")
		_, socks := do(t, "GET", b.base+"/api/v1/sockets?room=room:1", "api", "")
		t.Fatalf("presence after the window and the sweeps: %s\n%v\nsockets %v", got, body, socks)
	}
}

// BenchmarkJoinLeaveRedis is what a client's join and then leave of a
// room cost on a gateway with Redis, acks included: each saves the
// socket's session (issue 16: the ack waits for it) and writes presence
// (the room scripts; the first socket of a user in a room also appends
// its join/leave events). It reports Redis commands per join+leave.
//
//	go test -run '^$' -bench BenchmarkJoinLeaveRedis -benchtime 500x ./gateway
func BenchmarkJoinLeaveRedis(b *testing.B) {
	rs := redistest.Start(b)
	n := start(b, Config{Redis: rs.URL(), Origins: []string{"*"}, EventRate: -1, IPEventRate: -1})
	c := sitest.Dial(b, n.wsURL)
	c.Connect("/", authPayload(token(b, map[string]any{"sub": "u1", "join": []string{"*"}})))
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rc.Close()
	call := func(seq int, ev string) {
		c.Send(fmt.Sprintf(`42%d["%s","room:1"]`, seq, ev))
		if got := c.Read(); got != fmt.Sprintf(`43%d[{"ok":true}]`, seq) {
			b.Fatalf("%s: %s", ev, got)
		}
	}
	b.ReportAllocs()
	_, before := commandStats(b, rc)
	seq := 0
	for b.Loop() {
		seq += 2
		call(seq, "join")
		call(seq+1, "leave")
	}
	_, after := commandStats(b, rc)
	b.ReportMetric(float64(after-before-1)/float64(b.N), "redis-cmds/op")
}

// TestPresenceRecoveredOnAnotherNode: a socket whose transport is cut on
// node b and that recovers on node a within the recovery window keeps its
// presence (docs/PROTOCOL.md, "Recovery keeps presence honest"): the room's
// other member sees it neither leave nor join again, not even once b's
// window for the old connection ends; presence lists it once, with one
// socket; the event stream has no disconnect, no leave and no second
// connect or join for it.
func TestPresenceRecoveredOnAnotherNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	t.Parallel()
	const window = time.Second
	rs := redistest.Start(t)
	cfg := Config{Redis: rs.URL(), Origins: []string{"*"}, APIToken: "api", PresenceRooms: []string{"room:*"},
		RecoveryWindow: window}
	a, b := start(t, withNode(cfg, "a")), start(t, withNode(cfg, "b"))
	tok := func(sub string) string {
		return authPayload(token(t, map[string]any{"sub": sub, "join": []string{"*"}}))
	}
	join := func(c *sitest.Client) {
		t.Helper()
		c.Send(`421["join","room:1"]`)
		if got := c.Read(); got != `431[{"ok":true}]` {
			t.Fatalf("join %s", got)
		}
	}
	emit := func(n *node, data int) {
		t.Helper()
		body := fmt.Sprintf(`{"event":"msg","rooms":["room:1"],"args":[%d]}`, data)
		if code, resp := do(t, "POST", n.base+"/api/v1/emit", "api", body); code != http.StatusOK {
			t.Fatalf("emit %d %v", code, resp)
		}
	}
	watcher := sitest.Dial(t, a.wsURL)
	watcher.Connect("/", tok("w"))
	join(watcher)
	x := sitest.Dial(t, b.wsURL)
	x.Send("40" + tok("x"))
	var first struct{ SID, PID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(x.Read(), "40")), &first); err != nil || first.PID == "" {
		t.Fatalf("CONNECT reply without pid: %+v %v", first, err)
	}
	join(x)
	if got, _ := readEvent(t, watcher); got != `42["roomcast:join",{"members":2,"room":"room:1","user":"x"}]` {
		t.Fatalf("watcher got %s", got)
	}
	emit(a, 1)
	if got, _ := readEvent(t, watcher); got != `42["msg",1]` {
		t.Fatalf("watcher got %s", got)
	}
	got, offset := readEvent(t, x)
	if got != `42["msg",1]` {
		t.Fatalf("x got %s", got)
	}

	// x's transport is cut (not a namespace disconnect): b keeps its
	// presence for the window. x reconnects to a with its pid and offset.
	_ = x.Conn.CloseNow()
	waitFor(t, "b to see x gone", func() bool { _, ok := b.g.Server().Sockets().Socket(first.SID); return !ok })
	back := sitest.Dial(t, a.wsURL)
	back.Send("40" + strings.TrimSuffix(tok("x"), "}") + fmt.Sprintf(`,"pid":%q,"offset":%q}`, first.PID, offset))
	if got := back.Read(); got != fmt.Sprintf(`40{"pid":%q,"sid":%q}`, first.PID, first.SID) {
		t.Fatalf("CONNECT reply %s, want the old session (recovered)", got)
	}
	// b's window for the old connection ends: it must leave nothing.
	key := "/\x00" + first.SID
	waitFor(t, "the end of b's recovery window for x", func() bool {
		b.g.tracker.mu.Lock()
		defer b.g.tracker.mu.Unlock()
		_, ok := b.g.tracker.socks[key]
		return !ok
	})
	time.Sleep(window / 2) // what b decided at its window's end is delivered by now

	// The next event the watcher reads is a broadcast emitted now: a
	// roomcast:leave or roomcast:join of x decided before it (both are
	// logged broadcasts, delivered in log order) would come first.
	emit(b, 2)
	if got, _ := readEvent(t, watcher); got != `42["msg",2]` {
		t.Fatalf("watcher got %s, want no leave or join of the recovered x", got)
	}
	if got, _ := readEvent(t, back); got != `42["msg",2]` {
		t.Fatalf("recovered x got %s, want the room's broadcast", got)
	}
	for _, n := range []*node{a, b} {
		code, body := do(t, "GET", n.base+"/api/v1/presence?room=room:1", "api", "")
		if got := fmt.Sprint(code, " ", body["count"], " ", body["sockets"], " ", body["users"]); got !=
			"200 2 2 [map[sockets:1 user:w] map[sockets:1 user:x]]" {
			t.Fatalf("presence on %s: %s", n.g.cfg.NodeID, got)
		}
	}
	// The stream: x connected and joined once, and nothing ended.
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rc.Close()
	msgs, err := rc.XRange(context.Background(), "socket.io:events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var ofX []string
	for _, m := range msgs {
		var e struct{ Type, Socket, User, Room string }
		if err := json.Unmarshal([]byte(fmt.Sprint(m.Values["event"])), &e); err != nil {
			t.Fatal(err)
		}
		if e.Socket == first.SID || e.User == "x" {
			ofX = append(ofX, e.Type+" "+e.Room)
		}
	}
	if s := fmt.Sprint(ofX); s != "[connect  join room:1]" {
		t.Fatalf("events of x in the stream %s, want its connect and join only", s)
	}
}
