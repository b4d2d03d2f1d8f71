package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/roomcast/roomcast/hook"
	"github.com/roomcast/roomcast/internal/sitest"
)

const hookSecret = "hook-secret"

// backend starts a hook.Handler on a test server.
func backend(t testing.TB, h *hook.Handler) string {
	t.Helper()
	h.Secrets = [][]byte{[]byte(hookSecret)}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestWebhookAckAndActions(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []*hook.EventRequest
	url := backend(t, &hook.Handler{OnEvent: func(_ context.Context, req *hook.EventRequest) (*hook.EventResponse, error) {
		mu.Lock()
		seen = append(seen, req)
		mu.Unlock()
		switch req.Event {
		case "echo":
			return &hook.EventResponse{Ack: []any{map[string]any{"echo": req.Args[0]}, hook.Binary([]byte{1, 2})}}, nil
		case "enter":
			return &hook.EventResponse{
				Join: []string{"lobby", "user:bob"}, // user rooms are refused
				Emit: []hook.Emit{{Rooms: []string{"lobby"}, Except: []string{req.Socket.Socket}, Event: "entered", Args: []any{req.User}}},
				Ack:  []any{"ok"},
			}, nil
		case "bye":
			return &hook.EventResponse{Disconnect: true, Ack: []any{"bye"}}, nil
		}
		return nil, errors.New("unknown")
	}})
	n := start(t, Config{Webhook: url, HookSecret: hookSecret})
	alice := sitest.Dial(t, n.wsURL)
	alice.Connect("/", authPayload(token(t, map[string]any{"sub": "alice"})))
	bob := sitest.Dial(t, n.wsURL)
	bob.Connect("/", authPayload(token(t, map[string]any{"sub": "bob", "join": []string{"lobby"}})))
	bob.Send(`421["join","lobby"]`)
	if got := bob.Read(); got != `431[{"ok":true}]` {
		t.Fatalf("join: %s", got)
	}

	// Binary in, binary out.
	alice.Send(`451-1["echo",{"_placeholder":true,"num":0}]`)
	alice.SendBinary([]byte{0xca, 0xfe})
	if got := alice.Read(); got != `462-1[{"echo":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1}]` {
		t.Fatalf("echo ack %s", got)
	}
	if _, b := alice.ReadFrame(); !bytes.Equal(b, []byte{0xca, 0xfe}) {
		t.Fatalf("attachment 0: %x", b)
	}
	if _, b := alice.ReadFrame(); !bytes.Equal(b, []byte{1, 2}) {
		t.Fatalf("attachment 1: %x", b)
	}

	// The backend joins alice to lobby (which her token does not allow)
	// and emits to the room but her.
	alice.Send(`422["enter"]`)
	if got := alice.Read(); got != `432["ok"]` {
		t.Fatalf("enter ack %s", got)
	}
	if got, _ := readEvent(t, bob); got != `42["entered","alice"]` {
		t.Fatalf("bob got %s", got)
	}
	mu.Lock()
	last := seen[len(seen)-1]
	mu.Unlock()
	if last.User != "alice" || last.Event != "enter" || !last.Ack || last.Socket.Namespace != "/" {
		t.Fatalf("request %+v", last)
	}
	sockets := n.g.sio.Sockets().LocalSockets()
	for _, s := range sockets {
		if sessionOf(s).User == "alice" {
			if !s.InRoom("lobby") || s.InRoom("user:bob") {
				t.Fatalf("alice's rooms %v", s.Rooms())
			}
		}
	}
	// The next request lists the room.
	alice.Send(`423["bye"]`)
	if got := alice.Read(); got != `433["bye"]` {
		t.Fatalf("bye ack %s", got)
	}
	if got := alice.Read(); got != `41` {
		t.Fatalf("want a DISCONNECT, got %s", got)
	}
	mu.Lock()
	last = seen[len(seen)-1]
	mu.Unlock()
	if strings.Join(last.Rooms, ",") != "lobby" {
		t.Fatalf("rooms %v", last.Rooms)
	}
}

func TestWebhookFailures(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch r.URL.Path {
		case "/500":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/503":
			http.Error(w, "later", http.StatusServiceUnavailable)
		case "/hang":
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) }) // before srv.Close, which waits for the handlers

	t.Run("500 is not retried", func(t *testing.T) {
		n := start(t, Config{Webhook: srv.URL + "/500", HookSecret: hookSecret, HookBreakerFailures: -1})
		c := sitest.Dial(t, n.wsURL)
		c.Connect("/", authPayload(token(t, map[string]any{"sub": "a"})))
		before := calls.Load()
		c.Send(`421["x"]`)
		if got := c.Read(); got != `431[{"error":{"code":"unavailable","message":"backend: backend answered HTTP 500"}}]` {
			t.Fatalf("got %s", got)
		}
		if d := calls.Load() - before; d != 1 {
			t.Fatalf("%d calls", d)
		}
	})
	t.Run("503 is retried", func(t *testing.T) {
		n := start(t, Config{Webhook: srv.URL + "/503", HookSecret: hookSecret, HookBreakerFailures: -1})
		c := sitest.Dial(t, n.wsURL)
		c.Connect("/", authPayload(token(t, map[string]any{"sub": "a"})))
		before := calls.Load()
		c.Send(`421["x"]`)
		if got := c.Read(); !strings.Contains(got, `"unavailable"`) {
			t.Fatalf("got %s", got)
		}
		if d := calls.Load() - before; d != 3 {
			t.Fatalf("%d calls, want 1 + 2 retries", d)
		}
		if v := testutil.ToFloat64(n.g.hooks.m.requests.WithLabelValues(hookEvent, hookRetried)); v != 2 {
			t.Fatalf("retried %v", v)
		}
	})
	t.Run("a hanging backend times out and opens the breaker", func(t *testing.T) {
		n := start(t, Config{Webhook: srv.URL + "/hang", HookSecret: hookSecret, HookTimeout: 200 * time.Millisecond, HookBreakerFailures: 2, HookBreakerCooldown: time.Hour})
		c := sitest.Dial(t, n.wsURL)
		c.Connect("/", authPayload(token(t, map[string]any{"sub": "a"})))
		start := time.Now()
		c.Send(`421["x"]`)
		c.Send(`422["y"]`)
		c.Send(`423["z"]`)
		for i, want := range []string{
			`431[{"error":{"code":"unavailable","message":"backend: backend did not answer in time"}}]`,
			// y waited in the queue behind x until its own deadline.
			`432[{"error":{"code":"unavailable","message":"backend: backend did not answer in time"}}]`,
			`433[{"error":{"code":"unavailable","message":"backend: backend did not answer in time"}}]`,
		} {
			got := c.Read()
			// z is refused at once instead when x's and y's calls both
			// failed before its turn: the breaker (2 failures) is open.
			if i == 2 && got == `433[{"error":{"code":"unavailable","message":"backend: backend unavailable: circuit breaker open"}}]` {
				continue
			}
			if got != want {
				t.Fatalf("%d: got %s", i, got)
			}
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("answers took %v", d)
		}
		// Two failed calls in a row open the breaker (y and z may expire
		// in the queue without a call): within two more events, the
		// answer is immediate.
		open := false
		for i := 4; i < 7 && !open; i++ {
			c.Send(fmt.Sprintf(`42%d["w"]`, i))
			got := c.Read()
			open = got == fmt.Sprintf(`43%d[{"error":{"code":"unavailable","message":"backend: backend unavailable: circuit breaker open"}}]`, i)
			if !open && !strings.Contains(got, "did not answer in time") {
				t.Fatalf("got %s", got)
			}
		}
		if !open {
			t.Fatal("the breaker did not open")
		}
		if v := testutil.ToFloat64(n.g.hooks.m.breakers.WithLabelValues(hookEvent)); v != 1 {
			t.Fatalf("open breakers %v", v)
		}
	})
	t.Run("the queue is bounded", func(t *testing.T) {
		n := start(t, Config{Webhook: srv.URL + "/hang", HookSecret: hookSecret, HookTimeout: 300 * time.Millisecond, HookQueue: 1, HookBreakerFailures: -1})
		c := sitest.Dial(t, n.wsURL)
		c.Connect("/", authPayload(token(t, map[string]any{"sub": "a"})))
		c.Send(`421["x"]`) // in flight (or queued)
		time.Sleep(50 * time.Millisecond)
		c.Send(`422["y"]`) // queued
		c.Send(`423["z"]`) // refused at once
		if got := c.Read(); got != `433[{"error":{"code":"unavailable","message":"backend: too many events waiting for the backend"}}]` {
			t.Fatalf("got %s", got)
		}
		c.Read()
		c.Read()
	})
}

