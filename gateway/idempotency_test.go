package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/sitest"
)

func TestIdempotentEmit(t *testing.T) {
	t.Parallel()
	n := start(t, Config{APIToken: "api"})
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", authPayload(token(t, map[string]any{"sub": "ann"})))

	body := `{"users":["ann"],"event":"note","args":[1],"idempotencyKey":"order-42"}`
	status, first := do(t, "POST", n.base+"/api/v1/emit", "api", body)
	if status != 200 || first["ok"] != true || first["duplicate"] != nil {
		t.Fatalf("first: %d %v", status, first)
	}
	if got, _ := readEvent(t, c); got != `42["note",1]` {
		t.Fatalf("delivered %s", got)
	}
	status, again := do(t, "POST", n.base+"/api/v1/emit", "api", body)
	if status != 200 || again["duplicate"] != true || again["ids"].(map[string]any)["ann"] != first["ids"].(map[string]any)["ann"] {
		t.Fatalf("repeat: %d %v (first %v)", status, again, first)
	}
	// A different key delivers; nothing was delivered in between.
	status, _ = do(t, "POST", n.base+"/api/v1/emit", "api", strings.Replace(body, "order-42", "order-43", 1))
	if status != 200 {
		t.Fatalf("other key: %d", status)
	}
	if got, _ := readEvent(t, c); got != `42["note",1]` {
		t.Fatalf("delivered %s", got)
	}
	// A refused request does not hold its key.
	status, _ = do(t, "POST", n.base+"/api/v1/emit", "api", `{"event":"note","idempotencyKey":"k"}`)
	if status != 400 {
		t.Fatalf("bad request: %d", status)
	}
	status, _ = do(t, "POST", n.base+"/api/v1/emit", "api", `{"rooms":["r"],"event":"note","idempotencyKey":"k"}`)
	if status != 200 {
		t.Fatalf("after a refusal: %d", status)
	}
	if status, _ := do(t, "POST", n.base+"/api/v1/emit", "api", `{"rooms":["r"],"event":"note","idempotencyKey":"bad key"}`); status != 400 {
		t.Fatalf("bad key: %d", status)
	}
}

func TestMemoryIdem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Unix(0, 0)
	m := newMemoryIdem(time.Minute)
	m.now = func() time.Time { return now }
	if a, err := m.begin(ctx, "k"); a != nil || err != nil {
		t.Fatal(a, err)
	}
	if _, err := m.begin(ctx, "k"); err != errInProgress {
		t.Fatal(err)
	}
	_ = m.finish(ctx, "k", []byte("answer"))
	if a, _ := m.begin(ctx, "k"); string(a) != "answer" {
		t.Fatal(string(a))
	}
	now = now.Add(2 * time.Minute)
	if a, err := m.begin(ctx, "k"); a != nil || err != nil {
		t.Fatal("expired key", a, err)
	}
	m.abandon(ctx, "k")
	if len(m.entries) != 0 {
		t.Fatal(m.entries)
	}
}
