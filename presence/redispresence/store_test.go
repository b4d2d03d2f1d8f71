package redispresence

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/internal/leakcheck"
	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/presence"
	"github.com/roomcast/roomcast/presence/internal/presencetest"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

var prefixSeq atomic.Int64

func uniquePrefix() string { return fmt.Sprintf("p%d", prefixSeq.Add(1)) }

// shared starts a redis-server for the test.
func shared(t *testing.T) *redis.Client {
	t.Helper()
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recorder is a Listener keeping what it was told.
type recorder struct {
	mu     sync.Mutex
	events []presence.Event
}

func (r *recorder) listen(ev []presence.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev...)
	r.mu.Unlock()
}

func (r *recorder) all() []presence.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]presence.Event(nil), r.events...)
}

func newStore(t *testing.T, c redis.UniversalClient, prefix, node string, cfg Config) *Store {
	t.Helper()
	cfg.Client, cfg.Prefix, cfg.Node, cfg.Logger = c, prefix, node, quiet
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestContract(t *testing.T) {
	c := shared(t)
	presencetest.Run(t, func(t *testing.T) presence.Store {
		return newStore(t, c, uniquePrefix(), "n1", Config{})
	})
}

// streamTypes reads the event stream: the types of its entries in order,
// and how many times each id appears.
func streamTypes(t *testing.T, c *redis.Client, prefix string) (string, map[string]int) {
	t.Helper()
	msgs, err := c.XRange(context.Background(), prefix+":events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	ids := map[string]int{}
	for _, m := range msgs {
		types = append(types, m.Values["type"].(string))
		ids[m.Values["id"].(string)]++
	}
	return strings.Join(types, ","), ids
}

// TestTwoNodesRace: sockets of one user join and leave one room from two
// nodes at once; one join and one leave are decided, and each is in the
// stream once.
func TestTwoNodesRace(t *testing.T) {
	c := shared(t)
	prefix := uniquePrefix()
	var ra, rb recorder
	a := newStore(t, c, prefix, "a", Config{Listener: ra.listen})
	b := newStore(t, c, prefix, "b", Config{Listener: rb.listen})
	ctx := context.Background()
	for round := range 20 {
		room := fmt.Sprint("r", round)
		var wg sync.WaitGroup
		do := func(st *Store, sid string, leave bool) {
			defer wg.Done()
			s := presence.Socket{Namespace: "/", ID: sid, User: "u"}
			var err error
			if leave {
				_, err = st.Leave(ctx, s, room)
			} else {
				_, err = st.Join(ctx, s, room)
			}
			if err != nil {
				t.Error(err)
			}
		}
		for i := range 4 {
			wg.Add(2)
			go do(a, fmt.Sprint("a", i), false)
			go do(b, fmt.Sprint("b", i), false)
		}
		wg.Wait()
		for i := range 4 {
			wg.Add(2)
			go do(a, fmt.Sprint("a", i), true)
			go do(b, fmt.Sprint("b", i), true)
		}
		wg.Wait()
	}
	all := append(ra.all(), rb.all()...)
	count := map[string]int{}
	for _, e := range all {
		count[e.Type]++
	}
	if count["join"] != 20 || count["leave"] != 20 || count["occupied"] != 20 || count["vacated"] != 20 {
		t.Fatalf("decided across both nodes: %v", count)
	}
	types, ids := streamTypes(t, c, prefix)
	if strings.Count(types, "join") != 20 || strings.Count(types, "leave") != 20 {
		t.Fatalf("stream: %s", types)
	}
	for id, n := range ids {
		if n != 1 {
			t.Fatalf("id %s %d times", id, n)
		}
	}
}

// TestSweep: node a dies with sockets in rooms (one of them also held by
// node b's socket of the same user, one recovered on b); b sweeps it.
func TestSweep(t *testing.T) {
	c := shared(t)
	prefix := uniquePrefix()
	ctx := context.Background()
	var rb recorder
	a := newStore(t, c, prefix, "a", Config{})
	live := []string{"a", "b"}
	var liveMu sync.Mutex
	b := newStore(t, c, prefix, "b", Config{Listener: rb.listen, SweepInterval: 50 * time.Millisecond,
		Live: func(context.Context) ([]string, error) {
			liveMu.Lock()
			defer liveMu.Unlock()
			return append([]string(nil), live...), nil
		}})
	sock := func(id, user string) presence.Socket { return presence.Socket{Namespace: "/", ID: id, User: user} }
	for _, s := range []presence.Socket{sock("a1", "u1"), sock("a2", "u2"), sock("a3", "u3")} {
		if _, err := a.Connect(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	join := func(st *Store, s presence.Socket, room string) {
		if _, err := st.Join(ctx, s, room); err != nil {
			t.Fatal(err)
		}
	}
	join(a, sock("a1", "u1"), "lobby")
	join(a, sock("a2", "u2"), "lobby")
	join(a, sock("a1", "u1"), "alone")
	join(b, sock("b1", "u2"), "lobby") // u2 also on b: stays
	// a3 recovers on b before the sweep: b takes it over.
	join(a, sock("a3", "u3"), "lobby")
	if _, err := b.Connect(ctx, sock("a3", "u3")); err != nil {
		t.Fatal(err)
	}
	join(b, sock("a3", "u3"), "lobby")
	// An event a decided but did not append before it died.
	if _, _, err := roomResult(roomScript.Run(ctx, c, a.roomKeys("/", "late"), "join", "a4", "a", "u4", "").Result()); err != nil {
		t.Fatal(err)
	}
	if err := c.SAdd(ctx, a.nodeRooms("a"), tag("/", "late")).Err(); err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	liveMu.Lock()
	live = []string{"b"}
	liveMu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if n, _ := c.SIsMember(ctx, prefix+":presence:nodes", "a").Result(); !n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a was not swept")
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := map[string]int{}
	for _, e := range rb.all() {
		got[e.Type+":"+e.User+":"+e.Room+":"+e.Reason]++
	}
	want := map[string]int{
		"leave:u1:lobby:": 1, "leave:u1:alone:": 1, "vacated::alone:": 1,
		"occupied::late:": 1, "join:u4:late:": 1, "leave:u4:late:": 1, "vacated::late:": 1,
		"disconnect:u1::node lost": 1, "disconnect:u2::node lost": 1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sweep events:\n got %v\nwant %v", got, want)
	}
	p, err := b.Members(ctx, "/", "lobby", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if p.Users != 2 || p.Sockets != 2 || p.Members[0].User != "u2" || p.Members[1].User != "u3" {
		t.Fatalf("lobby after the sweep: %+v", p)
	}
	_, ids := streamTypes(t, c, prefix)
	for id, n := range ids {
		if n != 1 {
			t.Fatalf("id %s %d times in the stream", id, n)
		}
	}
	// A second sweep finds nothing.
	if ev, err := b.Sweep(ctx, "a"); err != nil || len(ev) != 0 {
		t.Fatalf("second sweep: %v %v", ev, err)
	}
	// a3's disconnect is b's to give.
	if ev, _ := b.Disconnect(ctx, sock("a3", "u3"), "transport close"); presencetest.Types(ev) != "disconnect" {
		t.Fatalf("a3 on b: %+v", ev)
	}
}

// TestSweepResumes: a sweep that stopped after taking the sockets out of
// a room but before appending its events is finished by the next one,
// each event once.
func TestSweepResumes(t *testing.T) {
	c := shared(t)
	prefix := uniquePrefix()
	ctx := context.Background()
	a := newStore(t, c, prefix, "a", Config{})
	b := newStore(t, c, prefix, "b", Config{})
	s := presence.Socket{Namespace: "/", ID: "a1", User: "u1"}
	if _, err := a.Join(ctx, s, "r"); err != nil {
		t.Fatal(err)
	}
	// The first sweeper's room script ran, then it died.
	if _, _, err := roomResult(roomScript.Run(ctx, c, a.roomKeys("/", "r"), "sweep", "a").Result()); err != nil {
		t.Fatal(err)
	}
	ev, err := b.Sweep(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if presencetest.Types(ev) != "leave,vacated" {
		t.Fatalf("resumed sweep: %+v", ev)
	}
	types, _ := streamTypes(t, c, prefix)
	if types != "occupied,join,leave,vacated" {
		t.Fatalf("stream: %s", types)
	}
}

// TestLostIsReported: when Redis loses this node's entries (a restart
// without persistence, or a sweep while it was cut off), the sweep loop
// re-registers the node and tells its owner to write its sockets again.
func TestLostIsReported(t *testing.T) {
	c := shared(t)
	lost := make(chan struct{}, 1)
	st := newStore(t, c, uniquePrefix(), "a", Config{SweepInterval: 20 * time.Millisecond, OnLost: func() {
		select {
		case lost <- struct{}{}:
		default:
		}
	}})
	ctx := context.Background()
	if _, err := st.Join(ctx, presence.Socket{Namespace: "/", ID: "s", User: "u"}, "r"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
		t.Fatal("lost while Redis has everything")
	case <-time.After(100 * time.Millisecond):
	}
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(2 * time.Second):
		t.Fatal("OnLost not called after Redis lost the entries")
	}
	if ok, _ := c.SIsMember(ctx, st.nodesKey(), "a").Result(); !ok {
		t.Fatal("the node is not registered again")
	}
}

// TestSweepersRace: the surviving nodes all find the dead node at once and
// sweep it concurrently, round after round; whichever wins the lock, each
// leave, vacated and "node lost" disconnect is decided once and is in the
// stream once.
func TestSweepersRace(t *testing.T) {
	c := shared(t)
	ctx := context.Background()
	for round := range 10 {
		prefix := uniquePrefix()
		dead := newStore(t, c, prefix, "dead", Config{})
		var rec recorder
		sweepers := []*Store{
			newStore(t, c, prefix, "b", Config{Listener: rec.listen}),
			newStore(t, c, prefix, "c", Config{Listener: rec.listen}),
			newStore(t, c, prefix, "d", Config{Listener: rec.listen}),
		}
		for i := range 5 {
			s := presence.Socket{Namespace: "/", ID: fmt.Sprint("s", i), User: fmt.Sprint("u", i)}
			if _, err := dead.Connect(ctx, s); err != nil {
				t.Fatal(err)
			}
			for _, room := range []string{"r1", "r2"} {
				if _, err := dead.Join(ctx, s, room); err != nil {
					t.Fatal(err)
				}
			}
		}
		_ = dead.Close()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var swept []presence.Event
		for _, st := range sweepers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev, err := st.Sweep(ctx, "dead")
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				swept = append(swept, ev...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		// A sweeper that lost the lock to one still at it returns nothing;
		// one that came after finds nothing left: a later round finishes.
		for _, st := range sweepers {
			ev, err := st.Sweep(ctx, "dead")
			if err != nil {
				t.Fatal(err)
			}
			swept = append(swept, ev...)
		}
		count := map[string]int{}
		for _, e := range swept {
			count[e.Type]++
		}
		if fmt.Sprint(count) != "map[disconnect:5 leave:10 vacated:2]" {
			t.Fatalf("round %d: swept %v", round, count)
		}
		types, ids := streamTypes(t, c, prefix)
		for id, n := range ids {
			if n != 1 {
				t.Fatalf("round %d: id %s %d times in the stream", round, id, n)
			}
		}
		if strings.Count(types, "disconnect") != 5 || strings.Count(types, "leave") != 10 || strings.Count(types, "vacated") != 2 {
			t.Fatalf("round %d: stream %s", round, types)
		}
		if p, err := sweepers[0].Members(ctx, "/", "r1", "", 10); err != nil || p.Users != 0 || p.Sockets != 0 {
			t.Fatalf("round %d: r1 after the sweep %+v %v", round, p, err)
		}
	}
}
