package redisadapter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/internal/redispubsub"
	"github.com/roomcast/roomcast/metrics"
)

// Operation labels of roomcast_redis_command_duration_seconds and
// roomcast_redis_errors_total used by the adapters.
const (
	opPublish   = "publish"   // PUBLISH, SPUBLISH
	opSubscribe = "subscribe" // the pub/sub connection(s)
	opRequest   = "request"   // PUBSUB NUMSUB / SHARDNUMSUB
	opNodes     = "nodes"     // the node registry
	opPing      = "ping"      // Ready
)

// replyWorkers and replyQueue size the pool that publishes replies to other
// nodes' requests and runs serverSideEmit handlers, off the subscriber's
// read loop.
const (
	replyWorkers = 4
	replyQueue   = 4096
)

// fallbackAckIDBase starts the ack ids given to broadcasts from other nodes
// when the namespace does not hand out ids itself (see AckIDSource): far
// above what a namespace's own counter reaches, still exact in JavaScript.
const fallbackAckIDBase = 1 << 40

// broker is what every namespace adapter of one node shares: the Redis
// client, the pub/sub connection(s), the routing of received messages to
// namespaces, the node registry, the reply workers, the metrics.
type broker struct {
	client  redis.UniversalClient
	prefix  string
	node    string
	metrics *metrics.Metrics
	log     *slog.Logger
	timeout time.Duration
	beat    time.Duration
	sharded bool
	sub     *redispubsub.Subscriber

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	jobs   chan func(context.Context)
	closed atomic.Bool
	down   atomic.Bool // a connection failure was logged; the recovery not yet
	ackIDs atomic.Int64

	mu     sync.RWMutex
	routes map[redispubsub.Key][]*route

	pubs      chan pendingPublish // the ordered publish pipeline (redis_pipeline.go)
	pubMu     sync.RWMutex
	pubClosed bool

	ops map[string]*metrics.RedisOp // nil entries without metrics
}

type route struct {
	fn func(channel string, payload []byte)
}

func newBroker(ctx context.Context, cfg Config) (*broker, error) {
	if cfg.Client == nil {
		return nil, errors.New("adapter: Client is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = adapter.DefaultPrefix
	}
	if cfg.Node == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "node"
		}
		cfg.Node = host + "-" + randomID(2)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	bctx, cancel := context.WithCancel(context.Background())
	b := &broker{
		client:  cfg.Client,
		prefix:  cfg.Prefix,
		node:    cfg.Node,
		metrics: cfg.Metrics,
		log:     cfg.Logger.With("node", cfg.Node),
		timeout: cfg.RequestTimeout,
		beat:    cfg.HeartbeatInterval,
		sharded: cfg.Mode == Sharded,
		ctx:     bctx,
		cancel:  cancel,
		jobs:    make(chan func(context.Context), replyQueue),
		routes:  make(map[redispubsub.Key][]*route),
		ops:     make(map[string]*metrics.RedisOp),
	}
	if m := cfg.Metrics; m != nil {
		for _, op := range []string{opPublish, opSubscribe, opRequest, opNodes, opPing} {
			b.ops[op] = m.RedisOp(op)
		}
	}
	b.sub = redispubsub.New(redispubsub.Config{
		Client:    cfg.Client,
		OnMessage: b.dispatch,
		OnFailure: b.subFailed,
		OnRecover: b.subRecovered,
		OnDial: func(d time.Duration) {
			b.ops[opSubscribe].Took(d)
		},
		Unavailable: adapter.ErrUnavailable,
		Logger:      b.log,
	})
	for range replyWorkers {
		b.wg.Add(1)
		go b.work()
	}
	b.startPublisher()
	// First contact: register in the node registry. An unreachable Redis is
	// not an error here; Ready reports it until it comes back.
	if err := b.heartbeat(ctx); err != nil {
		b.log.Warn("adapter: redis not reachable yet", "err", err)
	}
	b.wg.Add(1)
	go b.heartbeatLoop()
	return b, nil
}

// observe records the duration and outcome of one Redis operation.
func (b *broker) observe(op string, start time.Time, err error) {
	b.ops[op].Done(start, err)
}

func (b *broker) countError(op string) {
	b.ops[op].Failed()
}

