package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/hook"
	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/internal/sitest"
	"github.com/roomcast/roomcast/presence"
)

// lifecycleBackend is a lifecycle hook backend that fails its first
// failures requests (500), then takes every batch; it records the events
// of both.
type lifecycleBackend struct {
	mu        sync.Mutex
	failures  int
	requests  int
	failed    map[string]string              // event id -> batch id of a failed request
	delivered map[string]int                 // event id -> times delivered
	batches   map[string]string              // event id -> batch id of its delivery
	events    map[string]hook.LifecycleEvent // event id -> the event delivered
}

func newLifecycleBackend(t testing.TB, failures int) (*lifecycleBackend, string) {
	b := &lifecycleBackend{failures: failures, failed: map[string]string{}, delivered: map[string]int{}, batches: map[string]string{},
		events: map[string]hook.LifecycleEvent{}}
	url := backend(t, &hook.Handler{OnLifecycle: func(_ context.Context, req *hook.LifecycleRequest) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.requests++
		if b.requests <= b.failures {
			for _, e := range req.Events {
				b.failed[e.ID] = req.ID
			}
			return errors.New("not now")
		}
		for _, e := range req.Events {
			b.delivered[e.ID]++
			b.batches[e.ID] = req.ID
			b.events[e.ID] = e
		}
		return nil
	}})
	return b, url
}

func (b *lifecycleBackend) has(ids ...string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		if b.delivered[id] == 0 {
			return false
		}
	}
	return true
}

// check: every event of a failed request was delivered later, in a
// batch of the same id when the batch is the same.
func (b *lifecycleBackend) check(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.requests <= b.failures {
		t.Fatalf("%d requests, want more than the %d failures", b.requests, b.failures)
	}
	for id, batch := range b.failed {
		if b.delivered[id] == 0 {
			t.Fatalf("event %s of a failed batch never delivered", id)
		}
		if b.batches[id] != batch {
			t.Fatalf("event %s: failed in batch %s, delivered in %s", id, batch, b.batches[id])
		}
	}
}

func typesOf(evs []hook.LifecycleEvent) string {
	var ts []string
	for _, e := range evs {
		ts = append(ts, e.Type)
	}
	sort.Strings(ts)
	return fmt.Sprint(ts)
}

// TestLifecycleHookMemory: on a single node, the events of a connect and
// a join reach a backend that fails twice, with the same ids and batch
// ids as in the failed attempts.
func TestLifecycleHookMemory(t *testing.T) {
	t.Parallel()
	b, url := newLifecycleBackend(t, 2)
	var got []hook.LifecycleEvent
	var mu sync.Mutex
	n := start(t, Config{LifecycleHook: url, HookSecret: hookSecret})
	n.g.OnLifecycle(func(evs []presence.Event) {
		mu.Lock()
		for _, e := range evs {
			got = append(got, lifecycleEvent(e))
		}
		mu.Unlock()
	})
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", authPayload(token(t, map[string]any{"sub": "alice", "join": []string{"*"}})))
	c.Send(`421["join","room:1"]`)
	if got := c.Read(); got != `431[{"ok":true}]` {
		t.Fatalf("join %s", got)
	}
	c.Send(`422["leave","room:1"]`)
	if got := c.Read(); got != `432[{"ok":true}]` {
		t.Fatalf("leave %s", got)
	}
	var ids []string
	waitFor(t, "the events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 5
	})
	mu.Lock()
	if s := typesOf(got); s != "[connect join leave occupied vacated]" {
		t.Fatalf("events %s", s)
	}
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	mu.Unlock()
	waitFor(t, "the deliveries", func() bool { return b.has(ids...) })
	b.check(t)
	// The dispatcher counts a batch once the backend's answer is read,
	// which is after the backend recorded it: wait for the counts too.
	m := n.g.lifeHook.m
	waitFor(t, "5 events counted delivered", func() bool {
		return testutil.ToFloat64(m.events.WithLabelValues(lifecycleDelivered)) >= 5
	})
	if v := testutil.ToFloat64(m.events.WithLabelValues(lifecycleFailed)); v < 1 {
		t.Fatalf("failed %v", v)
	}
	waitFor(t, "a lifecycle hook request counted ok", func() bool {
		return testutil.ToFloat64(n.g.hooks.m.requests.WithLabelValues(hookLifecycle, hookOK)) >= 1
	})
}

