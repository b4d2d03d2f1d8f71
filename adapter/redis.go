package adapter

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/internal/msgpack"
	"github.com/roomcast/roomcast/metrics"
)

// Request types of @socket.io/redis-adapter 8.x, on the request channel.
const (
	reqSockets              = 0 // ids of the sockets in rooms (allSockets)
	reqAllRooms             = 1
	reqRemoteJoin           = 2
	reqRemoteLeave          = 3
	reqRemoteDisconnect     = 4
	reqRemoteFetch          = 5
	reqServerSideEmit       = 6
	reqBroadcast            = 7 // a broadcast with acks
	reqBroadcastClientCount = 8 // reply: how many clients were sent it
	reqBroadcastAck         = 9 // reply: one client's ack
)

// RedisConfig configures the classic Redis adapter.
type RedisConfig struct {
	// Client talks to Redis: a *redis.Client (standalone, or Sentinel
	// through redis.NewFailoverClient) or a *redis.ClusterClient. Required;
	// the adapter does not close it.
	Client redis.UniversalClient
	// Prefix starts every channel and key name, as the key option of
	// @socket.io/redis-adapter. Defaults to "socket.io".
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
	// PublishOnSpecificResponseChannel sends replies to the requester's own
	// response channel (<prefix>-response#<nsp>#<uid>#) instead of the shared
	// one, as the option of that name of @socket.io/redis-adapter (8.x nodes
	// listen on both). Defaults to false, as there.
	PublishOnSpecificResponseChannel bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Redis is the classic Redis adapter of one node, wire-compatible with
// @socket.io/redis-adapter 8.x: its Factory creates the adapter of each
// namespace, and every namespace shares one pub/sub connection.
//
// # Wire format
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
// # Redis faults
//
// When Redis goes away, Ready fails at once; the pub/sub connection is
// re-made with backoff (100 ms doubling to 2 s) and everything re-subscribed
// on it; local delivery goes on; cluster-wide operations fail with errors
// wrapping ErrUnavailable (Broadcast after delivering locally), each counted
// in roomcast_redis_errors_total. Nothing grows while Redis is away.
//
// # Concurrency
//
// Redis and its namespace adapters are safe for concurrent use. Goroutines,
// all stopped by Close: the pub/sub supervisor and its reader, a node
// registry heartbeat, and four reply workers. The reader decodes received
// broadcasts and hands them to the local sockets itself, in the order Redis
// sent them; replies to other nodes' requests and the serverSideEmit
// handlers run on the reply workers (a handler that blocks holds one up; a
// full queue of 4096 drops a reply and counts it as a publish error).
type Redis struct {
	brokerHandle
	specificRes bool
}

// NewRedis connects the classic adapter to Redis. ctx bounds the first
// contact (the node registry entry); an unreachable Redis is not an error:
// the adapter connects in the background, with backoff, and Ready reports
// when it is usable.
func NewRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	b, err := newBroker(ctx, brokerConfig{
		client:            cfg.Client,
		prefix:            cfg.Prefix,
		node:              cfg.Node,
		metrics:           cfg.Metrics,
		requestTimeout:    cfg.RequestTimeout,
		heartbeatInterval: cfg.HeartbeatInterval,
		logger:            cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	return &Redis{brokerHandle: brokerHandle{b}, specificRes: cfg.PublishOnSpecificResponseChannel}, nil
}

// Factory returns the Factory to give socketio.Config.Adapter.
func (r *Redis) Factory() Factory {
	return func(nsp Namespace) (Adapter, error) { return r.newAdapter(nsp) }
}

// RedisAdapter is the classic adapter of one namespace. Its local half is
// the embedded Memory.
type RedisAdapter struct {
	*Memory
	r   *Redis
	b   *broker
	nsp Namespace
	uid string

	channel          string // <prefix>#<nsp>#
	requestChannel   string // <prefix>-request#<nsp>#
	responseChannel  string // <prefix>-response#<nsp>#
	specificResponse string // <prefix>-response#<nsp>#<uid>#

	pending pendingSet
	stops   []func()
	closed  atomic.Bool
}

var _ Adapter = (*RedisAdapter)(nil)

func (r *Redis) newAdapter(nsp Namespace) (*RedisAdapter, error) {
	b := r.b
	if b.closed.Load() {
		return nil, ErrClosed
	}
	name := nsp.Name()
	a := &RedisAdapter{
		Memory:          NewMemory(nsp, MemoryConfig{Node: b.node, Metrics: b.metrics}),
		r:               r,
		b:               b,
		nsp:             nsp,
		uid:             randomID(8),
		channel:         b.prefix + "#" + name + "#",
		requestChannel:  b.prefix + "-request#" + name + "#",
		responseChannel: b.prefix + "-response#" + name + "#",
	}
	a.specificResponse = a.responseChannel + a.uid + "#"
	a.stops = []func(){
		b.listen(subKey{subPattern, a.channel + "*"}, a.onMessage),
		b.listen(subKey{subChannel, a.requestChannel}, a.onRequest),
		b.listen(subKey{subChannel, a.responseChannel}, a.onResponse),
		b.listen(subKey{subChannel, a.specificResponse}, a.onResponse),
	}
	return a, nil
}

// UID returns the adapter's id on the wire (the uid of its messages).
func (a *RedisAdapter) UID() string { return a.uid }

// Close implements Adapter: the namespace stops listening to Redis.
func (a *RedisAdapter) Close() error {
	if !a.closed.CompareAndSwap(false, true) {
		return nil
	}
	for _, stop := range a.stops {
		stop()
	}
	return nil
}

func (a *RedisAdapter) usable() error {
	if a.closed.Load() || a.b.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Broadcast implements Adapter: m is published on <prefix>#<nsp># (or
// <prefix>#<nsp>#<room># for exactly one room) as [uid, packet, opts] in
// MessagePack, and delivered to the local sockets, even when the publish
// fails (the error then wraps ErrUnavailable).
func (a *RedisAdapter) Broadcast(ctx context.Context, m *Message, opts Options) error {
	channel, payload, err := a.prepareBroadcast(m, opts)
	if err != nil || channel == "" {
		return err
	}
	return a.b.publish(ctx, channel, payload)
}

// prepareBroadcast encodes m, delivers it to the local sockets and returns
// where to publish it (channel "" when it stays on this node).
func (a *RedisAdapter) prepareBroadcast(m *Message, opts Options) (channel string, payload []byte, err error) {
	if opts.Local {
		a.DeliverLocal(m, opts, false)
		return "", nil, nil
	}
	if payload, err = a.encodeBroadcast(m, opts); err != nil {
		return "", nil, err
	}
	a.DeliverLocal(m, opts, false)
	if err := a.usable(); err != nil {
		return "", nil, err
	}
	channel = a.channel
	if len(opts.Rooms) == 1 {
		channel += opts.Rooms[0] + "#"
	}
	return channel, payload, nil
}

func (a *RedisAdapter) encodeBroadcast(m *Message, opts Options) ([]byte, error) {
	packet, err := packetValue(m)
	if err != nil {
		return nil, err
	}
	return msgpack.Marshal([]any{a.uid, packet, optionsValue(opts, nil)})
}

// onMessage handles a broadcast from another node (or an emitter).
func (a *RedisAdapter) onMessage(channel string, payload []byte) {
	if !strings.HasPrefix(channel, a.channel) || !strings.HasSuffix(channel, "#") {
		return
	}
	if len(channel) > len(a.channel) {
		if room := channel[len(a.channel) : len(channel)-1]; room != "" && !a.HasRoom(room) {
			return // nobody here is in the room: skip decoding
		}
	}
	m, opts, err := a.decodeBroadcast(payload)
	if err != nil {
		if err != errOwnMessage && err != errOtherNamespace {
			a.b.log.Debug("adapter: broadcast dropped", "channel", channel, "err", err)
		}
		return
	}
	a.DeliverLocal(m, opts, true)
}

var (
	errOwnMessage     = fmt.Errorf("%w: sent by this node", errMalformed)
	errOtherNamespace = fmt.Errorf("%w: for another namespace", errMalformed)
)

// decodeBroadcast reads [uid, packet, opts].
func (a *RedisAdapter) decodeBroadcast(payload []byte) (*Message, Options, error) {
	v, err := msgpack.Decode(payload)
	if err != nil {
		return nil, Options{}, fmt.Errorf("%w: %v", errMalformed, err)
	}
	arr, ok := v.([]any)
	if !ok || len(arr) < 2 {
		return nil, Options{}, fmt.Errorf("%w: not [uid, packet, opts]", errMalformed)
	}
	if uid, _ := arr[0].(string); uid == a.uid {
		return nil, Options{}, errOwnMessage
	}
	p, _ := arr[1].(map[string]any)
	nsp, ok := p["nsp"].(string)
	if !ok {
		nsp = "/"
	}
	if nsp != a.nsp.Name() {
		return nil, Options{}, errOtherNamespace
	}
	m, err := packetMessage(nsp, p)
	if err != nil {
		return nil, Options{}, err
	}
	var opts Options
	if len(arr) > 2 {
		opts = parseOptions(arr[2])
	}
	return m, opts, nil
}

// onRequest handles the request channel.
func (a *RedisAdapter) onRequest(channel string, payload []byte) {
	v, err := decodePayload(payload)
	if err != nil {
		a.b.log.Debug("adapter: malformed request", "err", err)
		return
	}
	req, ok := v.(map[string]any)
	if !ok {
		return
	}
	typ, ok := asInt(req["type"])
	if !ok {
		return
	}
	uid, _ := req["uid"].(string)
	if uid == a.uid {
		return // applied locally when sent
	}
	requestID, _ := req["requestId"].(string)
	switch typ {
	case reqSockets:
		opts := Options{Rooms: asStrings(req["rooms"])}
		ids := []string{}
		for _, s := range a.Select(opts) {
			ids = append(ids, s.ID())
		}
		a.respondJSON(uid, map[string]any{"requestId": requestID, "sockets": ids})
	case reqAllRooms:
		a.respondJSON(uid, map[string]any{"requestId": requestID, "rooms": nonNil(a.LocalRooms())})
	case reqRemoteJoin, reqRemoteLeave, reqRemoteDisconnect:
		a.onRemoteSelection(typ, uid, requestID, req)
	case reqRemoteFetch:
		socks := a.FetchLocal(parseOptions(req["opts"]))
		out := make([]any, len(socks))
		for i, s := range socks {
			out[i] = socketInfoValue(s)
		}
		a.respondJSON(uid, map[string]any{"requestId": requestID, "sockets": out})
	case reqServerSideEmit:
		a.onServerSideEmit(requestID, req["data"])
	case reqBroadcast:
		if a.pending.get(requestID) != nil {
			return // our own request
		}
		a.onBroadcastWithAck(uid, requestID, req)
	}
}

// onRemoteSelection handles REMOTE_JOIN, REMOTE_LEAVE and REMOTE_DISCONNECT:
// with opts they select sockets (8.x), with sid one socket and an answer
// (the older form, still served).
func (a *RedisAdapter) onRemoteSelection(typ int64, uid, requestID string, req map[string]any) {
	if o, ok := req["opts"]; ok && o != nil {
		opts := parseOptions(o)
		switch typ {
		case reqRemoteJoin:
			_ = a.AddLocal(opts, asStrings(req["rooms"]))
		case reqRemoteLeave:
			a.DelLocal(opts, asStrings(req["rooms"]))
		case reqRemoteDisconnect:
			closeConn, _ := req["close"].(bool)
			a.DisconnectLocal(opts, closeConn)
		}
		return
	}
	sid, _ := req["sid"].(string)
	s, ok := a.Socket(sid)
	if !ok {
		return
	}
	room, _ := req["room"].(string)
	switch typ {
	case reqRemoteJoin:
		_ = a.AddAll(s, room)
	case reqRemoteLeave:
		a.Del(s, room)
	case reqRemoteDisconnect:
		closeConn, _ := req["close"].(bool)
		s.Disconnect(closeConn)
	}
	a.respondJSON(uid, map[string]any{"requestId": requestID})
}

// onServerSideEmit runs the namespace's handler on a reply worker; with a
// request id its answer is published on the shared response channel, as
// 8.x does: {type: 6, requestId, data: <first argument>}, plus args (every
// argument) which Roomcast nodes read.
func (a *RedisAdapter) onServerSideEmit(requestID string, data any) {
	args, ok := data.([]any)
	if !ok || len(args) == 0 {
		return
	}
	args = toGo(args).([]any)
	var ack func([]any)
	if requestID != "" {
		var once sync.Once
		ack = func(answer []any) {
			once.Do(func() {
				payload, err := ackResponse(reqServerSideEmit, requestID, "data", answer, false)
				if err != nil {
					a.b.log.Warn("adapter: serverSideEmit answer not encodable", "err", err)
					return
				}
				a.b.reply(a.responseChannel, payload)
			})
		}
	}
	a.b.async(func(context.Context) { a.nsp.HandleServerSideEmit(args, ack) })
}

// ackResponse encodes an answer: its first argument under key (what Node
// servers read) and every argument under "args"; MessagePack when it holds
// binary data or always is set, JSON otherwise.
func ackResponse(typ int64, requestID, key string, answer []any, always bool) ([]byte, error) {
	args, err := forWireAll(answer)
	if err != nil {
		return nil, err
	}
	var first any
	if len(args) > 0 {
		first = args[0]
	}
	v := map[string]any{"type": typ, "requestId": requestID, key: first, "args": args}
	if always {
		return msgpack.Marshal(v)
	}
	return encodeAuto(v)
}

// answerArgs reads an answer: "args" when a Roomcast node sent it, else the
// single value under key.
func answerArgs(resp map[string]any, key string) []any {
	if args, ok := resp["args"].([]any); ok {
		return toGo(args).([]any)
	}
	return []any{toGo(resp[key])}
}

// onBroadcastWithAck delivers a broadcast with acks from another node and
// answers with the client count, then each client's ack.
func (a *RedisAdapter) onBroadcastWithAck(uid, requestID string, req map[string]any) {
	m, err := packetMessage(a.nsp.Name(), req["packet"])
	if err != nil {
		a.b.log.Debug("adapter: broadcast with ack dropped", "err", err)
		return
	}
	m.Packet.ID = a.b.nextAckID(a.nsp)
	opts := parseOptions(req["opts"])
	n := a.DeliverLocalWithAck(m, opts, func(answer []any) {
		// 8.x encodes this reply with MessagePack whatever it holds.
		payload, err := ackResponse(reqBroadcastAck, requestID, "packet", answer, true)
		if err != nil {
			a.b.log.Warn("adapter: ack not encodable", "err", err)
			return
		}
		a.respondRaw(uid, payload)
	}, true)
	a.respondJSON(uid, map[string]any{"type": int64(reqBroadcastClientCount), "requestId": requestID, "clientCount": n})
}

func (a *RedisAdapter) responseChannelFor(uid string) string {
	if a.r.specificRes && uid != "" {
		return a.responseChannel + uid + "#"
	}
	return a.responseChannel
}

func (a *RedisAdapter) respondJSON(uid string, v map[string]any) {
	payload, err := encodeJSON(v)
	if err != nil {
		a.b.log.Warn("adapter: reply not encodable", "err", err)
		return
	}
	a.respondRaw(uid, payload)
}

func (a *RedisAdapter) respondRaw(uid string, payload []byte) {
	a.b.reply(a.responseChannelFor(uid), payload)
}

// onResponse handles the response channels.
func (a *RedisAdapter) onResponse(_ string, payload []byte) {
	v, err := decodePayload(payload)
	if err != nil {
		return
	}
	resp, ok := v.(map[string]any)
	if !ok {
		return
	}
	requestID, _ := resp["requestId"].(string)
	p := a.pending.get(requestID)
	if p == nil {
		return
	}
	typ, _ := asInt(resp["type"])
	if p.acks != nil {
		switch typ {
		case reqBroadcastClientCount:
			if n, ok := asInt(resp["clientCount"]); ok && n >= 0 {
				p.acks.Expect(int(n))
			}
		case reqBroadcastAck:
			p.acks.Add(answerArgs(resp, "packet"))
		}
		return
	}
	if arr, ok := resp["sockets"].([]any); ok {
		socks := make([]SocketInfo, 0, len(arr))
		for _, s := range arr {
			if info, ok := parseSocketInfo(s); ok {
				socks = append(socks, info)
			}
		}
		p.answer(socks, nil, false)
		return
	}
	if typ == reqServerSideEmit {
		p.answer(nil, answerArgs(resp, "data"), true)
	}
}

// publishRequest publishes a request on the request channel.
func (a *RedisAdapter) publishRequest(ctx context.Context, v map[string]any, auto bool) error {
	if err := a.usable(); err != nil {
		return err
	}
	v["uid"] = a.uid
	var payload []byte
	var err error
	if auto {
		payload, err = encodeAuto(v)
	} else {
		payload, err = msgpack.Marshal(v)
	}
	if err != nil {
		return err
	}
	return a.b.publish(ctx, a.requestChannel, payload)
}

// BroadcastWithAck implements Adapter: a BROADCAST request (MessagePack)
// goes to every node, each answers with its client count then each client's
// ack; the local sockets are served directly. It returns when every node
// reported and every expected ack arrived, or when ctx ends (ErrAckTimeout
// with the acks so far).
func (a *RedisAdapter) BroadcastWithAck(ctx context.Context, m *Message, opts Options) ([][]any, error) {
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
	p := &pending{acks: c}
	a.pending.add(requestID, p)
	defer a.pending.del(requestID)
	perr := a.publishRequest(ctx, map[string]any{
		"requestId": requestID,
		"type":      int64(reqBroadcast),
		"packet":    packet,
		"opts":      optionsValue(opts, flags),
	}, false)
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

// FetchSockets implements Adapter: a REMOTE_FETCH request, answered by every
// other node (as counted by ServerCount) within the request timeout.
func (a *RedisAdapter) FetchSockets(ctx context.Context, opts Options) ([]SocketInfo, error) {
	local := a.FetchLocal(opts)
	if opts.Local {
		return local, nil
	}
	p, requestID, err := a.request(ctx, func(n int) *pending { return newPending(n - 1) })
	if err != nil || p == nil {
		return local, err
	}
	defer a.pending.del(requestID)
	if err := a.publishRequest(ctx, map[string]any{
		"requestId": requestID,
		"type":      int64(reqRemoteFetch),
		"opts":      map[string]any{"rooms": nonNil(opts.Rooms), "except": nonNil(opts.Except)},
	}, true); err != nil {
		return local, err
	}
	err = p.wait(ctx, a.b.timeout)
	socks, _ := p.result()
	return append(local, socks...), err
}

// request counts the nodes and registers a pending request sized by mk; p is
// nil when this node is alone.
func (a *RedisAdapter) request(ctx context.Context, mk func(nodes int) *pending) (*pending, string, error) {
	nodes, err := a.ServerCount(ctx)
	if err != nil {
		return nil, "", err
	}
	if nodes <= 1 {
		return nil, "", nil
	}
	requestID := randomID(8)
	p := mk(nodes)
	a.pending.add(requestID, p)
	return p, requestID, nil
}

// AddSockets implements Adapter: the local sockets join at once, the other
// nodes through a REMOTE_JOIN request.
func (a *RedisAdapter) AddSockets(ctx context.Context, opts Options, rooms []string) error {
	err := a.AddLocal(opts, rooms)
	if opts.Local {
		return err
	}
	if perr := a.publishRequest(ctx, selection(reqRemoteJoin, opts, "rooms", nonNil(rooms)), true); perr != nil {
		return perr
	}
	return err
}

// DelSockets implements Adapter (REMOTE_LEAVE).
func (a *RedisAdapter) DelSockets(ctx context.Context, opts Options, rooms []string) error {
	a.DelLocal(opts, rooms)
	if opts.Local {
		return nil
	}
	return a.publishRequest(ctx, selection(reqRemoteLeave, opts, "rooms", nonNil(rooms)), true)
}

// DisconnectSockets implements Adapter (REMOTE_DISCONNECT).
func (a *RedisAdapter) DisconnectSockets(ctx context.Context, opts Options, closeConn bool) error {
	a.DisconnectLocal(opts, closeConn)
	if opts.Local {
		return nil
	}
	return a.publishRequest(ctx, selection(reqRemoteDisconnect, opts, "close", closeConn), true)
}

func selection(typ int64, opts Options, key string, v any) map[string]any {
	return map[string]any{
		"type": typ,
		"opts": map[string]any{"rooms": nonNil(opts.Rooms), "except": nonNil(opts.Except)},
		key:    v,
	}
}

// ServerSideEmit implements Adapter (SERVER_SIDE_EMIT without request id).
func (a *RedisAdapter) ServerSideEmit(ctx context.Context, args []any) error {
	data, err := forWireAll(args)
	if err != nil {
		return err
	}
	return a.publishRequest(ctx, map[string]any{"type": int64(reqServerSideEmit), "data": data}, true)
}

// ServerSideEmitWithAck implements Adapter: every other node answers once;
// the answers are returned when all arrived, or with ErrAckTimeout when ctx
// ends or the request timeout passes.
func (a *RedisAdapter) ServerSideEmitWithAck(ctx context.Context, args []any) ([][]any, error) {
	data, err := forWireAll(args)
	if err != nil {
		return nil, err
	}
	p, requestID, err := a.request(ctx, func(n int) *pending { return newPending(n - 1) })
	if err != nil || p == nil {
		return nil, err
	}
	defer a.pending.del(requestID)
	if err := a.publishRequest(ctx, map[string]any{
		"requestId": requestID, "type": int64(reqServerSideEmit), "data": data,
	}, true); err != nil {
		return nil, err
	}
	err = p.wait(ctx, a.b.timeout)
	_, answers := p.result()
	return answers, err
}

// ServerCount implements Adapter: the subscribers of the request channel
// (PUBSUB NUMSUB), this node included.
func (a *RedisAdapter) ServerCount(ctx context.Context) (int, error) {
	if err := a.usable(); err != nil {
		return 0, err
	}
	return a.b.subscribers(ctx, a.requestChannel)
}
