package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/internal/sitest"
)

// TestTokenExpiryWarnsThenCloses: a socket whose token has exp is warned
// TokenExpiryWarning before it, then its connection is closed at exp with
// the reason "token expired", counted.
func TestTokenExpiryWarnsThenCloses(t *testing.T) {
	t.Parallel()
	n := start(t, Config{TokenExpiryWarning: time.Second})
	exp := time.Now().Add(2 * time.Second).Unix()
	c := sitest.Dial(t, n.wsURL)
	sid := c.Connect("/", authPayload(token(t, map[string]any{"sub": "brief", "exp": exp})))
	connectedAt := time.Now()
	got, _ := readEvent(t, c)
	if want := fmt.Sprintf(`42["roomcast:token-expiring",{"exp":%d}]`, exp); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if at := time.Until(time.Unix(exp, 0)); at > time.Second+100*time.Millisecond {
		t.Fatalf("warned %v before exp, want at most 1s", at)
	}
	c.ExpectClosed()
	if time.Now().Before(time.Unix(exp, 0)) {
		t.Fatalf("closed before exp (%v after connect)", time.Since(connectedAt))
	}
	waitFor(t, "socket gone", func() bool { _, ok := n.g.Server().Sockets().Socket(sid); return !ok })
	waitFor(t, "disconnect counted", func() bool {
		return testutil.ToFloat64(n.g.metrics.Disconnects.WithLabelValues("token expired")) == 1
	})
	if got := testutil.ToFloat64(n.g.metrics.LimitRefusals.WithLabelValues("token_expired")); got != 1 {
		t.Fatalf("limit_refusals{token_expired} = %v, want 1", got)
	}
	// The same token cannot connect again.
	again := sitest.Dial(t, n.wsURL)
	again.Send("40" + authPayload(token(t, map[string]any{"sub": "brief", "exp": exp})))
	if got := again.Read(); got != `44{"message":"auth: token expired"}` {
		t.Fatalf("reconnect with the expired token: %s", got)
	}
}

// TestTokenWithoutExpiryNeverExpires: no exp, not on the token clock.
func TestTokenWithoutExpiryNeverExpires(t *testing.T) {
	t.Parallel()
	n := start(t, Config{})
	c := sitest.Dial(t, n.wsURL)
	tok, _ := json.Marshal(map[string]string{"token": noExpToken(t, map[string]any{"sub": "forever"})})
	sid := c.Connect("/", string(tok))
	s, _ := n.g.Server().Sockets().Socket(sid)
	life := sessionOf(s).life
	if n.g.tokens.Stop(life) {
		t.Fatal("a token without exp was put on the token clock")
	}
}

