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

// A client publish with an idempotencyKey is delivered once: a repeat gets
// the first ack with "duplicate": true, for rooms and direct messages; the
// key is the publisher's own (another user's same key is another publish).
func TestIdempotentPublish(t *testing.T) {
	t.Parallel()
	n := start(t, Config{})
	rights := func(sub string) string {
		return authPayload(token(t, map[string]any{"sub": sub, "join": []string{"*"}, "publish": []string{"*"}, "dm": []string{"*"}}))
	}
	pub := sitest.Dial(t, n.wsURL)
	pub.Connect("/", rights("pat"))
	member := sitest.Dial(t, n.wsURL)
	member.Connect("/", rights("bob"))
	member.Send(`421["join","r"]`)
	if got := member.Read(); got != `431[{"ok":true}]` {
		t.Fatalf("join: %s", got)
	}
	expect := func(c *sitest.Client, prefix string) {
		t.Helper()
		if got, _ := readEvent(t, c); !strings.HasPrefix(got, prefix) {
			t.Fatalf("got %s, want %s…", got, prefix)
		}
	}

	room := `{"room":"r","event":"m","data":1,"idempotencyKey":"k1"}`
	pub.Send(`421["publish",` + room + `]`)
	if got := pub.Read(); got != `431[{"ok":true}]` {
		t.Fatalf("first publish: %s", got)
	}
	expect(member, `42["m",1,`)
	pub.Send(`422["publish",` + room + `]`)
	if got := pub.Read(); got != `432[{"duplicate":true,"ok":true}]` {
		t.Fatalf("repeat: %s", got)
	}
	// Nothing came between: the next event is the next publish.
	pub.Send(`423["publish",{"room":"r","event":"m","data":2}]`)
	pub.Read()
	expect(member, `42["m",2,`)

	dm := `{"user":"bob","event":"d","data":1,"idempotencyKey":"k2"}`
	pub.Send(`424["publish",` + dm + `]`)
	first := pub.Read()
	if !strings.HasPrefix(first, `434[{"id":"`) {
		t.Fatalf("first direct message: %s", first)
	}
	expect(member, `42["d",1,`)
	pub.Send(`425["publish",` + dm + `]`)
	again := pub.Read()
	if want := `435[{"duplicate":true,` + strings.TrimPrefix(first, `434[{`); again != want {
		t.Fatalf("repeat direct message: %s, want %s", again, want)
	}
	pub.Send(`426["publish",{"user":"bob","event":"d","data":2}]`)
	pub.Read()
	expect(member, `42["d",2,`)

	// Another user's key of the same name is its own.
	other := sitest.Dial(t, n.wsURL)
	other.Connect("/", rights("quinn"))
	other.Send(`427["publish",` + room + `]`)
	if got := other.Read(); got != `437[{"ok":true}]` {
		t.Fatalf("other user's publish: %s", got)
	}
	expect(member, `42["m",1,`)
	other.Send(`428["publish",{"room":"r","event":"m","idempotencyKey":"bad key"}]`)
	if got := other.Read(); !strings.HasPrefix(got, `438[{"error":{"code":"bad_request"`) {
		t.Fatalf("bad key: %s", got)
	}
}
