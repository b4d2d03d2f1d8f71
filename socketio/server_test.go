package socketio

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/roomcast/roomcast/internal/leakcheck"
	"github.com/roomcast/roomcast/internal/sitest"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// onMain registers fn for connections to "/".
func onMain(fn func(*Socket)) func(*Server) {
	return func(s *Server) { s.Sockets().OnConnection(fn) }
}

func TestConnectCarriesAuthAndSid(t *testing.T) {
	t.Parallel()
	got := make(chan *Socket, 1)
	_, url := newTestServer(t, onMain(func(s *Socket) { got <- s }))
	c := sitest.Dial(t, url)
	sid := c.Connect("/", `{"token":"abc"}`)
	s := <-got
	if s.ID() != sid {
		t.Fatalf("socket id %q, CONNECT reply sid %q", s.ID(), sid)
	}
	if s.Handshake().Auth["token"] != "abc" {
		t.Fatalf("auth = %v", s.Handshake().Auth)
	}
	if !slices.Contains(s.Rooms(), sid) {
		t.Fatalf("socket not in its own room: %v", s.Rooms())
	}
}

func TestInvalidNamespaceAndMiddleware(t *testing.T) {
	t.Parallel()
	_, url := newTestServer(t, func(srv *Server) {
		admin, _ := srv.Of("/admin")
		admin.Use(func(s *Socket) error {
			if s.Handshake().Auth["token"] != "secret" {
				return &ConnectError{Message: "not authorized", Data: map[string]any{"code": 7}}
			}
			return nil
		})
	})
	c := sitest.Dial(t, url)
	c.Send("40/nope,")
	if got, want := c.Read(), `44/nope,{"message":"Invalid namespace"}`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	c.Send(`40/admin,{"token":"wrong"}`)
	if got, want := c.Read(), `44/admin,{"data":{"code":7},"message":"not authorized"}`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	c.Connect("/admin", `{"token":"secret"}`)
}

// A ConnectError with Close closes the connection once the CONNECT_ERROR
// is out; the socket's Context ends either way, and Request is the
// handshake's.
func TestConnectErrorClose(t *testing.T) {
	t.Parallel()
	ended := make(chan string, 2)
	_, url := newTestServer(t, func(srv *Server) {
		main, _ := srv.Of("/")
		main.Use(func(s *Socket) error {
			context.AfterFunc(s.Context(), func() { ended <- "ended" })
			if s.Request().URL.Query().Get("EIO") != "4" || s.Request().RemoteAddr == "" {
				return &ConnectError{Message: "no request"}
			}
			if s.Handshake().Auth["close"] == true {
				return &ConnectError{Message: "go away", Close: true}
			}
			return &ConnectError{Message: "try again"}
		})
	})
	c := sitest.Dial(t, url)
	c.Send(`40{}`)
	if got, want := c.Read(), `44{"message":"try again"}`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	c.Send(`40{"close":true}`)
	if got, want := c.Read(), `44{"message":"go away"}`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	c.ExpectClosed()
	for i := 0; i < 2; i++ {
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Fatal("a refused socket's Context did not end")
		}
	}
}

func TestEventsAndAcksBothWays(t *testing.T) {
	t.Parallel()
	events := make(chan *Event, 4)
	sockets := make(chan *Socket, 1)
	_, url := newTestServer(t, onMain(func(s *Socket) {
		s.On("hello", func(e *Event) {
			events <- e
			if e.HasAck() {
				_ = e.Ack(map[string]any{"ok": true}, "second")
			}
		})
		sockets <- s
	}))
	c := sitest.Dial(t, url)
	c.Connect("/", "")
	s := <-sockets

	c.Send(`4212["hello",1,"two",{"three":[3]}]`)
	e := <-events
	if e.Name != "hello" || len(e.Args) != 3 || e.Args[1] != "two" {
		t.Fatalf("event = %q %v", e.Name, e.Args)
	}
	var three struct{ Three []int }
	if err := e.Decode(2, &three); err != nil || three.Three[0] != 3 {
		t.Fatalf("Decode: %v %v", three, err)
	}
	if got, want := c.Read(), `4312[{"ok":true},"second"]`; got != want {
		t.Fatalf("ack %q, want %q", got, want)
	}
	if err := e.Ack(1); !errors.Is(err, ErrAlreadyAcked) {
		t.Fatalf("second Ack: %v", err)
	}

	// Server to client, with the client answering.
	type result struct {
		args []any
		err  error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a, err := s.EmitWithAck(ctx, "question", "life")
		res <- result{a, err}
	}()
	q := c.Read()
	if !strings.HasPrefix(q, "42") || !strings.HasSuffix(q, `["question","life"]`) {
		t.Fatalf("question frame %q", q)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(q, "42"), `["question","life"]`)
	c.Send("43" + id + `[42]`)
	r := <-res
	if r.err != nil || len(r.args) != 1 || r.args[0].(interface{ String() string }).String() != "42" {
		t.Fatalf("EmitWithAck = %v, %v", r.args, r.err)
	}

	// A client that never answers times out.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.EmitWithAck(ctx, "question"); !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("unanswered EmitWithAck: %v", err)
	}
}

