package redisadapter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/adapter/redisadapter"
	"github.com/roomcast/roomcast/internal/leakcheck"
	"github.com/roomcast/roomcast/internal/sitest"
	"github.com/roomcast/roomcast/metrics"
	"github.com/roomcast/roomcast/socketio"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quietRedis{}) // dial failures are expected in the fault tests
	leakcheck.VerifyTestMain(m)
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// kind selects the adapter a test fleet runs.
type kind struct {
	name string
	mode redisadapter.Mode
}

var (
	classic = kind{"classic", redisadapter.Classic}
	sharded = kind{"sharded", redisadapter.Sharded}
)

// node is one in-process Roomcast node: a socketio.Server with its own
// adapter over its own go-redis client, behind an httptest server.
type node struct {
	t       testing.TB
	name    string
	srv     *socketio.Server
	mgr     *redisadapter.Cluster
	client  redis.UniversalClient
	metrics *metrics.Metrics
	url     string

	stopOnce sync.Once
	stopFn   func()
}

// fleetConfig describes a test fleet.
type fleetConfig struct {
	kind   kind
	prefix string
	// newClient makes the go-redis client of the node called name.
	newClient func(name string) redis.UniversalClient
	// setup runs on each node's server before it serves.
	setup func(n *node)
	// requestTimeout of the adapters; 0 for the default.
	requestTimeout time.Duration
	// recovery, when set, gives the node called name connection state
	// recovery.
	recovery func(name string) *socketio.Recovery
}

// startFleet starts n nodes named n0, n1, ... and waits until each is Ready.
func startFleet(t testing.TB, n int, cfg fleetConfig) []*node {
	t.Helper()
	if cfg.prefix == "" {
		cfg.prefix = "rc-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	}
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = startNode(t, fmt.Sprintf("n%d", i), cfg)
	}
	for _, nd := range nodes {
		nd.waitReady()
	}
	// Every node sees the others (subscriptions are live everywhere).
	waitFor(t, "server count", func() bool {
		c, err := nodes[0].srv.Sockets().ServerCount(context.Background())
		return err == nil && c == n
	})
	return nodes
}

