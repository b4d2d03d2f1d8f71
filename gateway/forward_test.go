package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/internal/redistest"
)

// pollClient is a raw Engine.IO polling client that sends each request to
// the node its caller names, as a round-robin load balancer would.
type pollClient struct {
	t   testing.TB
	hc  *http.Client
	sid string
}

func newPollClient(t testing.TB) *pollClient {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &pollClient{t: t, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (p *pollClient) do(method, base, body string, header http.Header) (int, string) {
	p.t.Helper()
	u := base + "/socket.io/?EIO=4&transport=polling"
	if p.sid != "" {
		u += "&sid=" + p.sid
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// handshake opens a session on base and keeps its sid.
func (p *pollClient) handshake(base string) {
	p.t.Helper()
	code, body := p.do(http.MethodGet, base, "", nil)
	if code != http.StatusOK || !strings.HasPrefix(body, "0{") {
		p.t.Fatalf("handshake: %d %q", code, body)
	}
	var open struct{ SID string }
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
		p.t.Fatal(err)
	}
	p.sid = open.SID
}

// startForwarding starts n nodes sharing one Redis, polling allowed.
func startForwarding(t *testing.T, n int) []*node {
	t.Helper()
	return startForwardingCfg(t, n, Config{})
}

// startForwardingCfg is startForwarding with cfg's other settings.
func startForwardingCfg(t testing.TB, n int, cfg Config) []*node {
	t.Helper()
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	redis.SetLogger(nopRedisLogger{})
	rs := redistest.Start(t)
	nodes := make([]*node, n)
	for i := range nodes {
		c := cfg
		c.Redis, c.Origins, c.AllowAnonymous = rs.URL(), []string{"*"}, true
		nodes[i] = start(t, c)
	}
	return nodes
}

// TestForwardPollingToOwner: a polling session opened on one node is served
// through any other: POSTs and long-polling GETs are forwarded to the owner,
// whose answers come back unchanged.
func TestForwardPollingToOwner(t *testing.T) {
	nodes := startForwarding(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	p := newPollClient(t)
	p.handshake(a.base)

	if code, body := p.do(http.MethodPost, b.base, "40", nil); code != http.StatusOK || body != "ok" {
		t.Fatalf("POST CONNECT through b: %d %q", code, body)
	}
	code, body := p.do(http.MethodGet, c.base, "", nil)
	if code != http.StatusOK || !strings.HasPrefix(body, `40{`) || !strings.Contains(body, `"sid"`) {
		t.Fatalf("GET through c: %d %q, want the CONNECT reply", code, body)
	}
	// A long-polling GET through b waits on a for what is sent later: an
	// ack to an event POSTed through c.
	got := make(chan string, 1)
	go func() {
		_, body := p.do(http.MethodGet, b.base, "", nil)
		got <- body
	}()
	time.Sleep(100 * time.Millisecond) // let the GET be pending on a
	if code, body := p.do(http.MethodPost, c.base, `421["join","r"]`, nil); code != http.StatusOK || body != "ok" {
		t.Fatalf("POST join through c: %d %q", code, body)
	}
	select {
	case body := <-got:
		if !strings.HasPrefix(body, `431[{"ok":true`) {
			t.Fatalf("pending GET through b got %q, want the join ack", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pending GET through b never answered")
	}
	if n := a.g.sio.ConnCount(); n != 1 {
		t.Fatalf("owner holds %d sessions, want 1", n)
	}
	if b.g.sio.ConnCount()+c.g.sio.ConnCount() != 0 {
		t.Fatal("a forwarding node opened a session")
	}
	sent := testutil.ToFloat64(b.g.fwd.requests.WithLabelValues(fwdSent)) + testutil.ToFloat64(c.g.fwd.requests.WithLabelValues(fwdSent))
	if received := testutil.ToFloat64(a.g.fwd.requests.WithLabelValues(fwdReceived)); sent != 4 || received != 4 {
		t.Fatalf("forwarded requests: %v sent by b and c, %v received by a; want 4 and 4", sent, received)
	}
}

// TestForwardRefusesForgedHeader: a client cannot pass for a forwarding
// node: a wrong secret is refused before the engine sees the request.
func TestForwardRefusesForgedHeader(t *testing.T) {
	nodes := startForwarding(t, 2)
	p := newPollClient(t)
	p.handshake(nodes[0].base)
	code, body := p.do(http.MethodGet, nodes[1].base, "", http.Header{forwardHeader: {"guess"}})
	if code != http.StatusForbidden || !strings.Contains(body, `"code":4`) {
		t.Fatalf("forged forward: %d %q, want 403 code 4", code, body)
	}
	if n := testutil.ToFloat64(nodes[1].g.fwd.requests.WithLabelValues(fwdForbidden)); n != 1 {
		t.Fatalf("forbidden forwards counted %v, want 1", n)
	}
}

// TestForwardOwnerGone: once the owner is gone its sessions are unknown
// everywhere, so the client reconnects.
func TestForwardOwnerGone(t *testing.T) {
	nodes := startForwarding(t, 2)
	a, b := nodes[0], nodes[1]
	p := newPollClient(t)
	p.handshake(a.base)
	p.do(http.MethodPost, b.base, "40", nil) // b caches the owner
	if err := a.g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, body := p.do(http.MethodGet, b.base, "", nil)
	if code != http.StatusBadRequest || !strings.Contains(body, `"code":1`) {
		t.Fatalf("GET after the owner left: %d %q, want 400 Session ID unknown", code, body)
	}
	if n := testutil.ToFloat64(b.g.fwd.requests.WithLabelValues(fwdOwnerGone)); n != 1 {
		t.Fatalf("owner_gone counted %v, want 1", n)
	}
}

func TestSIDParam(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]string{
		"EIO=4&transport=polling&sid=abc-_1": "abc-_1",
		"sid=a%2Bb&EIO=4":                    "a+b",
		"EIO=4&transport=polling":            "",
		"xsid=1":                             "",
	} {
		if got := sidParam(q); got != want {
			t.Errorf("sidParam(%q) = %q, want %q", q, got, want)
		}
	}
}
