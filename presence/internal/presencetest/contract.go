// Package presencetest is the contract every presence.Store passes, run
// by the tests of presence and presence/redispresence.
package presencetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/presence"
)

// Run runs the contract against stores made by newStore (a fresh,
// empty store of one node per call).
func Run(t *testing.T, newStore func(t *testing.T) presence.Store) {
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, newStore(t)) })
	t.Run("JoinLeave", func(t *testing.T) { testJoinLeave(t, newStore(t)) })
	t.Run("Paging", func(t *testing.T) { testPaging(t, newStore(t)) })
	t.Run("ConcurrentSameUser", func(t *testing.T) { testConcurrent(t, newStore(t)) })
	t.Run("Throttle", func(t *testing.T) { testThrottle(t, newStore(t)) })
}

// Types lists the types of events.
func Types(events []presence.Event) string {
	var b []string
	for _, e := range events {
		b = append(b, e.Type)
	}
	return strings.Join(b, ",")
}

func mustFn(t testing.TB) func([]presence.Event, error) []presence.Event {
	return func(events []presence.Event, err error) []presence.Event {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return events
	}
}

func testLifecycle(t *testing.T, st presence.Store) {
	ctx := context.Background()
	must := mustFn(t)
	s := presence.Socket{Namespace: "/", ID: "s1", User: "u1"}
	ev := must(st.Connect(ctx, s))
	if Types(ev) != "connect" || ev[0].Socket != "s1" || ev[0].User != "u1" || ev[0].ID == "" {
		t.Fatalf("connect: %+v", ev)
	}
	if ev2 := must(st.Connect(ctx, s)); len(ev2) != 0 {
		t.Fatalf("a known socket (recovered) connects again without an event: %+v", ev2)
	}
	d := must(st.Disconnect(ctx, s, "transport close"))
	if Types(d) != "disconnect" || d[0].Reason != "transport close" || d[0].User != "u1" {
		t.Fatalf("disconnect: %+v", d)
	}
	if d[0].ID == ev[0].ID || d[0].ID != presence.EventID(presence.EventDisconnect, "/", "", "s1", "") {
		t.Fatalf("disconnect id %q", d[0].ID)
	}
	if d2 := must(st.Disconnect(ctx, s, "transport close")); len(d2) != 0 {
		t.Fatalf("a second disconnect: %+v", d2)
	}
}

