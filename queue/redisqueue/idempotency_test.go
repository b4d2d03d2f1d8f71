package redisqueue

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/queue/internal/storetest"
)

func TestAppendIdempotencyKey(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := testClient(t, srv.Addr())
	r := newRedisStore(t, client, storetest.Config{MaxLen: 100, MaxBytes: 1 << 20, Retention: time.Hour, MaxMembers: 10})
	msg := queue.Message{Namespace: "/", Event: "e", Data: json.RawMessage(`[1]`)}
	ctx := queue.WithIdempotencyKey(context.Background(), "k1", time.Minute)

	first, err := r.Append(ctx, []string{"ann"}, msg)
	if err != nil {
		t.Fatal(err)
	}
	// A repeat for ann and a first time for bob, pipelined.
	again, err := r.Append(ctx, []string{"ann", "bob"}, msg)
	if err != nil {
		t.Fatal(err)
	}
	if again[0] != first[0] || again[1] == "" {
		t.Fatalf("first %v, again %v", first, again)
	}
	for user, want := range map[string]int64{"ann": 1, "bob": 1} {
		if n := client.XLen(context.Background(), r.streamKey(user)).Val(); n != want {
			t.Fatalf("%s's stream holds %d entries, want %d", user, n, want)
		}
	}
	// Another key appends again; no key appends every time.
	if _, err := r.Append(queue.WithIdempotencyKey(context.Background(), "k2", time.Minute), []string{"ann"}, msg); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Append(context.Background(), []string{"ann"}, msg); err != nil {
		t.Fatal(err)
	}
	if n := client.XLen(context.Background(), r.streamKey("ann")).Val(); n != 3 {
		t.Fatalf("ann's stream holds %d entries, want 3", n)
	}
	if ttl := client.PTTL(context.Background(), r.onceKey("ann", "k1")).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("key TTL %v", ttl)
	}
}
