package gateway

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

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
