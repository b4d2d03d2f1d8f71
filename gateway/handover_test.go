package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/roomcast/roomcast/hook"
)

// wsProbe is a raw Engine.IO websocket upgrade of p's session through
// base.
type wsProbe struct {
	t   *testing.T
	ctx context.Context
	ws  *websocket.Conn
}

func dialUpgrade(t *testing.T, base, sid string) *wsProbe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/socket.io/?EIO=4&transport=websocket&sid="+sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &wsProbe{t: t, ctx: ctx, ws: ws}
}

func (w *wsProbe) write(s string) {
	w.t.Helper()
	if err := w.ws.Write(w.ctx, websocket.MessageText, []byte(s)); err != nil {
		w.t.Fatal(err)
	}
}

// read returns the next message that is not a ping (answered).
func (w *wsProbe) read() string {
	w.t.Helper()
	for {
		_, m, err := w.ws.Read(w.ctx)
		if err != nil {
			w.t.Fatal(err)
		}
		if string(m) != "2" {
			return string(m)
		}
		w.write("3")
	}
}

func apiEmit(t *testing.T, n *node, room, arg string) {
	t.Helper()
	code, _ := do(t, http.MethodPost, n.base+"/api/v1/emit", "api", `{"event":"news","rooms":["`+room+`"],"args":["`+arg+`"]}`)
	if code != http.StatusOK {
		t.Fatalf("emit %s: %d", arg, code)
	}
}