// noExpToken signs claims without the exp that token adds.
func noExpToken(t testing.TB, claims map[string]any) string {
	t.Helper()
	tok, err := auth.Sign("HS256", []byte(secret), claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestAuthEventReplacesTheToken: a fresh token for the same user keeps the
// socket past the old exp, its rights replace the old ones (rooms no longer
// allowed are left), and the refusals have their codes.
func TestAuthEventReplacesTheToken(t *testing.T) {
	t.Parallel()
	n := start(t, Config{TokenExpiryWarning: time.Second, AllowAnonymous: true})
	exp := time.Now().Add(2 * time.Second).Unix()
	c := sitest.Dial(t, n.wsURL)
	sid := c.Connect("/", authPayload(token(t, map[string]any{"sub": "ann", "join": []string{"room:*"}, "exp": exp})))
	for i, room := range []string{"room:a", "room:b"} {
		c.Send(fmt.Sprintf(`42%d["join",%q]`, i, room))
		if got := c.Read(); got != fmt.Sprintf(`43%d[{"ok":true}]`, i) {
			t.Fatalf("join %s: %s", room, got)
		}
	}
	fresh := noExpToken(t, map[string]any{"sub": "ann", "join": []string{"room:a"}})
	other := token(t, map[string]any{"sub": "someone-else"})
	steps := []struct{ send, want string }{
		{`425["auth",{"token":"garbage"}]`, `435[{"error":{"code":"unauthorized","message":"auth: malformed token: want three dot-separated parts"}}]`},
		{`426["auth",{}]`, `436[{"error":{"code":"bad_request","message":"auth expects {token}"}}]`},
		{fmt.Sprintf(`427["auth",{"token":%q}]`, other), `437[{"error":{"code":"forbidden","message":"auth: the token is for another user"}}]`},
		{fmt.Sprintf(`428["auth",{"token":%q}]`, fresh), `438[{"exp":null,"left":["room:b"],"ok":true}]`},
		{`429["join","room:b"]`, `439[{"error":{"code":"forbidden","message":"not allowed to join \"room:b\""}}]`},
	}
	for _, s := range steps {
		c.Send(s.send)
		if got := c.Read(); got != s.want {
			t.Fatalf("%s: got %s, want %s", s.send, got, s.want)
		}
	}
	s, _ := n.g.Server().Sockets().Socket(sid)
	if !s.InRoom("room:a") || s.InRoom("room:b") || !s.InRoom("user:ann") {
		t.Fatalf("rooms after refresh: %v", s.Rooms())
	}
	time.Sleep(time.Until(time.Unix(exp, 0)) + 300*time.Millisecond)
	c.Send(`4210["join","room:a"]`)
	if got := c.Read(); got != `4310[{"ok":true}]` {
		t.Fatalf("after the old exp: %s (the refreshed socket was closed?)", got)
	}

	anon := sitest.Dial(t, n.wsURL)
	anon.Connect("/", `{}`)
	anon.Send(fmt.Sprintf(`421["auth",{"token":%q}]`, fresh))
	if got := anon.Read(); got != `431[{"error":{"code":"bad_request","message":"auth: this socket did not connect with a token"}}]` {
		t.Fatalf("anonymous auth: %s", got)
	}
}

// TestAuthEventRearmsTheExpiry: a fresh token with a later exp moves the
// close there.
func TestAuthEventRearmsTheExpiry(t *testing.T) {
	t.Parallel()
	n := start(t, Config{TokenExpiryWarning: time.Second})
	c := sitest.Dial(t, n.wsURL)
	sid := c.Connect("/", authPayload(token(t, map[string]any{"sub": "rea", "exp": time.Now().Add(time.Hour).Unix()})))
	exp := time.Now().Add(2 * time.Second).Unix()
	c.Send(fmt.Sprintf(`421["auth",{"token":%q}]`, token(t, map[string]any{"sub": "rea", "exp": exp})))
	if got, want := c.Read(), fmt.Sprintf(`431[{"exp":%d,"left":[],"ok":true}]`, exp); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if got, _ := readEvent(t, c); !strings.HasPrefix(got, `42["roomcast:token-expiring"`) {
		t.Fatalf("got %s", got)
	}
	c.ExpectClosed()
	waitFor(t, "socket gone", func() bool { _, ok := n.g.Server().Sockets().Socket(sid); return !ok })
}

// TestRecoveryRejoinsOnlyRoomsTheTokenAllows: a recovered socket whose new
// token no longer allows one of its rooms is recovered without it, is told
// so right after the CONNECT reply, and keeps its user room.
func TestRecoveryRejoinsOnlyRoomsTheTokenAllows(t *testing.T) {
	t.Parallel()
	n := start(t, Config{})
	c := sitest.Dial(t, n.wsURL)
	c.Send("40" + authPayload(token(t, map[string]any{"sub": "dee", "join": []string{"room:*"}})))
	var first struct{ SID, PID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(c.Read(), "40")), &first); err != nil || first.PID == "" {
		t.Fatalf("CONNECT reply without pid: %+v %v", first, err)
	}
	for i, room := range []string{"room:keep", "room:gone"} {
		c.Send(fmt.Sprintf(`42%d["join",%q]`, i, room))
		if got := c.Read(); got != fmt.Sprintf(`43%d[{"ok":true}]`, i) {
			t.Fatalf("join %s: %s", room, got)
		}
	}
	offset, _ := n.g.store.Last(context.Background(), "dee")
	c.Conn.Close(websocket.StatusGoingAway, "")
	waitFor(t, "dee gone", func() bool { _, ok := n.g.Server().Sockets().Socket(first.SID); return !ok })
	waitFor(t, "session saved", func() bool {
		sess, err := n.g.store.LoadSession(context.Background(), first.PID)
		return err == nil && slices.Contains(sess.Rooms, "room:gone")
	})

	// The session's token had an exp (token adds one); this one has none.
	back := sitest.Dial(t, n.wsURL)
	tok := noExpToken(t, map[string]any{"sub": "dee", "join": []string{"room:keep"}})
	back.Send(fmt.Sprintf(`40{"token":%q,"pid":%q,"offset":%q}`, tok, first.PID, offset))
	if got, want := back.Read(), fmt.Sprintf(`40{"pid":%q,"sid":%q}`, first.PID, first.SID); got != want {
		t.Fatalf("CONNECT reply %s, want %s", got, want)
	}
	if got, _ := readEvent(t, back); got != `42["roomcast:rooms-dropped",{"rooms":["room:gone"]}]` {
		t.Fatalf("after the CONNECT reply: %s", got)
	}
	s, ok := n.g.Server().Sockets().Socket(first.SID)
	if !ok || !s.Recovered() || !s.InRoom("room:keep") || s.InRoom("room:gone") || !s.InRoom("user:dee") {
		t.Fatalf("recovered socket: ok=%v recovered=%v rooms=%v", ok, ok && s.Recovered(), s.Rooms())
	}
	if n.g.tokens.Stop(sessionOf(s).life) {
		t.Fatal("a recovered socket whose token has no exp was put on the token clock")
	}
}

// TestDurableMembershipsFollowTheToken: memberships the token no longer
// allows end at the next connect, and at an auth event.
func TestDurableMembershipsFollowTheToken(t *testing.T) {
	t.Parallel()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		testDurableMembershipsFollowTheToken(t, Config{})
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		testDurableMembershipsFollowTheToken(t, Config{Redis: redistest.Start(t).URL(), Origins: []string{"*"}})
	})
}

