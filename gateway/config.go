package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/broadcastlog/redislog"
	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/presence/redispresence"
	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/socketio"
)

// Config configures a Gateway. Every field's zero value means its default.
// cmd/gateway binds flags, ROOMCAST_* environment variables and an optional
// YAML file onto one Config (see its settings table).
//
// Defaults of the layers below are theirs: Engine's fields default as in
// engineio (engineio.DefaultMaxPayload...), RecoveryWindow as
// socketio.DefaultRecoveryWindow, RedisPrefix as adapter.DefaultPrefix, the
// queue limits as queue.DefaultRetention, DefaultMaxLen and DefaultMaxMembers.
type Config struct {
	// Addr serves clients (/socket.io/), the demo and the HTTP API. Defaults to ":8080".
	Addr string
	// AdminAddr serves /metrics, /healthz and /readyz. Defaults to ":9090".
	AdminAddr string
	// NodeID names this node. Defaults to the hostname plus a random suffix.
	NodeID string
	// Demo serves the chat demo at "/".
	Demo bool
	// Namespaces lists the namespaces besides "/" clients may connect to.
	Namespaces []string

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
	// EventRate is the sustained number of events per second one user may
	// send, over all its sockets and, with Redis, all nodes; bursts of twice
	// that are allowed. Defaults to 100; negative turns the limit off.
	EventRate float64

	// JWTIssuer, when set, must equal a token's "iss".
	JWTIssuer string
	// JWTAudience, when set, must be (one of) a token's "aud".
	JWTAudience string
	// JWKSURL is a JSON Web Key Set whose RSA and P-256 keys verify
	// RS256/ES256 tokens (by "kid"); fetched at start, refreshed every 5
	// minutes and on an unknown kid (at most every 30s).
	JWKSURL string
	// AllowAnonymousDM lets anonymous clients send direct messages. Off by
	// default: direct messages are stored, and anonymous senders have no
	// identity to hold to a budget.
	AllowAnonymousDM bool
	// TrustedProxies are the CIDRs of the load balancers in front of the
	// node: for a request from one of them, the client IP is read from
	// X-Forwarded-For. Defaults to none (the peer address is the client).
	TrustedProxies []string
	// IPEventRate is the events per second one client IP may send (bursts
	// of twice that). Defaults to 1000; negative turns the limit off.
	IPEventRate float64
	// ConnectRate is the Socket.IO CONNECTs per second one client IP may
	// attempt (bursts of twice that); a refused one costs 5. Over it the
	// CONNECT is refused with "rate limited" and the transport closed.
	// Defaults to 10; negative turns the limit off.
	ConnectRate float64
	// HandshakeRate is the Engine.IO handshakes per second one client IP
	// may open (bursts of twice that); over it, HTTP 429. Defaults to 100;
	// negative turns the limit off.
	HandshakeRate float64
	// MaxConnsPerUser bounds one user's open sockets (cluster-wide with
	// Redis). Defaults to 100; negative turns the cap off.
	MaxConnsPerUser int
	// MaxConnsPerIP bounds one client IP's open sockets (cluster-wide with
	// Redis). Defaults to 10000; negative turns the cap off.
	MaxConnsPerIP int
	// TokenExpiryWarning is how long before its token's "exp" a socket is
	// sent roomcast:token-expiring. Defaults to 60s.
	TokenExpiryWarning time.Duration

	// Engine configures the Engine.IO layer: heartbeats (PingInterval,
	// PingTimeout), UpgradeTimeout, MaxPayload (which also bounds HTTP API
	// bodies), MaxQueueBytes and Transports (--transports; defaults to
	// polling and websocket). Zero fields default as in engineio; a
	// MaxPayload below zero means the default too. The gateway sets
	// CheckOrigin (from Origins), OnConnection and, when nil, Logger.
	Engine engineio.Config

	// ClusterURL is where the other nodes reach this node's Addr, to forward
	// the requests of the polling sessions it owns (http://host:port).
	// Defaults to http:// plus Addr's host (the hostname when Addr has
	// none) and port. Used with Redis and the polling transport.
	ClusterURL string
	// ClusterSecret authenticates forwarded requests between nodes. Empty:
	// the nodes share a random one through Redis (whoever can read Redis
	// is trusted by the nodes anyway).
	ClusterSecret string

	// Redis is the Redis to scale out through: a redis:// or rediss:// URL,
	// comma-separated Cluster addresses, or a redis-sentinel:// URL (see
	// redisOptions). Empty runs a single node with the in-memory adapter.
	Redis string
	// RedisPrefix prefixes channels and keys, as @socket.io/redis-adapter's
	// key option. Defaults to adapter.DefaultPrefix ("socket.io").
	RedisPrefix string
	// Adapter is "classic" (wire-compatible with @socket.io/redis-adapter)
	// or "sharded" (Redis 7 sharded pub/sub). Defaults to "classic".
	Adapter string

	// RecoveryWindow is how long a disconnected client's session can be
	// recovered. Defaults to socketio.DefaultRecoveryWindow (2 minutes).
	RecoveryWindow time.Duration
	// LogLinger is the least time between two reads of a busy broadcast
	// log tail (one whose read returned many entries): what arrives
	// meanwhile is delivered together, one write per socket instead of
	// one per read, at the cost of up to this much latency while a node
	// is behind. A tail that keeps up reads at once. Defaults to 20ms
	// (redislog.Config.Linger); negative: never wait. Redis only.
	LogLinger time.Duration
	// QueueRetention bounds the age of each user's queued messages: the
	// oldest offset a client can resume from. Defaults to
	// queue.DefaultRetention (24h).
	QueueRetention time.Duration
	// QueueMaxLen bounds the length of each user's queue; a full queue
	// refuses new messages (queue_full, API 429). Defaults to
	// queue.DefaultMaxLen (10000).
	QueueMaxLen int64
	// DurableRooms are glob patterns naming the durable rooms.
	DurableRooms []string
	// DurableRoomMembers bounds the member users of one durable room.
	// Defaults to queue.DefaultMaxMembers (10000).
	DurableRoomMembers int
	// QueueMaxBytes bounds the payload bytes held in one user's queue; a
	// full queue refuses new messages (queue_full, API 429) rather than
	// trimming old ones. Defaults to 1 MiB.
	QueueMaxBytes int64
	// MaxDurableMessage bounds one durable message (direct or to a durable
	// room) in bytes (too_large, API 413). Defaults to 64 KiB.
	MaxDurableMessage int
	// DurableBudget bounds the durable bytes (size × recipients' queues)
	// one client user may store per minute, cluster-wide (quota_exceeded).
	// The HTTP API, the backend, is not budgeted. Defaults to 1 MiB;
	// negative turns the budget off.
	DurableBudget int64

	// PresenceRooms are glob patterns of the rooms whose members are told
	// of joins and leaves (roomcast:join, roomcast:leave). Presence itself
	// is kept for every room. Defaults to none, or every room ("*") with
	// Demo.
	PresenceRooms []string
	// PresenceCoalesceAbove is the member count above which a room's joins
	// and leaves are sent as one roomcast:presence count event per
	// PresenceCoalesceInterval instead. Defaults to 100; negative never
	// coalesces.
	PresenceCoalesceAbove int
	// PresenceCoalesceInterval is the most often a big room's count event
	// is sent. Defaults to 1s.
	PresenceCoalesceInterval time.Duration
	// EventsMaxLen bounds the lifecycle event stream <prefix>:events
	// (approximate MAXLEN). Defaults to redispresence.DefaultStreamMaxLen.
	EventsMaxLen int64
	// Webhook is the backend URL that client events other than the
	// reserved ones are POSTed to (docs/HOOKS.md); its answer is the ack.
	// Empty: such events get an unknown_event error ack.
	Webhook string
	// NamespaceWebhooks are "namespace=URL" pairs: a namespace's own
	// webhook, instead of Webhook.
	NamespaceWebhooks []string
	// ConnectHook is the backend URL asked before a CONNECT is accepted.
	ConnectHook string
	// ConnectHookHeaders are the handshake headers sent to the connect hook
	// (case-insensitive). "cookie" is sent only when named. Defaults to none.
	ConnectHookHeaders []string
	// PublishHooks are "pattern=URL" pairs: a client publish to a room
	// matching the pattern is sent to URL first, which may refuse or
	// rewrite it. The first matching pair wins.
	PublishHooks []string
	// LifecycleHook is the backend URL that lifecycle events (connect,
	// disconnect, join, leave, occupied, vacated) are POSTed to in signed
	// batches, at least once (docs/HOOKS.md, "Lifecycle events"). With
	// Redis they are read from the event stream with a consumer group, so a
	// node's crash loses none; without, from a bounded in-memory queue.
	LifecycleHook string
	// LifecycleHookBatch bounds the events of one lifecycle request.
	// Defaults to 100.
	LifecycleHookBatch int
	// LifecycleHookQueue bounds the events waiting for the lifecycle hook
	// on a node without Redis; beyond it the oldest are dropped (and
	// counted). Defaults to 10000.
	LifecycleHookQueue int
	// LifecycleHookClaimIdle is how long (with Redis) an event read by a
	// node may stay unacknowledged before another node claims it (a node
	// still retrying it keeps it). At least twice HookTimeout. Defaults
	// to 30s.
	LifecycleHookClaimIdle time.Duration
	// HookSecret signs every hook request (HMAC-SHA256); required when a
	// hook is set.
	HookSecret string
	// HookTimeout bounds one hook call, its retries included: a client
	// event not answered by then gets an unavailable error ack. Defaults to 5s.
	HookTimeout time.Duration
	// HookRetries is how many times a request the backend surely did not
	// process (connection refused, 429, 502, 503) is retried, with
	// exponential backoff from 50ms. Defaults to 2; negative means none.
	HookRetries int
	// HookConcurrency bounds the hook requests in flight on this node;
	// beyond it a client gets an unavailable error at once. Defaults to 256.
	HookConcurrency int
	// HookQueue bounds the events of one socket waiting for the webhook
	// (they are sent one at a time, in order). Defaults to 32.
	HookQueue int
	// HookBreakerFailures is how many failed calls in a row open a hook
	// URL's circuit breaker (its calls then fail at once until
	// HookBreakerCooldown has passed and a probe succeeds). Defaults to 5;
	// negative turns the breaker off.
	HookBreakerFailures int
	// HookBreakerCooldown is how long an open breaker refuses calls before
	// a probe. Defaults to 10s.
	HookBreakerCooldown time.Duration

	// IdempotencyWindow is how long an idempotencyKey of POST /api/v1/emit
	// or of a client publish is remembered: a repeat within it gets the
	// first answer and delivers nothing. Defaults to 5 minutes.
	IdempotencyWindow time.Duration

	// DrainTimeout bounds Shutdown. Defaults to 10s.
	DrainTimeout time.Duration
	// APITimeout bounds the work of one HTTP API call (Redis, other nodes).
	// Defaults to 5s.
	APITimeout time.Duration
	// EventTimeout bounds the work a client event waits for: storing a
	// direct message, asking the cluster for a room's presence. Defaults to 5s.
	EventTimeout time.Duration
	// ReadyTimeout bounds the Redis check of Ready (/readyz). Defaults to 2s.
	ReadyTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers on both
	// addresses. Defaults to 10s.
	ReadHeaderTimeout time.Duration
	// RedisConnectTimeout bounds connecting to Redis and subscribing at
	// startup. Defaults to 5s.
	RedisConnectTimeout time.Duration
	// HTTPIdleTimeout closes keep-alive HTTP connections idle this long, on
	// both addresses. Defaults to 60s.
	HTTPIdleTimeout time.Duration
	// HTTPReadTimeout bounds reading one request's body (a polling POST,
	// an API call). Defaults to 10s.
	HTTPReadTimeout time.Duration
}

