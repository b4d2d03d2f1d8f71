package redispubsub

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/internal/leakcheck"
	"github.com/roomcast/roomcast/internal/redistest"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{}) // dial failures are expected while Redis is killed
	leakcheck.VerifyTestMain(m)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSubscriber: subscriptions are counted (the last Remove unsubscribes),
// every kind delivers, OnSubscribed is told again after Redis restarts, and
// Ready fails while Redis is away and recovers with the subscriptions.
func TestSubscriber(t *testing.T) {
	rs := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr(), MaxRetries: 1, DialTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { _ = client.Close() })
	ctx := context.Background()

	got := make(chan string, 100)
	confirmed := make(chan Key, 100)
	s := New(Config{
		Client:       client,
		OnMessage:    func(m *redis.Message) { got <- m.Channel },
		OnSubscribed: func(k Key) { confirmed <- k },
		HealthCheck:  200 * time.Millisecond,
	})
	t.Cleanup(s.Close)
	if err := s.Ready(); !errors.Is(err, ErrUnavailable) && err != nil {
		t.Fatalf("Ready before any subscription: %v", err)
	}
	keys := []Key{{Channel, "chan"}, {Pattern, "pat*"}, {Shard, "shard"}}
	for _, k := range keys {
		s.Add(k)
	}
	awaitConfirmations := func(what string) {
		t.Helper()
		seen := map[Key]bool{}
		deadline := time.After(10 * time.Second)
		for len(seen) < len(keys) {
			select {
			case k := <-confirmed:
				seen[k] = true
			case <-deadline:
				t.Fatalf("%s: confirmed only %v", what, seen)
			}
		}
	}
	awaitConfirmations("first subscription")
	waitFor(t, "ready", func() bool { return s.Ready() == nil })
	if !s.Add(Key{Channel, "chan"}) {
		t.Fatal("a second Add of a confirmed channel did not report it confirmed")
	}

	publish := func() {
		_ = client.Publish(ctx, "chan", "x").Err()
		_ = client.Publish(ctx, "pattern", "x").Err()
		_ = client.SPublish(ctx, "shard", "x").Err()
	}
	awaitMessages := func(what string) {
		t.Helper()
		seen := map[string]bool{}
		deadline := time.Now().Add(10 * time.Second)
		for len(seen) < 3 {
			publish()
			select {
			case ch := <-got:
				seen[ch] = true
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: received only %v", what, seen)
			}
		}
	}
	awaitMessages("before the restart")

	rs.Kill()
	waitFor(t, "not ready", func() bool { return errors.Is(s.Ready(), ErrUnavailable) })
	rs.Restart()
	awaitConfirmations("after the restart")
	waitFor(t, "ready again", func() bool { return s.Ready() == nil })
	awaitMessages("after the restart")

	// Two references to "chan": the first Remove keeps it.
	numsub := func() int64 {
		n, err := client.PubSubNumSub(ctx, "chan").Result()
		if err != nil {
			t.Fatal(err)
		}
		return n["chan"]
	}
	s.Remove(Key{Channel, "chan"})
	time.Sleep(100 * time.Millisecond)
	if n := numsub(); n != 1 {
		t.Fatalf("after one of two Removes: %d subscribers", n)
	}
	s.Remove(Key{Channel, "chan"})
	waitFor(t, "unsubscribed", func() bool { return numsub() == 0 })
}
