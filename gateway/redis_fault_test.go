package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/internal/sitest"
)

// TestRedisOutageIsLoud kills Redis under a two-node fleet: readiness drops,
// publishes fail with an error ack and API 503, local delivery goes on; when
// Redis returns, readiness and cross-node delivery come back on their own.
func TestRedisOutageIsLoud(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	redis.SetLogger(nopRedisLogger{})
	rs := redistest.Start(t)
	cfg := Config{Redis: rs.URL(), Origins: []string{"*"}, APIToken: "api"}
	a, b := start(t, withNode(cfg, "a")), start(t, withNode(cfg, "b"))
	tok := token(t, map[string]any{"sub": "u", "join": []string{"*"}, "publish": []string{"*"}, "dm": []string{"*"}})
	ca, cb := sitest.Dial(t, a.wsURL), sitest.Dial(t, b.wsURL)
	ca.Connect("/", authPayload(tok))
	cb.Connect("/", authPayload(tok))
	local := sitest.Dial(t, a.wsURL)
	local.Connect("/", authPayload(tok))
	for _, c := range []*sitest.Client{ca, cb, local} {
		c.Send(`4291["join","r"]`)
		if got := c.Read(); got != `4391[{"ok":true}]` {
			t.Fatalf("join ack %s", got)
		}
	}
	waitReady(t, a, http.StatusOK)
	// Cross-node delivery works.
	ca.Send(`4292["publish",{"room":"r","event":"m","data":1}]`)
	if got := ca.Read(); got != `4392[{"ok":true}]` {
		t.Fatalf("publish ack %s", got)
	}
	if got := cb.Read(); !strings.HasPrefix(got, `42["m",1`) {
		t.Fatalf("other node got %s", got)
	}
	if got := local.Read(); !strings.HasPrefix(got, `42["m",1`) {
		t.Fatalf("local got %s", got)
	}

	rs.Kill()
	waitReady(t, a, http.StatusServiceUnavailable)
	ca.Send(`4293["publish",{"room":"r","event":"m","data":2}]`)
	if got := ca.Read(); !strings.Contains(got, `"code":"unavailable"`) {
		t.Fatalf("publish during the outage answered %s", got)
	}
	// The local member still got it: local delivery does not need Redis.
	if got := local.Read(); !strings.HasPrefix(got, `42["m",2`) {
		t.Fatalf("local member got %s during the outage", got)
	}
	if code, body := do(t, "POST", a.base+"/api/v1/emit", "api", `{"event":"x","rooms":["r"]}`); code != http.StatusServiceUnavailable {
		t.Fatalf("API emit during the outage: %d %v", code, body)
	}
	// A durable message that cannot be stored is refused, never dropped:
	// 503, and no user listed as having it.
	code, body := do(t, "POST", a.base+"/api/v1/emit", "api", `{"event":"x","users":["u"]}`)
	if ids, _ := body["ids"].(map[string]any); code != http.StatusServiceUnavailable || len(ids) != 0 {
		t.Fatalf("API emit to a user during the outage: %d %v", code, body)
	}
	ca.Read() // the local delivery of that emit
	ca.Send(`4294["publish",{"user":"u","event":"m","data":3}]`)
	if got := ca.Read(); !strings.Contains(got, `"code":"unavailable"`) {
		t.Fatalf("direct message during the outage answered %s", got)
	}

	rs.Restart()
	start := time.Now()
	waitReady(t, a, http.StatusOK)
	waitReady(t, b, http.StatusOK)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("ready again after %v", d)
	}
	// Redis lost the broadcast log (no persistence): the nodes cannot tell
	// what their sockets missed, so they close them to send them to
	// recovery. A client connects anew once B's tail has reported it (a
	// socket attached before that starts at a position before the gap).
	// A node also closes a socket whose user's stream Redis lost (its live
	// queue subscription cannot be filled without a gap), and the two
	// reports come in either order: like the official client, the test
	// connects again until a socket stays.
	cb.ExpectClosed()
	connectB := func() {
		t.Helper()
		for attempt := 0; ; attempt++ {
			cb = sitest.Dial(t, b.wsURL)
			cb.Connect("/", authPayload(tok))
			cb.Send(`4291["join","r"]`)
			if got := cb.Read(); got != `4391[{"ok":true}]` {
				t.Fatalf("join ack after the outage %s", got)
			}
			time.Sleep(500 * time.Millisecond)
			if stillOpen(cb) {
				return
			}
			if attempt == 10 {
				t.Fatal("every socket connected after the outage was closed")
			}
		}
	}
	connectB()
	// Cross-node delivery is back (retry until the re-subscription lands).
	// The later of the two reports can still close the socket here (on a
	// loaded machine it comes after the half second above): connect again.
	deadline := time.Now().Add(10 * time.Second)
	for seq := 3; ; seq++ {
		if time.Now().After(deadline) {
			t.Fatal("cross-node delivery did not come back")
		}
		if code, _ := do(t, "POST", a.base+"/api/v1/emit", "api", `{"event":"back","rooms":["r"],"except":["`+"none"+`"]}`); code == http.StatusOK {
			got, open := readOrClosed(cb)
			if !open {
				connectB()
				continue
			}
			if strings.HasPrefix(got, `42["back"`) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Durable delivery is back too, live on the other node.
	if code, body := do(t, "POST", a.base+"/api/v1/emit", "api", `{"event":"y","users":["u"]}`); code != http.StatusOK {
		t.Fatalf("API emit to a user after the outage: %d %v", code, body)
	}
	if got := cb.Read(); !strings.HasPrefix(got, `42["y","`) {
		t.Fatalf("other node got %s, want the durable message", got)
	}
}

// readOrClosed reads c's next message other than a ping (answered), or
// reports that the server closed it.
func readOrClosed(c *sitest.Client) (string, bool) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, b, err := c.Conn.Read(ctx)
		cancel()
		if err != nil {
			return "", false
		}
		if string(b) == "2" {
			c.Send("3")
			continue
		}
		return string(b), true
	}
}

// stillOpen asks c for an ack (a join of a room it is in) and reports
// whether the answer came, rather than the server's close.
func stillOpen(c *sitest.Client) bool {
	c.Send(`4292["join","r"]`)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, b, err := c.Conn.Read(ctx)
		cancel()
		if err != nil {
			return false
		}
		switch string(b) {
		case "2":
			c.Send("3")
		case `4392[{"ok":true}]`:
			return true
		}
	}
}

type nopRedisLogger struct{}

func (nopRedisLogger) Printf(_ context.Context, _ string, _ ...any) {}

func withNode(cfg Config, id string) Config { cfg.NodeID = id; return cfg }

func waitReady(t *testing.T, n *node, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := do(t, "GET", n.admin+"/readyz", "", "")
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz stayed %d, want %d", code, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