func testJoinLeave(t *testing.T, st presence.Store) {
	ctx := context.Background()
	must := mustFn(t)
	info := json.RawMessage(`{"name":"Uno"}`)
	a1 := presence.Socket{Namespace: "/", ID: "a1", User: "u1", Info: info}
	a2 := presence.Socket{Namespace: "/", ID: "a2", User: "u1", Info: info}
	b1 := presence.Socket{Namespace: "/", ID: "b1", User: "u2"}
	ev := must(st.Join(ctx, a1, "r"))
	if Types(ev) != "occupied,join" || ev[1].User != "u1" || ev[1].Members != 1 || string(ev[1].Info) != string(info) {
		t.Fatalf("first join: %+v", ev)
	}
	if ev := must(st.Join(ctx, a1, "r")); len(ev) != 0 {
		t.Fatalf("a join of a socket already in: %+v", ev)
	}
	if ev := must(st.Join(ctx, a2, "r")); len(ev) != 0 {
		t.Fatalf("a second socket of u1: %+v", ev)
	}
	ev = must(st.Join(ctx, b1, "r"))
	if Types(ev) != "join" || ev[0].User != "u2" || ev[0].Members != 2 {
		t.Fatalf("u2 joins: %+v", ev)
	}
	if ev := must(st.Join(ctx, b1, "other")); Types(ev) != "occupied,join" {
		t.Fatalf("another room: %+v", ev)
	}
	p, err := st.Members(ctx, "/", "r", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if p.Users != 2 || p.Sockets != 3 || len(p.Members) != 2 || p.Next != "" ||
		p.Members[0].User != "u1" || p.Members[0].Sockets != 2 || string(p.Members[0].Info) != string(info) ||
		p.Members[1].User != "u2" || p.Members[1].Sockets != 1 {
		t.Fatalf("members: %+v", p)
	}
	if p, _ := st.Members(ctx, "/", "r", "", 0); p.Users != 2 || len(p.Members) != 0 {
		t.Fatalf("counts only: %+v", p)
	}
	if p, _ := st.Members(ctx, "/chat", "r", "", 10); p.Users != 0 || len(p.Members) != 0 {
		t.Fatalf("another namespace's room: %+v", p)
	}
	rooms, err := st.Rooms(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rooms) != "[{other 1 1} {r 2 3}]" {
		t.Fatalf("rooms: %v", rooms)
	}
	if ev := must(st.Leave(ctx, presence.Socket{Namespace: "/", ID: "nobody"}, "r")); len(ev) != 0 {
		t.Fatalf("leave of a stranger: %+v", ev)
	}
	if ev := must(st.Leave(ctx, a1, "r")); len(ev) != 0 {
		t.Fatalf("u1 keeps a socket: %+v", ev)
	}
	ev = must(st.Leave(ctx, a2, "r"))
	if Types(ev) != "leave" || ev[0].User != "u1" || ev[0].Members != 1 || string(ev[0].Info) != string(info) {
		t.Fatalf("u1's last socket: %+v", ev)
	}
	joined := must(st.Join(ctx, a1, "r"))
	if Types(joined) != "join" {
		t.Fatalf("u1 again: %+v", joined)
	}
	ev = must(st.Leave(ctx, b1, "r"))
	if Types(ev) != "leave" || ev[0].Members != 1 {
		t.Fatalf("u2 leaves: %+v", ev)
	}
	ev = must(st.Leave(ctx, a1, "r"))
	if Types(ev) != "leave,vacated" || ev[1].Members != 0 || ev[1].Room != "r" {
		t.Fatalf("the last member: %+v", ev)
	}
	rooms, _ = st.Rooms(ctx, "/")
	if fmt.Sprint(rooms) != "[{other 1 1}]" {
		t.Fatalf("rooms after: %v", rooms)
	}
	// A membership's join and leave ids pair up; a new membership has new ids.
	ids := map[string]bool{}
	for _, e := range append(joined, ev...) {
		if ids[e.ID] {
			t.Fatalf("id %s twice", e.ID)
		}
		ids[e.ID] = true
	}
	// A room occupied again is a new occupancy.
	if ev := must(st.Join(ctx, a1, "r")); Types(ev) != "occupied,join" {
		t.Fatalf("reoccupied: %+v", ev)
	}
}

func testPaging(t *testing.T, st presence.Store) {
	ctx := context.Background()
	must := mustFn(t)
	const n = 250
	for i := range n {
		must(st.Join(ctx, presence.Socket{Namespace: "/", ID: fmt.Sprint("s", i), User: fmt.Sprintf("u%03d", i)}, "big"))
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("paging does not end")
		}
		p, err := st.Members(ctx, "/", "big", cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		if p.Users != n {
			t.Fatalf("users %d", p.Users)
		}
		for _, m := range p.Members {
			if seen[m.User] {
				t.Fatalf("%s twice", m.User)
			}
			seen[m.User] = true
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	if len(seen) != n {
		t.Fatalf("%d of %d members listed", len(seen), n)
	}
}

// testConcurrent: many sockets of one user join and leave at once; the
// user joins once and leaves once.
func testConcurrent(t *testing.T, st presence.Store) {
	ctx := context.Background()
	const n = 32
	var (
		mu     sync.Mutex
		events []presence.Event
		wg     sync.WaitGroup
	)
	run := func(leave bool) {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := presence.Socket{Namespace: "/", ID: fmt.Sprint("c", i), User: "same"}
				var ev []presence.Event
				var err error
				if leave {
					ev, err = st.Leave(ctx, s, "race")
				} else {
					ev, err = st.Join(ctx, s, "race")
				}
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				events = append(events, ev...)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	run(false)
	if Types(events) != "occupied,join" {
		t.Fatalf("concurrent joins of one user: %s", Types(events))
	}
	events = nil
	run(true)
	if Types(events) != "leave,vacated" {
		t.Fatalf("concurrent leaves of one user: %s", Types(events))
	}
}

func testThrottle(t *testing.T, st presence.Store) {
	ctx := context.Background()
	ok, err := st.Throttle(ctx, "/", "r", 200*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("first: %v %v", ok, err)
	}
	if ok, _ := st.Throttle(ctx, "/", "r", 200*time.Millisecond); ok {
		t.Fatal("a second caller within the interval")
	}
	if ok, _ := st.Throttle(ctx, "/", "other", 200*time.Millisecond); !ok {
		t.Fatal("another room is throttled apart")
	}
	time.Sleep(250 * time.Millisecond)
	if ok, _ := st.Throttle(ctx, "/", "r", 200*time.Millisecond); !ok {
		t.Fatal("after the interval")
	}
}
