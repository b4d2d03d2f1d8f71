package gateway

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/roomcast/roomcast/queue"
)

// Config configures a Gateway. cmd/gateway fills it from flags, ROOMCAST_*
// environment variables and an optional YAML file.
type Config struct {
	// Addr serves clients (/socket.io/), the demo and the HTTP API. Defaults to ":8080".
	Addr string
	// AdminAddr serves /metrics, /healthz and /readyz. Defaults to ":9090".
	AdminAddr string
	// NodeID names this node. Defaults to the hostname plus a random suffix.
	NodeID string
	// Redis is the Redis to scale out through: a redis:// or rediss:// URL,
	// comma-separated Cluster addresses, or a redis-sentinel:// URL (see
	// redisOptions). Empty runs a single node with the in-memory adapter.
	Redis string
	// RedisPrefix prefixes channels and keys, as @socket.io/redis-adapter's
	// key option. Defaults to "socket.io".
	RedisPrefix string
	// Adapter is "classic" (wire-compatible with @socket.io/redis-adapter)
	// or "sharded" (Redis 7 sharded pub/sub). Defaults to "classic".
	Adapter string
	// JWTSecret enables HS256/384/512 tokens.
	JWTSecret string
	// JWTPublicKey is a PEM public key (RSA or ECDSA P-256) enabling RS256/ES256 tokens.
	JWTPublicKey []byte
	// AllowAnonymous lets clients connect without a token.
	AllowAnonymous bool
	// APIToken is the bearer token of /api/v1/; empty turns the API off.
	APIToken string
	// Origins lists the browser origins allowed to connect; empty allows any.
	Origins []string
	// DrainTimeout bounds Shutdown. Defaults to 10s.
	DrainTimeout time.Duration
	// Demo serves the chat demo at "/".
	Demo bool
	// Namespaces lists the namespaces besides "/" clients may connect to.
	Namespaces []string
	// MaxPayload bounds one incoming message or HTTP body. Defaults to 1 MB.
	MaxPayload int64
	// MaxQueueBytes caps each connection's send queue. Defaults to 4 MiB.
	MaxQueueBytes int
	// EventRate is the sustained number of events per second one connection
	// may send; bursts of twice that are allowed. Defaults to 100.
	EventRate float64
	// PingInterval and PingTimeout tune Engine.IO heartbeats. Default to 25s and 20s.
	PingInterval, PingTimeout time.Duration

	// RecoveryWindow is how long a disconnected client's session can be
	// recovered. Defaults to 2 minutes.
	RecoveryWindow time.Duration
	// QueueRetention bounds the age of each user's queued messages: the
	// oldest offset a client can resume from. Defaults to 24h.
	QueueRetention time.Duration
	// QueueMaxLen bounds the length of each user's queue. Defaults to 10000.
	QueueMaxLen int64
	// DurableRooms are glob patterns naming the durable rooms.
	DurableRooms []string
	// DurableRoomMembers bounds the member users of one durable room.
	// Defaults to 10000.
	DurableRoomMembers int
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	if c.AdminAddr == "" {
		c.AdminAddr = ":9090"
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = 1_000_000
	}
	if c.EventRate <= 0 {
		c.EventRate = 100
	}
	if c.RedisPrefix == "" {
		c.RedisPrefix = "socket.io"
	}
	if c.Adapter == "" {
		c.Adapter = "classic"
	}
	if c.NodeID == "" {
		c.NodeID = defaultNodeID()
	}
	if c.RecoveryWindow <= 0 {
		c.RecoveryWindow = 2 * time.Minute
	}
	if c.QueueRetention <= 0 {
		c.QueueRetention = queue.DefaultRetention
	}
	if c.QueueMaxLen <= 0 {
		c.QueueMaxLen = queue.DefaultMaxLen
	}
	if c.DurableRoomMembers <= 0 {
		c.DurableRoomMembers = queue.DefaultMaxMembers
	}
}

func (c *Config) validate() error {
	if c.JWTSecret == "" && len(c.JWTPublicKey) == 0 && !c.AllowAnonymous {
		return errors.New("gateway: no way to authenticate: set --jwt-secret, --jwt-public-key or --allow-anonymous")
	}
	if c.Adapter != "classic" && c.Adapter != "sharded" {
		return fmt.Errorf("gateway: --adapter must be classic or sharded, not %q", c.Adapter)
	}
	if c.Redis != "" && len(c.Origins) == 0 {
		return errors.New("gateway: --origins is required with --redis (list your sites' origins, or '*' to allow any)")
	}
	if c.RecoveryWindow > c.QueueRetention {
		return errors.New("gateway: --recovery-window cannot exceed --queue-retention")
	}
	for _, p := range c.DurableRooms {
		if strings.HasPrefix(p, userRoomPrefix) {
			return fmt.Errorf("gateway: --durable-rooms: %q: %q rooms are not durable rooms (users have their own queues)", p, userRoomPrefix)
		}
	}
	for _, ns := range c.Namespaces {
		if ns == "" || ns[0] != '/' {
			return errors.New("gateway: namespace names start with '/'")
		}
	}
	return nil
}
