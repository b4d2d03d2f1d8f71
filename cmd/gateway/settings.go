package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/roomcast/roomcast/gateway"
)

// options is everything the gateway command can be told: the gateway's
// Config plus the settings only this command reads.
type options struct {
	gateway.Config
	configFile   string // --config: the YAML file
	logLevel     string
	jwtPublicKey string // a PEM file; its contents become Config.JWTPublicKey
}

// A setting binds one name onto one field of options. The name is the flag
// (--name) and the YAML key (name:); the environment variable is
// ROOMCAST_NAME with '-' turned into '_' (see envName).
type setting struct {
	name  string
	group string // section of --help and of docs/OPERATIONS.md
	help  string
	value value
	// unset says what an empty default means ("hostname + random"); empty
	// when the default is shown as it is.
	unset string
	// notInFile keeps the setting out of the YAML file (--config itself).
	notInFile bool
}

// Groups, in the order --help and the docs show them.
const (
	groupNode     = "node"
	groupDurable  = "durable"
	groupTimeouts = "timeouts"
	groupLimits   = "limits"
	groupPresence = "presence"
	groupHooks    = "hooks"
)

var groupTitles = map[string]string{
	groupNode:     "Node",
	groupDurable:  "Durable queues and recovery",
	groupTimeouts: "Timeouts",
	groupLimits:   "Security and limits",
	groupPresence: "Presence and lifecycle events",
	groupHooks:    "Backend hooks (docs/HOOKS.md)",
}

