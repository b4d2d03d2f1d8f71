package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/roomcast/roomcast/hook"
	"github.com/roomcast/roomcast/internal/sitest"
)

func TestConnectHook(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []*hook.ConnectRequest
	url := backend(t, &hook.Handler{
		OnConnect: func(_ context.Context, req *hook.ConnectRequest) (*hook.ConnectResponse, error) {
			mu.Lock()
			got = append(got, req)
			mu.Unlock()
			if req.Auth["ticket"] == "banned" {
				return &hook.ConnectResponse{Message: "you are banned", Data: map[string]any{"code": "banned"}}, nil
			}
			publish := []string{"team:1"}
			return &hook.ConnectResponse{
				Accept: true, User: "acct-" + req.User, Rooms: []string{"team:1"},
				Publish: &publish, Session: json.RawMessage(`{"plan":"pro"}`),
			}, nil
		},
		OnEvent: func(_ context.Context, req *hook.EventRequest) (*hook.EventResponse, error) {
			return &hook.EventResponse{Ack: []any{req.User, req.Session, req.Rooms}}, nil
		},
	})
	n := start(t, Config{ConnectHook: url, Webhook: url, HookSecret: hookSecret, ConnectHookHeaders: []string{"User-Agent"}})

	c := sitest.Dial(t, n.wsURL)
	c.Send(`40{"token":"` + token(t, map[string]any{"sub": "x", "role": "admin"}) + `","ticket":"banned"}`)
	if reply := c.Read(); reply != `44{"data":{"code":"banned"},"message":"you are banned"}` {
		t.Fatalf("refusal %s", reply)
	}

	alice := sitest.Dial(t, n.wsURL)
	alice.Connect("/", `{"token":"`+token(t, map[string]any{"sub": "alice", "role": "admin"})+`","ticket":"ok"}`)
	alice.Send(`421["whoami"]`)
	if reply := alice.Read(); reply != `431["acct-alice",{"plan":"pro"},["team:1"]]` {
		t.Fatalf("whoami %s", reply)
	}
	// The hook's publish patterns replace the token's (which had none).
	alice.Send(`422["publish",{"room":"team:1","event":"m","data":1}]`)
	if reply := alice.Read(); reply != `432[{"ok":true}]` {
		t.Fatalf("publish %s", reply)
	}
	alice.Send(`423["publish",{"room":"team:2","event":"m","data":1}]`)
	if reply := alice.Read(); !strings.Contains(reply, "forbidden") {
		t.Fatalf("publish elsewhere %s", reply)
	}
	mu.Lock()
	defer mu.Unlock()
	last := got[len(got)-1]
	if last.Claims["role"] != "admin" || last.User != "alice" || last.Auth["token"] != nil || last.Auth["ticket"] != "ok" {
		t.Fatalf("request %+v", last)
	}
	if _, ok := last.Headers["user-agent"]; !ok || len(last.Headers) != 1 {
		t.Fatalf("headers %v", last.Headers)
	}
}

func TestConnectHookDown(t *testing.T) {
	t.Parallel()
	n := start(t, Config{ConnectHook: "http://127.0.0.1:1/hook", HookSecret: hookSecret, HookRetries: -1})
	c := sitest.Dial(t, n.wsURL)
	c.Send(`40` + authPayload(token(t, map[string]any{"sub": "a"})))
	if reply := c.Read(); reply != `44{"data":{"code":"unavailable"},"message":"unavailable: backend: backend unreachable"}` {
		t.Fatalf("reply %s", reply)
	}
}