// TestHandoverOnUpgrade: the websocket upgrade of a polling session held
// by node a lands on node b, which takes the session over: the pending
// GET on a gets its noop, what a had queued and not sent arrives first on
// the websocket, what was broadcast while the session moved follows, once
// and in order; the socket keeps its id and rooms and lives on b alone.
func TestHandoverOnUpgrade(t *testing.T) {
	nodes := startForwardingCfg(t, 2, Config{APIToken: "api"})
	a, b := nodes[0], nodes[1]
	p := newPollClient(t)
	p.handshake(a.base)
	p.do(http.MethodPost, b.base, "40", nil)
	_, connect := p.do(http.MethodGet, b.base, "", nil)
	if !strings.HasPrefix(connect, `40{"`) {
		t.Fatalf("CONNECT reply %q", connect)
	}
	p.do(http.MethodPost, a.base, `421["join","r"]`, nil)
	if _, ack := p.do(http.MethodGet, a.base, "", nil); !strings.HasPrefix(ack, `431[{"ok":true`) {
		t.Fatalf("join ack %q", ack)
	}
	socks := a.g.sio.Sockets().LocalSockets()
	if len(socks) != 1 {
		t.Fatalf("a holds %d sockets", len(socks))
	}
	sockID, pid := socks[0].ID(), socks[0].PID()

	// A GET pending on a (through b, as a load balancer would send it).
	pending := make(chan string, 1)
	go func() {
		_, body := p.do(http.MethodGet, b.base, "", nil)
		pending <- body
	}()
	time.Sleep(100 * time.Millisecond)

	w := dialUpgrade(t, b.base, p.sid)
	w.write("2probe")
	if m := w.read(); m != "3probe" {
		t.Fatalf("probe answered %q", m)
	}
	select {
	case body := <-pending:
		if body != "6" {
			t.Fatalf("pending GET answered %q, want a noop", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the pending GET was not answered after the probe")
	}
	// Paused: what is emitted now queues on a, unsent.
	apiEmit(t, a, "r", "queued")
	w.write("5")
	apiEmit(t, a, "r", "moved") // while the session moves, or after
	for _, want := range []string{"queued", "moved"} {
		if m := w.read(); !strings.HasPrefix(m, `42["news","`+want+`"`) {
			t.Fatalf("got %q, want news %q", m, want)
		}
	}
	w.write(`422["join","r2"]`)
	if m := w.read(); !strings.HasPrefix(m, `432[{"ok":true`) {
		t.Fatalf("after the upgrade: %q, want the join ack", m)
	}
	apiEmit(t, b, "r", "live")
	if m := w.read(); !strings.HasPrefix(m, `42["news","live"`) {
		t.Fatalf("got %q, want news live", m)
	}

	waitFor(t, "the session gone from a", func() bool { return a.g.sio.ConnCount() == 0 })
	if n := b.g.sio.ConnCount(); n != 1 {
		t.Fatalf("b holds %d sessions, want 1", n)
	}
	s, ok := b.g.sio.Sockets().Socket(sockID)
	if !ok {
		t.Fatalf("socket %s not on b", sockID)
	}
	if s.PID() != pid || !s.InRoom("r") || !s.InRoom("r2") || !s.HandedOver() || s.Transport() != "websocket" {
		t.Fatalf("socket on b: pid %q (want %q), rooms %v, handed over %v, transport %s", s.PID(), pid, s.Rooms(), s.HandedOver(), s.Transport())
	}
	if in, out := testutil.ToFloat64(b.g.metrics.Handovers.WithLabelValues("in")), testutil.ToFloat64(a.g.metrics.Handovers.WithLabelValues("out")); in != 1 || out != 1 {
		t.Fatalf("handovers: %v in on b, %v out on a; want 1 and 1", in, out)
	}
	// A polling request for the old session on a: it is gone.
	if code, _ := p.do(http.MethodGet, a.base, "", nil); code != http.StatusBadRequest {
		t.Fatalf("polling the handed-over session on a: %d, want 400", code)
	}
}

// TestHandoverCarriesPendingAcks: an event the backend is still answering
// when the upgrade lands on another node: the handover waits for the
// answer, and its ack reaches the client on the websocket.
func TestHandoverCarriesPendingAcks(t *testing.T) {
	release := make(chan struct{})
	url := backend(t, &hook.Handler{OnEvent: func(_ context.Context, req *hook.EventRequest) (*hook.EventResponse, error) {
		<-release
		return &hook.EventResponse{Ack: []any{"answered"}}, nil
	}})
	nodes := startForwardingCfg(t, 2, Config{Webhook: url, HookSecret: hookSecret})
	a, b := nodes[0], nodes[1]
	p := newPollClient(t)
	p.handshake(a.base)
	p.do(http.MethodPost, a.base, "40", nil)
	p.do(http.MethodGet, a.base, "", nil) // the CONNECT reply
	p.do(http.MethodPost, a.base, `427["slow"]`, nil)

	w := dialUpgrade(t, b.base, p.sid)
	w.write("2probe")
	if m := w.read(); m != "3probe" {
		t.Fatalf("probe answered %q", m)
	}
	w.write("5")
	time.AfterFunc(200*time.Millisecond, func() { close(release) })
	if m := w.read(); m != `437["answered"]` {
		t.Fatalf("got %q, want the webhook's ack", m)
	}
	waitFor(t, "the session on b", func() bool { return a.g.sio.ConnCount() == 0 && b.g.sio.ConnCount() == 1 })
}

// TestHandoverEndpointNeedsTheSecret: only a node can ask for a session:
// without the cluster secret (or with a wrong one) the owner refuses, and
// the session goes on.
func TestHandoverEndpointNeedsTheSecret(t *testing.T) {
	nodes := startForwarding(t, 1)
	a := nodes[0]
	p := newPollClient(t)
	p.handshake(a.base)
	p.do(http.MethodPost, a.base, "40", nil)
	for _, phase := range []string{"begin", "take"} {
		for _, h := range []http.Header{nil, {forwardHeader: {"guess"}}} {
			req, _ := http.NewRequest(http.MethodPost, a.base+handoverPath+"?phase="+phase+"&sid="+p.sid, nil)
			for k, v := range h {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%s with header %v: %d, want 403", phase, h, resp.StatusCode)
			}
		}
	}
	if n := testutil.ToFloat64(a.g.fwd.requests.WithLabelValues(fwdForbidden)); n != 4 {
		t.Fatalf("forbidden counted %v, want 4", n)
	}
	if code, body := p.do(http.MethodGet, a.base, "", nil); code != http.StatusOK || !strings.HasPrefix(body, "40{") {
		t.Fatalf("the session after the attempts: %d %q", code, body)
	}
}