// settings is the one table of the gateway's settings, bound onto o. Flags,
// environment variables, YAML keys, --help and the tables of
// docs/OPERATIONS.md all come from it; the defaults are whatever o holds
// when it is called (gateway.DefaultConfig, which takes the leaf packages'
// defaults).
func settings(o *options) []setting {
	c := &o.Config
	return []setting{
		{name: "addr", group: groupNode, value: stringVar(&c.Addr),
			help: "address for clients (/socket.io/), the demo page and the HTTP API (/api/v1/)"},
		{name: "admin-addr", group: groupNode, value: stringVar(&c.AdminAddr),
			help: "address for /metrics, /healthz and /readyz; keep it off the public network"},
		{name: "redis", group: groupNode, value: stringVar(&c.Redis), unset: "single node",
			help: "Redis to scale out through: redis://[user:pass@]host:port[/db] (rediss:// for TLS), comma-separated Cluster addresses (or redis-cluster://user:pass@h:p,h:p), or redis-sentinel://[user:pass@]h:p,h:p/master; empty = single node, in-memory adapter"},
		{name: "redis-prefix", group: groupNode, value: stringVar(&c.RedisPrefix),
			help: "channel and key prefix, as @socket.io/redis-adapter's key option"},
		{name: "adapter", group: groupNode, value: stringVar(&c.Adapter),
			help: "Redis adapter: classic (compatible with @socket.io/redis-adapter 8.x) or sharded (Redis 7 sharded pub/sub, for Redis Cluster)"},
		{name: "node-id", group: groupNode, value: stringVar(&c.NodeID), unset: "hostname + random",
			help: "this node's name in logs, metrics and the API (GET /api/v1/nodes)"},
		{name: "jwt-secret", group: groupNode, value: stringVar(&c.JWTSecret),
			help: "HMAC key for HS256/HS384/HS512 client tokens"},
		{name: "jwt-public-key", group: groupNode, value: stringVar(&o.jwtPublicKey),
			help: "PEM file with an RSA (at least 2048 bits) or ECDSA P-256 public key for RS256/ES256 client tokens"},
		{name: "allow-anonymous", group: groupNode, value: boolVar(&c.AllowAnonymous),
			help: "accept connections without a token (they may join and publish anywhere)"},
		{name: "api-token", group: groupNode, value: stringVar(&c.APIToken), unset: "API off",
			help: "bearer token for the HTTP API under /api/v1/ (empty = API off, 404)"},
		{name: "origins", group: groupNode, value: listVar(&c.Origins), unset: "any",
			help: "comma-separated browser origins allowed to connect (empty = any); required with --redis ('*' allows any)"},
		{name: "namespaces", group: groupNode, value: listVar(&c.Namespaces), unset: "only /",
			help: "comma-separated namespaces besides / that clients may connect to (e.g. /chat,/admin)"},
		{name: "demo", group: groupNode, value: boolVar(&c.Demo),
			help: "serve the chat demo at /"},
		{name: "max-payload", group: groupNode, value: int64Var(&c.Engine.MaxPayload),
			help: "largest accepted message or HTTP body, in bytes; bigger websocket messages close the connection, bigger POSTs get 413"},
		{name: "max-queue-bytes", group: groupNode, value: intVar(&c.Engine.MaxQueueBytes),
			help: "per-connection send queue cap in bytes; a client over it is disconnected as a slow consumer"},
		{name: "transports", group: groupNode, value: listVar(&c.Engine.Transports),
			help: "comma-separated Engine.IO transports clients may use: polling, websocket or both; websocket alone needs no session forwarding between nodes (and no stickiness)"},
		{name: "cluster-url", group: groupNode, value: stringVar(&c.ClusterURL), unset: "http:// + --addr (hostname if no host)",
			help: "URL at which the other nodes reach this node's --addr; with --redis and polling, a polling request that reaches a node other than its session's is forwarded there, so the load balancer needs no stickiness"},
		{name: "cluster-secret", group: groupNode, value: stringVar(&c.ClusterSecret), unset: "shared through Redis",
			help: "secret that authenticates requests forwarded between nodes (empty: a random one the nodes share through Redis; set it when Redis may lose its data)"},
		{name: "ping-interval", group: groupNode, value: durationVar(&c.Engine.PingInterval),
			help: "Engine.IO heartbeat interval"},
		{name: "ping-timeout", group: groupNode, value: durationVar(&c.Engine.PingTimeout),
			help: "Engine.IO heartbeat timeout"},
		{name: "drain-timeout", group: groupNode, value: durationVar(&c.DrainTimeout),
			help: "bound of the graceful drain on SIGTERM"},
		{name: "log-level", group: groupNode, value: stringVar(&o.logLevel),
			help: "debug, info, warn or error"},
		{name: "config", group: groupNode, value: stringVar(&o.configFile), unset: "none", notInFile: true,
			help: "YAML file setting any of these flags by name (addr: ':8080', namespaces: [/chat, /admin]); unknown keys are an error"},

		{name: "recovery-window", group: groupDurable, value: durationVar(&c.RecoveryWindow),
			help: "how long a disconnected client's session (sid, rooms) can be recovered; sessions of a crashed node live at least this long, with every room whose join/leave was answered ok (each costs one Redis round trip before its answer)"},
		{name: "log-linger", group: groupDurable, value: durationVar(&c.LogLinger),
			help: "with --redis, the least time between two reads of a busy broadcast log tail (one behind: a read of 8 entries or more), so that what arrives meanwhile goes to each socket in one write; up to this much latency while a node is behind, none while it keeps up; negative: never wait"},
		{name: "queue-retention", group: groupDurable, value: durationVar(&c.QueueRetention),
			help: "how long durable messages stay in each user's queue: the oldest offset a client (or an app holding auth.offset) can resume from"},
		{name: "queue-maxlen", group: groupDurable, value: int64Var(&c.QueueMaxLen),
			help: "most messages held in each user's queue; a full queue refuses new messages (queue_full, API 429) instead of trimming old ones"},
		{name: "durable-rooms", group: groupDurable, value: listVar(&c.DurableRooms), unset: "none",
			help: "comma-separated glob patterns of durable rooms (e.g. 'team:*,orders:*'): their broadcasts are appended to every member user's queue; joining adds the user as a member until an explicit leave"},
		{name: "durable-room-members", group: groupDurable, value: intVar(&c.DurableRoomMembers),
			help: "most member users of one durable room (a join beyond it is refused as forbidden)"},

		{name: "queue-max-bytes", group: groupDurable, value: int64Var(&c.QueueMaxBytes),
			help: "most payload bytes held in each user's queue; a full queue refuses new messages (queue_full, API 429) instead of trimming old ones"},
		{name: "max-durable-message", group: groupDurable, value: intVar(&c.MaxDurableMessage),
			help: "largest durable message (direct, or to a durable room) in bytes (too_large, API 413)"},
		{name: "durable-budget", group: groupDurable, value: int64Var(&c.DurableBudget),
			help: "durable bytes (size x recipient queues) one client user may store per minute, cluster-wide (quota_exceeded); the HTTP API is not budgeted; negative = off"},

		{name: "presence-rooms", group: groupPresence, value: listVar(&c.PresenceRooms), unset: "none (every room with --demo)",
			help: "comma-separated glob patterns of the rooms whose members get roomcast:join / roomcast:leave when a user's first socket joins or last socket leaves (presence itself is kept for every room)"},
		{name: "presence-coalesce-above", group: groupPresence, value: intVar(&c.PresenceCoalesceAbove),
			help: "member users above which a --presence-rooms room gets one roomcast:presence count event per --presence-coalesce-interval instead of each join and leave; negative = never"},
		{name: "presence-coalesce-interval", group: groupPresence, value: durationVar(&c.PresenceCoalesceInterval),
			help: "most often a big room's roomcast:presence count event is sent (cluster-wide)"},
		{name: "events-maxlen", group: groupPresence, value: int64Var(&c.EventsMaxLen),
			help: "approximate length bound of the lifecycle event stream <redis-prefix>:events (with --redis)"},
		{name: "idempotency-window", group: groupDurable, value: durationVar(&c.IdempotencyWindow),
			help: "how long an idempotencyKey of POST /api/v1/emit or of a client publish is remembered (in Redis with --redis, cluster-wide): a repeat within it gets the first answer with \"duplicate\": true and delivers nothing; messages to users are deduplicated per user in the same Redis step as their append"},

		{name: "jwt-issuer", group: groupLimits, value: stringVar(&c.JWTIssuer), unset: "not checked",
			help: "required \"iss\" of client tokens"},
		{name: "jwt-audience", group: groupLimits, value: stringVar(&c.JWTAudience), unset: "not checked",
			help: "required \"aud\" (or element of it) of client tokens"},
		{name: "jwks-url", group: groupLimits, value: stringVar(&c.JWKSURL), unset: "none",
			help: "JSON Web Key Set URL whose RSA/P-256 keys verify RS256/ES256 client tokens by kid (refreshed every 5 minutes and on an unknown kid, at most every 30s)"},
		{name: "allow-anonymous-dm", group: groupLimits, value: boolVar(&c.AllowAnonymousDM),
			help: "let anonymous clients send direct messages (stored for the queue retention); the demo needs it"},
		{name: "trusted-proxies", group: groupLimits, value: listVar(&c.TrustedProxies), unset: "none",
			help: "comma-separated CIDRs of the load balancers in front of this node; their X-Forwarded-For names the client IP that per-IP limits count"},
		{name: "event-rate", group: groupLimits, value: floatVar(&c.EventRate),
			help: "events per second one user may send, over all its sockets and nodes (bursts of twice that); over it, rate_limited acks; negative = off"},
		{name: "ip-event-rate", group: groupLimits, value: floatVar(&c.IPEventRate),
			help: "events per second one client IP may send (bursts of twice that); negative = off"},
		{name: "connect-rate", group: groupLimits, value: floatVar(&c.ConnectRate),
			help: "Socket.IO CONNECT attempts per second per client IP (bursts of twice that; a refused one costs 5); over it, CONNECT_ERROR \"rate limited\" and the transport is closed; negative = off"},
		{name: "handshake-rate", group: groupLimits, value: floatVar(&c.HandshakeRate),
			help: "Engine.IO handshakes per second per client IP (bursts of twice that); over it, HTTP 429; negative = off"},
		{name: "max-conns-per-user", group: groupLimits, value: intVar(&c.MaxConnsPerUser),
			help: "open sockets one user may hold, cluster-wide; over it, CONNECT_ERROR \"too many connections\"; negative = off"},
		{name: "max-conns-per-ip", group: groupLimits, value: intVar(&c.MaxConnsPerIP),
			help: "open sockets one client IP may hold, cluster-wide; negative = off"},
		{name: "token-expiry-warning", group: groupLimits, value: durationVar(&c.TokenExpiryWarning),
			help: "how long before its token's exp a socket is sent roomcast:token-expiring; at exp its transport is closed unless it sent a fresh token with the auth event"},

		{name: "webhook", group: groupHooks, value: stringVar(&c.Webhook), unset: "none (unknown_event error acks)",
			help: "backend URL that client events other than join/leave/publish/presence/auth are POSTed to, signed; its answer is the ack and may join, leave, emit and disconnect"},
		{name: "namespace-webhooks", group: groupHooks, value: listVar(&c.NamespaceWebhooks), unset: "none",
			help: "comma-separated namespace=URL pairs: a namespace's own webhook instead of --webhook (e.g. '/chat=http://chat-backend/hook')"},
		{name: "connect-hook", group: groupHooks, value: stringVar(&c.ConnectHook), unset: "none",
			help: "backend URL asked before a CONNECT is accepted, with the token's claims; it accepts (optionally overriding the user, rooms, join/publish patterns, session data) or refuses with the client's connect_error message; a recovered session is not asked again"},
		{name: "connect-hook-headers", group: groupHooks, value: listVar(&c.ConnectHookHeaders), unset: "none",
			help: "comma-separated handshake headers sent to the connect hook (e.g. 'user-agent,origin'); cookies only when 'cookie' is named"},
		{name: "publish-hooks", group: groupHooks, value: listVar(&c.PublishHooks), unset: "none",
			help: "comma-separated pattern=URL pairs: a client publish to a room matching the pattern is validated, rewritten or refused by URL before delivery (the first matching pair wins)"},
		{name: "lifecycle-hook", group: groupHooks, value: stringVar(&c.LifecycleHook), unset: "none",
			help: "backend URL that lifecycle events (connect, disconnect, join, leave, occupied, vacated) are POSTed to in signed batches, at least once; with --redis read from <redis-prefix>:events by the consumer group roomcast:lifecycle-hook, so a node's crash loses none"},
		{name: "lifecycle-hook-batch", group: groupHooks, value: intVar(&c.LifecycleHookBatch),
			help: "most events in one lifecycle hook request"},
		{name: "lifecycle-hook-queue", group: groupHooks, value: intVar(&c.LifecycleHookQueue),
			help: "events waiting for the lifecycle hook on a node without --redis; beyond it the oldest are dropped (roomcast_lifecycle_hook_events_total{result=\"dropped\"})"},
		{name: "lifecycle-hook-claim-idle", group: groupHooks, value: durationVar(&c.LifecycleHookClaimIdle),
			help: "with --redis: how long an event read by a node may stay unacknowledged before another node claims it (XAUTOCLAIM; a node still retrying keeps it); at least twice --hook-timeout"},
		{name: "hook-secret", group: groupHooks, value: stringVar(&c.HookSecret), unset: "none",
			help: "HMAC-SHA256 key signing every hook request (X-Roomcast-Signature over timestamp and body); required with any hook"},
		{name: "hook-timeout", group: groupHooks, value: durationVar(&c.HookTimeout),
			help: "bound of one hook call, retries and the wait behind the socket's earlier events included; after it the client gets an unavailable error"},
		{name: "hook-retries", group: groupHooks, value: intVar(&c.HookRetries),
			help: "retries of a hook request the backend surely did not process (connection refused, 429, 502, 503), with jittered exponential backoff from 50ms; negative = none"},
		{name: "hook-concurrency", group: groupHooks, value: intVar(&c.HookConcurrency),
			help: "hook requests in flight on this node; beyond it a client gets an unavailable error at once (busy)"},
		{name: "hook-queue", group: groupHooks, value: intVar(&c.HookQueue),
			help: "events of one socket waiting for the webhook (sent one at a time, in order); beyond it, an unavailable error at once"},
		{name: "hook-breaker-failures", group: groupHooks, value: intVar(&c.HookBreakerFailures),
			help: "failed calls in a row that open a hook URL's circuit breaker (its calls then fail at once until a probe after the cooldown succeeds); negative = off"},
		{name: "hook-breaker-cooldown", group: groupHooks, value: durationVar(&c.HookBreakerCooldown),
			help: "how long an open circuit breaker refuses calls before a probe"},

		{name: "api-timeout", group: groupTimeouts, value: durationVar(&c.APITimeout),
			help: "bound of one HTTP API call's work (Redis, other nodes)"},
		{name: "event-timeout", group: groupTimeouts, value: durationVar(&c.EventTimeout),
			help: "bound of what a client event waits for: storing a message to a user, reading a room's presence"},
		{name: "ready-timeout", group: groupTimeouts, value: durationVar(&c.ReadyTimeout),
			help: "bound of the Redis check behind /readyz"},
		{name: "read-header-timeout", group: groupTimeouts, value: durationVar(&c.ReadHeaderTimeout),
			help: "bound of reading an HTTP request's headers, on both addresses"},
		{name: "redis-connect-timeout", group: groupTimeouts, value: durationVar(&c.RedisConnectTimeout),
			help: "bound of connecting to Redis and subscribing at startup"},
		{name: "upgrade-timeout", group: groupTimeouts, value: durationVar(&c.Engine.UpgradeTimeout),
			help: "bound of a polling-to-websocket upgrade"},
		{name: "write-timeout", group: groupTimeouts, value: durationVar(&c.Engine.WriteTimeout),
			help: "bound of one write to a client (a websocket flush, a polling response); a peer that stops reading is dropped as a slow consumer"},
		{name: "http-idle-timeout", group: groupTimeouts, value: durationVar(&c.HTTPIdleTimeout),
			help: "idle keep-alive HTTP connections are closed after this, on both addresses"},
		{name: "http-read-timeout", group: groupTimeouts, value: durationVar(&c.HTTPReadTimeout),
			help: "bound of reading one request body (a polling POST, an API call)"},
	}
}