func TestBinaryBothWays(t *testing.T) {
	t.Parallel()
	got := make(chan *Event, 1)
	sockets := make(chan *Socket, 1)
	_, url := newTestServer(t, onMain(func(s *Socket) {
		s.On("upload", func(e *Event) { got <- e })
		sockets <- s
	}))
	c := sitest.Dial(t, url)
	c.Connect("/", "")
	s := <-sockets
	c.Send(`451-["upload",{"name":"f","file":{"_placeholder":true,"num":0}}]`)
	c.SendBinary([]byte{1, 2, 3})
	e := <-got
	file := e.Args[0].(map[string]any)["file"]
	if b, ok := file.([]byte); !ok || !slices.Equal(b, []byte{1, 2, 3}) {
		t.Fatalf("attachment = %#v", file)
	}
	if err := s.Emit("download", map[string]any{"data": []byte{9, 8}}); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Read(), `451-["download",{"data":{"_placeholder":true,"num":0}}]`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	typ, b := c.ReadFrame()
	if typ != websocket.MessageBinary || !slices.Equal(b, []byte{9, 8}) {
		t.Fatalf("attachment frame %v %v", typ, b)
	}
}

func TestRoomsBroadcastAndExcept(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	socks := map[string]*Socket{}
	srv, url := newTestServer(t, onMain(func(s *Socket) {
		mu.Lock()
		socks[s.ID()] = s
		mu.Unlock()
	}))
	a, b, c := sitest.Dial(t, url), sitest.Dial(t, url), sitest.Dial(t, url)
	ida, idb, idc := a.Connect("/", ""), b.Connect("/", ""), c.Connect("/", "")
	waitFor(t, "three sockets", func() bool { mu.Lock(); defer mu.Unlock(); return len(socks) == 3 })
	mu.Lock()
	sa, sb, sc := socks[ida], socks[idb], socks[idc]
	mu.Unlock()
	_ = sa.Join("r", "only-a")
	_ = sb.Join("r")
	_ = sc.Join("other")

	nsp := srv.Sockets()
	if err := nsp.To("r").Emit("news", 1); err != nil {
		t.Fatal(err)
	}
	// socket.to(room) leaves the sender out.
	if err := sa.To("r", "other").Emit("from-a", 2); err != nil {
		t.Fatal(err)
	}
	if err := nsp.Except("only-a").Emit("not-a", 3); err != nil {
		t.Fatal(err)
	}
	if err := nsp.Emit("end"); err != nil {
		t.Fatal(err)
	}
	// a gets the room broadcast only: not its own to(), not the except.
	for _, want := range []string{`42["news",1]`, `42["end"]`} {
		if got := a.Read(); got != want {
			t.Fatalf("a got %q, want %q", got, want)
		}
	}
	for _, want := range []string{`42["news",1]`, `42["from-a",2]`, `42["not-a",3]`} {
		if got := b.Read(); got != want {
			t.Fatalf("b got %q, want %q", got, want)
		}
	}
	for _, want := range []string{`42["from-a",2]`, `42["not-a",3]`, `42["end"]`} {
		if got := c.Read(); got != want {
			t.Fatalf("c got %q, want %q", got, want)
		}
	}
}