func TestWebhookUnsignedRefusedBySDK(t *testing.T) {
	t.Parallel()
	url := backend(t, &hook.Handler{OnEvent: func(context.Context, *hook.EventRequest) (*hook.EventResponse, error) {
		return &hook.EventResponse{Ack: []any{"never"}}, nil
	}})
	n := start(t, Config{Webhook: url, HookSecret: "another-secret", HookBreakerFailures: -1})
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", authPayload(token(t, map[string]any{"sub": "a"})))
	c.Send(`421["x"]`)
	if got := c.Read(); got != `431[{"error":{"code":"unavailable","message":"backend: backend answered HTTP 401"}}]` {
		t.Fatalf("got %s", got)
	}
}

func TestNoWebhookKeepsUnknownEvent(t *testing.T) {
	t.Parallel()
	url := backend(t, &hook.Handler{})
	// A webhook for /chat only: "/" still refuses unknown events.
	n := start(t, Config{Namespaces: []string{"/chat"}, NamespaceWebhooks: []string{"/chat=" + url}, HookSecret: hookSecret})
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", authPayload(token(t, map[string]any{"sub": "a"})))
	c.Send(`421["x"]`)
	if got := c.Read(); got != `431[{"error":{"code":"unknown_event","message":"event \"x\" is not handled by this gateway"}}]` {
		t.Fatalf("got %s", got)
	}
}

func TestHookConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{AllowAnonymous: true, Webhook: "http://x"}, "--hook-secret is required"},
		{Config{AllowAnonymous: true, Webhook: "ftp://x", HookSecret: "s"}, "want http:// or https://"},
		{Config{AllowAnonymous: true, NamespaceWebhooks: []string{"/nope=http://x"}, HookSecret: "s"}, "not a configured namespace"},
		{Config{AllowAnonymous: true, PublishHooks: []string{"room:*"}, HookSecret: "s"}, "is not name=URL"},
	} {
		c.cfg.setDefaults()
		if err := c.cfg.validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg.Webhook, err, c.want)
		}
	}
}

func TestBreaker(t *testing.T) {
	t.Parallel()
	b := breaker{threshold: 2, cooldown: time.Second}
	now := time.Unix(0, 0)
	for i := range 2 {
		if !b.allow(now) {
			t.Fatalf("closed breaker refused %d", i)
		}
		b.done(false, now)
	}
	if b.allow(now) || !b.isOpen(now) {
		t.Fatal("open breaker allowed")
	}
	later := now.Add(2 * time.Second)
	if !b.allow(later) {
		t.Fatal("no probe after the cooldown")
	}
	if b.allow(later) {
		t.Fatal("two probes at once")
	}
	b.done(true, later)
	if !b.allow(later) || b.isOpen(later) {
		t.Fatal("a good probe did not close it")
	}
}