func startNode(t testing.TB, name string, cfg fleetConfig) *node {
	t.Helper()
	reg := prometheus.NewRegistry()
	mt, err := metrics.New(reg, metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	client := cfg.newClient(name)
	log := testLogger(t).With("test-node", name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mgr, err := redisadapter.New(ctx, redisadapter.Config{
		Client: client, Mode: cfg.kind.mode,
		Prefix: cfg.prefix, Node: name, Metrics: mt, Logger: log,
		RequestTimeout: cfg.requestTimeout, HeartbeatInterval: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	scfg := socketio.Config{Adapter: mgr.Factory(), Node: name, Metrics: mt, Logger: log}
	if cfg.recovery != nil {
		scfg.Recovery = cfg.recovery(name)
	}
	srv, err := socketio.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	nd := &node{t: t, name: name, srv: srv, mgr: mgr, client: client, metrics: mt}
	if cfg.setup != nil {
		cfg.setup(nd)
	}
	hs := httptest.NewServer(srv)
	nd.url = "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	nd.stopFn = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
		_ = mgr.Close()
		_ = client.Close()
	}
	t.Cleanup(nd.stop)
	return nd
}

// stop shuts the node down: server, adapter, Redis client.
func (n *node) stop() { n.stopOnce.Do(n.stopFn) }

func (n *node) waitReady() {
	n.t.Helper()
	waitForWithin(n.t, 10*time.Second, n.name+" ready", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return n.mgr.Ready(ctx) == nil
	})
}

func (n *node) nsp() *socketio.Namespace { return n.srv.Sockets() }

// client is a raw Socket.IO client connected to "/" on a node.
type client struct {
	*sitest.Client
	sid  string
	node *node
}

// dial connects a client to n and joins it to rooms (server side).
func (n *node) dial(rooms ...string) *client {
	n.t.Helper()
	c := &client{Client: sitest.Dial(n.t, n.url), node: n}
	c.sid = c.Connect("/", "")
	if len(rooms) > 0 {
		s, ok := n.nsp().Socket(c.sid)
		if !ok {
			n.t.Fatalf("socket %s not found on %s", c.sid, n.name)
		}
		if err := s.Join(rooms...); err != nil {
			n.t.Fatal(err)
		}
	}
	return c
}

// event reads the next EVENT and returns its name and arguments (binary
// attachments resolved into []byte) and ack id (-1 when none).
func (c *client) event() (name string, args []any, ackID int64) {
	c.T.Helper()
	text := c.Read()
	if !strings.HasPrefix(text, "42") && !strings.HasPrefix(text, "45") {
		c.T.Fatalf("%s: got %q, want an EVENT", c.node.name, text)
	}
	rest := text[2:]
	nAtt := 0
	if text[1] == '5' {
		dash := strings.IndexByte(rest, '-')
		nAtt, _ = strconv.Atoi(rest[:dash])
		rest = rest[dash+1:]
	}
	ackID = -1
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i > 0 {
		ackID, _ = strconv.ParseInt(rest[:i], 10, 64)
	}
	var atts [][]byte
	for range nAtt {
		typ, b := c.ReadFrame()
		if typ != websocket.MessageBinary {
			c.T.Fatalf("attachment is not binary: %q", b)
		}
		atts = append(atts, b)
	}
	var raw []any
	dec := json.NewDecoder(strings.NewReader(rest[i:]))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || len(raw) == 0 {
		c.T.Fatalf("event payload %q: %v", rest[i:], err)
	}
	for j, a := range raw {
		raw[j] = resolvePlaceholders(a, atts)
	}
	name, _ = raw[0].(string)
	return name, raw[1:], ackID
}

func resolvePlaceholders(v any, atts [][]byte) any {
	switch x := v.(type) {
	case map[string]any:
		if ph, _ := x["_placeholder"].(bool); ph && len(atts) > 0 {
			n, _ := x["num"].(json.Number).Int64()
			return atts[n]
		}
		for k, el := range x {
			x[k] = resolvePlaceholders(el, atts)
		}
	case []any:
		for i, el := range x {
			x[i] = resolvePlaceholders(el, atts)
		}
	}
	return v
}

// expect reads the next EVENT and checks its name and its first argument's
// JSON form.
func (c *client) expect(name string, arg0 string) {
	c.T.Helper()
	got, args, _ := c.event()
	if got != name {
		c.T.Fatalf("%s/%s: event %q %v, want %q", c.node.name, c.sid, got, args, name)
	}
	if arg0 != "" {
		b, _ := json.Marshal(args[0])
		if string(b) != arg0 {
			c.T.Fatalf("%s/%s: %s(%s), want %s(%s)", c.node.name, c.sid, name, b, name, arg0)
		}
	}
}

// expectSilence checks that nothing arrives for d. It closes the
// connection (coder/websocket does when a read is cancelled): call it last.
func (c *client) expectSilence(d time.Duration) {
	c.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		typ, b, err := c.Conn.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageText && string(b) == "2" {
			continue
		}
		c.T.Fatalf("%s/%s: unexpected %q", c.node.name, c.sid, b)
	}
}

// ack answers an EVENT's ack id with args (JSON array text).
func (c *client) ack(id int64, argsJSON string) {
	c.T.Helper()
	c.Send("43" + strconv.FormatInt(id, 10) + argsJSON)
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitForWithin(t, 5*time.Second, what, cond)
}

func waitForWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func remoteBroadcasts(n *node) float64 {
	return testutil.ToFloat64(n.metrics.Broadcasts.WithLabelValues("remote"))
}

// remoteBroadcastsSince returns how many remote broadcasts n has counted
// since base, once it has counted at least want: the adapter counts a
// broadcast after handing it to its sockets, so a client can have it before
// the counter moves.
func remoteBroadcastsSince(t testing.TB, n *node, base, want float64) float64 {
	t.Helper()
	waitFor(t, fmt.Sprintf("%v remote broadcasts counted", want), func() bool { return remoteBroadcasts(n)-base >= want })
	return remoteBroadcasts(n) - base
}

func redisErrors(n *node, op string) float64 {
	return testutil.ToFloat64(n.metrics.RedisErrors.WithLabelValues(op))
}

// testLogger logs through t.Logf until the test ends.
func testLogger(t testing.TB) *slog.Logger {
	st := &tbState{t: t}
	t.Cleanup(func() {
		st.mu.Lock()
		st.done = true
		st.mu.Unlock()
	})
	return slog.New(&tbHandler{st: st})
}

type tbState struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

type tbHandler struct {
	st    *tbState
	attrs []slog.Attr
}

func (h *tbHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *tbHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range h.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	if !h.st.done {
		h.st.t.Log(b.String())
	}
	return nil
}

func (h *tbHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &tbHandler{st: h.st, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *tbHandler) WithGroup(string) slog.Handler { return h }
