package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/roomcast/roomcast/internal/sitest"
)

// cluster is one scripts/cluster.sh topology on free loopback ports.
type cluster struct {
	root, script, dir string
	env               []string
	redis, lb, stats  int
	prom              int // 0: Prometheus off
	gateways, admins  [3]int
	http              *http.Client
}

// newCluster prepares (does not start) a cluster with its own state
// directory, ports and a gateway built like the Docker image's.
func newCluster(t *testing.T, prometheus bool) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the cluster test starts redis-server, three gateways and haproxy")
	}
	need(t, "redis-server")
	need(t, "haproxy")
	need(t, "setsid")
	if prometheus {
		need(t, "prometheus")
	}
	root := repoRoot(t)
	p := freePorts(t, 10)
	c := &cluster{
		root: root, script: filepath.Join(root, "scripts", "cluster.sh"), dir: t.TempDir(),
		redis: p[0], lb: p[1], stats: p[2],
		gateways: [3]int{p[3], p[4], p[5]}, admins: [3]int{p[6], p[7], p[8]},
	}
	promSetting := "off"
	if prometheus {
		c.prom, promSetting = p[9], "auto"
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c.http = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	c.env = []string{
		"CLUSTER_DIR=" + c.dir,
		"GATEWAY_BIN=" + buildGateway(t),
		"REDIS_PORT=" + strconv.Itoa(c.redis),
		fmt.Sprintf("GATEWAY_PORTS=%d %d %d", c.gateways[0], c.gateways[1], c.gateways[2]),
		fmt.Sprintf("ADMIN_PORTS=%d %d %d", c.admins[0], c.admins[1], c.admins[2]),
		"LB_PORT=" + strconv.Itoa(c.lb),
		"STATS_PORT=" + strconv.Itoa(c.stats),
		"PROMETHEUS_PORT=" + strconv.Itoa(p[9]),
		"PROMETHEUS=" + promSetting,
		"JWT_SECRET=e2e-secret",
		"API_TOKEN=e2e-token",
	}
	return c
}

func (c *cluster) ports() []int {
	ps := []int{c.redis, c.lb, c.stats}
	ps = append(ps, c.gateways[:]...)
	ps = append(ps, c.admins[:]...)
	if c.prom != 0 {
		ps = append(ps, c.prom)
	}
	return ps
}

// logs returns the tail of every process log, for failure messages.
func (c *cluster) logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(c.dir, "logs", "*.log"))
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(&b, "==> %s\n%s\n", filepath.Base(f), strings.Join(lines, "\n"))
	}
	return b.String()
}

// stop runs `cluster.sh stop` and checks that every port is released and no
// pid file is left.
func (c *cluster) stop(t *testing.T) {
	t.Helper()
	out, err := runErr(2*time.Minute, c.root, c.env, c.script, "stop")
	if err != nil {
		t.Errorf("cluster.sh stop: %v\n%s", err, out)
	}
	c.expectStopped(t)
}

func (c *cluster) expectStopped(t *testing.T) {
	t.Helper()
	for _, p := range c.ports() {
		if !eventually(10*time.Second, func() bool { return !listening(p) }) {
			t.Errorf("port %d still accepts connections after stop", p)
		}
	}
	if pids, _ := filepath.Glob(filepath.Join(c.dir, "pids", "*.pid")); len(pids) > 0 {
		t.Errorf("pid files left after stop: %v", pids)
	}
}

func listening(port int) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) url(port int, path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
}

// get returns the status, body and X-Roomcast-Server header of a GET.
func (c *cluster) get(t testing.TB, u string) (int, string, string) {
	t.Helper()
	return c.do(t, http.MethodGet, u, "", nil)
}

func (c *cluster) do(t testing.TB, method, u, contentType string, body []byte) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if strings.Contains(u, "/api/v1/") {
		req.Header.Set("Authorization", "Bearer e2e-token")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return resp.StatusCode, string(b), resp.Header.Get("X-Roomcast-Server")
}

// dial opens a raw Socket.IO websocket through HAProxy and returns the client
// and the HAProxy server that took it. A new session's OPEN packet is read;
// an upgrade (sid != "") gets none.
// auth returns a CONNECT auth payload with a token for user from
// `cluster.sh token`.
func (c *cluster) auth(t testing.TB, user string) string {
	t.Helper()
	out, err := runErr(time.Minute, c.root, c.env, c.script, "token", user)
	if err != nil {
		t.Fatalf("cluster.sh token %s: %v\n%s", user, err, out)
	}
	tok := strings.TrimSpace(out)
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("cluster.sh token %s printed %q, want a JWT", user, out)
	}
	return fmt.Sprintf(`{"token":%q}`, tok)
}

