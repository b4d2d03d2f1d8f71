package adapter

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/internal/msgpack"
	"github.com/roomcast/roomcast/metrics"
)

// Message types of socket.io-adapter's ClusterAdapter, the protocol of
// @socket.io/redis-adapter's sharded adapter.
const (
	msgBroadcast              = 3
	msgSocketsJoin            = 4
	msgSocketsLeave           = 5
	msgDisconnectSockets      = 6
	msgFetchSockets           = 7
	msgFetchSocketsResponse   = 8
	msgServerSideEmit         = 9
	msgServerSideEmitResponse = 10
	msgBroadcastClientCount   = 11
	msgBroadcastAck           = 12
)

// shardedBinaryTypes are the message types the sharded adapter encodes with
// MessagePack when their data holds binaries (JSON otherwise).
const shardedBinaryTypes = 1<<msgBroadcast | 1<<msgBroadcastAck | 1<<msgFetchSocketsResponse |
	1<<msgServerSideEmit | 1<<msgServerSideEmitResponse

// socketIDLength is the length of a Socket.IO socket id: a room name of this
// length is taken for one and gets no channel of its own, as the dynamic
// mode of the Node adapter decides.
const socketIDLength = 20

// ShardedConfig configures the sharded Redis adapter.
type ShardedConfig struct {
	// Client talks to Redis 7 or later: a *redis.Client or a
	// *redis.ClusterClient. Required; the adapter does not close it.
	Client redis.UniversalClient
	// Prefix starts every channel and key name, as the channelPrefix option
	// of @socket.io/redis-adapter's createShardedAdapter. Defaults to
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
	// node registry; an entry expires after three intervals. Defaults to 5s.
	HeartbeatInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Sharded is the sharded Redis adapter of one node: Redis 7 sharded pub/sub
// (SSUBSCRIBE/SPUBLISH) with a channel per room, following
// @socket.io/redis-adapter's createShardedAdapter in its "dynamic"
// subscription mode and speaking its protocol. A broadcast to exactly one
// room (that is not a socket id) goes to <prefix>#<nsp>#<room>#, which only
// the nodes with a local member of the room subscribe to; everything else
// goes to <prefix>#<nsp>#, which every node subscribes to, and replies to
// <prefix>#<nsp>#<uid>#, the requester's own channel. On a Redis Cluster
// each channel lives on the master that owns its slot: the node keeps one
// pub/sub connection per master it needs, and sends one SSUBSCRIBE per
// channel to it (again after every reconnection or slot move).
//
// Messages are socket.io-adapter ClusterAdapter messages, {uid, nsp, type,
// data}, JSON or MessagePack (when they carry binaries), as the Node
// adapter sends them. A node subscribes to a room's channel when the room
// gets its first local member and unsubscribes when it loses its last one;
// a broadcast published between a join and the subscription taking effect
// is missed by that member's node, as with the Node adapter.
//
// Faults and concurrency are as for Redis.
type Sharded struct {
	brokerHandle
}

// NewSharded connects the sharded adapter to Redis; see NewRedis.
func NewSharded(ctx context.Context, cfg ShardedConfig) (*Sharded, error) {
	b, err := newBroker(ctx, brokerConfig{
		client:            cfg.Client,
		prefix:            cfg.Prefix,
		node:              cfg.Node,
		metrics:           cfg.Metrics,
		requestTimeout:    cfg.RequestTimeout,
		heartbeatInterval: cfg.HeartbeatInterval,
		logger:            cfg.Logger,
		sharded:           true,
	})
	if err != nil {
		return nil, err
	}
	return &Sharded{brokerHandle{b}}, nil
}

// Factory returns the Factory to give socketio.Config.Adapter.
func (s *Sharded) Factory() Factory {
	return func(nsp Namespace) (Adapter, error) { return s.newAdapter(nsp) }
}

// ShardedAdapter is the sharded adapter of one namespace. Its local half is
// the embedded Memory.
type ShardedAdapter struct {
	*Memory
	b   *broker
	nsp Namespace
	uid string

	channel         string // <prefix>#<nsp>#
	responseChannel string // <prefix>#<nsp>#<uid>#

	pending pendingSet
	stops   []func()
	closed  atomic.Bool

	roomMu sync.Mutex
	rooms  map[string]func() // room channels subscribed to, and how to stop
}

var _ Adapter = (*ShardedAdapter)(nil)

func (s *Sharded) newAdapter(nsp Namespace) (*ShardedAdapter, error) {
	b := s.b
	if b.closed.Load() {
		return nil, ErrClosed
	}
	a := &ShardedAdapter{
		b:     b,
		nsp:   nsp,
		uid:   randomID(8),
		rooms: make(map[string]func()),
	}
	a.channel = b.prefix + "#" + nsp.Name() + "#"
	a.responseChannel = a.channel + a.uid + "#"
	a.Memory = NewMemory(nsp, MemoryConfig{
		Node:          b.node,
		Metrics:       b.metrics,
		OnRoomCreated: func(room string) error { a.syncRoom(room); return nil },
		OnRoomEmptied: a.syncRoom,
	})
	a.stops = []func(){
		b.listen(subKey{subShard, a.channel}, a.onMessage),
		b.listen(subKey{subShard, a.responseChannel}, a.onMessage),
	}
	return a, nil
}

// UID returns the adapter's id on the wire.
func (a *ShardedAdapter) UID() string { return a.uid }

// RoomChannel returns the shard channel of room, the one single-room
// broadcasts use; ok is false for a room that has none (a socket id).
func (a *ShardedAdapter) RoomChannel(room string) (channel string, ok bool) {
	if !dynamicRoom(room) {
		return a.channel, false
	}
	return a.channel + room + "#", true
}

// dynamicRoom reports whether room gets its own channel: every room but
// those that look like a socket id, as the dynamic mode decides.
func dynamicRoom(room string) bool { return jsLength(room) != socketIDLength }

// syncRoom subscribes to the channel of room while it has a local member
// and unsubscribes when it has none. It reads the current membership rather
// than trusting the event that called it, so callbacks that race leave the
// subscription matching the last state.
func (a *ShardedAdapter) syncRoom(room string) {
	if !dynamicRoom(room) {
		return
	}
	a.roomMu.Lock()
	defer a.roomMu.Unlock()
	if a.closed.Load() {
		return
	}
	has := a.HasRoom(room)
	stop, subscribed := a.rooms[room]
	switch {
	case has && !subscribed:
		a.rooms[room] = a.b.listen(subKey{subShard, a.channel + room + "#"}, a.onMessage)
	case !has && subscribed:
		stop()
		delete(a.rooms, room)
	}
}

// Close implements Adapter: the namespace stops listening to Redis.
func (a *ShardedAdapter) Close() error {
	if !a.closed.CompareAndSwap(false, true) {
		return nil
	}
	for _, stop := range a.stops {
		stop()
	}
	a.roomMu.Lock()
	for room, stop := range a.rooms {
		stop()
		delete(a.rooms, room)
	}
	a.roomMu.Unlock()
	return nil
}

func (a *ShardedAdapter) usable() error {
	if a.closed.Load() || a.b.closed.Load() {
		return ErrClosed
	}
	return nil
}

// encode makes the wire form of a message: {uid, nsp, type, data}, in
// MessagePack when it may and does hold binary data, JSON otherwise.
func (a *ShardedAdapter) encode(typ int64, data map[string]any) ([]byte, error) {
	msg := map[string]any{"uid": a.uid, "nsp": a.nsp.Name(), "type": typ, "data": data}
	if shardedBinaryTypes&(1<<typ) != 0 && hasBinary(data) {
		return msgpack.Marshal(msg)
	}
	return encodeJSON(msg)
}

func (a *ShardedAdapter) publish(ctx context.Context, channel string, typ int64, data map[string]any) error {
	if err := a.usable(); err != nil {
		return err
	}
	payload, err := a.encode(typ, data)
	if err != nil {
		return err
	}
	return a.b.publish(ctx, channel, payload)
}

// respond publishes a reply on the requester's channel.
func (a *ShardedAdapter) respond(requester string, typ int64, data map[string]any) {
	payload, err := a.encode(typ, data)
	if err != nil {
		a.b.log.Warn("adapter: reply not encodable", "err", err)
		return
	}
	a.b.reply(a.channel+requester+"#", payload)
}

// Broadcast implements Adapter: the local sockets get m at once; the other
// nodes through the room's channel (one room) or the namespace's. A publish
// failure is returned wrapping ErrUnavailable.
func (a *ShardedAdapter) Broadcast(ctx context.Context, m *Message, opts Options) error {
	channel, payload, err := a.prepareBroadcast(m, opts)
	if err != nil || channel == "" {
		return err
	}
	return a.b.publish(ctx, channel, payload)
}

// prepareBroadcast delivers m to the local sockets and returns where to
// publish it and its wire form (channel "" when it stays on this node).
func (a *ShardedAdapter) prepareBroadcast(m *Message, opts Options) (channel string, payload []byte, err error) {
	if opts.Local {
		a.DeliverLocal(m, opts, false)
		return "", nil, nil
	}
	packet, err := packetValue(m)
	if err != nil {
		return "", nil, err
	}
	a.DeliverLocal(m, opts, false)
	if err := a.usable(); err != nil {
		return "", nil, err
	}
	channel = a.channel
	if len(opts.Rooms) == 1 && dynamicRoom(opts.Rooms[0]) {
		channel += opts.Rooms[0] + "#"
	}
	payload, err = a.encode(msgBroadcast, map[string]any{"packet": packet, "opts": optionsValue(opts, nil)})
	return channel, payload, err
}

// BroadcastWithAck implements Adapter; see RedisAdapter.BroadcastWithAck.
// The request goes to the namespace channel: the server count that tells
// how many client counts to wait for covers every node.
func (a *ShardedAdapter) BroadcastWithAck(ctx context.Context, m *Message, opts Options) ([][]any, error) {
	if opts.Local {
		return a.Memory.BroadcastWithAck(ctx, m, opts)
	}
	packet, err := packetValue(m)
	if err != nil {
		return nil, err
	}
	flags := map[string]any{}
	if dl, ok := ctx.Deadline(); ok {
		flags["timeout"] = max(0, time.Until(dl).Milliseconds())
	}
	requestID := randomID(8)
	c := NewCollector()
	a.pending.add(requestID, &pending{acks: c})
	defer a.pending.del(requestID)
	perr := a.publish(ctx, a.channel, msgBroadcast, map[string]any{
		"packet": packet, "requestId": requestID, "opts": optionsValue(opts, flags),
	})
	c.Expect(a.DeliverLocalWithAck(m, opts, c.Add, false))
	if perr != nil {
		out, _ := c.Wait(ctx, 1)
		return out, perr
	}
	nodes, err := a.ServerCount(ctx)
	if err != nil {
		out, _ := c.Wait(ctx, 1)
		return out, err
	}
	return c.Wait(ctx, nodes)
}

// request counts the other nodes and registers a pending request for their
// answers; p is nil when this node is alone.
func (a *ShardedAdapter) request(ctx context.Context) (*pending, string, error) {
	nodes, err := a.ServerCount(ctx)
	if err != nil {
		return nil, "", err
	}
	if nodes <= 1 {
		return nil, "", nil
	}
	requestID := randomID(8)
	p := newPending(nodes - 1)
	a.pending.add(requestID, p)
	return p, requestID, nil
}

// FetchSockets implements Adapter (FETCH_SOCKETS).
func (a *ShardedAdapter) FetchSockets(ctx context.Context, opts Options) ([]SocketInfo, error) {
	local := a.FetchLocal(opts)
	if opts.Local {
		return local, nil
	}
	p, requestID, err := a.request(ctx)
	if err != nil || p == nil {
		return local, err
	}
	defer a.pending.del(requestID)
	if err := a.publish(ctx, a.channel, msgFetchSockets, map[string]any{
		"opts": optionsValue(opts, nil), "requestId": requestID,
	}); err != nil {
		return local, err
	}
	err = p.wait(ctx, a.b.timeout)
	socks, _ := p.result()
	return append(local, socks...), err
}

// AddSockets implements Adapter (SOCKETS_JOIN).
func (a *ShardedAdapter) AddSockets(ctx context.Context, opts Options, rooms []string) error {
	err := a.AddLocal(opts, rooms)
	if opts.Local {
		return err
	}
	if perr := a.publish(ctx, a.channel, msgSocketsJoin, map[string]any{
		"opts": optionsValue(opts, nil), "rooms": nonNil(rooms),
	}); perr != nil {
		return perr
	}
	return err
}

// DelSockets implements Adapter (SOCKETS_LEAVE).
func (a *ShardedAdapter) DelSockets(ctx context.Context, opts Options, rooms []string) error {
	a.DelLocal(opts, rooms)
	if opts.Local {
		return nil
	}
	return a.publish(ctx, a.channel, msgSocketsLeave, map[string]any{
		"opts": optionsValue(opts, nil), "rooms": nonNil(rooms),
	})
}

// DisconnectSockets implements Adapter (DISCONNECT_SOCKETS).
func (a *ShardedAdapter) DisconnectSockets(ctx context.Context, opts Options, closeConn bool) error {
	a.DisconnectLocal(opts, closeConn)
	if opts.Local {
		return nil
	}
	return a.publish(ctx, a.channel, msgDisconnectSockets, map[string]any{
		"opts": optionsValue(opts, nil), "close": closeConn,
	})
}

// ServerSideEmit implements Adapter (SERVER_SIDE_EMIT).
func (a *ShardedAdapter) ServerSideEmit(ctx context.Context, args []any) error {
	data, err := forWireAll(args)
	if err != nil {
		return err
	}
	return a.publish(ctx, a.channel, msgServerSideEmit, map[string]any{"packet": data})
}

// ServerSideEmitWithAck implements Adapter.
func (a *ShardedAdapter) ServerSideEmitWithAck(ctx context.Context, args []any) ([][]any, error) {
	data, err := forWireAll(args)
	if err != nil {
		return nil, err
	}
	p, requestID, err := a.request(ctx)
	if err != nil || p == nil {
		return nil, err
	}
	defer a.pending.del(requestID)
	if err := a.publish(ctx, a.channel, msgServerSideEmit, map[string]any{
		"requestId": requestID, "packet": data,
	}); err != nil {
		return nil, err
	}
	err = p.wait(ctx, a.b.timeout)
	_, answers := p.result()
	return answers, err
}

// ServerCount implements Adapter: the subscribers of the namespace channel
// (PUBSUB SHARDNUMSUB), this node included.
func (a *ShardedAdapter) ServerCount(ctx context.Context) (int, error) {
	if err := a.usable(); err != nil {
		return 0, err
	}
	return a.b.subscribers(ctx, a.channel)
}

// onMessage handles the namespace, room and response channels.
func (a *ShardedAdapter) onMessage(channel string, payload []byte) {
	v, err := decodePayload(payload)
	if err != nil {
		a.b.log.Debug("adapter: malformed message", "channel", channel, "err", err)
		return
	}
	msg, ok := v.(map[string]any)
	if !ok {
		return
	}
	typ, _ := asInt(msg["type"])
	data, _ := msg["data"].(map[string]any)
	if channel == a.responseChannel {
		a.onResponse(typ, data)
		return
	}
	uid, _ := msg["uid"].(string)
	if uid == a.uid {
		return
	}
	if nsp, _ := msg["nsp"].(string); nsp != a.nsp.Name() {
		return
	}
	switch typ {
	case msgBroadcast:
		a.onBroadcast(uid, data)
	case msgSocketsJoin:
		_ = a.AddLocal(parseOptions(data["opts"]), asStrings(data["rooms"]))
	case msgSocketsLeave:
		a.DelLocal(parseOptions(data["opts"]), asStrings(data["rooms"]))
	case msgDisconnectSockets:
		closeConn, _ := data["close"].(bool)
		a.DisconnectLocal(parseOptions(data["opts"]), closeConn)
	case msgFetchSockets:
		requestID, _ := data["requestId"].(string)
		socks := a.FetchLocal(parseOptions(data["opts"]))
		out := make([]any, len(socks))
		for i, s := range socks {
			out[i] = socketInfoValue(s)
		}
		a.respond(uid, msgFetchSocketsResponse, map[string]any{"requestId": requestID, "sockets": out})
	case msgServerSideEmit:
		a.onServerSideEmit(uid, data)
	case msgFetchSocketsResponse, msgServerSideEmitResponse, msgBroadcastClientCount, msgBroadcastAck:
		a.onResponse(typ, data)
	}
}

func (a *ShardedAdapter) onBroadcast(uid string, data map[string]any) {
	m, err := packetMessage(a.nsp.Name(), data["packet"])
	if err != nil {
		a.b.log.Debug("adapter: broadcast dropped", "err", err)
		return
	}
	opts := parseOptions(data["opts"])
	requestID, withAck := data["requestId"].(string)
	if !withAck {
		a.DeliverLocal(m, opts, true)
		return
	}
	m.Packet.ID = a.b.nextAckID(a.nsp)
	n := a.DeliverLocalWithAck(m, opts, func(answer []any) {
		args, err := forWireAll(answer)
		if err != nil {
			a.b.log.Warn("adapter: ack not encodable", "err", err)
			return
		}
		a.respond(uid, msgBroadcastAck, answerData(requestID, args))
	}, true)
	a.respond(uid, msgBroadcastClientCount, map[string]any{"requestId": requestID, "clientCount": int64(n)})
}

// answerData is the data of an answer: the first argument as packet (what
// Node servers read) and every argument as args (what Roomcast nodes read).
func answerData(requestID string, args []any) map[string]any {
	var first any
	if len(args) > 0 {
		first = args[0]
	}
	return map[string]any{"requestId": requestID, "packet": first, "args": args}
}

func (a *ShardedAdapter) onServerSideEmit(uid string, data map[string]any) {
	args, ok := data["packet"].([]any)
	if !ok || len(args) == 0 {
		return
	}
	args = toGo(args).([]any)
	var ack func([]any)
	if requestID, withAck := data["requestId"].(string); withAck {
		var once sync.Once
		ack = func(answer []any) {
			once.Do(func() {
				out, err := forWireAll(answer)
				if err != nil {
					a.b.log.Warn("adapter: serverSideEmit answer not encodable", "err", err)
					return
				}
				a.respond(uid, msgServerSideEmitResponse, answerData(requestID, out))
			})
		}
	}
	a.b.async(func(context.Context) { a.nsp.HandleServerSideEmit(args, ack) })
}

func (a *ShardedAdapter) onResponse(typ int64, data map[string]any) {
	requestID, _ := data["requestId"].(string)
	p := a.pending.get(requestID)
	if p == nil {
		return
	}
	switch typ {
	case msgBroadcastClientCount:
		if n, ok := asInt(data["clientCount"]); ok && n >= 0 && p.acks != nil {
			p.acks.Expect(int(n))
		}
	case msgBroadcastAck:
		if p.acks != nil {
			p.acks.Add(answerArgs(data, "packet"))
		}
	case msgFetchSocketsResponse:
		arr, _ := data["sockets"].([]any)
		socks := make([]SocketInfo, 0, len(arr))
		for _, s := range arr {
			if info, ok := parseSocketInfo(s); ok {
				socks = append(socks, info)
			}
		}
		p.answer(socks, nil, false)
	case msgServerSideEmitResponse:
		p.answer(nil, answerArgs(data, "packet"), true)
	}
}
