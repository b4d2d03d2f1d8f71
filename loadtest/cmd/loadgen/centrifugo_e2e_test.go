package main

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testCentrifugoAPIKey = "loadgen-test-api-key"

// startCentrifugo runs Centrifugo with loadtest/centrifugo/config.json on a
// free loopback port and returns its base URL. The binary is $CENTRIFUGO_BIN
// or bin/peers/centrifugo (what scripts/bench.sh builds); without one the
// test is skipped, so `make test` never builds Centrifugo.
func startCentrifugo(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	bin := os.Getenv("CENTRIFUGO_BIN")
	if bin == "" {
		bin = filepath.Join(root, "bin", "peers", "centrifugo")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no Centrifugo binary at %s (scripts/bench.sh with ONLY=cf1 builds it)", bin)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(bin, "-c", filepath.Join(root, "loadtest", "centrifugo", "config.json"),
		"--http_server.address", "127.0.0.1", "--http_server.port", port)
	cmd.Env = append(os.Environ(), "CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY="+testSecret, "CENTRIFUGO_HTTP_API_KEY="+testCentrifugoAPIKey)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := stopAtCleanup(t, cmd)
	base := "http://127.0.0.1:" + port
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case <-exited:
			t.Fatalf("centrifugo exited: %s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("centrifugo did not become healthy: %s", out.String())
		}
	}
}

func cfFanout(base string, cfg fanoutConfig) fanoutConfig {
	cfg.Targets, cfg.Protocol, cfg.APIKey = []string{base}, centrifugo{}, testCentrifugoAPIKey
	if cfg.Tokens.secret == nil {
		cfg.Tokens = goodTokens()
	}
	return cfg
}

// Every HTTP publish reaches every subscriber, none of which publishes.
func TestCentrifugoFanout(t *testing.T) {
	base := startCentrifugo(t)
	t.Run("saturation", func(t *testing.T) {
		r, err := runFanout(testCtx(t), cfFanout(base, fanoutConfig{
			Subscribers: 20, Publishers: 2, Inflight: 4, Warmup: 200 * time.Millisecond, Duration: time.Second,
		}))
		if err != nil {
			t.Fatal(err)
		}
		if r.Expected == 0 || r.Expected != r.Publishes*20 || r.Delivered != r.Expected || r.DeliveryRatio != 1 {
			t.Fatalf("%d publishes, expected %d, delivered %d, ratio %v", r.Publishes, r.Expected, r.Delivered, r.DeliveryRatio)
		}
		if r.Latency.Count != uint64(r.Delivered) || r.Latency.Max <= 0 || r.Disconnects != 0 || len(r.PublishErrors) != 0 {
			t.Fatalf("result %+v", r)
		}
	})
	t.Run("fixed rate", func(t *testing.T) {
		// 2000 deliveries/s to 10 subscribers = 200 publishes/s.
		r, err := runFanout(testCtx(t), cfFanout(base, fanoutConfig{
			Subscribers: 10, Publishers: 2, Rate: 2000, Warmup: 200 * time.Millisecond, Duration: time.Second,
		}))
		if err != nil {
			t.Fatal(err)
		}
		if r.Publishes < 120 || r.Publishes > 280 || r.DeliveryRatio != 1 {
			t.Fatalf("%d publishes in 1s at 200/s, ratio %v", r.Publishes, r.DeliveryRatio)
		}
	})
	t.Run("rooms", func(t *testing.T) {
		// Each publish goes to one room's channel of three: 4 deliveries each.
		r, err := runFanout(testCtx(t), cfFanout(base, fanoutConfig{
			Subscribers: 12, Publishers: 2, Rooms: 3, Inflight: 4, Warmup: 200 * time.Millisecond, Duration: time.Second,
		}))
		if err != nil {
			t.Fatal(err)
		}
		if r.Expected == 0 || r.Expected != r.Publishes*4 || r.Delivered != r.Expected || r.DeliveryRatio != 1 {
			t.Fatalf("%d publishes, expected %d, delivered %d, ratio %v", r.Publishes, r.Expected, r.Delivered, r.DeliveryRatio)
		}
	})
	t.Run("wrong api key", func(t *testing.T) {
		cfg := cfFanout(base, fanoutConfig{Subscribers: 2, Publishers: 1, Rate: 200, Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, Drain: 500 * time.Millisecond})
		cfg.APIKey = "wrong"
		r, err := runFanout(testCtx(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if r.PublishErrors["http 401"] == 0 || r.Expected != 0 || r.Delivered != 0 {
			t.Fatalf("wrong key: errors %v, expected %d, delivered %d", r.PublishErrors, r.Expected, r.Delivered)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		_, err := runFanout(testCtx(t), cfFanout(base, fanoutConfig{
			Subscribers: 3, Publishers: 1, Tokens: tokens{secret: []byte("wrong"), ttl: time.Hour},
		}))
		if !errors.Is(err, errSetup) || !strings.Contains(err.Error(), "connect refused") {
			t.Fatalf("err = %v, want a refused setup", err)
		}
	})
}

func TestCentrifugoIdleAndConnect(t *testing.T) {
	base := startCentrifugo(t)
	r, err := runIdle(testCtx(t), idleConfig{
		Target: base, Conns: 60, Sources: 3, Concurrency: 8, Settle: 100 * time.Millisecond,
		Tokens: goodTokens(), Protocol: centrifugo{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Connected != 60 || r.Failed != 0 || r.Lost != 0 {
		t.Fatalf("idle %+v", r)
	}
	c, err := runConnect(testCtx(t), connectConfig{
		Target: base, Concurrency: 4, Duration: 500 * time.Millisecond, Sources: 2, Users: 10,
		Tokens: goodTokens(), Protocol: centrifugo{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Connects == 0 || c.Failed != 0 || c.Latency.Count != uint64(c.Connects) {
		t.Fatalf("connect %+v", c)
	}
	checkWrongSecretRefused(t, base, centrifugo{})
}