func (c *cluster) dial(t testing.TB, sid string) (*sitest.Client, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := fmt.Sprintf("ws://127.0.0.1:%d/socket.io/?EIO=4&transport=websocket", c.lb)
	if sid != "" {
		u += "&sid=" + url.QueryEscape(sid)
	}
	conn, resp, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	conn.SetReadLimit(1 << 20)
	server := resp.Header.Get("X-Roomcast-Server")
	if server == "" {
		t.Fatalf("no X-Roomcast-Server header on the upgrade response: %v", resp.Header)
	}
	cl := &sitest.Client{T: t, Conn: conn}
	if sid == "" {
		if open := cl.Read(); !strings.HasPrefix(open, "0{") {
			t.Fatalf("first frame %q, want OPEN", open)
		}
	}
	return cl, server
}

// expect reads frames until one starts with prefix (others are skipped: pings
// are answered by sitest, events for other tests may arrive).
func expect(t testing.TB, c *sitest.Client, prefix string) string {
	t.Helper()
	var seen []string
	for range 20 {
		f := c.Read()
		if strings.HasPrefix(f, prefix) {
			return f
		}
		seen = append(seen, f)
	}
	t.Fatalf("no frame starting with %q; got %q", prefix, seen)
	return ""
}

// TestClusterEndToEnd starts the `make cluster` topology with
// scripts/cluster.sh start, talks to it through HAProxy, and stops it.
func TestClusterEndToEnd(t *testing.T) {
	c := newCluster(t, true)
	out, err := runErr(2*time.Minute, c.root, c.env, c.script, "start")
	t.Cleanup(func() { c.stop(t) })
	if err != nil {
		t.Fatalf("cluster.sh start: %v\n%s\n%s", err, out, c.logs())
	}
	for _, want := range []string{
		c.url(c.lb, "/"), c.url(c.stats, "/"), c.url(c.prom, "/"),
		fmt.Sprintf("redis://127.0.0.1:%d", c.redis),
		c.url(c.admins[0], "/metrics"), c.url(c.admins[2], "/readyz"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster.sh start did not print %s:\n%s", want, out)
		}
	}
	if out, err := runErr(time.Minute, c.root, c.env, c.script, "start"); err == nil {
		t.Errorf("a second cluster.sh start succeeded:\n%s", out)
	}
	for i, p := range c.admins {
		if code, body, _ := c.get(t, c.url(p, "/readyz")); code != http.StatusOK {
			t.Errorf("node-%d /readyz: %d %q", i+1, code, body)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Run("websocket clients on different nodes", func(t *testing.T) {
		// HAProxy balances plain WebSocket connections (leastconn): open
		// connections until two different nodes hold one each.
		byServer := map[string]*sitest.Client{}
		var servers []string
		for i := 0; i < 6 && len(servers) < 2; i++ {
			cl, server := c.dial(t, "")
			if _, dup := byServer[server]; !dup {
				byServer[server] = cl
				servers = append(servers, server)
			}
		}
		if len(servers) < 2 {
			t.Fatalf("six websocket connections all landed on %v: HAProxy is not balancing them", servers)
		}
		a, b := byServer[servers[0]], byServer[servers[1]]
		// The cluster runs as production does: a client needs a JWT
		// (here from `cluster.sh token`, signed with JWT_SECRET).
		anon, _ := c.dial(t, "")
		anon.Send("40")
		if got := anon.Read(); !strings.HasPrefix(got, "44{") {
			t.Fatalf("an anonymous CONNECT got %s, want CONNECT_ERROR", got)
		}
		sidA, sidB := a.Connect("/", c.auth(t, "alice")), b.Connect("/", c.auth(t, "bob"))

		a.Send(`420["join","e2e-room"]`)
		expect(t, a, `430[{"ok":true`)
		b.Send(`421["publish",{"room":"e2e-room","event":"chat","data":"hello across nodes"}]`)
		expect(t, b, `431[{"ok":true`)
		expect(t, a, `42["chat","hello across nodes"`)

		// The reverse direction, through a room b joins.
		b.Send(`422["join","e2e-back"]`)
		expect(t, b, `432[{"ok":true`)
		a.Send(`423["publish",{"room":"e2e-back","event":"chat","data":"and back"}]`)
		expect(t, a, `433[{"ok":true`)
		expect(t, b, `42["chat","and back"`)

		// A backend emit through HAProxy reaches a on whichever node.
		body := []byte(`{"namespace":"/","event":"news","args":["from the api"],"rooms":["e2e-room"]}`)
		code, resp, _ := c.do(t, http.MethodPost, c.url(c.lb, "/api/v1/emit"), "application/json", body)
		if code/100 != 2 {
			t.Fatalf("POST /api/v1/emit: %d %s", code, resp)
		}
		expect(t, a, `42["news","from the api"`)

		// The cluster agrees that the two sockets live on different nodes.
		code, resp, _ = c.get(t, c.url(c.lb, "/api/v1/sockets?namespace=/"))
		if code != http.StatusOK {
			t.Fatalf("GET /api/v1/sockets: %d %s", code, resp)
		}
		var list struct {
			Sockets []struct{ ID, Node string } `json:"sockets"`
		}
		if err := json.Unmarshal([]byte(resp), &list); err != nil {
			t.Fatalf("GET /api/v1/sockets: %v: %s", err, resp)
		}
		nodes := map[string]string{}
		for _, s := range list.Sockets {
			nodes[s.ID] = s.Node
		}
		if nodes[sidA] == "" || nodes[sidB] == "" || nodes[sidA] == nodes[sidB] {
			t.Errorf("sockets %s and %s on nodes %q and %q, want two different nodes (list: %s)", sidA, sidB, nodes[sidA], nodes[sidB], resp)
		}
	})

	t.Run("long-polling sessions work through round-robin", func(t *testing.T) {
		// HAProxy spreads a polling session's requests over the nodes;
		// the node that receives another node's sid forwards the request
		// to the session's owner, so every request succeeds.
		var sid string
		elsewhere := 0 // requests that reached a node other than the owner
		connect := []byte("40" + c.auth(t, "poller"))
		for i := range 6 {
			code, body, owner := c.get(t, c.url(c.lb, "/socket.io/?EIO=4&transport=polling"))
			if code != http.StatusOK || !strings.HasPrefix(body, "0{") {
				t.Fatalf("handshake %d: %d %q", i, code, body)
			}
			var open struct {
				SID string `json:"sid"`
			}
			if err := json.Unmarshal([]byte(body[1:]), &open); err != nil || open.SID == "" {
				t.Fatalf("handshake %d: %q: %v", i, body, err)
			}
			sid = open.SID
			q := "/socket.io/?EIO=4&transport=polling&sid=" + url.QueryEscape(sid)
			code, body, server := c.do(t, http.MethodPost, c.url(c.lb, q), "text/plain;charset=UTF-8", connect)
			if code != http.StatusOK {
				t.Fatalf("session %d: POST on %s (sid made by %s): %d %q", i, server, owner, code, body)
			}
			if server != owner {
				elsewhere++
			}
			code, body, server = c.get(t, c.url(c.lb, q))
			if code != http.StatusOK || !strings.Contains(body, "40{") {
				t.Fatalf("session %d: GET on %s (sid made by %s): %d %q", i, server, owner, code, body)
			}
			if server != owner {
				elsewhere++
			}
		}
		if elsewhere == 0 {
			t.Fatal("every polling request reached its session's node: HAProxy is sticky, nothing was forwarded")
		}
		// Upgrade the last session to websocket through HAProxy, wherever
		// it lands.
		ws, _ := c.dial(t, sid)
		ws.Send("2probe")
		if got := ws.Read(); got != "3probe" {
			t.Fatalf("probe answer %q", got)
		}
		ws.Send("5")
		ws.Send(`420["join","poll-room"]`)
		expect(t, ws, `430[{"ok":true`)
	})

	t.Run("prometheus scrapes every node and loads the alerts", func(t *testing.T) {
		type target struct {
			Labels map[string]string `json:"labels"`
			Health string            `json:"health"`
		}
		var up int
		ok := eventually(45*time.Second, func() bool {
			_, body, _ := c.get(t, c.url(c.prom, "/api/v1/targets"))
			var r struct {
				Data struct {
					ActiveTargets []target `json:"activeTargets"`
				} `json:"data"`
			}
			if json.Unmarshal([]byte(body), &r) != nil {
				return false
			}
			up = 0
			for _, tg := range r.Data.ActiveTargets {
				if tg.Labels["job"] == "roomcast" && tg.Health == "up" {
					up++
				}
			}
			return up == 3
		})
		if !ok {
			t.Fatalf("%d of 3 roomcast targets up after 45s", up)
		}

		_, body, _ := c.get(t, c.url(c.prom, "/api/v1/rules"))
		var rules struct {
			Data struct {
				Groups []struct {
					Name  string `json:"name"`
					Rules []struct {
						Name   string `json:"name"`
						Health string `json:"health"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &rules); err != nil {
			t.Fatalf("/api/v1/rules: %v: %s", err, body)
		}
		loaded := map[string]bool{}
		for _, g := range rules.Data.Groups {
			for _, r := range g.Rules {
				loaded[r.Name] = true
				if r.Health == "err" {
					t.Errorf("rule %s evaluates with an error", r.Name)
				}
			}
		}
		for _, g := range loadAlerts(t).Groups {
			for _, r := range g.Rules {
				if !loaded[r.Alert] {
					t.Errorf("Prometheus did not load alert %s", r.Alert)
				}
			}
		}

		// Every dashboard query is valid PromQL for this Prometheus.
		vars := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*")
		for _, e := range dashboardExprs(loadDashboard(t)) {
			q := c.url(c.prom, "/api/v1/query?query="+url.QueryEscape(vars.Replace(e)))
			code, body, _ := c.get(t, q)
			if code != http.StatusOK || !strings.Contains(body, `"status":"success"`) {
				t.Errorf("dashboard query %q: %d %s", e, code, body)
			}
		}
	})

	t.Run("live metrics cover the alerts and the dashboard", func(t *testing.T) {
		// roomcast_api_requests_total has samples once the API was used.
		for _, p := range c.gateways {
			if code, body, _ := c.get(t, c.url(p, "/api/v1/nodes")); code != http.StatusOK {
				t.Fatalf("GET /api/v1/nodes: %d %s", code, body)
			}
		}
		live := map[string]bool{"up": true}
		for _, p := range c.admins {
			_, body, _ := c.get(t, c.url(p, "/metrics"))
			for _, line := range strings.Split(body, "\n") {
				if line == "" || line[0] == '#' {
					continue
				}
				if i := strings.IndexAny(line, "{ "); i > 0 {
					live[line[:i]] = true
				}
			}
		}
		// RoomcastNodesDropped and the "Nodes seen" panels rely on every
		// node counting the whole cluster.
		for i, p := range c.admins {
			var last string
			ok := eventually(20*time.Second, func() bool {
				_, body, _ := c.get(t, c.url(p, "/metrics"))
				for _, line := range strings.Split(body, "\n") {
					if v, found := strings.CutPrefix(line, "roomcast_nodes "); found {
						last = v
					}
				}
				return last == "3"
			})
			if !ok {
				t.Errorf("node-%d: roomcast_nodes = %q, want 3", i+1, last)
			}
		}

		var exprs []string
		exprs = append(exprs, alertExprs(loadAlerts(t))...)
		exprs = append(exprs, dashboardExprs(loadDashboard(t))...)
		for _, e := range exprs {
			for _, m := range metricNames(e) {
				if !live[m] {
					t.Errorf("%s (used by %q) is not in any node's /metrics", m, e)
				}
			}
		}
	})

	c.stop(t)
	if _, err := os.Stat(filepath.Join(c.dir, "redis", "appendonlydir")); err != nil {
		t.Errorf("Redis kept no AOF: %v", err)
	}
}

// TestClusterForeground runs `cluster.sh` in the foreground, as `make cluster`
// does, and checks that SIGTERM (as Ctrl-C would) stops every process.
func TestClusterForeground(t *testing.T) {
	c := newCluster(t, false)
	logf, err := os.Create(filepath.Join(t.TempDir(), "cluster.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(c.script)
	cmd.Dir = c.root
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(time.Minute):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		c.stop(t) // a no-op when the script stopped everything itself
	})
	output := func() string { b, _ := os.ReadFile(logf.Name()); return string(b) }

	ready := eventually(90*time.Second, func() bool {
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("cluster.sh exited early (%v):\n%s\n%s", err, output(), c.logs())
		default:
		}
		return strings.Contains(output(), "Ctrl-C stops everything")
	})
	if !ready {
		t.Fatalf("cluster.sh did not come up:\n%s\n%s", output(), c.logs())
	}
	if code, body, server := c.get(t, c.url(c.lb, "/socket.io/?EIO=4&transport=polling")); code != http.StatusOK || server == "" {
		t.Fatalf("handshake through HAProxy: %d %q (server %q)", code, body, server)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("cluster.sh exited with %v after SIGTERM:\n%s", err, output())
		}
	case <-time.After(time.Minute):
		t.Fatalf("cluster.sh still running a minute after SIGTERM:\n%s", output())
	}
	c.expectStopped(t)
	for _, want := range []string{"stopping haproxy", "stopping redis"} {
		if !strings.Contains(output(), want) {
			t.Errorf("output lacks %q:\n%s", want, output())
		}
	}
}
