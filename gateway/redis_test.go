package gateway

import (
	"slices"
	"testing"
)

func TestRedisOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in           string
		addrs        []string
		cluster, tls bool
		master, user string
		password     string
		db           int
	}{
		{in: "redis://127.0.0.1:6380/2", addrs: []string{"127.0.0.1:6380"}, db: 2},
		{in: "rediss://u:p@cache:6380", addrs: []string{"cache:6380"}, tls: true, user: "u", password: "p"},
		{in: "10.0.0.1:7000, 10.0.0.2:7000", addrs: []string{"10.0.0.1:7000", "10.0.0.2:7000"}, cluster: true},
		{in: "redis-cluster://u:p@a:7000,b:7000", addrs: []string{"a:7000", "b:7000"}, cluster: true, user: "u", password: "p"},
		{in: "rediss-sentinel://s1:26379,s2:26379/mymaster", addrs: []string{"s1:26379", "s2:26379"}, master: "mymaster", tls: true},
	}
	for _, tt := range tests {
		o, err := redisOptions(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if !slices.Equal(o.Addrs, tt.addrs) || o.IsClusterMode != tt.cluster || (o.TLSConfig != nil) != tt.tls ||
			o.MasterName != tt.master || o.Username != tt.user || o.Password != tt.password || o.DB != tt.db {
			t.Errorf("%s: got %+v", tt.in, o)
		}
	}
	for _, bad := range []string{"", "ftp://x", "redis-sentinel://s1:26379", "redis://:notaport"} {
		if _, err := redisOptions(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