func TestClusterOperationsOnOneNode(t *testing.T) {
	t.Parallel()
	connected := make(chan *Socket, 2)
	srv, url := newTestServer(t, onMain(func(s *Socket) { connected <- s }))
	a, b := sitest.Dial(t, url), sitest.Dial(t, url)
	ida, _ := a.Connect("/", ""), b.Connect("/", "")
	<-connected
	<-connected
	nsp := srv.Sockets()
	ctx := context.Background()
	if err := nsp.In(ida).SocketsJoin(ctx, "vip"); err != nil {
		t.Fatal(err)
	}
	vips, err := nsp.In("vip").FetchSockets(ctx)
	if err != nil || len(vips) != 1 || vips[0].ID != ida || !slices.Contains(vips[0].Rooms, "vip") {
		t.Fatalf("FetchSockets(vip) = %+v, %v", vips, err)
	}
	all, _ := nsp.FetchSockets(ctx)
	if len(all) != 2 {
		t.Fatalf("FetchSockets = %d sockets", len(all))
	}
	if err := vips[0].Emit("welcome"); err != nil {
		t.Fatal(err)
	}
	if got := a.Read(); got != `42["welcome"]` {
		t.Fatalf("remote socket emit: %q", got)
	}
	if err := nsp.In("vip").DisconnectSockets(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := a.Read(); got != "41" {
		t.Fatalf("disconnect packet %q", got)
	}
	if n, _ := nsp.ServerCount(ctx); n != 1 {
		t.Fatalf("ServerCount = %d", n)
	}
}

func TestBroadcastWithAckTimeout(t *testing.T) {
	t.Parallel()
	connected := make(chan *Socket, 2)
	srv, url := newTestServer(t, onMain(func(s *Socket) { connected <- s }))
	a, b := sitest.Dial(t, url), sitest.Dial(t, url)
	a.Connect("/", "")
	b.Connect("/", "")
	<-connected
	<-connected
	type result struct {
		acks [][]any
		err  error
	}
	res := make(chan result, 1)
	go func() {
		acks, err := srv.Sockets().Timeout(300*time.Millisecond).EmitWithAck(context.Background(), "ping?")
		res <- result{acks, err}
	}()
	q := a.Read()
	_ = b.Read() // b never answers
	id := strings.TrimSuffix(strings.TrimPrefix(q, "42"), `["ping?"]`)
	a.Send("43" + id + `["pong"]`)
	r := <-res
	if !errors.Is(r.err, ErrAckTimeout) || len(r.acks) != 1 || r.acks[0][0] != "pong" {
		t.Fatalf("EmitWithAck = %v, %v", r.acks, r.err)
	}
}

func TestDisconnectReasons(t *testing.T) {
	t.Parallel()
	reasons := make(chan string, 4)
	sockets := make(chan *Socket, 4)
	_, url := newTestServer(t, onMain(func(s *Socket) {
		s.OnDisconnect(func(r string) { reasons <- r })
		sockets <- s
	}))

	c := sitest.Dial(t, url)
	c.Connect("/", "")
	<-sockets
	c.Send("41")
	if r := <-reasons; r != "client namespace disconnect" {
		t.Fatalf("reason %q", r)
	}

	c2 := sitest.Dial(t, url)
	c2.Connect("/", "")
	s2 := <-sockets
	s2.Disconnect(false)
	if got := c2.Read(); got != "41" {
		t.Fatalf("server disconnect sent %q", got)
	}
	if r := <-reasons; r != "server namespace disconnect" {
		t.Fatalf("reason %q", r)
	}
	if err := s2.Emit("late"); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("emit after disconnect: %v", err)
	}

	c4 := sitest.Dial(t, url)
	c4.Connect("/", "")
	s4 := <-sockets
	s4.Disconnect(true)
	c4.ExpectClosed()
	if r := <-reasons; r != "forced server close" {
		t.Fatalf("reason %q", r)
	}

	c3 := sitest.Dial(t, url)
	c3.Connect("/", "")
	<-sockets
	c3.Conn.Close(websocket.StatusNormalClosure, "")
	if r := <-reasons; r != "transport close" {
		t.Fatalf("reason %q", r)
	}
}