// The gateway's own defaults; the other layers' are in their packages.
const (
	defaultAddr                = ":8080"
	defaultAdminAddr           = ":9090"
	defaultAdapter             = "classic"
	defaultEventRate           = 100
	defaultDrainTimeout        = 10 * time.Second
	defaultAPITimeout          = 5 * time.Second
	defaultEventTimeout        = 5 * time.Second
	defaultReadyTimeout        = 2 * time.Second
	defaultReadHeaderTimeout   = 10 * time.Second
	defaultRedisConnectTimeout = 5 * time.Second
	defaultHTTPIdleTimeout     = 60 * time.Second
	defaultHTTPReadTimeout     = 10 * time.Second
	defaultIPEventRate         = 1000
	defaultConnectRate         = 10
	defaultHandshakeRate       = 100
	defaultMaxConnsPerUser     = 100
	defaultMaxConnsPerIP       = 10000
	defaultTokenExpiryWarning  = 60 * time.Second
	defaultQueueMaxBytes       = queue.DefaultMaxBytes
	defaultMaxDurableMessage   = 64 << 10
	defaultDurableBudget       = 1 << 20

	defaultPresenceCoalesceAbove    = 100
	defaultPresenceCoalesceInterval = time.Second
	defaultHookTimeout              = 5 * time.Second
	defaultHookRetries              = 2
	defaultHookConcurrency          = 256
	defaultHookQueue                = 32
	defaultHookBreakerFailures      = 5
	defaultHookBreakerCooldown      = 10 * time.Second
	defaultLifecycleHookBatch       = 100
	defaultLifecycleHookQueue       = 10000
	defaultLifecycleHookClaimIdle   = 30 * time.Second
)