// envName is the environment variable of a setting: --jwt-secret is
// ROOMCAST_JWT_SECRET.
func (s setting) envName() string {
	return "ROOMCAST_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

// yamlKey is the setting's key in the --config file, or "" when it has none.
func (s setting) yamlKey() string {
	if s.notInFile {
		return ""
	}
	return s.name
}

// defaultText is the default as --help and the docs show it.
func (s setting) defaultText() string {
	if d := s.value.String(); d != "" {
		return d
	}
	return s.unset
}

// value is a setting's field: a flag.Value that also says its type and,
// for lists, takes a YAML sequence.
type value interface {
	flag.Value
	typeName() string // "" for booleans, which take no argument as flags
}

// listSetter is implemented by values that take a YAML sequence.
type listSetter interface {
	setList([]string)
}

type stringValue struct{ p *string }

func stringVar(p *string) value          { return stringValue{p} }
func (v stringValue) Set(s string) error { *v.p = s; return nil }
func (v stringValue) String() string     { return *v.p }
func (v stringValue) typeName() string   { return "string" }

type boolValue struct{ p *bool }

func boolVar(p *bool) value { return boolValue{p} }
func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errParse
	}
	*v.p = b
	return nil
}
func (v boolValue) String() string   { return strconv.FormatBool(*v.p) }
func (v boolValue) typeName() string { return "" }
func (v boolValue) IsBoolFlag() bool { return true }

