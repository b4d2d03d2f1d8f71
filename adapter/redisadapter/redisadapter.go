package redisadapter

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/metrics"
)

// Mode selects the protocol of the Redis adapter.
type Mode uint8

const (
	// Classic is the protocol of @socket.io/redis-adapter 8.x's
	// createAdapter: PUBLISH, PSUBSCRIBE, request and response channels.
	Classic Mode = iota
	// Sharded is the protocol of its createShardedAdapter in the "dynamic"
	// subscription mode: Redis 7 sharded pub/sub (SPUBLISH, SSUBSCRIBE)
	// with a channel per room.
	Sharded
)

// Config configures a Cluster.
type Config struct {
	// Client talks to Redis: a *redis.Client (standalone, or Sentinel
	// through redis.NewFailoverClient) or a *redis.ClusterClient (Redis 7
	// or later for Sharded). Required; the adapter does not close it.
	Client redis.UniversalClient
	// Mode is the protocol. Defaults to Classic.
	Mode Mode
	// Prefix starts every channel and key name, as the key option of
	// createAdapter (channelPrefix of createShardedAdapter). Defaults to
	// "socket.io".
	Prefix string
	// Node names this node in SocketInfo.Node, in logs and in the node
	// registry. Defaults to the host name and a random suffix.
	Node string
	// Metrics records Redis command durations and errors, broadcasts and
	// the node count. Defaults to none.
	Metrics *metrics.Metrics
	// RequestTimeout bounds the requests to other nodes (fetchSockets,
	// serverSideEmitWithAck) when the context has no earlier deadline, and
	// the publishing of replies. Defaults to 5s.
	RequestTimeout time.Duration
	// HeartbeatInterval is how often the node refreshes its entry in the
	// node registry (the sorted set <prefix>-nodes); an entry expires after
	// three intervals. Defaults to 5s.
	HeartbeatInterval time.Duration
	// PublishOnSpecificResponseChannel (Classic only) sends replies to the
	// requester's own response channel (<prefix>-response#<nsp>#<uid>#)
	// instead of the shared one, as the option of that name of
	// @socket.io/redis-adapter (8.x nodes listen on both). Defaults to
	// false, as there.
	PublishOnSpecificResponseChannel bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Cluster is this node's Redis adapter: its Factory creates the adapter of
// each namespace, and every namespace shares one set of pub/sub
// connections, the node registry and the publish pipeline.
//
// # Classic wire format
//
// A broadcast is published on <prefix>#<nsp># (or <prefix>#<nsp>#<room>#
// when it names exactly one room) as MessagePack [uid, packet, opts], and
// every node PSUBSCRIBEs <prefix>#<nsp>#*. Requests (types 0-9 of 8.x) go to
// <prefix>-request#<nsp>#, JSON or MessagePack as 8.x encodes each; replies
// to <prefix>-response#<nsp># (or the requester's own
// <prefix>-response#<nsp>#<uid>#). Roomcast's replies add "args" (every
// argument of an ack, where Node servers read only the first) and fetch
// answers "node"; Node servers ignore both.
//
// # Sharded wire format
//
// A broadcast to exactly one room (that is not a socket id) goes to
// <prefix>#<nsp>#<room>#, which only the nodes with a local member of the
// room subscribe to; everything else goes to <prefix>#<nsp>#, which every
// node subscribes to, and replies to <prefix>#<nsp>#<uid>#, the requester's
// own channel. Messages are socket.io-adapter ClusterAdapter messages, {uid,
// nsp, type, data}, JSON or MessagePack (when they carry binaries), as the
// Node adapter sends them. A node subscribes to a room's channel when the
// room gets its first local member and unsubscribes when it loses its last
// one; a broadcast published between a join and the subscription taking
// effect is missed by that member's node, as with the Node adapter. On a
// Redis Cluster each channel lives on the master that owns its slot (see
// package internal/redispubsub).
//
// # Redis faults
//
// When Redis goes away, Ready fails at once; the pub/sub connections are
// re-made with backoff and everything re-subscribed on them (package
// internal/redispubsub); local delivery goes on; cluster-wide operations
// fail with errors wrapping adapter.ErrUnavailable (Broadcast after
// delivering locally), each counted in roomcast_redis_errors_total. Nothing
// grows while Redis is away.
//
// # Concurrency
//
// A Cluster and its namespace adapters are safe for concurrent use.
// Goroutines, all stopped by Close: the pub/sub supervisor and its readers,
// a node registry heartbeat, the publish pipeline and four reply workers.
// A reader decodes received broadcasts and hands them to the local sockets
// itself, in the order Redis sent them; replies to other nodes' requests and
// the serverSideEmit handlers run on the reply workers (a handler that
// blocks holds one up; a full queue of 4096 drops a reply and counts it as
// a publish error).
type Cluster struct {
	b           *broker
	specificRes bool
}

// New connects the adapter to Redis. ctx bounds the first contact (the node
// registry entry); an unreachable Redis is not an error: the adapter
// connects in the background, with backoff, and Ready reports when it is
// usable.
func New(ctx context.Context, cfg Config) (*Cluster, error) {
	b, err := newBroker(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Cluster{b: b, specificRes: cfg.PublishOnSpecificResponseChannel && cfg.Mode == Classic}, nil
}

// Factory returns the Factory to give socketio.Config.Adapter.
func (c *Cluster) Factory() adapter.Factory {
	return func(nsp adapter.Namespace) (adapter.Adapter, error) { return c.newAdapter(nsp) }
}

// Ready returns nil when Redis answers and the subscriptions are live, an
// error wrapping adapter.ErrUnavailable otherwise.
func (c *Cluster) Ready(ctx context.Context) error { return c.b.ready(ctx) }

// Nodes lists the nodes of the node registry whose heartbeat is recent, and
// sets the roomcast_nodes gauge.
func (c *Cluster) Nodes(ctx context.Context) ([]string, error) { return c.b.nodes(ctx) }

// Close stops the adapter's goroutines, closes its pub/sub connections and
// removes the node from the registry. It does not close the Redis client.
// Namespace adapters keep delivering locally; their cluster-wide operations
// fail with adapter.ErrClosed.
func (c *Cluster) Close() error { return c.b.close() }
