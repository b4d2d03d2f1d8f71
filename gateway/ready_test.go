package gateway

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/internal/sitest"
)

// TestReadyAsksQueueSubscriptions: /readyz turns 503 while only the durable
// queue's live subscriptions are down (Redis answers and the adapter's
// subscriptions are up), and 200 again once they are re-made.
//
// Redis itself takes them down: the ACL forbids SSUBSCRIBE, which only the
// queue uses with the classic adapter, and the queue's pub/sub connection
// is killed, so that its re-subscriptions are refused until the ACL allows
// them again.
func TestReadyAsksQueueSubscriptions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	redis.SetLogger(nopRedisLogger{})
	rs := redistest.Start(t)
	n := start(t, Config{Redis: rs.URL(), Origins: []string{"*"}, Adapter: "classic"})
	// A connected user has a live queue subscription.
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", authPayload(token(t, map[string]any{"sub": "u"})))
	waitReady(t, n, http.StatusOK)

	admin := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.Do(ctx, "ACL", "SETUSER", "default", "-ssubscribe").Err(); err != nil {
		t.Fatal(err)
	}
	killed, err := admin.Do(ctx, "CLIENT", "KILL", "ID", queueSubscriber(t, admin)).Int()
	if err != nil || killed != 1 {
		t.Fatalf("CLIENT KILL the queue's pub/sub connection: %d, %v", killed, err)
	}
	waitReady(t, n, http.StatusServiceUnavailable)
	if code, body := get(t, n.admin+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "queue") {
		t.Fatalf("/readyz answers %d %q, want 503 with the queue's error", code, body)
	}
	// Only the queue is down: Redis and the adapter's subscriptions are up.
	if err := n.g.cluster.Ready(ctx); err != nil {
		t.Fatalf("adapter not ready: %v", err)
	}
	if err := n.g.store.Ready(ctx); err == nil {
		t.Fatal("queue ready while its subscriptions are refused")
	}

	if err := admin.Do(ctx, "ACL", "SETUSER", "default", "+ssubscribe").Err(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, n, http.StatusOK)
	if err := n.g.store.Ready(ctx); err != nil {
		t.Fatalf("queue not ready after its subscriptions came back: %v", err)
	}
}

// queueSubscriber returns the client id of the one pub/sub connection with
// shard subscriptions: the durable queue's.
func queueSubscriber(t *testing.T, c *redis.Client) string {
	t.Helper()
	out, err := c.Do(context.Background(), "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var id string
		shard := false
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(f, "ssub="); ok && v != "0" {
				shard = true
			}
		}
		if shard {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("pub/sub connections with shard subscriptions: %v, want the queue's one\n%s", ids, out)
	}
	return ids[0]
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
