package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/roomcast/roomcast/internal/redistest"
	"github.com/roomcast/roomcast/internal/sitest"
)

func refusals(t testing.TB, n *node, limit string) float64 {
	t.Helper()
	return testutil.ToFloat64(n.g.metrics.LimitRefusals.WithLabelValues(limit))
}

// flood sends count events on c and returns how many were not rate limited.
func flood(t testing.TB, c *sitest.Client, first, count int) int {
	t.Helper()
	for i := 0; i < count; i++ {
		c.Send(fmt.Sprintf(`42%d["nope"]`, first+i))
	}
	accepted := 0
	for i := 0; i < count; i++ {
		if got := c.Read(); !strings.Contains(got, `"rate_limited"`) {
			accepted++
		}
	}
	return accepted
}

// The budget is the user's: disconnecting and connecting again on the same
// websocket, or on a new one, does not refill it.
func TestEventRateFollowsTheUser(t *testing.T) {
	t.Parallel()
	n := start(t, Config{EventRate: 10})
	tok := authPayload(token(t, map[string]any{"sub": "flood"}))
	c := sitest.Dial(t, n.wsURL)
	start := time.Now()
	accepted := 0
	for round := 0; round < 4; round++ {
		c.Connect("/", tok)
		accepted += flood(t, c, round*100, 30)
		c.Send("41")
	}
	d := sitest.Dial(t, n.wsURL)
	d.Connect("/", tok)
	accepted += flood(t, d, 1000, 30)
	bound := 20 + 10*time.Since(start).Seconds() + 2
	if float64(accepted) > bound {
		t.Fatalf("%d events accepted, bound %.0f", accepted, bound)
	}
	if refusals(t, n, "event_rate") == 0 {
		t.Fatal("no event_rate refusal counted")
	}
	// Another user is not affected.
	o := sitest.Dial(t, n.wsURL)
	o.Connect("/", authPayload(token(t, map[string]any{"sub": "calm"})))
	o.Send(`421["nope"]`)
	if got := o.Read(); strings.Contains(got, "rate_limited") {
		t.Fatalf("another user was limited: %s", got)
	}
}

func TestIPEventRate(t *testing.T) {
	t.Parallel()
	n := start(t, Config{AllowAnonymous: true, EventRate: -1, IPEventRate: 10})
	accepted := 0
	for i := 0; i < 3; i++ {
		c := sitest.Dial(t, n.wsURL)
		c.Connect("/", `{}`)
		accepted += flood(t, c, 0, 20)
	}
	if accepted > 25 {
		t.Fatalf("%d anonymous events accepted from one IP, want about 20", accepted)
	}
	if refusals(t, n, "ip_event_rate") == 0 {
		t.Fatal("no ip_event_rate refusal counted")
	}
}

func TestEventRateOff(t *testing.T) {
	t.Parallel()
	n := start(t, Config{EventRate: -1, IPEventRate: -1})
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", authPayload(token(t, map[string]any{"sub": "u"})))
	if got := flood(t, c, 0, 500); got != 500 {
		t.Fatalf("%d of 500 accepted with the limits off", got)
	}
}

// Refused CONNECTs cost more, and over the limit the transport is closed.
func TestConnectRate(t *testing.T) {
	t.Parallel()
	n := start(t, Config{ConnectRate: 5})
	c := sitest.Dial(t, n.wsURL)
	answered := 0
	for i := 0; i < 50; i++ {
		c.Send(`40{"token":"not-a-token"}`)
		got := c.Read()
		if strings.Contains(got, "rate limited") {
			var v struct {
				Message string
				Data    struct {
					Code       string
					RetryAfter int64
				}
			}
			if err := json.Unmarshal([]byte(got[2:]), &v); err != nil || v.Data.Code != "rate_limited" || v.Data.RetryAfter <= 0 {
				t.Fatalf("CONNECT_ERROR %s", got)
			}
			c.ExpectClosed()
			break
		}
		answered++
	}
	if answered > 3 {
		t.Fatalf("%d bad-token CONNECTs answered", answered)
	}
	if refusals(t, n, "connect_rate") == 0 {
		t.Fatal("no connect_rate refusal counted")
	}
	// A new websocket from the same IP is still over the limit.
	d := sitest.Dial(t, n.wsURL)
	d.Send(`40{"token":"not-a-token"}`)
	if got := d.Read(); !strings.Contains(got, "rate limited") {
		t.Fatalf("after reconnecting: %s", got)
	}
}

func TestHandshakeRate(t *testing.T) {
	t.Parallel()
	n := start(t, Config{HandshakeRate: 2})
	url := n.base + "/socket.io/?EIO=4&transport=polling"
	var status int
	var body string
	var retry string
	for i := 0; i < 10; i++ {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		status, body, retry = resp.StatusCode, string(b), resp.Header.Get("Retry-After")
		if status != http.StatusOK {
			break
		}
	}
	if status != http.StatusTooManyRequests || body != `{"code":7,"message":"Too many requests"}` || retry == "" {
		t.Fatalf("handshake over the limit: %d %q Retry-After %q", status, body, retry)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, n.wsURL, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("websocket handshake over the limit: %v %v", err, resp)
	}
	if refusals(t, n, "handshake_rate") == 0 {
		t.Fatal("no handshake_rate refusal counted")
	}
}

