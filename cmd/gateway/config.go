package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/roomcast/roomcast/gateway"
	"gopkg.in/yaml.v3"
)

// options are the command-line flags; each is also read from ROOMCAST_<NAME>.
type options struct {
	addr, adminAddr, nodeID        string
	redisURL, redisPrefix, adapter string
	jwtSecret, jwtPublicKey        string
	allowAnonymous, demo           bool
	apiToken, origins, configFile  string
	logLevel                       string
	drainTimeout                   time.Duration
	pingInterval, pingTimeout      time.Duration
	maxPayload                     int64
	maxQueueBytes                  int
	eventRate                      float64
	recoveryWindow, queueRetention time.Duration
	queueMaxLen                    int64
	durableRooms                   string
	durableRoomMembers             int
}

// fileConfig is the YAML file given with --config.
type fileConfig struct {
	Namespaces []string `yaml:"namespaces"`
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (gateway.Config, string, error) {
	var o options
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", ":8080", "address for clients (/socket.io/), the demo page and the HTTP API (/api/v1/)")
	fs.StringVar(&o.adminAddr, "admin-addr", ":9090", "address for /metrics, /healthz and /readyz")
	fs.StringVar(&o.nodeID, "node-id", "", "this node's name in logs, metrics and the API (default hostname + random)")
	fs.StringVar(&o.redisURL, "redis", "", "Redis to scale out through: redis://[user:pass@]host:port[/db] (rediss:// for TLS), comma-separated Cluster addresses, or redis-sentinel://host:port,host:port/master; empty = single node, in-memory adapter")
	fs.StringVar(&o.redisPrefix, "redis-prefix", "socket.io", "channel and key prefix, as @socket.io/redis-adapter's key option")
	fs.StringVar(&o.adapter, "adapter", "classic", "Redis adapter: classic (compatible with @socket.io/redis-adapter) or sharded (Redis 7 sharded pub/sub, for Redis Cluster)")
	fs.StringVar(&o.jwtSecret, "jwt-secret", "", "HMAC key for HS256/HS384/HS512 client tokens")
	fs.StringVar(&o.jwtPublicKey, "jwt-public-key", "", "PEM file with an RSA or ECDSA P-256 public key for RS256/ES256 client tokens")
	fs.BoolVar(&o.allowAnonymous, "allow-anonymous", false, "accept connections without a token (they may join and publish anywhere)")
	fs.StringVar(&o.apiToken, "api-token", "", "bearer token for the HTTP API under /api/v1/ (empty = API off)")
	fs.StringVar(&o.origins, "origins", "", "comma-separated browser origins allowed to connect (empty = any)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 10*time.Second, "bound of the graceful drain on SIGTERM")
	fs.BoolVar(&o.demo, "demo", false, "serve the chat demo at /")
	fs.StringVar(&o.configFile, "config", "", "YAML file with extra settings (namespaces: [/chat, ...])")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&o.pingInterval, "ping-interval", 25*time.Second, "Engine.IO heartbeat interval")
	fs.DurationVar(&o.pingTimeout, "ping-timeout", 20*time.Second, "Engine.IO heartbeat timeout")
	fs.Int64Var(&o.maxPayload, "max-payload", 1_000_000, "largest accepted message or HTTP body, in bytes")
	fs.IntVar(&o.maxQueueBytes, "max-queue-bytes", 4<<20, "per-connection send queue cap in bytes; a client over it is disconnected as a slow consumer")
	fs.Float64Var(&o.eventRate, "event-rate", 100, "events per second one connection may send (bursts of twice that)")
	fs.DurationVar(&o.recoveryWindow, "recovery-window", 2*time.Minute, "how long a disconnected client's session (sid, rooms) can be recovered")
	fs.DurationVar(&o.queueRetention, "queue-retention", 24*time.Hour, "how long durable messages stay in each user's queue (the oldest offset a client can resume from)")
	fs.Int64Var(&o.queueMaxLen, "queue-maxlen", 10000, "most messages kept in each user's queue (approximate)")
	fs.StringVar(&o.durableRooms, "durable-rooms", "", "comma-separated glob patterns of durable rooms: their member users get every broadcast in their queues (e.g. 'team:*,orders:*')")
	fs.IntVar(&o.durableRoomMembers, "durable-room-members", 10000, "most member users of one durable room")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gateway [flags]\n\nRoomcast gateway node. Every flag can also be set as ROOMCAST_<NAME>\n(e.g. --jwt-secret as ROOMCAST_JWT_SECRET); a flag on the command line wins.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return gateway.Config{}, "", err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		key := "ROOMCAST_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(key); v != "" {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s: %w", key, err)
			}
		}
	})
	if envErr != nil {
		return gateway.Config{}, "", envErr
	}
	if fs.NArg() > 0 {
		return gateway.Config{}, "", fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cfg := gateway.Config{
		Addr:           o.addr,
		AdminAddr:      o.adminAddr,
		NodeID:         o.nodeID,
		Redis:          o.redisURL,
		RedisPrefix:    o.redisPrefix,
		Adapter:        o.adapter,
		JWTSecret:      o.jwtSecret,
		AllowAnonymous: o.allowAnonymous,
		APIToken:       o.apiToken,
		DrainTimeout:   o.drainTimeout,
		Demo:           o.demo,
		PingInterval:   o.pingInterval,
		PingTimeout:    o.pingTimeout,
		MaxPayload:     o.maxPayload,
		MaxQueueBytes:  o.maxQueueBytes,
		EventRate:      o.eventRate,

		RecoveryWindow:     o.recoveryWindow,
		QueueRetention:     o.queueRetention,
		QueueMaxLen:        o.queueMaxLen,
		DurableRoomMembers: o.durableRoomMembers,
	}
	for _, pattern := range strings.Split(o.durableRooms, ",") {
		if pattern = strings.TrimSpace(pattern); pattern != "" {
			cfg.DurableRooms = append(cfg.DurableRooms, pattern)
		}
	}
	for _, origin := range strings.Split(o.origins, ",") {
		if origin = strings.TrimSpace(origin); origin != "" {
			cfg.Origins = append(cfg.Origins, origin)
		}
	}
	if o.jwtPublicKey != "" {
		pem, err := os.ReadFile(o.jwtPublicKey)
		if err != nil {
			return gateway.Config{}, "", fmt.Errorf("--jwt-public-key: %w", err)
		}
		cfg.JWTPublicKey = pem
	}
	if o.configFile != "" {
		raw, err := os.ReadFile(o.configFile)
		if err != nil {
			return gateway.Config{}, "", fmt.Errorf("--config: %w", err)
		}
		var fc fileConfig
		dec := yaml.NewDecoder(strings.NewReader(string(raw)))
		dec.KnownFields(true)
		if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
			return gateway.Config{}, "", fmt.Errorf("--config %s: %w", o.configFile, err)
		}
		cfg.Namespaces = fc.Namespaces
	}
	return cfg, o.logLevel, nil
}