func testDurableMembershipsFollowTheToken(t *testing.T, cfg Config) {
	cfg.DurableRooms, cfg.APIToken = []string{"team:*"}, "api"
	n := start(t, cfg)
	ctx := context.Background()
	members := func(room string) []string {
		t.Helper()
		m, err := n.g.store.Members(ctx, room, 0)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a := sitest.Dial(t, n.wsURL)
	a.Connect("/", authPayload(token(t, map[string]any{"sub": "eve", "join": []string{"team:*"}})))
	a.Send(`421["join","team:1"]`)
	if got := a.Read(); got != `431[{"ok":true}]` {
		t.Fatalf("join: %s", got)
	}
	if err := n.g.Server().Sockets().ToUser("eve").Join(ctx, "team:2", "team:3"); err != nil {
		t.Fatal(err)
	}
	a.Conn.Close(websocket.StatusGoingAway, "")

	// A new connection whose token allows team:1 and team:2 only.
	b := sitest.Dial(t, n.wsURL)
	b.Connect("/", authPayload(token(t, map[string]any{"sub": "eve", "join": []string{"team:1", "team:2"}})))
	if m := members("team:3"); len(m) != 0 {
		t.Fatalf("team:3 members after a connect without the right: %v", m)
	}
	if m := members("team:1"); !slices.Equal(m, []string{"eve"}) {
		t.Fatalf("team:1 members: %v", m)
	}
	before, err := n.g.store.Last(ctx, "eve")
	if err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, "POST", n.base+"/api/v1/emit", "api", `{"event":"news","rooms":["team:3"],"args":[1]}`); code != 200 {
		t.Fatalf("emit: %d %v", code, body)
	}
	if msgs, err := n.g.store.Read(ctx, "eve", before, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("eve's queue after a broadcast to a revoked durable room: %v %v", msgs, err)
	}
	// An auth event that drops team:2 ends that membership too.
	b.Send(fmt.Sprintf(`421["auth",{"token":%q}]`, token(t, map[string]any{"sub": "eve", "join": []string{"team:1"}})))
	if got := b.Read(); !strings.HasPrefix(got, `431[{"exp":`) || !strings.Contains(got, `"left":["team:2"]`) {
		t.Fatalf("auth ack: %s", got)
	}
	if m := members("team:2"); len(m) != 0 {
		t.Fatalf("team:2 members after the auth event: %v", m)
	}
	if m := members("team:1"); !slices.Equal(m, []string{"eve"}) {
		t.Fatalf("team:1 members: %v", m)
	}
}
