package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/internal/sitest"
)

// testBudget checks a budget of 100 bytes per minute: a charge that would
// pass it is refused and not counted, senders are apart, a new window
// starts afresh. b is charged by the given nodes in turn (one node: a
// single process; two: the cluster-wide counter).
func testBudget(t *testing.T, clock *time.Time, nodes ...durableBudget) {
	ctx := context.Background()
	node := func(i int) durableBudget { return nodes[i%len(nodes)] }
	steps := []struct {
		sender string
		n      int64
		ok     bool
	}{
		{"a", 60, true},
		{"a", 50, false}, // would be 110
		{"a", 40, true},  // the refused 50 did not count
		{"a", 1, false},
		{"b", 100, true}, // another sender has its own budget
		{"c", 101, false},
	}
	for i, s := range steps {
		err := node(i).charge(ctx, s.sender, s.n)
		if s.ok != (err == nil) || (err != nil && !errors.Is(err, errBudget)) {
			t.Fatalf("step %d: charge(%s, %d) = %v, want ok=%v", i, s.sender, s.n, err, s.ok)
		}
	}
	*clock = clock.Add(budgetWindow)
	if err := node(0).charge(ctx, "a", 100); err != nil {
		t.Fatalf("a new window: %v", err)
	}
}

func TestMemoryBudget(t *testing.T) {
	t.Parallel()
	clock := time.Unix(1_800_000_000, 0)
	b := newMemoryBudget(100)
	b.now = func() time.Time { return clock }
	testBudget(t, &clock, b)
}

// TestRedisBudget: the counter is shared by every node (and so holds across
// reconnects), and expires.
func TestRedisBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	t.Parallel()
	rs := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	clock := time.Unix(1_800_000_000, 0)
	now := func() time.Time { return clock }
	a := &redisBudget{client: client, prefix: "t", limit: 100, now: now}
	b := &redisBudget{client: client, prefix: "t", limit: 100, now: now}
	testBudget(t, &clock, a, b)
	key := fmt.Sprintf("t:budget:{a}:%d", clock.Unix()/60)
	if ttl := client.TTL(context.Background(), key).Val(); ttl <= 0 || ttl > 2*budgetWindow {
		t.Fatalf("TTL of %s = %v, want at most two windows", key, ttl)
	}
}

// TestDurableQuotas: direct messages need the dm claim (and, anonymous, the
// flag); a durable message over --max-durable-message is refused (ack and
// API 413); a full queue refuses per user (API 429 saying who has it); a
// client's budget is spent across its sockets.
func TestDurableQuotas(t *testing.T) {
	t.Parallel()
	n := start(t, Config{AllowAnonymous: true, APIToken: "api",
		MaxDurableMessage: 500, QueueMaxBytes: 1000, DurableBudget: 1200})
	refusals := func(limit string) float64 {
		return testutil.ToFloat64(n.g.metrics.LimitRefusals.WithLabelValues(limit))
	}

	anon := sitest.Dial(t, n.wsURL)
	anon.Connect("/", `{}`)
	anon.Send(`421["publish",{"user":"bob","event":"dm","data":1}]`)
	if got := anon.Read(); !strings.Contains(got, `"code":"forbidden"`) {
		t.Fatalf("anonymous dm: %s", got)
	}
	pub := sitest.Dial(t, n.wsURL)
	pub.Connect("/", authPayload(token(t, map[string]any{"sub": "p", "publish": []string{"*"}})))
	pub.Send(`421["publish",{"user":"bob","event":"dm","data":1}]`)
	if got := pub.Read(); !strings.Contains(got, `"code":"forbidden"`) {
		t.Fatalf("dm with a publish claim only: %s", got)
	}
	if got := refusals("dm_forbidden"); got != 2 {
		t.Fatalf("dm_forbidden refusals = %v, want 2", got)
	}

	tok := token(t, map[string]any{"sub": "s", "dm": []string{"*"}})
	s1 := sitest.Dial(t, n.wsURL)
	s1.Connect("/", authPayload(tok))
	big := strings.Repeat("x", 500)
	s1.Send(`421["publish",{"user":"bob","event":"dm","data":"` + big + `"}]`)
	if got := s1.Read(); !strings.Contains(got, `"code":"too_large"`) {
		t.Fatalf("large dm: %s", got)
	}
	if code, body := do(t, "POST", n.base+"/api/v1/emit", "api", `{"event":"dm","users":["bob"],"args":["`+big+`"]}`); code != 413 {
		t.Fatalf("large API emit: %d %v", code, body)
	}

	// 400-byte messages: two fill carol's 1000-byte queue; the API then
	// stores the third for dave only.
	msg := strings.Repeat("y", 390)
	for i := range 2 {
		if code, body := do(t, "POST", n.base+"/api/v1/emit", "api", `{"event":"dm","users":["carol"],"args":["`+msg+`"]}`); code != 200 {
			t.Fatalf("emit %d: %d %v", i, code, body)
		}
	}
	code, body := do(t, "POST", n.base+"/api/v1/emit", "api", `{"event":"dm","users":["carol","dave"],"args":["`+msg+`"]}`)
	ids, _ := body["ids"].(map[string]any)
	if code != 429 || fmt.Sprint(body["refused"]) != "map[carol:queue_full]" || len(ids) != 1 || ids["dave"] == nil {
		t.Fatalf("emit to a full and an empty queue: %d %v", code, body)
	}
	if got := refusals("queue_full"); got != 1 {
		t.Fatalf("queue_full refusals = %v, want 1", got)
	}

	// The client's budget (1200 bytes a minute) is spent across sockets:
	// three 400-byte messages fit, the fourth does not, on a new socket.
	for i := range 3 {
		s1.Send(fmt.Sprintf(`42%d["publish",{"user":"r%d","event":"dm","data":"%s"}]`, 2+i, i, msg[:370]))
		if got := s1.Read(); !strings.Contains(got, `"ok":true`) {
			t.Fatalf("dm %d within the budget: %s", i, got)
		}
	}
	s2 := sitest.Dial(t, n.wsURL)
	s2.Connect("/", authPayload(tok))
	s2.Send(`429["publish",{"user":"r9","event":"dm","data":"` + msg[:370] + `"}]`)
	if got := s2.Read(); !strings.Contains(got, `"code":"quota_exceeded"`) {
		t.Fatalf("dm over the budget from a new socket: %s", got)
	}
	if refusals("durable_budget") != 1 || refusals("too_large") != 2 {
		t.Fatalf("refusals: budget %v, too_large %v", refusals("durable_budget"), refusals("too_large"))
	}
}