func (b *broker) subFailed(err error) {
	b.countError(opSubscribe)
	if b.closed.Load() {
		return
	}
	if b.down.CompareAndSwap(false, true) {
		b.log.Warn("adapter: redis pub/sub unavailable, reconnecting", "err", err)
	} else {
		b.log.Debug("adapter: redis pub/sub reconnect failed", "err", err)
	}
}

func (b *broker) subRecovered() {
	if b.down.CompareAndSwap(true, false) {
		b.log.Info("adapter: redis pub/sub connection re-established")
	}
}

// dispatch hands a received message to the namespaces that subscribed to
// its channel (or pattern). It runs on the subscriber's read loop.
func (b *broker) dispatch(m *redis.Message) {
	k := redispubsub.Key{Kind: redispubsub.Channel, Name: m.Channel}
	switch {
	case m.Pattern != "":
		k = redispubsub.Key{Kind: redispubsub.Pattern, Name: m.Pattern}
	case b.sharded:
		k.Kind = redispubsub.Shard
	}
	b.mu.RLock()
	rs := b.routes[k]
	b.mu.RUnlock()
	if len(rs) == 0 {
		return
	}
	payload := []byte(m.Payload)
	for _, r := range rs {
		r.fn(m.Channel, payload)
	}
}

// listen routes messages of k to fn and subscribes to k; the returned
// function undoes it.
func (b *broker) listen(k redispubsub.Key, fn func(channel string, payload []byte)) (stop func()) {
	r := &route{fn: fn}
	b.mu.Lock()
	b.routes[k] = append(b.routes[k], r)
	b.mu.Unlock()
	b.sub.Add(k)
	var once sync.Once
	return func() {
		once.Do(func() {
			b.sub.Remove(k)
			b.mu.Lock()
			rs := b.routes[k]
			for i, x := range rs {
				if x == r {
					rs = append(rs[:i:i], rs[i+1:]...)
					break
				}
			}
			if len(rs) == 0 {
				delete(b.routes, k)
			} else {
				b.routes[k] = rs
			}
			b.mu.Unlock()
		})
	}
}

// publish sends payload to channel (SPUBLISH for the sharded adapter).
func (b *broker) publish(ctx context.Context, channel string, payload []byte) error {
	if b.closed.Load() {
		return adapter.ErrClosed
	}
	start := time.Now()
	var err error
	if b.sharded {
		err = b.client.SPublish(ctx, channel, payload).Err()
	} else {
		err = b.client.Publish(ctx, channel, payload).Err()
	}
	b.observe(opPublish, start, err)
	if err != nil {
		return fmt.Errorf("%w: publish to %q: %v", adapter.ErrUnavailable, channel, err)
	}
	return nil
}

// reply publishes payload from a reply worker: replies never block the
// subscriber's read loop nor a client's read loop. A failure is counted and
// logged.
func (b *broker) reply(channel string, payload []byte) {
	b.async(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, b.timeout)
		defer cancel()
		if err := b.publish(ctx, channel, payload); err != nil && !errors.Is(err, adapter.ErrClosed) {
			b.log.Debug("adapter: reply not published", "channel", channel, "err", err)
		}
	})
}

// async runs fn on a reply worker. When the queue is full the job is dropped
// and counted as a publish error.
func (b *broker) async(fn func(context.Context)) {
	if b.closed.Load() {
		return
	}
	select {
	case b.jobs <- fn:
	default:
		b.countError(opPublish)
		b.log.Warn("adapter: reply queue full, reply dropped")
	}
}

func (b *broker) work() {
	defer b.wg.Done()
	for {
		select {
		case fn := <-b.jobs:
			fn(b.ctx)
		case <-b.ctx.Done():
			return
		}
	}
}

// nextAckID returns an ack id for a broadcast with acks from another node.
func (b *broker) nextAckID(nsp adapter.Namespace) int64 {
	if src, ok := nsp.(adapter.AckIDSource); ok {
		return src.NextAckID()
	}
	return fallbackAckIDBase + b.ackIDs.Add(1)
}

// subscribers counts the subscribers of channel (PUBSUB NUMSUB, or
// SHARDNUMSUB for the sharded adapter), summed over the nodes of a cluster.
func (b *broker) subscribers(ctx context.Context, channel string) (int, error) {
	if b.closed.Load() {
		return 0, adapter.ErrClosed
	}
	start := time.Now()
	n, err := b.countSubscribers(ctx, channel)
	b.observe(opRequest, start, err)
	if err != nil {
		return 0, fmt.Errorf("%w: count subscribers of %q: %v", adapter.ErrUnavailable, channel, err)
	}
	return n, nil
}

