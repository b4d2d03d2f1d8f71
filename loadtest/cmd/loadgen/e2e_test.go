package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/gateway"
	"github.com/roomcast/roomcast/internal/redistest"
)

const testSecret = "loadgen-test-secret"

// server starts a contract server for a test and returns its base URL.
type server struct {
	name  string
	start func(t *testing.T, redisURL string) string
}

var servers = []server{
	{"gateway", startGateway},
	{"socketio-peer", startPeer},
	{"go-socketio-peer", startGoPeer},
}

// startGateway runs a Roomcast gateway in this process (redisURL must be
// empty: the in-process gateway has no Redis here).
func startGateway(t *testing.T, redisURL string) string {
	t.Helper()
	if redisURL != "" {
		t.Skip("in-process gateway is single-node in these tests")
	}
	return runGateway(t, gateway.Config{})
}

const testAPIToken = "loadgen-test-api-token"

// startDurableGateway runs a gateway with the HTTP API in this process, its
// queues in memory, or in Redis when redisURL is set.
func startDurableGateway(t *testing.T, redisURL string) string {
	t.Helper()
	cfg := gateway.Config{APIToken: testAPIToken}
	if redisURL != "" {
		cfg.Redis, cfg.RedisPrefix, cfg.Origins = redisURL, "loadgen-test", []string{"*"}
	}
	return runGateway(t, cfg)
}

// runGateway runs a gateway in this process on loopback ports with the
// test secret and returns its base URL; t.Cleanup shuts it down.
func runGateway(t *testing.T, cfg gateway.Config) string {
	t.Helper()
	cfg.Addr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.JWTSecret, cfg.EventRate, cfg.DrainTimeout = testSecret, 1e6, 2*time.Second
	// Every load client comes from 127.0.0.1: no per-IP limits or caps.
	cfg.IPEventRate, cfg.ConnectRate, cfg.HandshakeRate = -1, -1, -1
	cfg.MaxConnsPerUser, cfg.MaxConnsPerIP = -1, -1
	g, err := gateway.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr, _, err := g.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("gateway did not stop")
		}
	})
	return "http://" + addr.String()
}

// repoRoot is the module root (this file is loadtest/cmd/loadgen/e2e_test.go).
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// startPeer runs loadtest/peer/server.js with node on a free port.
func startPeer(t *testing.T, redisURL string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "node_modules", "socket.io")); err != nil {
		t.Skip("node_modules/socket.io missing (npm ci)")
	}
	cmd := exec.Command(node, filepath.Join(root, "loadtest", "peer", "server.js"))
	cmd.Env = append(os.Environ(), "PORT=0", "JWT_SECRET="+testSecret, "REDIS_URL="+redisURL, "REDIS_PREFIX=loadgen-test")
	return runPeer(t, cmd)
}

// goPeer is loadtest/peer-go built once per test binary (its own module:
// the first build downloads the socket.io Go port).
var goPeer struct {
	once sync.Once
	bin  string
	err  error
}

// startGoPeer runs loadtest/peer-go, the socket.io Go port, on a free port.
func startGoPeer(t *testing.T, redisURL string) string {
	t.Helper()
	if redisURL != "" {
		t.Skip("the Go port peer is single-node")
	}
	goPeer.once.Do(func() {
		bin := filepath.Join(os.TempDir(), "roomcast-loadgen-test-peer-go")
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Dir = filepath.Join(repoRoot(t), "loadtest", "peer-go")
		if out, err := build.CombinedOutput(); err != nil {
			goPeer.err = fmt.Errorf("go build in %s: %v\n%s", build.Dir, err, out)
			return
		}
		goPeer.bin = bin
	})
	if goPeer.err != nil {
		t.Fatal(goPeer.err)
	}
	cmd := exec.Command(goPeer.bin)
	cmd.Env = append(os.Environ(), "PORT=0", "JWT_SECRET="+testSecret)
	return runPeer(t, cmd)
}

