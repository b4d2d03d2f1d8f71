package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/coder/websocket"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/leakcheck"
	"github.com/roomcast/roomcast/internal/sitest"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

const secret = "test-secret"

type node struct {
	g           *Gateway
	base, wsURL string
	admin       string
}

func start(t testing.TB, cfg Config) *node {
	t.Helper()
	cfg.Addr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	if cfg.JWTSecret == "" {
		cfg.JWTSecret = secret
	}
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, admin, err := g.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run() }()
	t.Cleanup(func() {
		_ = g.Shutdown(context.Background())
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &node{
		g:     g,
		base:  "http://" + addr.String(),
		wsURL: "ws://" + addr.String() + "/socket.io/?EIO=4&transport=websocket",
		admin: "http://" + admin.String(),
	}
}

func token(t testing.TB, claims map[string]any) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	tok, err := auth.Sign("HS256", []byte(secret), claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// offsetSuffix matches the offset last argument: "<user stream ID>" or
// "<user stream ID>~<broadcast log position>".
var offsetSuffix = regexp.MustCompile(`,"([0-9]+-[0-9]+(?:~[0-9]+-[0-9]+)?)"\]$`)

// readEvent reads an EVENT frame and splits off the offset the gateway
// appends as its last argument (connection state recovery).
func readEvent(t testing.TB, c *sitest.Client) (frame, offset string) {
	t.Helper()
	got := c.Read()
	m := offsetSuffix.FindStringSubmatchIndex(got)
	if m == nil {
		t.Fatalf("event without an offset: %s", got)
	}
	return got[:m[0]] + "]", got[m[2]:m[3]]
}

func authPayload(tok string) string { return fmt.Sprintf(`{"token":%q}`, tok) }

func do(t testing.TB, method, url, tok, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	_ = json.Unmarshal(raw, &v)
	return resp.StatusCode, v
}

func TestReservedEvents(t *testing.T) {
	t.Parallel()
	n := start(t, Config{})
	alice := sitest.Dial(t, n.wsURL)
	alice.Connect("/", authPayload(token(t, map[string]any{"sub": "alice", "join": []string{"room:*"}, "publish": []string{"room:*"}})))
	bob := sitest.Dial(t, n.wsURL)
	bob.Connect("/", authPayload(token(t, map[string]any{"sub": "bob", "join": []string{"room:*"}})))

	steps := []struct {
		client *sitest.Client
		send   string
		want   string
	}{
		{alice, `421["join","room:1"]`, `431[{"ok":true}]`},
		{bob, `422["join","room:1"]`, `432[{"ok":true}]`},
		{bob, `423["join","other"]`, `433[{"error":{"code":"forbidden","message":"not allowed to join \"other\""}}]`},
		{bob, `424["join","user:alice"]`, `434[{"error":{"code":"forbidden","message":"not allowed to join \"user:alice\""}}]`},
		{bob, `425["publish",{"room":"room:1","event":"chat","data":"hi"}]`, `435[{"error":{"code":"forbidden","message":"not allowed to publish to \"room:1\""}}]`},
		{bob, `426["publish",{"event":"chat"}]`, `436[{"error":{"code":"bad_request","message":"publish needs room, rooms or user"}}]`},
		{bob, `427["whatever",1]`, `437[{"error":{"code":"unknown_event","message":"event \"whatever\" is not handled by this gateway"}}]`},
		{alice, `428["publish",{"room":"room:1","event":"disconnect","data":1}]`, `438[{"error":{"code":"bad_request","message":"socketio: reserved event name: \"disconnect\""}}]`},
	}
	for _, s := range steps {
		s.client.Send(s.send)
		if got := s.client.Read(); got != s.want {
			t.Fatalf("%s: got %s, want %s", s.send, got, s.want)
		}
	}

	alice.Send(`429["publish",{"room":"room:1","event":"chat","data":{"text":"hi"}}]`)
	if got := alice.Read(); got != `439[{"ok":true}]` {
		t.Fatalf("publish ack %s", got)
	}
	if got, _ := readEvent(t, bob); got != `42["chat",{"text":"hi"},{"room":"room:1","user":"alice"}]` {
		t.Fatalf("bob got %s", got)
	}

	// A binary publish keeps its attachment.
	alice.Send(`451-10["publish",{"room":"room:1","event":"file","data":{"_placeholder":true,"num":0}}]`)
	alice.SendBinary([]byte{0xde, 0xad})
	if got := alice.Read(); got != `4310[{"ok":true}]` {
		t.Fatalf("binary publish ack %s", got)
	}
	if got, _ := readEvent(t, bob); got != `451-["file",{"_placeholder":true,"num":0},{"room":"room:1","user":"alice"}]` {
		t.Fatalf("bob got %s", got)
	}
	if _, b := bob.ReadFrame(); !bytes.Equal(b, []byte{0xde, 0xad}) {
		t.Fatalf("attachment %x", b)
	}

	// Presence lists both users, with their sockets, and the counts.
	bob.Send(`4211["presence",{"room":"room:1"}]`)
	if got, want := bob.Read(), `4311[{"count":2,"ok":true,"sockets":2,"users":[{"sockets":1,"user":"alice"},{"sockets":1,"user":"bob"}]}]`; got != want {
		t.Fatalf("presence %s, want %s", got, want)
	}
}

func TestAuthRefusals(t *testing.T) {
	t.Parallel()
	// Four refused CONNECTs from one IP in a row are over --connect-rate's
	// default budget (each costs 1 + 5 of 20): this test is about the
	// messages, TestConnectRate about the limit.
	n := start(t, Config{ConnectRate: -1})
	expired := token(t, map[string]any{"sub": "x", "exp": time.Now().Add(-time.Minute).Unix()})
	wrongKey, _ := auth.Sign("HS256", []byte("other"), map[string]any{"sub": "x"})
	for _, tc := range []struct{ auth, want string }{
		{`{}`, `44{"message":"auth: token required"}`},
		{authPayload(expired), `44{"message":"auth: token expired"}`},
		{authPayload(wrongKey), `44{"message":"auth: invalid signature"}`},
		{authPayload("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."), `44{"message":"auth: algorithm not allowed`},
	} {
		c := sitest.Dial(t, n.wsURL)
		c.Send("40" + tc.auth)
		if got := c.Read(); !strings.HasPrefix(got, strings.TrimSuffix(tc.want, `"}`)) {
			t.Errorf("auth %s: got %s, want %s", tc.auth, got, tc.want)
		}
	}
}

func TestAPI(t *testing.T) {
	t.Parallel()
	n := start(t, Config{APIToken: "api-secret"})
	c := sitest.Dial(t, n.wsURL)
	sid := c.Connect("/", authPayload(token(t, map[string]any{"sub": "carol", "join": []string{"*"}})))
	c.Send(`421["join","news"]`)
	c.Read()

	if code, _ := do(t, "GET", n.base+"/api/v1/sockets", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := do(t, "GET", n.base+"/api/v1/sockets", "wrong", ""); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	code, body := do(t, "GET", n.base+"/api/v1/sockets?room=news", "api-secret", "")
	socks, _ := body["sockets"].([]any)
	if code != 200 || len(socks) != 1 {
		t.Fatalf("sockets: %d %v", code, body)
	}
	s0 := socks[0].(map[string]any)
	if s0["id"] != sid || s0["user"] != "carol" || s0["node"] != n.g.cfg.NodeID {
		t.Fatalf("socket view %v", s0)
	}
	if code, body := do(t, "POST", n.base+"/api/v1/emit", "api-secret", `{"event":"connect"}`); code != 400 {
		t.Fatalf("reserved event: %d %v", code, body)
	}
	if code, body := do(t, "POST", n.base+"/api/v1/emit", "api-secret", `{not json`); code != 400 {
		t.Fatalf("bad json: %d %v", code, body)
	}
	if code, body := do(t, "POST", n.base+"/api/v1/emit", "api-secret", `{"event":"x","namespace":"/nope","broadcast":true}`); code != 404 {
		t.Fatalf("unknown namespace: %d %v", code, body)
	}
	if code, body := do(t, "POST", n.base+"/api/v1/emit", "api-secret", `{"event":"headline","rooms":["news"],"args":[{"big":12345678901234567890}]}`); code != 200 {
		t.Fatalf("emit: %d %v", code, body)
	}
	if got, _ := readEvent(t, c); got != `42["headline",{"big":12345678901234567890}]` {
		t.Fatalf("client got %s", got)
	}
	code, body = do(t, "POST", n.base+"/api/v1/emit", "api-secret", `{"event":"dm","users":["carol"],"args":[1]}`)
	ids, _ := body["ids"].(map[string]any)
	if code != 200 || ids["carol"] == nil {
		t.Fatalf("emit to user: %d %v", code, body)
	}
	if got, offset := readEvent(t, c); got != `42["dm",1]` || strings.Split(offset, "~")[0] != ids["carol"] {
		t.Fatalf("client got %s offset %s, want the entry ID %v", got, offset, ids["carol"])
	}
	if code, _ := do(t, "POST", n.base+"/api/v1/sockets/join", "api-secret", `{"users":["carol"],"join":["vip"]}`); code != 200 {
		t.Fatalf("sockets/join: %d", code)
	}
	code, body = do(t, "GET", n.base+"/api/v1/rooms", "api-secret", "")
	if code != 200 || !strings.Contains(fmt.Sprint(body), "vip") {
		t.Fatalf("rooms: %d %v", code, body)
	}
	if code, _ := do(t, "POST", n.base+"/api/v1/sockets/disconnect", "api-secret", `{"sockets":["`+sid+`"]}`); code != 200 {
		t.Fatalf("sockets/disconnect: %d", code)
	}
	if got := c.Read(); got != "41" {
		t.Fatalf("client got %s, want DISCONNECT", got)
	}
}

func TestAPIOffWithoutToken(t *testing.T) {
	t.Parallel()
	n := start(t, Config{})
	if code, _ := do(t, "GET", n.base+"/api/v1/nodes", "anything", ""); code != http.StatusNotFound {
		t.Fatalf("API without --api-token: %d", code)
	}
}

func TestMetricsPresentFromStart(t *testing.T) {
	t.Parallel()
	n := start(t, Config{})
	families := []string{
		"roomcast_connections", "roomcast_connects_total", "roomcast_disconnects_total",
		"roomcast_packets_received_total", "roomcast_packets_sent_total", "roomcast_broadcasts_total",
		"roomcast_deliveries_total", "roomcast_broadcast_latency_seconds",
		"roomcast_redis_command_duration_seconds", "roomcast_redis_errors_total",
		"roomcast_queue_appends_total", "roomcast_queue_replayed_total", "roomcast_recoveries_total",
		"roomcast_slow_consumer_disconnects_total", "roomcast_nodes",
		"go_goroutines", "process_resident_memory_bytes",
	}
	for _, f := range families {
		if c, err := testutil.GatherAndCount(n.g.Registry(), f); err != nil || c == 0 {
			t.Errorf("family %s: %d series, %v", f, c, err)
		}
	}
	resp, err := http.Get(n.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), `roomcast_disconnects_total{reason="slow consumer"} 0`) {
		t.Fatal("/metrics lacks the initialised disconnect reasons")
	}
}

func TestDrainClosesClientsAndReadiness(t *testing.T) {
	t.Parallel()
	n := start(t, Config{})
	if code, _ := do(t, "GET", n.admin+"/readyz", "", ""); code != 200 {
		t.Fatalf("readyz before drain: %d", code)
	}
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", authPayload(token(t, map[string]any{"sub": "d"})))
	done := make(chan error, 1)
	go func() { done <- n.g.Shutdown(context.Background()) }()
	c.ExpectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n.g.Ready() == nil {
		t.Fatal("ready after drain")
	}
}

func TestFloodIsRateLimitedAndOthersAreServed(t *testing.T) {
	t.Parallel()
	n := start(t, Config{EventRate: 50})
	tok := token(t, map[string]any{"sub": "f", "join": []string{"*"}, "publish": []string{"*"}})
	flooder := sitest.Dial(t, n.wsURL)
	flooder.Connect("/", authPayload(tok))
	// Another user: the budget is the user's, not the socket's, so a second
	// socket of "f" would share the flooder's.
	other := sitest.Dial(t, n.wsURL)
	other.Connect("/", authPayload(token(t, map[string]any{"sub": "calm", "join": []string{"*"}})))

	// 300 events at once: the first 100 (burst) pass, the rest are refused
	// with rate_limited acks, never silently.
	go func() {
		for i := 0; i < 300; i++ {
			flooder.Send(fmt.Sprintf(`42%d["join","r%d"]`, i, i))
		}
	}()
	limited := 0
	for i := 0; i < 300; i++ {
		if strings.Contains(flooder.Read(), `"rate_limited"`) {
			limited++
		}
	}
	if limited < 150 {
		t.Fatalf("only %d of 300 flood events were rate limited", limited)
	}
	other.Send(`421["join","calm"]`)
	if got := other.Read(); got != `431[{"ok":true}]` {
		t.Fatalf("other client got %s", got)
	}
}

func TestMetricsPassPromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (scripts/install-deps.sh installs it)")
	}
	n := start(t, Config{})
	resp, err := http.Get(n.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestDurableDeliveryThroughTheGateway: direct messages and durable rooms
// wait in the user's queue while the user is away, and a reconnect with
// the pid and offset gets them before its CONNECT reply.
func TestDurableDeliveryThroughTheGateway(t *testing.T) {
	t.Parallel()
	n := start(t, Config{DurableRooms: []string{"team:*"}, AllowAnonymous: true})
	bobTok := authPayload(token(t, map[string]any{"sub": "bob", "join": []string{"*"}}))
	alice := sitest.Dial(t, n.wsURL)
	alice.Connect("/", authPayload(token(t, map[string]any{"sub": "alice", "join": []string{"*"}, "publish": []string{"*"}, "dm": []string{"*"}})))
	bob := sitest.Dial(t, n.wsURL)
	bob.Send("40" + bobTok)
	var first struct{ SID, PID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(bob.Read(), "40")), &first); err != nil || first.PID == "" {
		t.Fatalf("CONNECT reply without pid: %+v %v", first, err)
	}
	bob.Send(`421["join","team:1"]`)
	if got := bob.Read(); got != `431[{"ok":true}]` {
		t.Fatalf("join: %s", got)
	}
	// An anonymous socket may not become a durable member.
	anon := sitest.Dial(t, n.wsURL)
	anon.Connect("/", `{}`)
	anon.Send(`421["join","team:1"]`)
	if got := anon.Read(); !strings.Contains(got, `"code":"forbidden"`) {
		t.Fatalf("anonymous durable join: %s", got)
	}
	alice.Send(`422["publish",{"user":"bob","event":"dm","data":"hi"}]`)
	if got := alice.Read(); !strings.HasPrefix(got, `432[{"id":"`) {
		t.Fatalf("direct message ack: %s", got)
	}
	_, offset := readEvent(t, bob)
	bob.Conn.Close(websocket.StatusGoingAway, "")
	waitFor(t, "bob gone", func() bool { _, ok := n.g.Server().Sockets().Socket(first.SID); return !ok })

	alice.Send(`423["publish",{"user":"bob","event":"dm","data":"while away"}]`)
	alice.Read()
	alice.Send(`424["publish",{"room":"team:1","event":"news","data":"standup"}]`)
	if got := alice.Read(); got != `434[{"ok":true}]` {
		t.Fatalf("durable room publish ack: %s", got)
	}

	back := sitest.Dial(t, n.wsURL)
	back.Send("40" + strings.TrimSuffix(bobTok, "}") + fmt.Sprintf(`,"pid":%q,"offset":%q}`, first.PID, offset))
	want := []string{
		`42["dm","while away",{"user":"alice"}]`,
		`42["news","standup",{"room":"team:1","user":"alice"}]`,
	}
	for _, w := range want {
		if got, _ := readEvent(t, back); got != w {
			t.Fatalf("missed message %s, want %s", got, w)
		}
	}
	if got := back.Read(); got != fmt.Sprintf(`40{"pid":%q,"sid":%q}`, first.PID, first.SID) {
		t.Fatalf("CONNECT reply %s, want the old session", got)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAPIDurableRoomMembership: the API makes users members of durable
// rooms (and no longer members), whether or not they are connected.
func TestAPIDurableRoomMembership(t *testing.T) {
	t.Parallel()
	n := start(t, Config{DurableRooms: []string{"team:*"}, APIToken: "api"})
	zed := sitest.Dial(t, n.wsURL)
	zed.Connect("/", authPayload(token(t, map[string]any{"sub": "zed"})))
	if code, body := do(t, "POST", n.base+"/api/v1/sockets/join", "api", `{"users":["zed","offline-user"],"join":["team:2"]}`); code != 200 {
		t.Fatalf("join: %d %v", code, body)
	}
	members, err := n.g.store.Members(context.Background(), "team:2", 0)
	if err != nil || !slices.Equal(members, []string{"offline-user", "zed"}) {
		t.Fatalf("members %v %v", members, err)
	}
	if code, body := do(t, "POST", n.base+"/api/v1/emit", "api", `{"event":"news","rooms":["team:2"],"args":[1]}`); code != 200 {
		t.Fatalf("emit: %d %v", code, body)
	}
	if got, _ := readEvent(t, zed); got != `42["news",1]` {
		t.Fatalf("member got %s", got)
	}
	if last, err := n.g.store.Last(context.Background(), "offline-user"); err != nil || last == "" {
		t.Fatalf("offline member's queue: %q %v", last, err)
	}
	if code, body := do(t, "POST", n.base+"/api/v1/sockets/leave", "api", `{"users":["zed"],"leave":["team:2"]}`); code != 200 {
		t.Fatalf("leave: %d %v", code, body)
	}
	if code, body := do(t, "POST", n.base+"/api/v1/emit", "api", `{"event":"news","rooms":["team:2"],"args":[2]}`); code != 200 {
		t.Fatalf("emit: %d %v", code, body)
	}
	if code, body := do(t, "POST", n.base+"/api/v1/emit", "api", `{"event":"dm","users":["zed"],"args":[3]}`); code != 200 {
		t.Fatalf("emit: %d %v", code, body)
	}
	if got, _ := readEvent(t, zed); got != `42["dm",3]` {
		t.Fatalf("after leaving, zed got %s", got)
	}
	// Mixing durable and other rooms in one emit is a client error.
	if code, body := do(t, "POST", n.base+"/api/v1/emit", "api", `{"event":"x","rooms":["team:2","lobby"]}`); code != 400 {
		t.Fatalf("mixed emit: %d %v", code, body)
	}
}

// TestDurableRoomRefusals: an anonymous visitor may not join a durable room
// (its ack says so), and the API answers 409 when a durable room is full.
func TestDurableRoomRefusals(t *testing.T) {
	t.Parallel()
	n := start(t, Config{DurableRooms: []string{"team:*"}, APIToken: "api", AllowAnonymous: true, DurableRoomMembers: 1})
	anon := sitest.Dial(t, n.wsURL)
	anon.Connect("/", `{"name":"guest"}`)
	anon.Send(`421["join","team:1"]`)
	if got, want := anon.Read(), `431[{"error":{"code":"forbidden","message":"durable room \"team:1\" needs a signed-in user"}}]`; got != want {
		t.Fatalf("anonymous join: %s, want %s", got, want)
	}
	anon.Send(`422["join","lobby"]`)
	if got := anon.Read(); got != `432[{"ok":true}]` {
		t.Fatalf("anonymous join of a plain room: %s", got)
	}
	if code, body := do(t, "POST", n.base+"/api/v1/sockets/join", "api", `{"users":["amy","ben"],"join":["team:3"]}`); code != 409 ||
		fmt.Sprint(body["error"]) != `map[code:room_full message:durable room "team:3" is full]` {
		t.Fatalf("join into a full room: %d %v", code, body)
	}
	if code, body := do(t, "POST", n.base+"/api/v1/sockets/join", "api", `{"rooms":["lobby"],"join":["team:4"]}`); code != 200 {
		t.Fatalf("join of anonymous sockets: %d %v", code, body)
	}
	if members, err := n.g.store.Members(context.Background(), "team:4", 0); err != nil || len(members) != 0 {
		t.Fatalf("anonymous sockets made members: %v %v", members, err)
	}
}
