package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/gateway"
	"github.com/roomcast/roomcast/internal/sitest"
)

// TestChatBehindGateway runs the chat backend behind an in-process
// gateway: logins count the users, typing and messages reach the other
// client, and a disconnect (from the lifecycle hook) makes "user left"
// with the count down.
func TestChatBehindGateway(t *testing.T) {
	const secret, apiToken = "hook-secret", "api-token"
	chat := &Chat{APIToken: apiToken}
	backend := httptest.NewServer(chat.Handler([]byte(secret)))
	t.Cleanup(backend.Close)
	g, err := gateway.New(gateway.Config{
		Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", AllowAnonymous: true, APIToken: apiToken,
		Webhook: backend.URL, LifecycleHook: backend.URL, HookSecret: secret,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr, _, err := g.Listen()
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
	chat.Gateway = "http://" + addr.String()
	wsURL := "ws://" + addr.String() + "/socket.io/?EIO=4&transport=websocket"

	join := func(name string) *sitest.Client {
		c := sitest.Dial(t, wsURL)
		c.Connect("/", "")
		c.Send(fmt.Sprintf(`42["add user",%q]`, name))
		return c
	}
	alice := join("alice")
	expect(t, alice, "login", `{"numUsers":1}`)
	bob := join("bob")
	expect(t, bob, "login", `{"numUsers":2}`)
	expect(t, alice, "user joined", `{"numUsers":2,"username":"bob"}`)

	bob.Send(`42["typing"]`)
	expect(t, alice, "typing", `{"username":"bob"}`)
	bob.Send(`42["new message","hi alice"]`)
	expect(t, alice, "new message", `{"message":"hi alice","username":"bob"}`)
	bob.Send(`42["stop typing"]`)
	expect(t, alice, "stop typing", `{"username":"bob"}`)

	// Bob leaves (socket.disconnect()): the gateway's lifecycle hook tells
	// the backend, which tells the others.
	bob.Send(`41`)
	expect(t, alice, "user left", `{"numUsers":1,"username":"bob"}`)

	carol := join("carol")
	expect(t, carol, "login", `{"numUsers":2}`)
	expect(t, alice, "user joined", `{"numUsers":2,"username":"carol"}`)
}

// expect reads c's frames up to the event named event (other events are
// skipped) and checks its first argument (JSON, keys sorted).
func expect(t *testing.T, c *sitest.Client, event, want string) {
	t.Helper()
	for range 20 {
		frame := c.Read()
		if !strings.HasPrefix(frame, "42[") {
			continue
		}
		var args []any
		if err := json.Unmarshal([]byte(frame[2:]), &args); err != nil {
			t.Fatalf("frame %s: %v", frame, err)
		}
		if len(args) < 2 || args[0] != event {
			continue
		}
		got, _ := json.Marshal(args[1])
		if string(got) != want {
			t.Fatalf("%s: got %s, want %s", event, got, want)
		}
		return
	}
	t.Fatalf("no %q event", event)
}