func TestProtocolViolationsClose(t *testing.T) {
	t.Parallel()
	reasons := make(chan string, 8)
	srv, url := newTestServer(t, onMain(func(s *Socket) {
		s.OnDisconnect(func(r string) { reasons <- r })
	}))
	for _, bad := range []string{
		`4garbage`,
		`42["disconnect"]`,
		`42{"not":"an array"}`,
		`451-["bin",{"_placeholder":true,"num":0}]`, // then a text frame instead of the attachment
	} {
		c := sitest.Dial(t, url)
		c.Connect("/", "")
		c.Send(bad)
		if strings.HasPrefix(bad, "451-") {
			c.Send(`42["x"]`)
		}
		c.ExpectClosed()
		if r := <-reasons; r != "parse error" {
			t.Errorf("%s: disconnect reason %q, want \"parse error\"", bad, r)
		}
	}
	if err := srv.Sockets().Emit("connect"); !errors.Is(err, ErrReservedEvent) {
		t.Fatalf("emit of reserved name: %v", err)
	}
}

func TestConnectTimeoutClosesIdleConnection(t *testing.T) {
	t.Parallel()
	_, url := newTestServer(t, func(s *Server) { s.cfg.ConnectTimeout = 100 * time.Millisecond })
	c := sitest.Dial(t, url)
	c.ExpectClosed()
}

func TestUnansweredAcksAreSwept(t *testing.T) {
	t.Parallel()
	connected := make(chan *Socket, 1)
	_, url := newTestServer(t, onMain(func(s *Socket) { connected <- s }))
	c := sitest.Dial(t, url)
	c.Connect("/", "")
	s := <-connected
	for i := 0; i < 3*maxPendingBeforeSweep; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		if _, err := s.EmitWithAck(ctx, "never-answered"); !errors.Is(err, ErrAckTimeout) {
			t.Fatalf("EmitWithAck: %v", err)
		}
		cancel()
		c.Read()
	}
	srvAcks := func() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.acks) }
	// Broadcasts with acks that time out leave entries behind until swept.
	for i := 0; i < 3*maxPendingBeforeSweep; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, _ = s.Namespace().EmitWithAck(ctx, "never-answered")
		cancel()
		c.Read()
	}
	if n := srvAcks(); n > maxPendingBeforeSweep+1 {
		t.Fatalf("%d pending acks kept for answers nobody waits for", n)
	}
}

// TestNamespaceEventHandlers: handlers registered once on the namespace
// serve every socket; a socket's own handler wins over them, then the
// namespace's, then the socket's catch-all, then the namespace's; the
// namespace's middlewares run first and can drop an event.
func TestNamespaceEventHandlers(t *testing.T) {
	t.Parallel()
	_, url := newTestServer(t, func(srv *Server) {
		n := srv.Sockets()
		n.UseEvent(func(e *Event) error {
			if e.Name == "blocked" {
				_ = e.Ack("blocked by the namespace")
				return errors.New("blocked")
			}
			return nil
		})
		n.OnEvent("shared", func(e *Event) { _ = e.Ack("namespace") })
		n.OnEvent("mine", func(e *Event) { _ = e.Ack("namespace") })
		n.OnUnhandledEvent(func(e *Event) { _ = e.Ack("namespace catch-all") })
		n.OnConnection(func(s *Socket) {
			if s.Handshake().Auth["own"] == true {
				s.On("mine", func(e *Event) { _ = e.Ack("socket") })
				s.OnUnhandled(func(e *Event) { _ = e.Ack("socket catch-all") })
			}
		})
	})
	plain := sitest.Dial(t, url)
	plain.Connect("/", `{}`)
	own := sitest.Dial(t, url)
	own.Connect("/", `{"own":true}`)
	for _, tc := range []struct {
		c          *sitest.Client
		event, ack string
	}{
		{plain, "shared", "namespace"},
		{plain, "mine", "namespace"},
		{plain, "other", "namespace catch-all"},
		{plain, "blocked", "blocked by the namespace"},
		{own, "shared", "namespace"},
		{own, "mine", "socket"},
		{own, "other", "socket catch-all"},
		{own, "blocked", "blocked by the namespace"},
	} {
		tc.c.Send(`421["` + tc.event + `"]`)
		if got, want := tc.c.Read(), `431["`+tc.ack+`"]`; got != want {
			t.Errorf("%s: got %s, want %s", tc.event, got, want)
		}
	}
}