// The connect hook's answer is cached with the socket's recovery session
// (per pid): a client that recovers with a token for the same user is not
// asked about again and keeps the backend's user, patterns, session data
// and the rooms backends gave it; a fresh connection, or a recovery with
// another user's token, asks again.
func TestConnectHookCachedForRecovery(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	asked := map[string]int{} // by the token's sub
	url := backend(t, &hook.Handler{
		OnConnect: func(_ context.Context, req *hook.ConnectRequest) (*hook.ConnectResponse, error) {
			sub, _ := req.Claims["sub"].(string)
			mu.Lock()
			asked[sub]++
			mu.Unlock()
			publish := []string{"team:1"}
			return &hook.ConnectResponse{
				Accept: true, User: "acct-" + sub, Rooms: []string{"team:1"},
				Publish: &publish, Session: json.RawMessage(`{"plan":"pro"}`),
			}, nil
		},
		OnEvent: func(_ context.Context, req *hook.EventRequest) (*hook.EventResponse, error) {
			if req.Event == "enter" {
				return &hook.EventResponse{Join: []string{"lobby"}, Ack: []any{"ok"}}, nil
			}
			return &hook.EventResponse{Ack: []any{req.User, req.Session, req.Rooms}}, nil
		},
	})
	n := start(t, Config{ConnectHook: url, Webhook: url, HookSecret: hookSecret})
	times := func(sub string) int {
		mu.Lock()
		defer mu.Unlock()
		return asked[sub]
	}
	aliceTok := authPayload(token(t, map[string]any{"sub": "alice"})) // no join or publish patterns
	withPID := func(tok, pid string) string { return strings.TrimSuffix(tok, "}") + fmt.Sprintf(`,"pid":%q}`, pid) }
	// connect opens a socket and returns its CONNECT reply's sid and pid.
	connect := func(auth string) (*sitest.Client, string, string) {
		t.Helper()
		c := sitest.Dial(t, n.wsURL)
		c.Send("40" + auth)
		var r struct{ SID, PID string }
		if reply := c.Read(); json.Unmarshal([]byte(strings.TrimPrefix(reply, "40")), &r) != nil || r.PID == "" {
			t.Fatalf("CONNECT reply %s", reply)
		}
		return c, r.SID, r.PID
	}
	// drop cuts c's connection and waits until its socket is gone (its
	// session kept for recovery).
	drop := func(c *sitest.Client, sid string) {
		t.Helper()
		c.Conn.Close(websocket.StatusGoingAway, "")
		waitFor(t, "socket gone", func() bool { _, ok := n.g.Server().Sockets().Socket(sid); return !ok })
		time.Sleep(100 * time.Millisecond) // the session saved at the disconnect
	}
	ask := func(c *sitest.Client, n int, event, want string) {
		t.Helper()
		c.Send(fmt.Sprintf(`42%d[%q]`, n, event))
		if got := c.Read(); got != fmt.Sprintf(`43%d%s`, n, want) {
			t.Fatalf("%s: %s, want 43%d%s", event, got, n, want)
		}
	}

	alice, sid, pid := connect(aliceTok)
	ask(alice, 1, "enter", `["ok"]`) // the webhook joins her to lobby
	ask(alice, 2, "whoami", `["acct-alice",{"plan":"pro"},["lobby","team:1"]]`)
	if got := times("alice"); got != 1 {
		t.Fatalf("connect hook asked %d times", got)
	}
	drop(alice, sid)

	back, sid2, pid2 := connect(withPID(aliceTok, pid))
	if sid2 != sid || pid2 != pid {
		t.Fatalf("not recovered: sid %s pid %s, want %s %s", sid2, pid2, sid, pid)
	}
	if got := times("alice"); got != 1 {
		t.Fatalf("a recovery asked the connect hook again (%d calls)", got)
	}
	// Same user, session data and rooms (lobby, which her token does not
	// allow, included); the hook's publish patterns still apply.
	ask(back, 3, "whoami", `["acct-alice",{"plan":"pro"},["lobby","team:1"]]`)
	back.Send(`424["publish",{"room":"team:1","event":"m","data":1}]`)
	if got := back.Read(); got != `434[{"ok":true}]` {
		t.Fatalf("publish to team:1 after recovery: %s", got)
	}
	back.Send(`425["publish",{"room":"lobby","event":"m","data":1}]`)
	if got := back.Read(); !strings.Contains(got, `"forbidden"`) {
		t.Fatalf("publish to lobby after recovery: %s", got)
	}

	// A fresh connection is asked about.
	connect(aliceTok)
	if got := times("alice"); got != 2 {
		t.Fatalf("a fresh connection: connect hook asked %d times, want 2", got)
	}

	// A recovery of alice's session with mallory's token is asked about,
	// and does not inherit what the backend gave alice.
	drop(back, sid)
	mallory, _, _ := connect(withPID(authPayload(token(t, map[string]any{"sub": "mallory"})), pid))
	if got := times("mallory"); got != 1 {
		t.Fatalf("another user's recovery: connect hook asked %d times, want 1", got)
	}
	mallory.Send(`426["whoami"]`)
	got := mallory.Read()
	if strings.HasPrefix(got, `42["roomcast:not-recovered"`) { // not her session: a fresh one
		got = mallory.Read()
	}
	if !strings.HasPrefix(got, `436["acct-mallory",{"plan":"pro"},[`) || strings.Contains(got, "lobby") {
		t.Fatalf("another user's recovery: %s", got)
	}
}

// An anonymous socket's connect hook request has no claims ("claims":
// null) and says it is anonymous.
func TestConnectHookAnonymous(t *testing.T) {
	t.Parallel()
	got := make(chan *hook.ConnectRequest, 1)
	url := backend(t, &hook.Handler{OnConnect: func(_ context.Context, req *hook.ConnectRequest) (*hook.ConnectResponse, error) {
		got <- req
		return &hook.ConnectResponse{Accept: true}, nil
	}})
	n := start(t, Config{AllowAnonymous: true, ConnectHook: url, HookSecret: hookSecret})
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", `{"ticket":"t"}`)
	req := <-got
	if req.Claims != nil || !req.Anonymous || !strings.HasPrefix(req.User, "anon:") || req.Auth["ticket"] != "t" {
		t.Fatalf("request %+v", req)
	}
}

// The connect hook gets the handshake headers --connect-hook-headers
// names, and the cookie only when it is named.
func TestConnectHookHeaders(t *testing.T) {
	t.Parallel()
	got := make(chan map[string]string, 2)
	url := backend(t, &hook.Handler{OnConnect: func(_ context.Context, req *hook.ConnectRequest) (*hook.ConnectResponse, error) {
		got <- req.Headers
		return &hook.ConnectResponse{Accept: true}, nil
	}})
	for _, c := range []struct {
		names []string
		want  string
	}{
		{[]string{"User-Agent", "X-Tenant"}, `{"user-agent":"test-agent","x-tenant":"acme"}`},
		{[]string{"user-agent", "cookie"}, `{"cookie":"session=s3cret","user-agent":"test-agent"}`},
	} {
		n := start(t, Config{ConnectHook: url, HookSecret: hookSecret, ConnectHookHeaders: c.names})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, _, err := websocket.Dial(ctx, n.wsURL, &websocket.DialOptions{HTTPHeader: http.Header{
			"User-Agent": {"test-agent"}, "X-Tenant": {"acme"}, "Cookie": {"session=s3cret"}, "X-Other": {"x"},
		}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.CloseNow() })
		cl := &sitest.Client{T: t, Conn: conn}
		if open := cl.Read(); !strings.HasPrefix(open, "0{") {
			t.Fatalf("first frame %s", open)
		}
		cl.Connect("/", authPayload(token(t, map[string]any{"sub": "h"})))
		headers, _ := json.Marshal(<-got)
		if string(headers) != c.want {
			t.Fatalf("--connect-hook-headers %q: the hook got %s, want %s", c.names, headers, c.want)
		}
	}
}