// A socket's events reach the backend one at a time, in the order the
// client sent them, even when the backend answers them at uneven speeds;
// their acks come back in that order.
func TestWebhookOrder(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []any
	var inflight, most atomic.Int32
	url := backend(t, &hook.Handler{OnEvent: func(_ context.Context, req *hook.EventRequest) (*hook.EventResponse, error) {
		if n := inflight.Add(1); n > most.Load() {
			most.Store(n)
		}
		defer inflight.Add(-1)
		mu.Lock()
		seen = append(seen, req.Args[0])
		mu.Unlock()
		n := int(req.Args[0].(float64))
		time.Sleep(time.Duration((n*7)%5) * time.Millisecond) // uneven
		return &hook.EventResponse{Ack: []any{n}}, nil
	}})
	n := start(t, Config{Webhook: url, HookSecret: hookSecret, EventRate: -1, IPEventRate: -1})
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", authPayload(token(t, map[string]any{"sub": "a"})))
	const events = 20 // within --hook-queue (32)
	for i := range events {
		c.Send(fmt.Sprintf(`42%d["n",%d]`, i, i))
	}
	for i := range events {
		if got, want := c.Read(), fmt.Sprintf(`43%d[%d]`, i, i); got != want {
			t.Fatalf("ack %d: %s, want %s", i, got, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, v := range seen {
		if v != float64(i) {
			t.Fatalf("the backend saw %v", seen)
		}
	}
	if len(seen) != events || most.Load() != 1 {
		t.Fatalf("the backend saw %d events, at most %d at once", len(seen), most.Load())
	}
}

// Beyond --hook-concurrency requests in flight on the node, a client's
// event is refused at once (busy), not queued behind the slow ones.
func TestWebhookConcurrencyBound(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	url := backend(t, &hook.Handler{OnEvent: func(ctx context.Context, req *hook.EventRequest) (*hook.EventResponse, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return &hook.EventResponse{Ack: []any{"late"}}, nil
	}})
	t.Cleanup(func() { close(release) })
	n := start(t, Config{Webhook: url, HookSecret: hookSecret, HookConcurrency: 1, HookTimeout: 5 * time.Second, HookBreakerFailures: -1})
	a := sitest.Dial(t, n.wsURL)
	a.Connect("/", authPayload(token(t, map[string]any{"sub": "a"})))
	b := sitest.Dial(t, n.wsURL)
	b.Connect("/", authPayload(token(t, map[string]any{"sub": "b"})))
	a.Send(`421["slow"]`)
	waitFor(t, "a's request in flight", func() bool { return testutil.ToFloat64(n.g.hooks.m.inflight) == 1 })
	t0 := time.Now()
	b.Send(`421["x"]`)
	if got := b.Read(); got != `431[{"error":{"code":"unavailable","message":"backend: backend busy: too many requests in flight"}}]` {
		t.Fatalf("got %s", got)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("the busy answer took %v", d)
	}
	if v := testutil.ToFloat64(n.g.hooks.m.requests.WithLabelValues(hookEvent, hookBusy)); v != 1 {
		t.Fatalf("busy %v", v)
	}
}

// A webhook answer's leave takes the socket out of a room, and its emit to
// users reaches the user's sockets (durably, as POST /api/v1/emit).
func TestWebhookLeaveAndEmitToUsers(t *testing.T) {
	t.Parallel()
	url := backend(t, &hook.Handler{OnEvent: func(_ context.Context, req *hook.EventRequest) (*hook.EventResponse, error) {
		return &hook.EventResponse{
			Leave: []string{"lobby"},
			Emit:  []hook.Emit{{Users: []string{"bob"}, Event: "dm", Args: []any{"from " + req.User}}},
			Ack:   []any{req.Rooms},
		}, nil
	}})
	n := start(t, Config{Webhook: url, HookSecret: hookSecret})
	alice := sitest.Dial(t, n.wsURL)
	aliceID := alice.Connect("/", authPayload(token(t, map[string]any{"sub": "alice", "join": []string{"lobby"}})))
	bob := sitest.Dial(t, n.wsURL)
	bob.Connect("/", authPayload(token(t, map[string]any{"sub": "bob"})))
	alice.Send(`421["join","lobby"]`)
	if got := alice.Read(); got != `431[{"ok":true}]` {
		t.Fatalf("join: %s", got)
	}
	alice.Send(`422["part"]`)
	if got := alice.Read(); got != `432[["lobby"]]` { // the request lists the rooms before the actions
		t.Fatalf("ack %s", got)
	}
	if s, ok := n.g.Server().Sockets().Socket(aliceID); !ok || s.InRoom("lobby") {
		t.Fatalf("alice still in lobby (socket found %v)", ok)
	}
	if got, offset := readEvent(t, bob); got != `42["dm","from alice"]` || offset == "" {
		t.Fatalf("bob got %s (offset %q)", got, offset)
	}
}

// A namespace's own webhook (--namespace-webhooks) takes that namespace's
// events; the others go to --webhook.
func TestNamespaceWebhooks(t *testing.T) {
	t.Parallel()
	answer := func(who string) string {
		return backend(t, &hook.Handler{OnEvent: func(_ context.Context, req *hook.EventRequest) (*hook.EventResponse, error) {
			return &hook.EventResponse{Ack: []any{who, req.Namespace}}, nil
		}})
	}
	n := start(t, Config{
		Namespaces: []string{"/chat", "/admin"}, HookSecret: hookSecret,
		Webhook: answer("default"), NamespaceWebhooks: []string{"/chat=" + answer("chat")},
	})
	c := sitest.Dial(t, n.wsURL)
	tok := authPayload(token(t, map[string]any{"sub": "a"}))
	c.Connect("/", tok)
	c.Connect("/chat", tok)
	c.Connect("/admin", tok)
	for _, tc := range []struct{ send, want string }{
		{`421["x"]`, `431["default","/"]`},
		{`42/chat,2["x"]`, `43/chat,2["chat","/chat"]`},
		{`42/admin,3["x"]`, `43/admin,3["default","/admin"]`},
	} {
		c.Send(tc.send)
		if got := c.Read(); got != tc.want {
			t.Fatalf("%s: %s, want %s", tc.send, got, tc.want)
		}
	}
}
