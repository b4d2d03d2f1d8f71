package gateway

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

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