// TestLifecycleHookMemoryOverflow: the queue keeps the newest events.
func TestLifecycleHookMemoryOverflow(t *testing.T) {
	t.Parallel()
	m, err := newLifecycleMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s := newMemoryLifecycleSource(3, m, slog.New(slog.DiscardHandler))
	for i := range 5 {
		s.push([]presence.Event{{ID: fmt.Sprint(i), Type: "connect"}})
	}
	b, err := s.next(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range b.events {
		ids = append(ids, e.ID)
	}
	if fmt.Sprint(ids) != "[2 3 4]" {
		t.Fatalf("kept %v", ids)
	}
	if v := testutil.ToFloat64(m.events.WithLabelValues(lifecycleDropped)); v != 2 {
		t.Fatalf("dropped %v", v)
	}
}

// streamIDs reads the event ids in the stream.
func streamIDs(t testing.TB, c *redis.Client, stream string) []string {
	t.Helper()
	msgs, err := c.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.Values["id"].(string))
	}
	return ids
}

// TestLifecycleHookRedis: with Redis the events of the stream reach a
// backend that fails twice, and end acknowledged in the group.
func TestLifecycleHookRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	t.Parallel()
	rs := redistest.Start(t)
	b, url := newLifecycleBackend(t, 2)
	n := start(t, Config{Redis: rs.URL(), Origins: []string{"*"}, NodeID: "a", LifecycleHook: url, HookSecret: hookSecret})
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", authPayload(token(t, map[string]any{"sub": "alice", "join": []string{"*"}})))
	c.Send(`421["join","room:1"]`)
	if got := c.Read(); got != `431[{"ok":true}]` {
		t.Fatalf("join %s", got)
	}
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rc.Close()
	var ids []string
	waitFor(t, "three events in the stream", func() bool {
		ids = streamIDs(t, rc, "socket.io:events")
		return len(ids) == 3
	})
	waitFor(t, "the deliveries", func() bool { return b.has(ids...) })
	b.check(t)
	waitFor(t, "the acknowledgements", func() bool {
		p, err := rc.XPending(context.Background(), "socket.io:events", lifecycleGroup).Result()
		return err == nil && p.Count == 0
	})
}

// TestLifecycleHookClaimsADeadNodesEvents: events a node read and did not
// deliver (its backend failing) before it stopped are claimed and
// delivered by another node once idle for --lifecycle-hook-claim-idle,
// with the same ids.
func TestLifecycleHookClaimsADeadNodesEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	t.Parallel()
	rs := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rc.Close()
	ctx := context.Background()
	failing, failURL := newLifecycleBackend(t, 1<<30)
	cfg := func(node, url string) Config {
		return Config{Redis: rs.URL(), Origins: []string{"*"}, NodeID: node, LifecycleHook: url, HookSecret: hookSecret,
			HookTimeout: 200 * time.Millisecond, LifecycleHookClaimIdle: 500 * time.Millisecond}
	}
	// Events appended as a presence Store appends them, before node a
	// reads them all in one batch.
	if err := rc.XGroupCreateMkStream(ctx, "socket.io:events", lifecycleGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 5 {
		e := hook.LifecycleEvent{ID: fmt.Sprintf("connect-test%d", i), Type: "connect", Namespace: "/", Socket: fmt.Sprint("s", i), Node: "x"}
		js, _ := json.Marshal(e)
		if err := rc.XAdd(ctx, &redis.XAddArgs{Stream: "socket.io:events", Values: []any{"id", e.ID, "type", e.Type, "event", string(js)}}).Err(); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.ID)
	}
	a := start(t, cfg("a", failURL))
	waitFor(t, "node a to read every entry", func() bool {
		p, err := rc.XPending(ctx, "socket.io:events", lifecycleGroup).Result()
		return err == nil && p.Count == 5 && p.Consumers["a"] == 5
	})
	waitFor(t, "node a to fail", func() bool {
		failing.mu.Lock()
		defer failing.mu.Unlock()
		return failing.requests > 1
	})
	// Node a stops (as if killed) with its entries pending.
	if err := a.g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	good, goodURL := newLifecycleBackend(t, 0)
	start(t, cfg("b", goodURL))
	waitFor(t, "node b to deliver node a's events", func() bool { return good.has(want...) })
	failing.mu.Lock()
	for id := range failing.failed {
		if !slices.Contains(want, id) {
			t.Errorf("unknown id %s", id)
		}
	}
	failing.mu.Unlock()
	waitFor(t, "the acknowledgements", func() bool {
		p, err := rc.XPending(ctx, "socket.io:events", lifecycleGroup).Result()
		return err == nil && p.Count == 0
	})
}

func TestLifecycleHookConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{AllowAnonymous: true, LifecycleHook: "http://x"}, "--hook-secret is required"},
		{Config{AllowAnonymous: true, LifecycleHook: "http://x", HookSecret: "s", LifecycleHookClaimIdle: time.Second}, "at least twice --hook-timeout"},
	} {
		c.cfg.setDefaults()
		if err := c.cfg.validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg.LifecycleHook, err, c.want)
		}
	}
}

// TestLifecycleHookGetsASweptNodesEvents: node b stops as if killed (its
// presence entries stay in Redis, its lease is gone); node a sweeps it and
// the events b owed — a "node lost" disconnect per socket b held, the
// leaves of its users, the vacated room — reach the --lifecycle-hook
// backend (its hook.Handler verifies each request's signature), are the
// stream's own events, and end acknowledged in the consumer group. The
// room's member on a is told of the leaves.
func TestLifecycleHookGetsASweptNodesEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server, waits for a sweep")
	}
	t.Parallel()
	rs := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rc.Close()
	ctx := context.Background()
	bk, url := newLifecycleBackend(t, 0)
	cfg := Config{Redis: rs.URL(), Origins: []string{"*"}, APIToken: "api", PresenceRooms: []string{"room:*"},
		LifecycleHook: url, HookSecret: hookSecret}
	a, b := start(t, withNode(cfg, "a")), start(t, withNode(cfg, "b"))
	dial := func(n *node, sub string, rooms ...string) (*sitest.Client, string) {
		t.Helper()
		c := sitest.Dial(t, n.wsURL)
		sid := c.Connect("/", authPayload(token(t, map[string]any{"sub": sub, "join": []string{"*"}})))
		for i, r := range rooms {
			c.Send(fmt.Sprintf(`42%d["join",%q]`, i, r))
			for {
				got := c.Read()
				if got == fmt.Sprintf(`43%d[{"ok":true}]`, i) {
					break
				}
				if !strings.HasPrefix(got, `42["roomcast:`) {
					t.Fatalf("join %s: %s", r, got)
				}
			}
		}
		return c, sid
	}
	watcher, _ := dial(a, "w", "room:1")
	lost := map[string]string{} // socket id -> user, of b's sockets
	var onB []*sitest.Client
	for _, s := range []struct {
		user  string
		rooms []string
	}{{"u1", []string{"room:1", "room:2"}}, {"u1", []string{"room:1"}}, {"u2", []string{"room:1", "room:2"}}} {
		c, sid := dial(b, s.user, s.rooms...)
		lost[sid] = s.user
		onB = append(onB, c)
	}
	// Everything so far is delivered and acknowledged before b dies.
	waitFor(t, "the connects and joins delivered", func() bool {
		ids := streamIDs(t, rc, "socket.io:events")
		p, err := rc.XPending(ctx, "socket.io:events", lifecycleGroup).Result()
		return len(ids) > 0 && bk.has(ids...) && err == nil && p.Count == 0
	})
	before := len(streamIDs(t, rc, "socket.io:events"))
	// b's clients read on, so its Shutdown need not wait for their close
	// handshakes.
	var readers sync.WaitGroup
	for _, c := range onB {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				if _, _, err := c.Conn.Read(ctx); err != nil {
					return
				}
			}
		}()
	}
	killed := time.Now()
	if err := b.g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	readers.Wait()
	stopped := time.Now()
	t.Logf("b stopped in %v", stopped.Sub(killed).Round(10*time.Millisecond))
	// a sweeps b at its next sweep round (every 5 s).
	type key struct{ typ, room, socket, user, reason string }
	want := map[key]bool{
		{"leave", "room:1", "", "u1", ""}: true, {"leave", "room:1", "", "u2", ""}: true,
		{"leave", "room:2", "", "u1", ""}: true, {"leave", "room:2", "", "u2", ""}: true,
		{"vacated", "room:2", "", "", ""}: true,
	}
	for sid, user := range lost {
		want[key{"disconnect", "", sid, user, presence.ReasonNodeLost}] = true
	}
	got := func() map[key][]hook.LifecycleEvent {
		bk.mu.Lock()
		defer bk.mu.Unlock()
		m := map[key][]hook.LifecycleEvent{}
		for _, e := range bk.events {
			k := key{e.Type, e.Room, e.Socket, e.User, e.Reason}
			if e.Type == "leave" || e.Type == "vacated" {
				k.socket = ""
			}
			if want[k] {
				m[k] = append(m[k], e)
			}
		}
		return m
	}
	deadline := time.Now().Add(12 * time.Second)
	for len(got()) < len(want) {
		if time.Now().After(deadline) {
			t.Fatalf("12s after b stopped the backend has %d of the %d events the sweep owed: %v", len(got()), len(want), got())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the sweep's events reached the backend %v after b stopped", time.Since(stopped).Round(10*time.Millisecond))
	// Each is the stream's one event of its kind.
	inStream := map[string]int{}
	for _, id := range streamIDs(t, rc, "socket.io:events") {
		inStream[id]++
	}
	for k, evs := range got() {
		if len(evs) != 1 {
			t.Fatalf("%v delivered as %d different events", k, len(evs))
		}
		// node: the node the socket or room entry was on (the lost one).
		if e := evs[0]; inStream[e.ID] != 1 || e.Node != "b" || e.Namespace != "/" {
			t.Fatalf("%v: event %+v, %d times in the stream", k, e, inStream[e.ID])
		}
	}
	if n := len(inStream) - before; n != len(want) {
		t.Fatalf("the sweep added %d events to the stream, want %d", n, len(want))
	}
	waitFor(t, "the acknowledgements", func() bool {
		p, err := rc.XPending(ctx, "socket.io:events", lifecycleGroup).Result()
		return err == nil && p.Count == 0
	})
	// The member on a is told that u1 and u2 left room:1, one after the
	// other (members 2, then 1), in either order.
	var leaves []string
	for len(leaves) < 2 {
		got, _ := readEvent(t, watcher)
		if !strings.HasPrefix(got, `42["roomcast:join"`) { // u1's and u2's, before b stopped
			leaves = append(leaves, got)
		}
	}
	if s := strings.Join(leaves, " "); s != `42["roomcast:leave",{"members":2,"room":"room:1","user":"u1"}] `+
		`42["roomcast:leave",{"members":1,"room":"room:1","user":"u2"}]` &&
		s != `42["roomcast:leave",{"members":2,"room":"room:1","user":"u2"}] `+
			`42["roomcast:leave",{"members":1,"room":"room:1","user":"u1"}]` {
		t.Fatalf("watcher got %s", s)
	}
	if code, body := do(t, "GET", a.base+"/api/v1/presence?room=room:1", "api", ""); code != http.StatusOK ||
		fmt.Sprint(body["count"], " ", body["sockets"]) != "1 1" {
		t.Fatalf("presence after the sweep %d %v", code, body)
	}
}
