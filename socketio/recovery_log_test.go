package socketio

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomcast/roomcast/broadcastlog"
	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/sitest"
	"github.com/roomcast/roomcast/queue"
)

// newLogServer starts a server with Recovery and a broadcast log; a
// socket's user is its auth "user", and it joins the rooms of its auth
// "rooms" (comma-separated) when it connects fresh.
func newLogServer(t *testing.T, st queue.Store, log broadcastlog.Log) (*Server, string) {
	t.Helper()
	srv, err := New(Config{
		Engine: engineio.Config{PingInterval: time.Second, PingTimeout: time.Second},
		Recovery: &Recovery{
			Store:    st,
			Log:      log,
			User:     func(s *Socket) string { u, _ := s.Handshake().Auth["user"].(string); return u },
			PageSize: 2,
			// A reconnect's auth "deny" names a room it may not rejoin.
			MayRejoin: func(s *Socket, room string) bool {
				deny, _ := s.Handshake().Auth["deny"].(string)
				return room != deny
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Sockets().OnConnection(func(s *Socket) {
		if s.Recovered() {
			return
		}
		if rooms, _ := s.Handshake().Auth["rooms"].(string); rooms != "" {
			_ = s.Join(strings.Split(rooms, ",")...)
		}
	})
	return srv, serve(t, srv)
}

func newMemoryLog(t testing.TB, retention time.Duration) *broadcastlog.Memory {
	l := broadcastlog.NewMemory(broadcastlog.MemoryConfig{Retention: retention})
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// event parses an EVENT frame: its arguments after the name, and the
// offset (the last argument).
func event(t testing.TB, f string) (name string, args []any, offset string) {
	t.Helper()
	if !strings.HasPrefix(f, "42") {
		t.Fatalf("not an EVENT: %q", f)
	}
	var arr []any
	if err := json.Unmarshal([]byte(f[2:]), &arr); err != nil {
		t.Fatalf("EVENT %q: %v", f, err)
	}
	name, _ = arr[0].(string)
	offset, _ = arr[len(arr)-1].(string)
	return name, arr[1 : len(arr)-1], offset
}

// dropSaved is drop, then waits for a session with the socket's rooms to
// be stored (the save at connect has none; the ones after a join and at
// the disconnect are asynchronous: issue 16).
func dropSaved(t *testing.T, c *sitest.Client, s *Socket, st queue.Store) {
	t.Helper()
	drop(t, c, s)
	waitFor(t, "session saved", func() bool {
		sess, err := st.LoadSession(context.Background(), s.PID())
		return err == nil && len(sess.Rooms) > 0
	})
}

func connectWith(t *testing.T, srv *Server, url, auth string) (*sitest.Client, connectReply, []string) {
	t.Helper()
	c := sitest.Dial(t, url)
	c.Send("40" + auth)
	r, before := readConnect(t, c)
	var a struct{ Rooms string }
	if json.Unmarshal([]byte(auth), &a) == nil && a.Rooms != "" {
		// OnConnection joins them after the CONNECT reply (the adapter
		// adds them one at a time).
		want := len(strings.Split(a.Rooms, ",")) + 1
		waitFor(t, "rooms joined", func() bool {
			s, ok := srv.Sockets().Socket(r.SID)
			return ok && len(s.Rooms()) == want
		})
	}
	return c, r, before
}

func TestLogRecoveryReplaysRoomBroadcastsMergedWithUserMessages(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url := newLogServer(t, st, newMemoryLog(t, time.Minute))
	nsp := srv.Sockets()

	c, first, _ := connectWith(t, srv, url, `{"user":"alice","rooms":"r,x"}`)
	s, _ := nsp.Socket(first.SID)
	if err := nsp.To("r").Emit("m", 1); err != nil {
		t.Fatal(err)
	}
	_, args, offset := event(t, c.Read())
	if fmt.Sprint(args) != "[1]" || !strings.Contains(offset, "~") {
		t.Fatalf("live broadcast args %v offset %q", args, offset)
	}
	dropSaved(t, c, s, st)

	_ = nsp.To("r").Emit("m", 2)
	time.Sleep(2 * time.Millisecond) // the merge orders by time: 1 ms apart
	mustEmit(t, nsp, "alice", "u", "a")
	time.Sleep(2 * time.Millisecond)
	_ = nsp.To("other").Emit("m", "not for alice")
	_ = nsp.To("r").Except("x").Emit("m", "excepted")
	_ = nsp.Emit("m", 3) // the whole namespace
	_ = nsp.To("r").Volatile().Emit("m", "volatile")

	c2, second, before := connectWith(t, srv, url, fmt.Sprintf(`{"user":"alice","pid":%q,"offset":%q}`, first.PID, offset))
	if second.SID != first.SID {
		t.Fatalf("not recovered: sid %s, want %s", second.SID, first.SID)
	}
	var got []string
	for _, f := range before {
		name, args, _ := event(t, f)
		got = append(got, name+fmt.Sprint(args))
	}
	if want := "[m[2] u[a] m[3]]"; fmt.Sprint(got) != want {
		t.Fatalf("replayed %v, want %s", got, want)
	}
	_ = nsp.To("r").Emit("m", 4)
	if _, args, _ := event(t, c2.Read()); fmt.Sprint(args) != "[4]" {
		t.Fatalf("live after recovery: %v", args)
	}
}

func TestLogRecoveryExpiredIsNotRecovered(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url := newLogServer(t, st, newMemoryLog(t, 50*time.Millisecond))
	nsp := srv.Sockets()
	c, first, _ := connectWith(t, srv, url, `{"user":"bob","rooms":"r"}`)
	s, _ := nsp.Socket(first.SID)
	_ = nsp.To("r").Emit("m", 1)
	_, _, offset := event(t, c.Read())
	dropSaved(t, c, s, st)
	_ = nsp.To("r").Emit("m", 2) // missed, then trimmed
	time.Sleep(100 * time.Millisecond)
	_ = nsp.To("r").Emit("m", 3)

	c2, second, before := connectWith(t, srv, url, fmt.Sprintf(`{"user":"bob","pid":%q,"offset":%q}`, first.PID, offset))
	if second.SID == first.SID || len(before) != 0 {
		t.Fatalf("recovered with a hole: sid %s, replayed %v", second.SID, before)
	}
	if name, args, _ := event(t, c2.Read()); name != NotRecoveredEvent || !strings.Contains(fmt.Sprint(args), "expired") {
		t.Fatalf("got %s %v, want %s expired", name, args, NotRecoveredEvent)
	}
}

// TestLogRecoveryOldOffset: an offset of the form from before the log (a
// user stream ID alone) recovers from the log position saved with the
// session — where its connection started reading the log, so what it may
// have received is sent again rather than what it missed lost; without a
// saved position, it is not recovered.
func TestLogRecoveryOldOffset(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url := newLogServer(t, st, newMemoryLog(t, time.Minute))
	nsp := srv.Sockets()
	c, first, _ := connectWith(t, srv, url, `{"user":"carol","rooms":"r"}`)
	s, _ := nsp.Socket(first.SID)
	_ = nsp.To("r").Emit("m", 1)
	_, _, offset := event(t, c.Read())
	dropSaved(t, c, s, st)
	_ = nsp.To("r").Emit("m", 2)
	user, _, err := ParseOffset(offset)
	if err != nil {
		t.Fatal(err)
	}
	_, second, before := connectWith(t, srv, url, fmt.Sprintf(`{"user":"carol","pid":%q,"offset":%q}`, first.PID, user))
	if second.SID != first.SID || len(before) != 2 {
		t.Fatalf("old offset with a saved log position: sid %s (want %s), replayed %v", second.SID, first.SID, before)
	}

	// A session saved without a log position (before the upgrade).
	sess, err := st.LoadSession(context.Background(), first.PID)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := nsp.Socket(second.SID)
	s2.Disconnect(true)
	waitFor(t, "disconnect", func() bool { return !s2.Connected() })
	time.Sleep(20 * time.Millisecond) // the disconnect's session save
	sess.Offset = user
	if err := st.SaveSession(context.Background(), sess, time.Minute); err != nil {
		t.Fatal(err)
	}
	c3, third, before := connectWith(t, srv, url, fmt.Sprintf(`{"user":"carol","pid":%q,"offset":%q}`, first.PID, user))
	if third.SID == first.SID || len(before) != 0 {
		t.Fatalf("recovered without a log position: %v %v", third, before)
	}
	if name, _, _ := event(t, c3.Read()); name != NotRecoveredEvent {
		t.Fatalf("got %s, want %s", name, NotRecoveredEvent)
	}
}

// TestLogRecoveryFiftyRooms: a client in 50 rooms with broadcasts in each
// while it was away gets them all, in order per room.
func TestLogRecoveryFiftyRooms(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url := newLogServer(t, st, newMemoryLog(t, time.Minute))
	nsp := srv.Sockets()
	var rooms []string
	for i := range 50 {
		rooms = append(rooms, fmt.Sprintf("room%d", i))
	}
	c, first, _ := connectWith(t, srv, url, fmt.Sprintf(`{"user":"dan","rooms":%q}`, strings.Join(rooms, ",")))
	s, _ := nsp.Socket(first.SID)
	_ = nsp.To("room0").Emit("m", "room0", -1)
	_, _, offset := event(t, c.Read())
	dropSaved(t, c, s, st)
	for i := range 10 {
		for _, r := range rooms {
			_ = nsp.To(r).Emit("m", r, i)
		}
	}
	_, second, before := connectWith(t, srv, url, fmt.Sprintf(`{"user":"dan","pid":%q,"offset":%q}`, first.PID, offset))
	if second.SID != first.SID || len(before) != 500 {
		t.Fatalf("recovered %v with %d replayed, want 500", second.SID == first.SID, len(before))
	}
	next := map[string]int{}
	for _, f := range before {
		_, args, _ := event(t, f)
		r, i := args[0].(string), int(args[1].(float64))
		if i != next[r] {
			t.Fatalf("room %s: got %d, want %d", r, i, next[r])
		}
		next[r]++
	}
}

// TestLogRecoveryHandoffIsGapFree: broadcasts keep coming while the client
// recovers; it gets every one after its offset, once, in order.
func TestLogRecoveryHandoffIsGapFree(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url := newLogServer(t, st, newMemoryLog(t, time.Minute))
	nsp := srv.Sockets()
	c, first, _ := connectWith(t, srv, url, `{"user":"eve","rooms":"r"}`)
	s, _ := nsp.Socket(first.SID)
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = nsp.To("r").Emit("m", n.Add(1))
			time.Sleep(100 * time.Microsecond)
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	var last float64
	var offset string
	for last < 50 {
		_, args, off := event(t, c.Read())
		v := args[0].(float64)
		if v != last+1 {
			t.Fatalf("live: got %v after %v", v, last)
		}
		last, offset = v, off
	}
	dropSaved(t, c, s, st)
	time.Sleep(20 * time.Millisecond)
	c2, second, _ := func() (*sitest.Client, connectReply, []string) {
		c2 := sitest.Dial(t, url)
		c2.Send(fmt.Sprintf(`40{"user":"eve","pid":%q,"offset":%q}`, first.PID, offset))
		return c2, connectReply{}, nil
	}()
	_ = second
	target := n.Load() + 200
	for last < float64(target) {
		f := c2.Read()
		if strings.HasPrefix(f, "40") {
			var r connectReply
			_ = json.Unmarshal([]byte(f[2:]), &r)
			if r.SID != first.SID {
				t.Fatalf("not recovered")
			}
			continue
		}
		_, args, _ := event(t, f)
		v := args[0].(float64)
		if v != last+1 {
			t.Fatalf("after recovery: got %v after %v", v, last)
		}
		last = v
	}
}

func FuzzParseOffset(f *testing.F) {
	for _, s := range []string{"1700000000000-0", "1700000000001-0~1700000000000-3", "0-0~0-0", "~", "1-1~", "~1-1", "a~b~c", "99999999999999999999-1~1-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		user, log, err := ParseOffset(s)
		if err != nil {
			return
		}
		if log == "" {
			if user != s {
				t.Fatalf("old form %q: user %q", s, user)
			}
			return
		}
		if _, err := broadcastlog.ParsePosition(log); err != nil {
			t.Fatalf("%q: log part %q accepted: %v", s, log, err)
		}
		if got := FormatOffset(user, log); got != s {
			t.Fatalf("round trip %q -> %q %q -> %q", s, user, log, got)
		}
	})
}

// A room MayRejoin refuses is neither rejoined nor replayed: what it missed
// there while away stays with the rights it lost.
func TestLogRecoveryDoesNotReplayRefusedRooms(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url := newLogServer(t, st, newMemoryLog(t, time.Minute))
	nsp := srv.Sockets()
	c, first, _ := connectWith(t, srv, url, `{"user":"dave","rooms":"keep,revoked"}`)
	s, _ := nsp.Socket(first.SID)
	offset := s.Offset()
	dropSaved(t, c, s, st)

	_ = nsp.To("revoked").Emit("m", "secret")
	_ = nsp.To("keep").Emit("m", "kept")

	_, second, before := connectWith(t, srv, url, fmt.Sprintf(`{"user":"dave","deny":"revoked","pid":%q,"offset":%q}`, first.PID, offset))
	if second.SID != first.SID {
		t.Fatalf("not recovered: sid %s, want %s", second.SID, first.SID)
	}
	var got []string
	for _, f := range before {
		_, args, _ := event(t, f)
		got = append(got, fmt.Sprint(args))
	}
	if want := "[[kept]]"; fmt.Sprint(got) != want {
		t.Fatalf("replayed %v, want %s (nothing of the refused room)", got, want)
	}
	s2, _ := nsp.Socket(first.SID)
	if d := s2.DroppedRooms(); len(d) != 1 || d[0] != "revoked" {
		t.Fatalf("DroppedRooms %v, want [revoked]", d)
	}
}

// A read of the log whose entries go to the same rooms is delivered socket
// by socket (each socket gets the run back to back); entries to other rooms
// break the run. Every socket still sees its rooms' entries in log order,
// each with its own offset, and the tail's position is the read's last.
func TestLogTailDeliversRunsInOrder(t *testing.T) {
	log := newMemoryLog(t, time.Minute)
	srv, url := newLogServer(t, newMemoryStore(t, queue.MemoryConfig{}), log)
	a, _, _ := connectWith(t, srv, url, `{"user":"a","rooms":"r"}`)
	b, _, _ := connectWith(t, srv, url, `{"user":"b","rooms":"r,s"}`)
	tail, err := recoveryOf(srv).tailOf(srv.Sockets())
	if err != nil {
		t.Fatal(err)
	}
	// One read of six entries, as one XREAD returns them (handed to the
	// tail directly: positions after anything the sockets were sent).
	now := time.Now().UnixMilli() + 1000
	var entries []broadcastlog.Entry
	for i, room := range []string{"r", "r", "r", "s", "r", "r"} {
		data, _ := json.Marshal([]any{"m", i})
		entries = append(entries, broadcastlog.Entry{ID: fmt.Sprintf("%d-%d", now, i), Rooms: []string{room}, Data: data})
	}
	tail.deliver(entries, nil)
	expectEntries(t, map[*sitest.Client][]float64{a: {0, 1, 2, 4, 5}, b: {0, 1, 2, 3, 4, 5}})
	last, _ := broadcastlog.ParsePosition(entries[len(entries)-1].ID)
	if tail.position() != last {
		t.Fatalf("tail at %v, want %v", tail.position(), last)
	}
}

// expectEntries reads, from each client, the events ["m", i] of the
// numbers it wants, in order, each with an offset past the one before.
func expectEntries(t *testing.T, want map[*sitest.Client][]float64) {
	t.Helper()
	for c, want := range want {
		var got []float64
		var offsets []string
		for range want {
			_, args, off := event(t, c.Read())
			got = append(got, args[0].(float64))
			offsets = append(offsets, off)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("delivered %v, want %v", got, want)
		}
		for i := 1; i < len(offsets); i++ {
			if offsets[i] <= offsets[i-1] {
				t.Fatalf("offset %s after %s", offsets[i], offsets[i-1])
			}
		}
	}
}

// A read's entries to the same rooms are one run whatever their
// exceptions (two publishers in a room, each excepting its own socket):
// every socket gets, in log order, the entries that do not except it (an
// entry it should not get would come before the last one, which is for all).
func TestLogTailDeliversRunsWithExceptions(t *testing.T) {
	log := newMemoryLog(t, time.Minute)
	srv, url := newLogServer(t, newMemoryStore(t, queue.MemoryConfig{}), log)
	a, ra, _ := connectWith(t, srv, url, `{"user":"a","rooms":"r"}`)
	b, rb, _ := connectWith(t, srv, url, `{"user":"b","rooms":"r"}`)
	c, _, _ := connectWith(t, srv, url, `{"user":"c","rooms":"r"}`)
	tail, err := recoveryOf(srv).tailOf(srv.Sockets())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli() + 1000
	var entries []broadcastlog.Entry
	for i, except := range [][]string{{ra.SID}, {rb.SID}, {ra.SID}, nil, {rb.SID}, {ra.SID, rb.SID}, nil} {
		data, _ := json.Marshal([]any{"m", i})
		entries = append(entries, broadcastlog.Entry{ID: fmt.Sprintf("%d-%d", now, i), Rooms: []string{"r"}, Except: except, Data: data})
	}
	tail.deliver(entries, nil)
	expectEntries(t, map[*sitest.Client][]float64{a: {1, 3, 4, 6}, b: {0, 2, 3, 6}, c: {0, 1, 2, 3, 4, 5, 6}})
}