type intValue struct{ p *int }

func intVar(p *int) value { return intValue{p} }
func (v intValue) Set(s string) error {
	n, err := strconv.ParseInt(s, 0, strconv.IntSize)
	if err != nil {
		return numError(err)
	}
	*v.p = int(n)
	return nil
}
func (v intValue) String() string   { return strconv.Itoa(*v.p) }
func (v intValue) typeName() string { return "int" }

type int64Value struct{ p *int64 }

func int64Var(p *int64) value { return int64Value{p} }
func (v int64Value) Set(s string) error {
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return numError(err)
	}
	*v.p = n
	return nil
}
func (v int64Value) String() string   { return strconv.FormatInt(*v.p, 10) }
func (v int64Value) typeName() string { return "int" }

type floatValue struct{ p *float64 }

func floatVar(p *float64) value { return floatValue{p} }
func (v floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return numError(err)
	}
	*v.p = f
	return nil
}
func (v floatValue) String() string   { return strconv.FormatFloat(*v.p, 'g', -1, 64) }
func (v floatValue) typeName() string { return "float" }

type durationValue struct{ p *time.Duration }

func durationVar(p *time.Duration) value { return durationValue{p} }
func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errParse
	}
	*v.p = d
	return nil
}

// String drops the zero units time.Duration.String keeps: 2m, not 2m0s.
func (v durationValue) String() string {
	s := v.p.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
func (v durationValue) typeName() string { return "duration" }

// listValue is a comma-separated list: each item is trimmed, empty items
// are dropped. A YAML sequence sets it item by item, as written.
type listValue struct{ p *[]string }

func listVar(p *[]string) value { return listValue{p} }
func (v listValue) Set(s string) error {
	var l []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			l = append(l, item)
		}
	}
	*v.p = l
	return nil
}
func (v listValue) setList(l []string) { *v.p = l }
func (v listValue) String() string     { return strings.Join(*v.p, ",") }
func (v listValue) typeName() string   { return "list" }

// errParse and numError give the flag package's own messages, so that a
// bad value reads the same from a flag, a variable or the file.
var errParse = fmt.Errorf("parse error")

func numError(err error) error {
	if ne, ok := err.(*strconv.NumError); ok {
		return ne.Err
	}
	return err
}