// stopAtCleanup waits for a started cmd and interrupts it in t.Cleanup
// (killed after 5s); the channel is closed once it exited.
func stopAtCleanup(t *testing.T, cmd *exec.Cmd) <-chan struct{} {
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	return exited
}

// runPeer starts a peer command that prints "listening <port>" when ready
// and returns its base URL; t.Cleanup interrupts it.
func runPeer(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	portc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				portc <- p
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	exited := stopAtCleanup(t, cmd)
	select {
	case p := <-portc:
		return "http://127.0.0.1:" + p
	case <-exited:
		t.Fatalf("peer exited: %s", stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("peer did not start: %s", stderr.String())
	}
	return ""
}

func goodTokens() tokens { return tokens{secret: []byte(testSecret), ttl: time.Hour} }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFanoutSaturation(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			base := srv.start(t, "")
			r, err := runFanout(testCtx(t), fanoutConfig{
				Targets: []string{base}, Subscribers: 20, Publishers: 2, Inflight: 4,
				Warmup: 200 * time.Millisecond, Duration: time.Second, Tokens: goodTokens(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.Expected == 0 || r.Delivered != r.Expected || r.DeliveryRatio != 1 {
				t.Fatalf("expected %d, delivered %d, ratio %v", r.Expected, r.Delivered, r.DeliveryRatio)
			}
			if r.Expected != r.Publishes*20 {
				t.Fatalf("expected %d for %d publishes to 20 subscribers", r.Expected, r.Publishes)
			}
			if r.Latency.Count != uint64(r.Delivered) || r.Latency.Max <= 0 || r.Latency.P99 > r.Latency.Max {
				t.Fatalf("latency %+v for %d deliveries", r.Latency, r.Delivered)
			}
			if r.DeliveriesPerS <= 0 || r.Disconnects != 0 || len(r.PublishErrors) != 0 {
				t.Fatalf("result %+v", r)
			}
		})
	}
}

// With -pids, the servers' CPU over the window is reported per delivery.
func TestFanoutReportsServerCPU(t *testing.T) {
	base := startGateway(t, "") // in this process: its CPU is ours
	r, err := runFanout(testCtx(t), fanoutConfig{
		Targets: []string{base}, Subscribers: 20, Publishers: 2, Inflight: 4, PIDs: []int{os.Getpid()},
		Warmup: 100 * time.Millisecond, Duration: time.Second, Tokens: goodTokens(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.CPU == nil || r.CPU.ServerS <= 0 || r.CPU.LoadgenS <= 0 || r.CPU.ServerUSPerOp <= 0 {
		t.Fatalf("cpu %+v", r.CPU)
	}
	want := r.CPU.ServerS * 1e6 / (r.DeliveriesPerS * 1)
	if d := r.CPU.ServerUSPerOp - want; d > want/100+0.01 || d < -want/100-0.01 {
		t.Fatalf("µs per delivery %v, want about %v", r.CPU.ServerUSPerOp, want)
	}
}

func TestFanoutFixedRate(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			base := srv.start(t, "")
			// 2000 deliveries/s to 10 subscribers = 200 publishes/s.
			r, err := runFanout(testCtx(t), fanoutConfig{
				Targets: []string{base}, Subscribers: 10, Publishers: 2, Rate: 2000,
				Warmup: 200 * time.Millisecond, Duration: time.Second, Tokens: goodTokens(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.Publishes < 120 || r.Publishes > 280 {
				t.Fatalf("%d publishes in 1s at 200/s", r.Publishes)
			}
			if r.DeliveryRatio != 1 {
				t.Fatalf("ratio %v (%d of %d)", r.DeliveryRatio, r.Delivered, r.Expected)
			}
		})
	}
}

// Two independent single nodes: a publish reaches only the subscribers on
// its own node, so the ratio must be exactly one half. This checks both the
// round-robin spreading and that lost deliveries show in the ratio.
func TestFanoutDetectsLoss(t *testing.T) {
	a, b := startGateway(t, ""), startGateway(t, "")
	r, err := runFanout(testCtx(t), fanoutConfig{
		Targets: []string{a, b}, Subscribers: 10, Publishers: 2, Inflight: 2,
		Warmup: 100 * time.Millisecond, Duration: 2500 * time.Millisecond, Drain: 3 * time.Second,
		Tokens: goodTokens(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Expected == 0 || r.DeliveryRatio != 0.5 {
		t.Fatalf("ratio %v (%d of %d), want 0.5", r.DeliveryRatio, r.Delivered, r.Expected)
	}
	if r.Stalls == 0 {
		t.Fatalf("the closed loop never gave up waiting for the lost half")
	}
}

func TestFanoutRefused(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			base := srv.start(t, "")
			_, err := runFanout(testCtx(t), fanoutConfig{
				Targets: []string{base}, Subscribers: 3, Publishers: 1,
				Tokens: tokens{secret: []byte("wrong"), ttl: time.Hour},
			})
			if !errors.Is(err, errSetup) || !strings.Contains(err.Error(), "connect refused") {
				t.Fatalf("err = %v, want a refused setup", err)
			}
		})
	}
}

// The contract: a publisher in the room does not receive its own message,
// every other member does, and publish and join are acked {ok:true}.
func TestContractOthersOnly(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			base := srv.start(t, "")
			ctx := testCtx(t)
			endpoint, err := wsURL(base)
			if err != nil {
				t.Fatal(err)
			}
			d := newDialer(nil, 5*time.Second)
			room := appendJSONString(nil, "contract")
			open := func(sub string) *conn {
				tok, err := goodTokens().mint(sub)
				if err != nil {
					t.Fatal(err)
				}
				c, err := d.dial(ctx, endpoint)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(c.close)
				if err := c.connect(ctx, tok, 5*time.Second); err != nil {
					t.Fatal(err)
				}
				if err := c.join(ctx, room, 5*time.Second); err != nil {
					t.Fatal(err)
				}
				return c
			}
			pub, sub := open("alice"), open("bob")
			ev := appendJSONString(nil, "m")
			if err := pub.send(ctx, appendPublish(nil, 7, room, ev, 123, 1)); err != nil {
				t.Fatal(err)
			}
			// bob gets the event; alice gets only her ack.
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			for {
				p, err := sub.read(rctx)
				if err != nil {
					t.Fatal(err)
				}
				if d, ok := parseDelivery(p, ev); ok {
					if d.T != 123 || d.Seq != 1 {
						t.Fatalf("delivery %+v", d)
					}
					break
				}
			}
			for {
				p, err := pub.read(rctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := parseDelivery(p, ev); ok {
					t.Fatal("the publisher received its own message")
				}
				if a, ok := parseAck(p); ok {
					if a.ID != 7 || !a.OK {
						t.Fatalf("publish ack %+v", a)
					}
					break
				}
			}
			// A forbidden room gets an error ack with a code.
			if err := pub.send(ctx, appendPublish(nil, 8, appendJSONString(nil, "user:bob"), ev, 1, 1)); err != nil {
				t.Fatal(err)
			}
			for {
				p, err := pub.read(rctx)
				if err != nil {
					t.Fatal(err)
				}
				if a, ok := parseAck(p); ok {
					if a.ID != 8 || a.OK || a.Code != "forbidden" {
						t.Fatalf("forbidden publish ack %+v", a)
					}
					break
				}
			}
		})
	}
}

func TestConnectMode(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			base := srv.start(t, "")
			r, err := runConnect(testCtx(t), connectConfig{
				Target: base, Concurrency: 4, Duration: 500 * time.Millisecond, Sources: 2, Users: 10, Tokens: goodTokens(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.Connects == 0 || r.Failed != 0 || r.ConnectsPerS <= 0 || r.Latency.Count != uint64(r.Connects) {
				t.Fatalf("result %+v", r)
			}
			if r.CPU != nil {
				t.Fatalf("cpu reported without pids: %+v", r.CPU)
			}
			checkWrongSecretRefused(t, base, nil)
		})
	}
}

// checkWrongSecretRefused runs connect mode with tokens of the wrong secret
// against base: every attempt must fail as a refused connect.
func checkWrongSecretRefused(t *testing.T, base string, proto protocol) {
	t.Helper()
	bad, err := runConnect(testCtx(t), connectConfig{
		// Long enough for a refusal to come back from a busy server
		// (300ms saw none from the Node peer on a loaded machine).
		Target: base, Concurrency: 2, Duration: 2 * time.Second,
		Tokens: tokens{secret: []byte("wrong"), ttl: time.Hour}, Protocol: proto,
	})
	if err != nil {
		t.Fatal(err)
	}
	if bad.Connects != 0 || bad.Failed == 0 {
		t.Fatalf("wrong secret: %+v", bad)
	}
	for msg := range bad.Errors {
		if !strings.Contains(msg, "connect refused") {
			t.Fatalf("wrong secret error %q", msg)
		}
	}
}

func TestIdleMode(t *testing.T) {
	base := startGateway(t, "")
	// The gateway runs in this process, so this process's RSS is the server's.
	r, err := runIdle(testCtx(t), idleConfig{
		Target: base, Conns: 60, PID: os.Getpid(), Sources: 3, Concurrency: 8,
		Settle: 100 * time.Millisecond, Tokens: goodTokens(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Connected != 60 || r.Failed != 0 || r.Lost != 0 || r.RSSBeforeKB <= 0 || r.RSSAfterKB <= 0 {
		t.Fatalf("result %+v", r)
	}
	if r.BytesPerConn != (r.RSSAfterKB-r.RSSBeforeKB)*1024/60 {
		t.Fatalf("bytes per conn %d from %d -> %d KB", r.BytesPerConn, r.RSSBeforeKB, r.RSSAfterKB)
	}
}

func TestIdleReportsFailures(t *testing.T) {
	base := startGateway(t, "")
	r, err := runIdle(testCtx(t), idleConfig{
		Target: base, Conns: 5, Concurrency: 5, Settle: time.Millisecond,
		Tokens: tokens{secret: []byte("wrong"), ttl: time.Hour},
	})
	if !errors.Is(err, errSetup) || r == nil || r.Connected != 0 || r.Failed != 5 || len(r.Errors) == 0 {
		t.Fatalf("runIdle = %+v, %v", r, err)
	}
}

// Two socket.io peers sharing Redis through @socket.io/redis-adapter: every
// publish reaches the subscribers of both nodes.
func TestFanoutPeersWithRedis(t *testing.T) {
	rds := redistest.Start(t)
	a, b := startPeer(t, rds.URL()), startPeer(t, rds.URL())
	r, err := runFanout(testCtx(t), fanoutConfig{
		Targets: []string{a, b}, Subscribers: 10, Publishers: 2, Inflight: 2,
		Warmup: 300 * time.Millisecond, Duration: time.Second, Tokens: goodTokens(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Expected == 0 || r.DeliveryRatio != 1 {
		t.Fatalf("ratio %v (%d of %d)", r.DeliveryRatio, r.Delivered, r.Expected)
	}
}

func TestCLI(t *testing.T) {
	base := startGateway(t, "")
	dir := t.TempDir()
	results := filepath.Join(dir, "results.jsonl")
	var out, errb strings.Builder
	code := run([]string{"loadgen", "connect", "-target", base, "-jwt-secret", testSecret, "-duration", "200ms",
		"-concurrency", "2", "-label", "Roomcast, 1 node", "-server", "roomcast", "-nodes", "1", "-out", results}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	code = run([]string{"loadgen", "fanout", "-targets", base, "-jwt-secret", testSecret, "-subs", "4", "-pubs", "1",
		"-warmup", "100ms", "-duration", "300ms", "-server", "roomcast", "-nodes", "1", "-out", results, "-min-ratio", "1"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	// A failing run still leaves a record, with its error.
	code = run([]string{"loadgen", "fanout", "-targets", base, "-jwt-secret", "wrong", "-subs", "1", "-out", results}, &out, &errb)
	if code != 1 {
		t.Fatalf("refused run exit %d", code)
	}
	recs, err := readRecords(results)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].connect == nil || recs[1].fanout == nil || recs[2].Error == "" || recs[2].fanout != nil {
		t.Fatalf("records: %d, %+v", len(recs), recs)
	}
	if recs[0].Label != "Roomcast, 1 node" || strings.Contains(recs[0].Command, "-label") || !strings.Contains(recs[0].Command, "-duration 200ms") {
		t.Fatalf("record 0: %+v", recs[0].record)
	}
	md := filepath.Join(dir, "BENCHMARKS.md")
	if code := run([]string{"loadgen", "report", "-results", results, "-out", md, "-node-version", "v0"}, &out, &errb); code != 0 {
		t.Fatalf("report exit %d: %s", code, errb.String())
	}
	doc, err := os.ReadFile(md)
	if err != nil || !strings.Contains(string(doc), "| Roomcast, 1 node | 2 |") {
		t.Fatalf("report: %v\n%s", err, doc)
	}

	for _, args := range [][]string{{"loadgen"}, {"loadgen", "nope"}, {"loadgen", "idle", "-nope"}, {"loadgen", "idle", "extra"}} {
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// Every run is bounded: a cancelled context ends a fan-out during its
// measurement and leaves no goroutine behind (checked by TestMain).
func TestFanoutCancel(t *testing.T) {
	base := startGateway(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var err error
	go func() {
		defer wg.Done()
		_, err = runFanout(ctx, fanoutConfig{
			Targets: []string{base}, Subscribers: 5, Publishers: 1, Warmup: time.Hour, Tokens: goodTokens(),
		})
	}()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	cancel()
	wg.Wait()
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("took %v to stop", d)
	}
}

// Durable delivery through the HTTP API, with the queues in memory and in
// Redis: everything stored is delivered, and a new connection with
// auth.offset gets exactly the backlog before its CONNECT reply.
func TestDurable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		redis bool
	}{{"memory", false}, {"redis", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var redisURL string
			if tc.redis {
				redisURL = redistest.Start(t).URL()
			}
			base := startDurableGateway(t, redisURL)
			r, err := runDurable(testCtx(t), durableConfig{
				Targets: []string{base}, APIToken: testAPIToken, Subscribers: 20, Publishers: 2, Batch: 5,
				Duration: time.Second, Backlog: 500, RedisURL: redisURL, Tokens: goodTokens(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.Stored == 0 || r.StoredPerS <= 0 || r.StoredPerSPerNode != r.StoredPerS || r.APINodes != 1 || r.DeliveriesPerS <= 0 {
				t.Fatalf("throughput %+v", r)
			}
			if r.Lost != 0 || r.Delivered != r.Stored || r.Unexpected+r.Duplicates+r.OutOfOrder+r.BadFrames != 0 || r.Disconnects != 0 {
				t.Fatalf("delivery check %+v", r)
			}
			if r.Stored != r.APICalls*5 || len(r.APIErrors) != 0 || r.StoreLatency.Count != uint64(r.APICalls) {
				t.Fatalf("%d stored for %d calls of 5 users (errors %v, latency %+v)", r.Stored, r.APICalls, r.APIErrors, r.StoreLatency)
			}
			if r.DeliveryLatency.Count != uint64(r.Delivered) || r.DeliveryLatency.Max <= 0 {
				t.Fatalf("delivery latency %+v for %d deliveries", r.DeliveryLatency, r.Delivered)
			}
			rp := r.Replay
			if rp == nil || rp.Replayed != 500 || !rp.InOrder || rp.ReplayMS <= 0 || rp.ReplayPerS <= 0 || rp.AppendLatency.Count != 500 {
				t.Fatalf("replay %+v", rp)
			}
			if tc.redis {
				if r.Memory == nil || r.Memory.Messages != 500 || r.Memory.BytesPerMessage <= 0 {
					t.Fatalf("memory %+v", r.Memory)
				}
			} else if r.Memory != nil {
				t.Fatalf("memory %+v without -redis-url", r.Memory)
			}
		})
	}
}

// Two independent in-memory gateways: a message stored on one never reaches
// the users whose sockets are on the other, and the check must say so.
func TestDurableDetectsLoss(t *testing.T) {
	a, b := startDurableGateway(t, ""), startDurableGateway(t, "")
	r, err := runDurable(testCtx(t), durableConfig{
		Targets: []string{a, b}, APIToken: testAPIToken, Subscribers: 10, Publishers: 2, Batch: 10,
		Duration: 300 * time.Millisecond, Drain: 3 * time.Second, Tokens: goodTokens(), // the drain ends after 1s without progress
	})
	if err == nil || !strings.Contains(err.Error(), "lost") || r == nil {
		t.Fatalf("err = %v", err)
	}
	// Every emit goes to all 10 users, half of them on the other node.
	if r.APINodes != 2 || r.Stored == 0 || r.Lost != r.Stored/2 || r.UsersWithLoss != 10 || r.Delivered != r.Stored/2 {
		t.Fatalf("result %+v", r)
	}
	if r.Replay != nil {
		t.Fatalf("replay without a backlog: %+v", r.Replay)
	}
}

func TestDurableRefusesWrongToken(t *testing.T) {
	base := startDurableGateway(t, "")
	r, err := runDurable(testCtx(t), durableConfig{
		Targets: []string{base}, APIToken: "wrong", Subscribers: 2, Publishers: 1, Batch: 2,
		Duration: 200 * time.Millisecond, Backlog: 10, Tokens: goodTokens(),
	})
	if err == nil || r == nil || r.Stored != 0 || r.APIErrors == nil || !strings.Contains(firstKey(r.APIErrors), "status 401") {
		t.Fatalf("runDurable = %+v, %v", r, err)
	}
}

func TestDurableFrames(t *testing.T) {
	for frame, want := range map[string]string{
		`42["m",{"t":1,"seq":2},"1795485534707-0"]`: "1795485534707-0",
		`42["m",{"t":1,"seq":2},"17-12"]`:           "17-12",
		`42["m",{"t":1,"seq":2},"17-12~18-0"]`:      "17-12",
		`42["m",{"t":1,"seq":2}]`:                   "",
		`42["m","1-"]`:                              "",
		`42["m",{"t":1},"-1"]`:                      "",
		`42["m",{"t":1},"1-1x"]`:                    "",
		`"1-1"]`:                                    "",
	} {
		id, ok := parseOffsetTail([]byte(frame))
		if got := map[bool]string{true: id.String()}[ok]; got != want {
			t.Errorf("%s: offset %q, want %q", frame, got, want)
		}
	}
	id := func(ms, seq uint64) entryID { return entryID{ms, seq} }
	want := []entryID{id(1, 0), id(1, 1), id(2, 0), id(3, 5)}
	got := []entryID{id(3, 5), id(1, 1), id(1, 1), id(9, 9)}
	if l, u, d := compareSets(want, got); l != 2 || u != 1 || d != 1 {
		t.Fatalf("compareSets: lost %d, unexpected %d, dups %d", l, u, d)
	}
	if l, u, d := compareSets(nil, nil); l+u+d != 0 {
		t.Fatal("empty sets differ")
	}
	if u, err := apiURL("ws://h:1/pre/socket.io/"); err != nil || u != "http://h:1/pre/api/v1/emit" {
		t.Fatalf("apiURL = %q, %v", u, err)
	}
	if got := string(appendConnectOffset(nil, "tok", "1-2")); got != `40{"token":"tok","offset":"1-2"}` {
		t.Fatalf("CONNECT %s", got)
	}
}

// The CLI records a durable run with its note, and report renders it.
func TestDurableCLI(t *testing.T) {
	base := startDurableGateway(t, "")
	dir := t.TempDir()
	results := filepath.Join(dir, "results.jsonl")
	var out, errb strings.Builder
	code := run([]string{"loadgen", "durable", "-targets", base, "-jwt-secret", testSecret, "-api-token", testAPIToken,
		"-subs", "4", "-pubs", "1", "-batch", "2", "-duration", "300ms", "-backlog", "50",
		"-label", "Roomcast durable, 1 node", "-note", "no socket.io counterpart", "-server", "roomcast", "-nodes", "1", "-out", results}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	recs, err := readRecords(results)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].durable == nil || recs[0].Note != "no socket.io counterpart" || strings.Contains(recs[0].Command, "-note") {
		t.Fatalf("records %+v", recs)
	}
	if rp := recs[0].durable.Replay; rp == nil || rp.Replayed != 50 {
		t.Fatalf("replay %+v", rp)
	}
	md := filepath.Join(dir, "BENCHMARKS.md")
	if code := run([]string{"loadgen", "report", "-results", results, "-out", md, "-node-version", "v0"}, &out, &errb); code != 0 {
		t.Fatalf("report exit %d: %s", code, errb.String())
	}
	doc, err := os.ReadFile(md)
	if err != nil || !strings.Contains(string(doc), "### Durable delivery") ||
		!strings.Contains(string(doc), "| Roomcast durable, 1 node | 4 users, 1 pubs × 2 users/emit |") ||
		!strings.Contains(string(doc), "| 50 msgs in ") || !strings.Contains(string(doc), "| no socket.io counterpart |") {
		t.Fatalf("report: %v\n%s", err, doc)
	}
}

// With Rooms, each publish reaches only its room's subscribers: were they
// all in one room, every publish would be delivered three times over and the
// ratio would read 3.
func TestFanoutRooms(t *testing.T) {
	base := startGateway(t, "")
	r, err := runFanout(testCtx(t), fanoutConfig{
		Targets: []string{base}, Subscribers: 12, Publishers: 2, Rooms: 3, Inflight: 4,
		Warmup: 200 * time.Millisecond, Duration: time.Second, Tokens: goodTokens(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Rooms != 3 || r.Expected == 0 || r.Expected != r.Publishes*4 {
		t.Fatalf("rooms %d, expected %d for %d publishes to rooms of 4", r.Rooms, r.Expected, r.Publishes)
	}
	if r.Delivered != r.Expected || r.DeliveryRatio != 1 || r.Disconnects != 0 {
		t.Fatalf("expected %d, delivered %d, ratio %v, disconnects %d", r.Expected, r.Delivered, r.DeliveryRatio, r.Disconnects)
	}
}

// At a fixed rate with rooms, a publish is worth a room's subscribers:
// 1200 deliveries/s to rooms of 4 is 300 publishes/s.
func TestFanoutRoomsFixedRate(t *testing.T) {
	base := startGateway(t, "")
	r, err := runFanout(testCtx(t), fanoutConfig{
		Targets: []string{base}, Subscribers: 12, Publishers: 2, Rooms: 3, Rate: 1200,
		Warmup: 200 * time.Millisecond, Duration: time.Second, Tokens: goodTokens(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Publishes < 200 || r.Publishes > 400 {
		t.Fatalf("%d publishes in 1s at 300/s", r.Publishes)
	}
	if r.DeliveryRatio != 1 {
		t.Fatalf("ratio %v (%d of %d)", r.DeliveryRatio, r.Delivered, r.Expected)
	}
}
