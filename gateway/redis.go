package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/adapter/redisadapter"
)

// cluster is what the gateway needs of the Redis adapter.
type cluster interface {
	Factory() adapter.Factory
	Ready(ctx context.Context) error
	Nodes(ctx context.Context) ([]string, error)
	Close() error
}

var _ cluster = (*redisadapter.Cluster)(nil)

func (g *Gateway) connectRedis() (adapter.Factory, error) {
	opts, err := redisOptions(g.cfg.Redis)
	if err != nil {
		return nil, err
	}
	g.rdb = redis.NewUniversalClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RedisConnectTimeout)
	defer cancel()
	mode := redisadapter.Classic
	if g.cfg.Adapter == "sharded" {
		mode = redisadapter.Sharded
	}
	g.cluster, err = redisadapter.New(ctx, redisadapter.Config{
		Client: g.rdb, Mode: mode, Prefix: g.cfg.RedisPrefix, Node: g.cfg.NodeID, Metrics: g.metrics, Logger: g.log,
	})
	if err != nil {
		_ = g.rdb.Close()
		return nil, fmt.Errorf("gateway: redis adapter: %w", err)
	}
	return g.cluster.Factory(), nil
}

// ready asks everything the node depends on: the adapter's Redis and
// subscriptions, and the durable queue's (its live subscriptions included).
func (g *Gateway) ready(ctx context.Context) error {
	if g.cluster != nil {
		if err := g.cluster.Ready(ctx); err != nil {
			return err
		}
	}
	if g.store != nil {
		if err := g.store.Ready(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (g *Gateway) closeBackends() {
	g.lifeHook.close() // before the Redis client: it reads the event stream
	if g.tracker != nil {
		g.tracker.close()
	}
	if g.presence != nil {
		_ = g.presence.Close()
	}
	g.fwd.close()
	if g.limits != nil {
		g.limits.close()
	}
	if g.keySet != nil {
		_ = g.keySet.Close()
	}
	if g.store != nil {
		_ = g.store.Close()
	}
	if g.blog != nil {
		_ = g.blog.Close()
	}
	if g.cluster != nil {
		_ = g.cluster.Close()
	}
	if g.rdb != nil {
		_ = g.rdb.Close()
	}
}

// redisOptions turns the --redis value into go-redis options. Accepted forms:
//
//	redis://[user:password@]host:port[/db]     standalone (rediss:// for TLS)
//	host:port,host:port,...                    Redis Cluster seed nodes
//	redis-cluster://[user:password@]h:p,h:p    the same, with credentials (rediss-cluster:// for TLS)
//	redis-sentinel://[user:password@]h:p,h:p/master-name   Sentinel (rediss-sentinel:// for TLS)
func redisOptions(s string) (*redis.UniversalOptions, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "redis://"), strings.HasPrefix(s, "rediss://"):
		o, err := redis.ParseURL(s)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		return &redis.UniversalOptions{
			Addrs:     []string{o.Addr},
			Username:  o.Username,
			Password:  o.Password,
			DB:        o.DB,
			TLSConfig: o.TLSConfig,
		}, nil
	case strings.Contains(s, "://"):
		// Several hosts do not fit net/url: split by hand.
		scheme, rest, _ := strings.Cut(s, "://")
		authority, path, _ := strings.Cut(rest, "/")
		o := &redis.UniversalOptions{}
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			user, pass, _ := strings.Cut(authority[:at], ":")
			var err error
			if o.Username, err = url.PathUnescape(user); err != nil {
				return nil, fmt.Errorf("--redis: user: %w", err)
			}
			if o.Password, err = url.PathUnescape(pass); err != nil {
				return nil, fmt.Errorf("--redis: password: %w", err)
			}
			authority = authority[at+1:]
		}
		o.Addrs = splitAddrs(authority)
		u := struct{ Scheme, Path string }{scheme, path}
		tls := false
		switch u.Scheme {
		case "redis-cluster":
		case "rediss-cluster":
			tls = true
		case "redis-sentinel", "rediss-sentinel":
			tls = u.Scheme == "rediss-sentinel"
			o.MasterName = strings.Trim(u.Path, "/")
			if o.MasterName == "" {
				return nil, fmt.Errorf("--redis: sentinel URL needs the master name as its path")
			}
		default:
			return nil, fmt.Errorf("--redis: unknown scheme %q", u.Scheme)
		}
		if tls {
			o.TLSConfig = tlsConfigFor(o.Addrs)
		}
		if len(o.Addrs) == 0 {
			return nil, fmt.Errorf("--redis: no address in %q", s)
		}
		if o.MasterName == "" {
			o.IsClusterMode = true
		}
		return o, nil
	default:
		addrs := splitAddrs(s)
		if len(addrs) == 0 {
			return nil, fmt.Errorf("--redis: no address in %q", s)
		}
		return &redis.UniversalOptions{Addrs: addrs, IsClusterMode: true}, nil
	}
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// RedisLogger routes go-redis's own log lines (dial failures while Redis is
// away, in a loop) to slog at debug level: readiness and
// roomcast_redis_errors_total already report the outage.
type RedisLogger struct{ Log *slog.Logger }

// Printf implements go-redis's internal logging interface.
func (l RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.Log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}
