package redistest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStartKillRestart(t *testing.T) {
	s := Start(t)
	if s.Port() == 6379 {
		t.Fatal("used the default port")
	}
	if out, err := s.Do("ping"); err != nil || out != "PONG" {
		t.Fatalf("ping: %q %v", out, err)
	}
	if out, _ := s.Do("config", "get", "appendonly"); !strings.Contains(out, "no") {
		t.Fatalf("appendonly: %q", out)
	}
	if _, err := s.Do("set", "k", "v"); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if s.Running() {
		t.Fatal("running after Kill")
	}
	if err := ping(s.Addr()); err == nil {
		t.Fatal("answers after Kill")
	}
	s.Restart()
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	// No persistence: the key is gone.
	if out, _ := s.Do("get", "k"); out != "" {
		t.Fatalf("get after restart = %q", out)
	}
}

func TestStartArgs(t *testing.T) {
	s := Start(t, "--appendonly", "yes")
	if out, _ := s.Do("config", "get", "appendonly"); !strings.Contains(out, "yes") {
		t.Fatalf("appendonly: %q", out)
	}
}

func TestCluster(t *testing.T) {
	c := StartCluster(t)
	if len(c.Addrs()) != 3 {
		t.Fatalf("addrs %v", c.Addrs())
	}
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Keys spread over the three masters.
	for i := range 50 {
		k := fmt.Sprintf("key-%d", i)
		if err := client.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	var masters atomic.Int32
	err := client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("master %s holds no key", m.Options().Addr)
		}
		masters.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if masters.Load() != 3 {
		t.Fatalf("%d masters", masters.Load())
	}
}