func (b *broker) countSubscribers(ctx context.Context, channel string) (int, error) {
	count := func(ctx context.Context, c redis.Cmdable) (int64, error) {
		var res map[string]int64
		var err error
		if b.sharded {
			res, err = c.PubSubShardNumSub(ctx, channel).Result()
		} else {
			res, err = c.PubSubNumSub(ctx, channel).Result()
		}
		return res[channel], err
	}
	cc, ok := b.client.(*redis.ClusterClient)
	if !ok {
		n, err := count(ctx, b.client)
		return int(n), err
	}
	var total atomic.Int64
	each := func(ctx context.Context, c *redis.Client) error {
		n, err := count(ctx, c)
		total.Add(n)
		return err
	}
	var err error
	if b.sharded {
		err = cc.ForEachMaster(ctx, each) // a shard channel lives on its slot's master
	} else {
		err = cc.ForEachShard(ctx, each) // classic subscribers may sit on any node
	}
	return int(total.Load()), err
}

// nodesKey is the sorted set of the node registry: members are node ids,
// scores the Unix time in milliseconds at which the entry expires.
func (b *broker) nodesKey() string { return b.prefix + "-nodes" }

func (b *broker) heartbeatLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.beat)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(b.ctx, b.beat)
			if err := b.heartbeat(ctx); err != nil && b.ctx.Err() == nil {
				b.log.Debug("adapter: node heartbeat failed", "err", err)
			}
			cancel()
		case <-b.ctx.Done():
			return
		}
	}
}

// heartbeat refreshes this node's registry entry, drops expired ones and
// updates the node gauge.
func (b *broker) heartbeat(ctx context.Context) error {
	now := time.Now()
	key := b.nodesKey()
	ttl := 3 * b.beat
	start := time.Now()
	pipe := b.client.Pipeline()
	pipe.ZAdd(ctx, key, redis.Z{Score: float64(now.Add(ttl).UnixMilli()), Member: b.node})
	pipe.ZRemRangeByScore(ctx, key, "-inf", "("+strconv.FormatInt(now.UnixMilli(), 10))
	card := pipe.ZCard(ctx, key)
	pipe.PExpire(ctx, key, ttl)
	_, err := pipe.Exec(ctx)
	b.observe(opNodes, start, err)
	if err != nil {
		return fmt.Errorf("%w: node registry: %v", adapter.ErrUnavailable, err)
	}
	if b.metrics != nil {
		b.metrics.SetNodes(int(card.Val()))
	}
	return nil
}

// nodes lists the live entries of the node registry.
func (b *broker) nodes(ctx context.Context) ([]string, error) {
	if b.closed.Load() {
		return nil, adapter.ErrClosed
	}
	start := time.Now()
	ids, err := b.client.ZRangeByScore(ctx, b.nodesKey(), &redis.ZRangeBy{
		Min: strconv.FormatInt(time.Now().UnixMilli(), 10), Max: "+inf",
	}).Result()
	b.observe(opNodes, start, err)
	if err != nil {
		return nil, fmt.Errorf("%w: node registry: %v", adapter.ErrUnavailable, err)
	}
	if b.metrics != nil {
		b.metrics.SetNodes(len(ids))
	}
	return ids, nil
}

// ready returns nil when Redis answers and every subscription is live.
func (b *broker) ready(ctx context.Context) error {
	if b.closed.Load() {
		return adapter.ErrClosed
	}
	if err := b.sub.Ready(); err != nil {
		return err
	}
	start := time.Now()
	err := b.client.Ping(ctx).Err()
	b.observe(opPing, start, err)
	if err != nil {
		return fmt.Errorf("%w: ping: %v", adapter.ErrUnavailable, err)
	}
	return nil
}

// close stops the broker's goroutines and removes the node from the
// registry. It does not close the Redis client.
func (b *broker) close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	b.stopPublisher()
	b.cancel()
	b.sub.Close()
	b.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := b.client.ZRem(ctx, b.nodesKey(), b.node).Err(); err != nil {
		b.log.Debug("adapter: node not removed from the registry", "err", err)
	}
	return nil
}
