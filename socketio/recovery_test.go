package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/sitest"
	"github.com/roomcast/roomcast/metrics"
	"github.com/roomcast/roomcast/queue"
)

// newRecoveryServer starts a server with Recovery on st; a socket's user is
// its auth "user" (none: anonymous); rooms starting with "d:" are durable;
// a recovered socket does not rejoin the room its auth "deny" names.
func newRecoveryServer(t *testing.T, st queue.Store, setup func(*Server)) (*Server, string, *metrics.Metrics) {
	t.Helper()
	m, err := metrics.New(prometheus.NewRegistry(), metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{
		Engine:  engineio.Config{PingInterval: time.Second, PingTimeout: time.Second},
		Metrics: m,
		Recovery: &Recovery{
			Store:       st,
			User:        func(s *Socket) string { u, _ := s.Handshake().Auth["user"].(string); return u },
			DurableRoom: func(room string) bool { return strings.HasPrefix(room, "d:") },
			MayRejoin: func(s *Socket, room string) bool {
				deny, _ := s.Handshake().Auth["deny"].(string)
				return room != deny
			},
			PageSize: 2, // several pages in every replay
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	return srv, serve(t, srv), m
}

func newMemoryStore(t *testing.T, cfg queue.MemoryConfig) *queue.Memory {
	t.Helper()
	st, err := queue.NewMemory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

type connectReply struct {
	SID string `json:"sid"`
	PID string `json:"pid"`
}

// readConnect reads frames until the CONNECT reply of "/" and returns the
// EVENT frames that came before it.
func readConnect(t *testing.T, c *sitest.Client) (connectReply, []string) {
	t.Helper()
	var before []string
	for {
		f := c.Read()
		if strings.HasPrefix(f, "40") {
			var r connectReply
			if err := json.Unmarshal([]byte(f[2:]), &r); err != nil {
				t.Fatalf("CONNECT reply %q: %v", f, err)
			}
			return r, before
		}
		before = append(before, f)
	}
}

// drop cuts the client's connection and waits until its socket s is
// disconnected on the server.
func drop(t *testing.T, c *sitest.Client, s *Socket) {
	t.Helper()
	c.Conn.Close(websocket.StatusGoingAway, "")
	waitFor(t, "disconnect", func() bool { return !s.Connected() })
}

func mustEmit(t *testing.T, n *Namespace, user, event string, args ...any) string {
	t.Helper()
	ids, err := n.ToUser(user).Emit(context.Background(), event, args...)
	if err != nil || len(ids) != 1 {
		t.Fatalf("ToUser(%s).Emit: %v %v", user, ids, err)
	}
	return ids[0]
}

func TestRecoveryReplaysMissedMessagesThenConnect(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url, m := newRecoveryServer(t, st, nil)
	nsp := srv.Sockets()

	c := sitest.Dial(t, url)
	c.Send(`40{"user":"alice"}`)
	first, _ := readConnect(t, c)
	if first.SID == "" || first.PID == "" {
		t.Fatalf("CONNECT reply without sid or pid: %+v", first)
	}
	s, ok := nsp.Socket(first.SID)
	if !ok {
		t.Fatal("socket not registered")
	}
	start := s.Offset()
	if err := s.Join("room1"); err != nil {
		t.Fatal(err)
	}

	// A live-only broadcast carries the socket's current offset.
	if err := nsp.To("room1").Emit("news", "hello"); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Read(), fmt.Sprintf(`42["news","hello",%q]`, start); got != want {
		t.Fatalf("broadcast: got %s, want %s", got, want)
	}
	// A durable message carries its own entry ID, which becomes the offset.
	id1 := mustEmit(t, nsp, "alice", "dm", 1)
	if got, want := c.Read(), fmt.Sprintf(`42["dm",1,%q]`, id1); got != want {
		t.Fatalf("durable: got %s, want %s", got, want)
	}
	if err := s.Emit("direct", "x"); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Read(), fmt.Sprintf(`42["direct","x",%q]`, id1); got != want {
		t.Fatalf("socket emit: got %s, want %s", got, want)
	}
	// Volatile packets and packets with an ack id carry no offset.
	if err := s.Volatile().Emit("vol", 1); err != nil {
		t.Fatal(err)
	}
	if got := c.Read(); got != `42["vol",1]` {
		t.Fatalf("volatile: got %s", got)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = s.EmitWithAck(ctx, "ask")
	}()
	if got := c.Read(); !strings.HasSuffix(got, `["ask"]`) {
		t.Fatalf("with ack: got %s", got)
	}

	// The connection drops; messages go on.
	drop(t, c, s)
	var missed []string
	for i := 2; i <= 6; i++ {
		missed = append(missed, mustEmit(t, nsp, "alice", "dm", i))
	}

	for round := 0; round < 2; round++ { // recovery works any number of times
		c2 := sitest.Dial(t, url)
		c2.Send(fmt.Sprintf(`40{"user":"alice","pid":%q,"offset":%q}`, first.PID, id1))
		reply, before := readConnect(t, c2)
		if reply.SID != first.SID || reply.PID != first.PID {
			t.Fatalf("round %d: CONNECT reply %+v, want the old sid and pid %+v", round, reply, first)
		}
		if len(before) != len(missed) {
			t.Fatalf("round %d: got %d missed packets before CONNECT, want %d: %v", round, len(before), len(missed), before)
		}
		for i, f := range before {
			if want := fmt.Sprintf(`42["dm",%d,%q]`, i+2, missed[i]); f != want {
				t.Fatalf("round %d: missed packet %d = %s, want %s", round, i, f, want)
			}
		}
		s2, ok := nsp.Socket(first.SID)
		if !ok || !s2.Recovered() || !s2.InRoom("room1") {
			t.Fatalf("round %d: recovered socket: ok=%v recovered=%v rooms=%v", round, ok, ok && s2.Recovered(), s2.Rooms())
		}
		// Live messages follow.
		id := mustEmit(t, nsp, "alice", "dm", 7+round)
		if got, want := c2.Read(), fmt.Sprintf(`42["dm",%d,%q]`, 7+round, id); got != want {
			t.Fatalf("round %d live: got %s, want %s", round, got, want)
		}
		drop(t, c2, s2)
		id1, missed = id, nil
	}
	if got := testutil.ToFloat64(m.Recoveries.WithLabelValues("recovered")); got != 2 {
		t.Fatalf("recoveries{recovered} = %v, want 2", got)
	}
}

func TestRecoveryNotPossibleIsSignalled(t *testing.T) {
	t.Parallel()
	const retention = 200 * time.Millisecond
	st := newMemoryStore(t, queue.MemoryConfig{Retention: retention})
	srv, url, m := newRecoveryServer(t, st, nil)
	nsp := srv.Sockets()

	c := sitest.Dial(t, url)
	c.Send(`40{"user":"bob"}`)
	first, _ := readConnect(t, c)
	id1 := mustEmit(t, nsp, "bob", "dm", 1)
	c.Read()
	s, _ := nsp.Socket(first.SID)
	drop(t, c, s)
	for i := 2; i <= 10; i++ {
		mustEmit(t, nsp, "bob", "dm", i)
	}
	time.Sleep(retention + 50*time.Millisecond) // id1 and its successors age out

	// The offset is older than what the queue keeps: a new session, no
	// partial history, and the signal.
	c2 := sitest.Dial(t, url)
	c2.Send(fmt.Sprintf(`40{"user":"bob","pid":%q,"offset":%q}`, first.PID, id1))
	reply, before := readConnect(t, c2)
	if len(before) != 0 {
		t.Fatalf("partial history sent: %v", before)
	}
	if reply.SID == first.SID || reply.PID == first.PID || reply.PID == "" {
		t.Fatalf("CONNECT reply %+v reuses the session %+v", reply, first)
	}
	if got := c2.Read(); !strings.HasPrefix(got, `42["roomcast:not-recovered",{"reason":"expired","replayed":false},"`) {
		t.Fatalf("signal: got %s", got)
	}

	// A malformed offset and an unknown pid are refused the same way.
	c3 := sitest.Dial(t, url)
	c3.Send(`40{"user":"bob","pid":"nope","offset":"garbage"}`)
	readConnect(t, c3)
	if got := c3.Read(); !strings.HasPrefix(got, `42["roomcast:not-recovered",{"reason":"expired",`) {
		t.Fatalf("signal: got %s", got)
	}
	if got := testutil.ToFloat64(m.Recoveries.WithLabelValues("expired")); got != 2 {
		t.Fatalf("recoveries{expired} = %v, want 2", got)
	}
}

func TestAppHeldOffsetReplaysAfterIt(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url, _ := newRecoveryServer(t, st, nil)
	nsp := srv.Sockets()
	var ids []string
	for i := 1; i <= 5; i++ {
		ids = append(ids, mustEmit(t, nsp, "carol", "dm", i))
	}
	// A fresh client (no pid) that kept the offset of message 2.
	c := sitest.Dial(t, url)
	c.Send(fmt.Sprintf(`40{"user":"carol","offset":%q}`, ids[1]))
	reply, before := readConnect(t, c)
	if reply.PID == "" {
		t.Fatal("no pid")
	}
	if len(before) != 3 {
		t.Fatalf("replayed %v, want messages 3..5", before)
	}
	for i, f := range before {
		if want := fmt.Sprintf(`42["dm",%d,%q]`, i+3, ids[i+2]); f != want {
			t.Fatalf("replayed %s, want %s", f, want)
		}
	}
	id := mustEmit(t, nsp, "carol", "dm", 6)
	if got, want := c.Read(), fmt.Sprintf(`42["dm",6,%q]`, id); got != want {
		t.Fatalf("live: got %s, want %s", got, want)
	}
}

func TestDurableRoomsReachMembersWhileAway(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url, _ := newRecoveryServer(t, st, func(srv *Server) {
		srv.Sockets().OnConnection(func(s *Socket) {
			s.On("join", func(e *Event) {
				room, _ := e.Args[0].(string)
				err := s.Join(room)
				msg := "ok"
				if err != nil {
					msg = err.Error()
				}
				_ = e.Ack(msg)
			})
		})
	})
	nsp := srv.Sockets()

	join := func(c *sitest.Client, room string) string {
		c.Send(fmt.Sprintf(`421["join",%q]`, room))
		return c.Read()
	}
	a := sitest.Dial(t, url)
	a.Send(`40{"user":"ann"}`)
	readConnect(t, a)
	if got := join(a, "d:team"); got != `431["ok"]` {
		t.Fatalf("join: %s", got)
	}
	b := sitest.Dial(t, url)
	b.Send(`40{"user":"ben"}`)
	bConn, _ := readConnect(t, b)
	if got := join(b, "d:team"); got != `431["ok"]` {
		t.Fatalf("join: %s", got)
	}
	anon := sitest.Dial(t, url)
	anon.Send(`40{}`)
	readConnect(t, anon)
	if got := join(anon, "d:team"); !strings.Contains(got, "durable rooms need") {
		t.Fatalf("anonymous join of a durable room: %s", got)
	}
	// Mixing durable and other rooms in one broadcast is refused.
	if err := nsp.To("d:team", "other").Emit("x"); !errors.Is(err, ErrMixedDurable) {
		t.Fatalf("mixed broadcast: %v", err)
	}

	bSock, _ := nsp.Socket(bConn.SID)
	bOffset := bSock.Offset()
	drop(t, b, bSock)
	if err := nsp.To("d:team").Emit("msg", "while ben is away"); err != nil {
		t.Fatal(err)
	}
	if got := a.Read(); !strings.HasPrefix(got, `42["msg","while ben is away","`) {
		t.Fatalf("live member: %s", got)
	}
	b2 := sitest.Dial(t, url)
	b2.Send(fmt.Sprintf(`40{"user":"ben","pid":%q,"offset":%q}`, bConn.PID, bOffset))
	reply, before := readConnect(t, b2)
	if reply.SID != bConn.SID {
		t.Fatalf("not recovered: %+v", reply)
	}
	if len(before) != 1 || !strings.HasPrefix(before[0], `42["msg","while ben is away","`) {
		t.Fatalf("missed: %v", before)
	}
}

func TestAnonymousSessionRecovers(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url, _ := newRecoveryServer(t, st, nil)
	nsp := srv.Sockets()
	c := sitest.Dial(t, url)
	c.Send(`40`)
	first, _ := readConnect(t, c)
	s, _ := nsp.Socket(first.SID)
	if s.User() != "anon:"+first.PID {
		t.Fatalf("anonymous user %q", s.User())
	}
	if err := s.Join("lobby"); err != nil {
		t.Fatal(err)
	}
	drop(t, c, s)
	id := mustEmit(t, nsp, s.User(), "dm", "missed")
	c2 := sitest.Dial(t, url)
	c2.Send(fmt.Sprintf(`40{"pid":%q}`, first.PID)) // no offset yet: the session's
	reply, before := readConnect(t, c2)
	if reply.SID != first.SID || len(before) != 1 || before[0] != fmt.Sprintf(`42["dm","missed",%q]`, id) {
		t.Fatalf("reply %+v, before %v", reply, before)
	}
	s2, _ := nsp.Socket(first.SID)
	if !s2.InRoom("lobby") {
		t.Fatalf("rooms not restored: %v", s2.Rooms())
	}
}

func TestRecoveredSocketRejoinsOnlyTheRoomsMayRejoinAllows(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	dropped := make(chan []string, 2)
	srv, url, m := newRecoveryServer(t, st, func(srv *Server) {
		srv.Sockets().OnConnection(func(s *Socket) { dropped <- s.DroppedRooms() })
	})
	nsp := srv.Sockets()
	c := sitest.Dial(t, url)
	c.Send(`40{"user":"carol"}`)
	first, _ := readConnect(t, c)
	if d := <-dropped; d != nil {
		t.Fatalf("a new socket has dropped rooms %v", d)
	}
	s, _ := nsp.Socket(first.SID)
	if err := s.Join("keep", "revoked"); err != nil {
		t.Fatal(err)
	}
	drop(t, c, s)

	c2 := sitest.Dial(t, url)
	c2.Send(fmt.Sprintf(`40{"user":"carol","deny":"revoked","pid":%q,"offset":%q}`, first.PID, s.Offset()))
	reply, _ := readConnect(t, c2)
	if reply.SID != first.SID {
		t.Fatalf("not recovered: %+v", reply)
	}
	s2, _ := nsp.Socket(first.SID)
	if !s2.Recovered() || !s2.InRoom("keep") || s2.InRoom("revoked") {
		t.Fatalf("recovered=%v rooms=%v, want recovered in keep only", s2.Recovered(), s2.Rooms())
	}
	if d := <-dropped; len(d) != 1 || d[0] != "revoked" {
		t.Fatalf("OnConnection saw DroppedRooms %v, want [revoked]", d)
	}
	if got := s2.DroppedRooms(); len(got) != 1 || got[0] != "revoked" {
		t.Fatalf("DroppedRooms() = %v", got)
	}
	// A broadcast to the dropped room does not reach it.
	if err := nsp.To("revoked").Emit("secret", 1); err != nil {
		t.Fatal(err)
	}
	if err := nsp.To("keep").Emit("ok", 1); err != nil {
		t.Fatal(err)
	}
	if got := c2.Read(); !strings.HasPrefix(got, `42["ok",1`) {
		t.Fatalf("got %s, want the kept room's broadcast only", got)
	}
	if got := testutil.ToFloat64(m.Recoveries.WithLabelValues("recovered")); got != 1 {
		t.Fatalf("recoveries{recovered} = %v, want 1 (dropped rooms are not a failed recovery)", got)
	}
	// The session saved from now on has the rooms it is in.
	drop(t, c2, s2)
	waitFor(t, "session saved", func() bool {
		sess, err := st.LoadSession(context.Background(), first.PID)
		return err == nil && !slices.Contains(sess.Rooms, "revoked") && slices.Contains(sess.Rooms, "keep")
	})
}

func TestRecoveryOfAnotherUsersSessionIsRefused(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url, _ := newRecoveryServer(t, st, nil)
	nsp := srv.Sockets()
	c := sitest.Dial(t, url)
	c.Send(`40{"user":"dan"}`)
	first, _ := readConnect(t, c)
	id := mustEmit(t, nsp, "dan", "secret", 1)
	c.Read()
	s, _ := nsp.Socket(first.SID)
	drop(t, c, s)
	mustEmit(t, nsp, "dan", "secret", 2)

	c2 := sitest.Dial(t, url)
	c2.Send(fmt.Sprintf(`40{"user":"eve","pid":%q,"offset":%q}`, first.PID, id))
	reply, before := readConnect(t, c2)
	if reply.SID == first.SID || reply.PID == first.PID {
		t.Fatalf("eve got dan's session: %+v", reply)
	}
	for _, f := range before {
		if strings.Contains(f, "secret") {
			t.Fatalf("eve got dan's message %s", f)
		}
	}
}

func TestDurableBinaryMessage(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url, _ := newRecoveryServer(t, st, nil)
	c := sitest.Dial(t, url)
	c.Send(`40{"user":"fay"}`)
	readConnect(t, c)
	id := mustEmit(t, srv.Sockets(), "fay", "file", map[string]any{"name": "a"}, []byte{1, 2, 3})
	if got, want := c.Read(), fmt.Sprintf(`451-["file",{"name":"a"},{"_placeholder":true,"num":0},%q]`, id); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	typ, b := c.ReadFrame()
	if typ != websocket.MessageBinary || string(b) != "\x01\x02\x03" {
		t.Fatalf("attachment %v %q", typ, b)
	}
}

func TestRecoveryReplacesAStillOpenConnection(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url, _ := newRecoveryServer(t, st, func(srv *Server) {
		srv.Sockets().Use(func(s *Socket) error {
			if s.Handshake().Auth["user"] == "mallory" {
				return &ConnectError{Message: "refused"}
			}
			return nil
		})
	})
	nsp := srv.Sockets()
	c1 := sitest.Dial(t, url)
	c1.Send(`40{"user":"gus"}`)
	first, _ := readConnect(t, c1)
	s1, _ := nsp.Socket(first.SID)
	if err := s1.Join("room"); err != nil {
		t.Fatal(err)
	}
	// A refused connection holding the pid does not touch the session.
	bad := sitest.Dial(t, url)
	bad.Send(fmt.Sprintf(`40{"user":"mallory","pid":%q}`, first.PID))
	if got := bad.Read(); !strings.HasPrefix(got, "44") {
		t.Fatalf("got %s, want CONNECT_ERROR", got)
	}
	id := mustEmit(t, nsp, "gus", "dm", 1)
	if got, want := c1.Read(), fmt.Sprintf(`42["dm",1,%q]`, id); got != want {
		t.Fatalf("open connection got %s, want %s", got, want)
	}
	// The client comes back on a new connection while the old one is open.
	c2 := sitest.Dial(t, url)
	c2.Send(fmt.Sprintf(`40{"user":"gus","pid":%q,"offset":%q}`, first.PID, id))
	reply, before := readConnect(t, c2)
	if reply.SID != first.SID || len(before) != 0 {
		t.Fatalf("reply %+v, before %v", reply, before)
	}
	c1.ExpectClosed()
	s2, ok := nsp.Socket(first.SID)
	if !ok || s2 == s1 || !s2.Connected() || !s2.InRoom("room") {
		t.Fatalf("the new socket is not the registered one in its rooms: ok=%v same=%v rooms=%v", ok, s2 == s1, s2.Rooms())
	}
	if err := nsp.To("room").Emit("news", 1); err != nil {
		t.Fatal(err)
	}
	if got, want := c2.Read(), fmt.Sprintf(`42["news",1,%q]`, id); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// TestSocketsJoinRecordsDurableMembers: SocketsJoin and SocketsLeave (the
// API path) record the selected sockets' users through the same component
// as Socket.Join; a full room moves no socket.
func TestSocketsJoinRecordsDurableMembers(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{MaxMembers: 2})
	srv, url, _ := newRecoveryServer(t, st, nil)
	recoveryOf(srv).Member = func(info adapter.SocketInfo) string {
		u, _ := info.Handshake.Auth["user"].(string)
		return u
	}
	nsp := srv.Sockets()
	ctx := context.Background()
	var socks []*Socket
	for _, u := range []string{"ann", "bob", "cat"} {
		c := sitest.Dial(t, url)
		c.Send(fmt.Sprintf(`40{"user":%q}`, u))
		r, _ := readConnect(t, c)
		s, _ := nsp.Socket(r.SID)
		socks = append(socks, s)
	}
	if err := nsp.In(socks[0].ID(), socks[1].ID()).SocketsJoin(ctx, "d:team", "plain"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Members(ctx, "d:team", 0); strings.Join(got, ",") != "ann,bob" {
		t.Fatalf("members %v, want ann,bob", got)
	}
	if !socks[0].InRoom("d:team") || !socks[1].InRoom("plain") {
		t.Fatalf("sockets not moved: %v %v", socks[0].Rooms(), socks[1].Rooms())
	}
	err := nsp.In(socks[2].ID()).SocketsJoin(ctx, "d:team")
	var dre *DurableRoomError
	if !errors.As(err, &dre) || dre.Room != "d:team" || !errors.Is(err, queue.ErrRoomFull) {
		t.Fatalf("SocketsJoin into a full room = %v, want a DurableRoomError with ErrRoomFull", err)
	}
	if socks[2].InRoom("d:team") {
		t.Fatal("a refused SocketsJoin moved the socket")
	}
	if err := nsp.In(socks[1].ID()).SocketsLeave(ctx, "d:team"); err != nil {
		t.Fatal(err)
	}
	if err := nsp.ToUser("dan").Join(ctx, "d:team", "plain"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Members(ctx, "d:team", 0); strings.Join(got, ",") != "ann,dan" {
		t.Fatalf("members %v, want ann,dan", got)
	}
	if err := nsp.ToUser("dan").Leave(ctx, "d:team"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Members(ctx, "d:team", 0); strings.Join(got, ",") != "ann" {
		t.Fatalf("members %v, want ann", got)
	}
}

// TestJoinDurableNeedsAMember: Recovery.Member refuses a socket's user as a
// durable member (an anonymous visitor with a user of its own).
func TestJoinDurableNeedsAMember(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url, _ := newRecoveryServer(t, st, nil)
	recoveryOf(srv).Member = func(info adapter.SocketInfo) string {
		if guest, _ := info.Handshake.Auth["guest"].(bool); guest {
			return ""
		}
		u, _ := info.Handshake.Auth["user"].(string)
		return u
	}
	c := sitest.Dial(t, url)
	c.Send(`40{"user":"visitor-1","guest":true}`)
	r, _ := readConnect(t, c)
	s, _ := srv.Sockets().Socket(r.SID)
	if err := s.JoinContext(context.Background(), "d:team"); !errors.Is(err, ErrAnonymousDurable) {
		t.Fatalf("guest Join = %v, want ErrAnonymousDurable", err)
	}
	if err := s.Join("lobby"); err != nil {
		t.Fatalf("guest Join of a plain room = %v", err)
	}
}

// TestSocketGoEndsWithTheSocket: a goroutine started with Socket.Go sees
// its context end when the socket disconnects, and Go refuses afterwards.
func TestSocketGoEndsWithTheSocket(t *testing.T) {
	t.Parallel()
	srv, url := newTestServer(t, nil)
	c := sitest.Dial(t, url)
	c.Send(`40`)
	var sid string
	for sid == "" {
		if f := c.Read(); strings.HasPrefix(f, "40") {
			var r connectReply
			_ = json.Unmarshal([]byte(f[2:]), &r)
			sid = r.SID
		}
	}
	s, _ := srv.Sockets().Socket(sid)
	ended := make(chan struct{})
	if !s.Go(func(ctx context.Context) { <-ctx.Done(); close(ended) }) {
		t.Fatal("Go refused on a connected socket")
	}
	s.Disconnect(false)
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the goroutine's context did not end with the socket")
	}
	if s.Go(func(context.Context) {}) {
		t.Fatal("Go ran on a gone socket")
	}
}

// TestAdmitGuardsDurableAppends: Recovery.Admit sees every durable message
// (ToUser and durable rooms) with its recipients and the emitter's ctx, and
// its error refuses the message for all of them; a full queue refuses its
// user only.
func TestAdmitGuardsDurableAppends(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{MaxLen: 1})
	srv, _, _ := newRecoveryServer(t, st, nil)
	type key struct{}
	errNo := errors.New("not admitted")
	var seen []string
	recoveryOf(srv).Admit = func(ctx context.Context, msg queue.Message, users []string) error {
		seen = append(seen, fmt.Sprintf("%s %v %d %v", msg.Event, users, msg.Size(), ctx.Value(key{})))
		if msg.Event == "no" {
			return errNo
		}
		return nil
	}
	nsp := srv.Sockets()
	ctx := context.WithValue(context.Background(), key{}, "alice")
	if ids, err := nsp.ToUser("ann").Emit(ctx, "no", 1); !errors.Is(err, errNo) || ids != nil {
		t.Fatalf("refused Emit = %v, %v", ids, err)
	}
	mustEmit(t, nsp, "ann", "yes", 2) // the refused message did not take ann's one place
	if err := nsp.ToUser("ann", "bob").Join(ctx, "d:team"); err != nil {
		t.Fatal(err)
	}
	err := nsp.To("d:team").EmitContext(ctx, "news", "x")
	var ae *queue.AppendError
	if !errors.As(err, &ae) || !errors.Is(ae.Errs[0], queue.ErrQueueFull) || ae.Errs[1] != nil {
		t.Fatalf("durable broadcast to a full (ann) and an empty (bob) queue = %v", err)
	}
	want := []string{`no [ann] 5 alice`, `yes [ann] 6 <nil>`, `news [ann bob] 9 alice`}
	if strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Fatalf("Admit saw %q, want %q", seen, want)
	}
}

// SocketsJoin/SocketsLeave (the gateway's sockets/join and sockets/leave)
// return once the moved sockets' sessions hold the change, as Join/Leave
// do: a crash right after the answer recovers the rooms it reported.
func TestSocketsJoinIsStoredBeforeItReturns(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	srv, url, _ := newRecoveryServer(t, st, nil)
	nsp := srv.Sockets()
	c := sitest.Dial(t, url)
	c.Send(`40{"user":"erin"}`)
	reply, _ := readConnect(t, c)
	ctx := context.Background()
	rooms := func() []string {
		sess, err := st.LoadSession(ctx, reply.PID)
		if err != nil {
			t.Fatal(err)
		}
		return sess.Rooms
	}
	if err := nsp.In(reply.SID).SocketsJoin(ctx, "moved-in"); err != nil {
		t.Fatal(err)
	}
	if got := rooms(); !slices.Contains(got, "moved-in") {
		t.Fatalf("session rooms %v right after SocketsJoin, want moved-in", got)
	}
	if err := nsp.In(reply.SID).SocketsLeave(ctx, "moved-in"); err != nil {
		t.Fatal(err)
	}
	if got := rooms(); slices.Contains(got, "moved-in") {
		t.Fatalf("session rooms %v right after SocketsLeave, want no moved-in", got)
	}
}

// TestSessionRefreshedWhileConnected: a connected socket's session is
// stored again every Window (its TTL is twice that), from the recovery's
// shared refresh clock, so it outlives many windows; once the socket is
// gone it is off the clock and its session expires a window later.
func TestSessionRefreshedWhileConnected(t *testing.T) {
	t.Parallel()
	st := newMemoryStore(t, queue.MemoryConfig{})
	const window = 60 * time.Millisecond
	srv, err := New(Config{Recovery: &Recovery{Store: st, Window: window}})
	if err != nil {
		t.Fatal(err)
	}
	connected := make(chan *Socket, 1)
	srv.Sockets().OnConnection(func(s *Socket) { connected <- s })
	c := sitest.Dial(t, serve(t, srv))
	c.Send("40")
	reply, _ := readConnect(t, c)
	s := <-connected
	r := recoveryOf(srv)
	time.Sleep(8 * window)
	if _, err := st.LoadSession(context.Background(), reply.PID); err != nil {
		t.Fatalf("session of a socket connected for 8 windows: %v", err)
	}
	if n := r.refreshes.Len(); n != 1 {
		t.Fatalf("%d sockets on the refresh clock, want 1", n)
	}
	drop(t, c, s)
	waitFor(t, "off the refresh clock", func() bool { return r.refreshes.Len() == 0 })
	waitFor(t, "the session to expire", func() bool {
		_, err := st.LoadSession(context.Background(), reply.PID)
		return errors.Is(err, queue.ErrSessionNotFound)
	})
}