// DefaultConfig returns the Config New would run with when given a zero
// Config, except NodeID, which New derives from the hostname. cmd/gateway
// starts from it, so its --help shows the defaults.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

// setDefaults fills in the fields left zero (or, where New always did so,
// negative).
func (c *Config) setDefaults() {
	orString(&c.Addr, defaultAddr)
	orString(&c.AdminAddr, defaultAdminAddr)
	orString(&c.RedisPrefix, adapter.DefaultPrefix)
	orString(&c.Adapter, defaultAdapter)
	for _, r := range []struct {
		v   *float64
		def float64
	}{
		{&c.EventRate, defaultEventRate},
		{&c.IPEventRate, defaultIPEventRate},
		{&c.ConnectRate, defaultConnectRate},
		{&c.HandshakeRate, defaultHandshakeRate},
	} {
		if *r.v == 0 {
			*r.v = r.def
		}
	}
	orInt(&c.MaxConnsPerUser, defaultMaxConnsPerUser)
	orInt(&c.MaxConnsPerIP, defaultMaxConnsPerIP)
	orInt(&c.MaxDurableMessage, defaultMaxDurableMessage)
	orInt(&c.HookRetries, defaultHookRetries)
	orInt(&c.HookBreakerFailures, defaultHookBreakerFailures)
	if c.HookConcurrency <= 0 {
		c.HookConcurrency = defaultHookConcurrency
	}
	if c.HookQueue <= 0 {
		c.HookQueue = defaultHookQueue
	}
	if c.LifecycleHookBatch <= 0 {
		c.LifecycleHookBatch = defaultLifecycleHookBatch
	}
	if c.LifecycleHookQueue <= 0 {
		c.LifecycleHookQueue = defaultLifecycleHookQueue
	}
	if c.QueueMaxBytes <= 0 {
		c.QueueMaxBytes = defaultQueueMaxBytes
	}
	if c.DurableBudget == 0 {
		c.DurableBudget = defaultDurableBudget
	}
	if len(c.Engine.Transports) == 0 {
		c.Engine.Transports = []string{"polling", "websocket"}
	}
	if c.Engine.MaxPayload <= 0 {
		c.Engine.MaxPayload = engineio.DefaultMaxPayload
	}
	// Zero only: engineio refuses the negative ones.
	if c.Engine.MaxQueueBytes == 0 {
		c.Engine.MaxQueueBytes = engineio.DefaultMaxQueueBytes
	}
	for _, d := range []struct {
		v       *time.Duration
		def     time.Duration
		orBelow bool // a negative value means the default too
	}{
		{&c.Engine.PingInterval, engineio.DefaultPingInterval, false},
		{&c.Engine.PingTimeout, engineio.DefaultPingTimeout, false},
		{&c.Engine.UpgradeTimeout, engineio.DefaultUpgradeTimeout, false},
		{&c.LogLinger, redislog.DefaultLinger, false},
		{&c.RecoveryWindow, socketio.DefaultRecoveryWindow, true},
		{&c.QueueRetention, queue.DefaultRetention, true},
		{&c.DrainTimeout, defaultDrainTimeout, true},
		{&c.APITimeout, defaultAPITimeout, true},
		{&c.EventTimeout, defaultEventTimeout, true},
		{&c.ReadyTimeout, defaultReadyTimeout, true},
		{&c.ReadHeaderTimeout, defaultReadHeaderTimeout, true},
		{&c.RedisConnectTimeout, defaultRedisConnectTimeout, true},
		{&c.HTTPIdleTimeout, defaultHTTPIdleTimeout, true},
		{&c.HTTPReadTimeout, defaultHTTPReadTimeout, true},
		{&c.TokenExpiryWarning, defaultTokenExpiryWarning, true},
		{&c.HookTimeout, defaultHookTimeout, true},
		{&c.IdempotencyWindow, defaultIdempotencyWindow, true},
		{&c.HookBreakerCooldown, defaultHookBreakerCooldown, true},
		{&c.LifecycleHookClaimIdle, defaultLifecycleHookClaimIdle, true},
		{&c.Engine.WriteTimeout, engineio.DefaultWriteTimeout, true},
		{&c.PresenceCoalesceInterval, defaultPresenceCoalesceInterval, true},
	} {
		if *d.v == 0 || (d.orBelow && *d.v < 0) {
			*d.v = d.def
		}
	}
	if c.QueueMaxLen <= 0 {
		c.QueueMaxLen = queue.DefaultMaxLen
	}
	if c.Demo && len(c.PresenceRooms) == 0 {
		c.PresenceRooms = []string{"*"} // the demo's "who is online" follows the events
	}
	if c.PresenceCoalesceAbove == 0 {
		c.PresenceCoalesceAbove = defaultPresenceCoalesceAbove
	}
	if c.EventsMaxLen <= 0 {
		c.EventsMaxLen = redispresence.DefaultStreamMaxLen
	}
	if c.DurableRoomMembers <= 0 {
		c.DurableRoomMembers = queue.DefaultMaxMembers
	}
}

func orInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

func orString(v *string, def string) {
	if *v == "" {
		*v = def
	}
}

func (c *Config) validate() error {
	if c.JWTSecret == "" && len(c.JWTPublicKey) == 0 && c.JWKSURL == "" && !c.AllowAnonymous {
		return errors.New("gateway: no way to authenticate: set --jwt-secret, --jwt-public-key, --jwks-url or --allow-anonymous")
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
	for _, tr := range c.Engine.Transports {
		if tr != "polling" && tr != "websocket" {
			return fmt.Errorf("gateway: --transports: %q is not polling or websocket", tr)
		}
	}
	for _, ns := range c.Namespaces {
		if ns == "" || ns[0] != '/' {
			return errors.New("gateway: namespace names start with '/'")
		}
	}
	return c.validateHooks()
}

// validateHooks checks the hook URLs and pairs, and that a secret signs them.
func (c *Config) validateHooks() error {
	if c.LifecycleHook != "" && c.LifecycleHookClaimIdle < 2*c.HookTimeout {
		return errors.New("gateway: --lifecycle-hook-claim-idle must be at least twice --hook-timeout (a slow delivery would be claimed by another node)")
	}
	urls := []string{c.Webhook, c.ConnectHook, c.LifecycleHook}
	for _, list := range []struct {
		flag  string
		pairs []string
	}{{"--namespace-webhooks", c.NamespaceWebhooks}, {"--publish-hooks", c.PublishHooks}} {
		for _, p := range list.pairs {
			k, v, ok := strings.Cut(p, "=")
			if !ok || k == "" || v == "" {
				return fmt.Errorf("gateway: %s: %q is not name=URL", list.flag, p)
			}
			if list.flag == "--namespace-webhooks" && !slices.Contains(append([]string{"/"}, c.Namespaces...), k) {
				return fmt.Errorf("gateway: --namespace-webhooks: %q is not a configured namespace", k)
			}
			urls = append(urls, v)
		}
	}
	hooked := false
	for _, u := range urls {
		if u == "" {
			continue
		}
		hooked = true
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return fmt.Errorf("gateway: hook URL %q: want http:// or https://", u)
		}
	}
	if hooked && c.HookSecret == "" {
		return errors.New("gateway: --hook-secret is required with a hook (every hook request is signed)")
	}
	return nil
}

// namespaceWebhooks is NamespaceWebhooks as a map (validated).
func (c *Config) namespaceWebhooks() map[string]string {
	m := map[string]string{}
	for _, p := range c.NamespaceWebhooks {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return m
}

// publishHooks is PublishHooks as [pattern, URL] pairs (validated).
func (c *Config) publishHooks() [][2]string {
	var out [][2]string
	for _, p := range c.PublishHooks {
		k, v, _ := strings.Cut(p, "=")
		out = append(out, [2]string{k, v})
	}
	return out
}
