package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/internal/sitest"
)

// TestRoomRecoveryOnRedisCluster: on Redis Cluster with the sharded
// adapter, a client that reconnects to the other node is recovered with
// the room broadcasts it missed, before its CONNECT reply, then live ones.
func TestRoomRecoveryOnRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	redis.SetLogger(nopRedisLogger{})
	c := redistest.StartCluster(t)
	cfg := Config{Redis: strings.Join(c.Addrs(), ","), Adapter: "sharded", Origins: []string{"*"}, APIToken: "api"}
	a, b := start(t, withNode(cfg, "a")), start(t, withNode(cfg, "b"))
	tok := authPayload(token(t, map[string]any{"sub": "u", "join": []string{"*"}}))

	cl := sitest.Dial(t, a.wsURL)
	cl.Send("40" + tok)
	var first struct{ SID, PID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(cl.Read(), "40")), &first); err != nil || first.PID == "" {
		t.Fatalf("CONNECT reply without pid: %+v %v", first, err)
	}
	cl.Send(`421["join","room:x"]`)
	if got := cl.Read(); got != `431[{"ok":true}]` {
		t.Fatalf("join: %s", got)
	}
	time.Sleep(300 * time.Millisecond) // the session saved after the join (issue 16)
	emit := func(n *node, v int) {
		t.Helper()
		if code, body := do(t, "POST", n.base+"/api/v1/emit", "api", fmt.Sprintf(`{"event":"m","rooms":["room:x"],"args":[%d]}`, v)); code != http.StatusOK {
			t.Fatalf("emit %d: %d %v", v, code, body)
		}
	}
	emit(b, 1)
	got, offset := readEvent(t, cl)
	if got != `42["m",1]` {
		t.Fatalf("live: %s", got)
	}
	cl.Conn.Close(websocket.StatusGoingAway, "")
	waitFor(t, "gone", func() bool { _, ok := a.g.Server().Sockets().Socket(first.SID); return !ok })
	time.Sleep(100 * time.Millisecond) // the session saved at the disconnect (issue 16)
	emit(a, 2)
	emit(b, 3)

	back := sitest.Dial(t, b.wsURL)
	back.Send("40" + strings.TrimSuffix(tok, "}") + fmt.Sprintf(`,"pid":%q,"offset":%q}`, first.PID, offset))
	for _, want := range []string{`42["m",2]`, `42["m",3]`} {
		if got, _ := readEvent(t, back); got != want {
			t.Fatalf("missed broadcast %s, want %s", got, want)
		}
	}
	if got := back.Read(); got != fmt.Sprintf(`40{"pid":%q,"sid":%q}`, first.PID, first.SID) {
		t.Fatalf("CONNECT reply %s, want the old session", got)
	}
	emit(a, 4)
	if got, _ := readEvent(t, back); got != `42["m",4]` {
		t.Fatalf("live after recovery: %s", got)
	}
}