// connectErr sends a CONNECT and returns the reply.
func connectReply(c *sitest.Client, auth string) string {
	c.Send("40" + auth)
	return c.Read()
}

func TestConnsPerUser(t *testing.T) {
	t.Parallel()
	n := start(t, Config{MaxConnsPerUser: 2})
	tok := authPayload(token(t, map[string]any{"sub": "capped"}))
	a := sitest.Dial(t, n.wsURL)
	a.Connect("/", tok)
	b := sitest.Dial(t, n.wsURL)
	b.Connect("/", tok)
	c := sitest.Dial(t, n.wsURL)
	if got := connectReply(c, tok); got != `44{"data":{"code":"too_many_connections"},"message":"too many connections"}` {
		t.Fatalf("third socket: %s", got)
	}
	if refusals(t, n, "conns_per_user") != 1 {
		t.Fatal("conns_per_user not counted")
	}
	// Another user is not affected; a disconnect gives the place back.
	c.Connect("/", authPayload(token(t, map[string]any{"sub": "other"})))
	a.Send("41")
	d := sitest.Dial(t, n.wsURL)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := connectReply(d, tok)
		if strings.HasPrefix(got, `40{`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the released place was not given back: %s", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConnsPerIP(t *testing.T) {
	t.Parallel()
	n := start(t, Config{AllowAnonymous: true, MaxConnsPerIP: 3})
	for i := 0; i < 3; i++ {
		sitest.Dial(t, n.wsURL).Connect("/", `{}`)
	}
	c := sitest.Dial(t, n.wsURL)
	if got := connectReply(c, `{}`); !strings.Contains(got, "too many connections") {
		t.Fatalf("fourth socket from one IP: %s", got)
	}
	if refusals(t, n, "conns_per_ip") != 1 {
		t.Fatal("conns_per_ip not counted")
	}
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{JWTSecret: secret, TrustedProxies: []string{"10.0.0.0/33"}}, nil); err == nil {
		t.Fatal("an invalid CIDR was accepted")
	}
	n := start(t, Config{AllowAnonymous: true, MaxConnsPerIP: 1, TrustedProxies: []string{"127.0.0.1/32"}})
	dial := func(xff string) *websocket.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, n.wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"X-Forwarded-For": {xff}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	wrap := func(c *websocket.Conn) *sitest.Client {
		sc := &sitest.Client{T: t, Conn: c}
		sc.Read() // OPEN
		return sc
	}
	// Behind the trusted proxy, two clients have their own caps...
	wrap(dial("203.0.113.1")).Connect("/", `{}`)
	wrap(dial("203.0.113.2")).Connect("/", `{}`)
	// ...and the same client does not get a second socket.
	if got := connectReply(wrap(dial("198.51.100.9, 203.0.113.1")), `{}`); !strings.Contains(got, "too many connections") {
		t.Fatalf("second socket of 203.0.113.1: %s", got)
	}
}

// With Redis, a user's connection cap holds across nodes, and a place
// released on one node is free on the other.
func TestConnsPerUserAcrossNodes(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	cfg := Config{Redis: rs.URL(), Origins: []string{"*"}, MaxConnsPerUser: 1}
	a, b := start(t, cfg), start(t, cfg)
	tok := authPayload(token(t, map[string]any{"sub": "roamer"}))
	ca := sitest.Dial(t, a.wsURL)
	ca.Connect("/", tok)
	cb := sitest.Dial(t, b.wsURL)
	if got := connectReply(cb, tok); !strings.Contains(got, "too many connections") {
		t.Fatalf("second node admitted the user's second socket: %s", got)
	}
	ca.Send("41")
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := connectReply(cb, tok)
		if strings.HasPrefix(got, `40{`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the place released on node a was not free on node b: %s", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A client recovering its session before this node noticed that its
// previous socket died is not refused by its own cap, and the superseded
// socket's place is given back.
func TestConnsPerUserRecoverySupersedes(t *testing.T) {
	t.Parallel()
	n := start(t, Config{MaxConnsPerUser: 1})
	tok := authPayload(token(t, map[string]any{"sub": "phoenix"}))
	old := sitest.Dial(t, n.wsURL)
	old.Send("40" + tok)
	var first struct{ SID, PID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(old.Read(), "40")), &first); err != nil || first.PID == "" {
		t.Fatalf("CONNECT reply without pid: %+v %v", first, err)
	}
	back := sitest.Dial(t, n.wsURL)
	if got := connectReply(back, strings.TrimSuffix(tok, "}")+fmt.Sprintf(`,"pid":%q}`, first.PID)); got != fmt.Sprintf(`40{"pid":%q,"sid":%q}`, first.PID, first.SID) {
		t.Fatalf("recovering CONNECT: %s", got)
	}
	old.ExpectClosed()
	// One socket counted, not two: a third is refused, after the recovered
	// one leaves a new one is admitted.
	third := sitest.Dial(t, n.wsURL)
	if got := connectReply(third, tok); !strings.Contains(got, "too many connections") {
		t.Fatalf("second socket next to the recovered one: %s", got)
	}
	back.Send("41")
	waitFor(t, "a free place", func() bool {
		c := sitest.Dial(t, n.wsURL)
		return strings.HasPrefix(connectReply(c, tok), "40{")
	})
}
