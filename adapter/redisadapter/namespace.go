package redisadapter

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/internal/redispubsub"
)

// namespaceAdapter is the Redis adapter of one namespace, in either mode.
// Its local half is the embedded Memory; what goes over Redis is shaped by
// its protocol (classic.go, sharded.go); everything else is here, shared.
type namespaceAdapter struct {
	*adapter.Memory
	b     *broker
	nsp   adapter.Namespace
	uid   string
	proto protocol

	pending pendingSet
	stops   []func()
	closed  atomic.Bool
}

var (
	_ adapter.Adapter          = (*namespaceAdapter)(nil)
	_ adapter.AsyncBroadcaster = (*namespaceAdapter)(nil)
)

// protocol is what differs between the classic and the sharded adapter:
// channel names, encodings and the handling of what other nodes send.
type protocol interface {
	// listen subscribes the namespace's channels; the functions undo it.
	listen() []func()
	// encodeBroadcast returns where to publish a broadcast and its payload.
	encodeBroadcast(m *adapter.Message, opts adapter.Options) (channel string, payload []byte, err error)
	// send publishes a request to the other nodes.
	send(ctx context.Context, r request) error
	// countChannel is the channel every node of the namespace subscribes
	// to: its subscriber count is the server count.
	countChannel() string
	// close undoes what the protocol subscribed to besides listen's.
	close()
}

// requestKind is an operation sent to the other nodes.
type requestKind uint8

const (
	reqKindBroadcastWithAck requestKind = iota
	reqKindFetch
	reqKindJoin
	reqKindLeave
	reqKindDisconnect
	reqKindServerSideEmit
)

func (k requestKind) String() string {
	switch k {
	case reqKindBroadcastWithAck:
		return "broadcast with acks"
	case reqKindFetch:
		return "fetchSockets"
	case reqKindJoin:
		return "join"
	case reqKindLeave:
		return "leave"
	case reqKindDisconnect:
		return "disconnect"
	case reqKindServerSideEmit:
		return "serverSideEmit"
	}
	return "request"
}

// request is one operation for the other nodes, before encoding.
type request struct {
	kind   requestKind
	id     string         // request id; "" when no answer is awaited (join and leave: no other Roomcast node)
	packet map[string]any // broadcast with acks
	opts   adapter.Options
	flags  map[string]any // broadcast with acks: its timeout
	rooms  []string       // join, leave
	close  bool           // disconnect
	data   []any          // serverSideEmit, in wire form
}

func (c *Cluster) newAdapter(nsp adapter.Namespace) (*namespaceAdapter, error) {
	b := c.b
	if b.closed.Load() {
		return nil, adapter.ErrClosed
	}
	a := &namespaceAdapter{b: b, nsp: nsp, uid: randomID(8)}
	mcfg := adapter.MemoryConfig{Node: b.node, Metrics: b.metrics}
	if b.sharded {
		p := newSharded(a)
		mcfg.OnRoomCreated = func(room string) error { p.syncRoom(room); return nil }
		mcfg.OnRoomEmptied = p.syncRoom
		a.proto = p
	} else {
		a.proto = newClassic(a, c.specificRes)
	}
	a.Memory = adapter.NewMemory(nsp, mcfg)
	a.stops = a.proto.listen()
	// Last, so that a node counted as a Roomcast node (roomcastPeers) has
	// most likely subscribed to where requests come.
	kind := redispubsub.Channel
	if b.sharded {
		kind = redispubsub.Shard
	}
	a.stops = append(a.stops, b.listen(redispubsub.Key{Kind: kind, Name: a.roomcastChannel()}, func(string, []byte) {}))
	return a, nil
}

// Close implements adapter.Adapter: the namespace stops listening to Redis.
func (a *namespaceAdapter) Close() error {
	if !a.closed.CompareAndSwap(false, true) {
		return nil
	}
	for _, stop := range a.stops {
		stop()
	}
	a.proto.close()
	return nil
}

func (a *namespaceAdapter) usable() error {
	if a.closed.Load() || a.b.closed.Load() {
		return adapter.ErrClosed
	}
	return nil
}

// Broadcast implements adapter.Adapter: m is delivered to the local sockets
// and published for the other nodes, even when the publish fails (the error
// then wraps adapter.ErrUnavailable).
func (a *namespaceAdapter) Broadcast(ctx context.Context, m *adapter.Message, opts adapter.Options) error {
	channel, payload, err := a.prepareBroadcast(m, opts)
	if err != nil || channel == "" {
		return err
	}
	return a.b.publish(ctx, channel, payload)
}

// BroadcastAsync implements adapter.AsyncBroadcaster.
func (a *namespaceAdapter) BroadcastAsync(m *adapter.Message, opts adapter.Options, done func(error)) {
	channel, payload, err := a.prepareBroadcast(m, opts)
	if err != nil || channel == "" {
		done(err)
		return
	}
	a.b.publishAsync(channel, payload, done)
}

// prepareBroadcast encodes m, delivers it to the local sockets and returns
// where to publish it (channel "" when it stays on this node).
func (a *namespaceAdapter) prepareBroadcast(m *adapter.Message, opts adapter.Options) (channel string, payload []byte, err error) {
	if opts.Local {
		a.DeliverLocal(m, opts, false)
		return "", nil, nil
	}
	channel, payload, err = a.proto.encodeBroadcast(m, opts)
	if err != nil {
		return "", nil, err
	}
	a.DeliverLocal(m, opts, false)
	if err := a.usable(); err != nil {
		return "", nil, err
	}
	return channel, payload, nil
}

// BroadcastWithAck implements adapter.Adapter: a broadcast request goes to
// every node, each answers with its client count then each client's ack;
// the local sockets are served directly. It returns when every node
// reported and every expected ack arrived, or when ctx ends
// (adapter.ErrAckTimeout with the acks so far).
func (a *namespaceAdapter) BroadcastWithAck(ctx context.Context, m *adapter.Message, opts adapter.Options) ([][]any, error) {
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
	c := adapter.NewCollector()
	a.pending.add(requestID, &pending{acks: c})
	defer a.pending.del(requestID)
	perr := a.send(ctx, request{kind: reqKindBroadcastWithAck, id: requestID, packet: packet, opts: opts, flags: flags})
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

func (a *namespaceAdapter) send(ctx context.Context, r request) error {
	if err := a.usable(); err != nil {
		return err
	}
	return a.proto.send(ctx, r)
}

// request counts the other nodes and registers a pending request for their
// answers; p is nil when this node is alone.
func (a *namespaceAdapter) request(ctx context.Context) (*pending, string, error) {
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

// FetchSockets implements adapter.Adapter: answered by every other node (as
// counted by ServerCount) within the request timeout.
func (a *namespaceAdapter) FetchSockets(ctx context.Context, opts adapter.Options) ([]adapter.SocketInfo, error) {
	local := a.FetchLocal(opts)
	if opts.Local {
		return local, nil
	}
	p, requestID, err := a.request(ctx)
	if err != nil || p == nil {
		return local, err
	}
	defer a.pending.del(requestID)
	if err := a.send(ctx, request{kind: reqKindFetch, id: requestID, opts: opts}); err != nil {
		return local, err
	}
	err = p.wait(ctx, a.b.timeout)
	socks, _ := p.result()
	return append(local, socks...), err
}

// AddSockets implements adapter.Adapter: the selected sockets join rooms on
// every node. It returns once each node that stores recovery sessions (every
// Roomcast node of the namespace) applied the join and stored the moved
// sockets' sessions — this node's own included — so that a crash of any node
// after the return recovers the rooms. A node that did not confirm within the
// request timeout (or before ctx ends) makes it return an error wrapping
// adapter.ErrAckTimeout: the join may or may not have been applied there. A
// node that could not store a session makes it return an error wrapping
// adapter.ErrUnavailable. The socket.io servers of a mixed fleet never
// confirm (@socket.io/redis-adapter applies the request and answers
// nothing); they are sent the request and not waited for.
func (a *namespaceAdapter) AddSockets(ctx context.Context, opts adapter.Options, rooms []string) error {
	return a.move(ctx, reqKindJoin, opts, rooms, func() error { return a.AddLocal(opts, rooms) })
}

// DelSockets implements adapter.Adapter: the selected sockets leave rooms on
// every node, confirmed as AddSockets is.
func (a *namespaceAdapter) DelSockets(ctx context.Context, opts adapter.Options, rooms []string) error {
	return a.move(ctx, reqKindLeave, opts, rooms, func() error { return a.DelLocal(opts, rooms) })
}

// move sends a join or leave to the other nodes, applies it locally
// meanwhile, and waits for the confirmation of every other Roomcast node.
// The local change is made even when Redis cannot be reached.
func (a *namespaceAdapter) move(ctx context.Context, kind requestKind, opts adapter.Options, rooms []string, local func() error) error {
	if opts.Local {
		return local()
	}
	peers, err := a.roomcastPeers(ctx)
	if err != nil {
		_ = local()
		return err
	}
	var p *pending
	var requestID string
	if peers > 0 {
		requestID = randomID(8)
		p = newPending(peers)
		a.pending.add(requestID, p)
		defer a.pending.del(requestID)
	}
	perr := a.send(ctx, request{kind: kind, id: requestID, opts: opts, rooms: rooms})
	lerr := local()
	if perr != nil {
		return perr
	}
	if lerr != nil {
		return lerr
	}
	if p == nil {
		return nil
	}
	werr := p.wait(ctx, a.b.timeout)
	if err := p.failure(); err != nil {
		return err
	}
	if werr != nil {
		got, want := p.count()
		return fmt.Errorf("%w: %s confirmed by %d of %d other nodes (it may or may not have been applied on the others)",
			werr, kind, got, want)
	}
	return nil
}

// roomcastPeers counts the other Roomcast nodes of the namespace: the
// subscribers of its Roomcast channel, which socket.io servers do not
// subscribe to, less this node.
func (a *namespaceAdapter) roomcastPeers(ctx context.Context) (int, error) {
	if err := a.usable(); err != nil {
		return 0, err
	}
	n, err := a.b.subscribers(ctx, a.roomcastChannel())
	return max(0, n-1), err
}

// roomcastChannel is the channel every Roomcast node of the namespace
// subscribes to and nothing is published on: its subscriber count is the
// number of Roomcast nodes, those that confirm joins and leaves. A plain
// channel for the classic adapter, a shard channel for the sharded one
// (socket.io's adapters use neither name).
func (a *namespaceAdapter) roomcastChannel() string {
	return a.b.prefix + "-roomcast#" + a.nsp.Name() + "#"
}

// onMove applies a join or leave another node sent (on the subscriber's
// read loop, so that it is ordered with what that node sends next) and
// stores the moved sockets' sessions on a reply worker, then calls answer
// with the outcome: a Roomcast requester waits for it.
func (a *namespaceAdapter) onMove(join bool, opts adapter.Options, rooms []string, answer func(error)) {
	var socks []adapter.Socket
	var err error
	if join {
		socks, err = a.JoinLocal(opts, rooms)
	} else {
		socks = a.LeaveLocal(opts, rooms)
	}
	a.b.async(func(context.Context) {
		if merr := a.Moved(socks); merr != nil && err == nil {
			err = merr
		}
		if err != nil {
			a.b.log.Warn("adapter: a join or leave from another node not stored", "err", err)
		}
		answer(err)
	})
}

// answerError reads the error a node answered a join or leave with: nil
// when the answer has none.
func answerError(answer map[string]any) error {
	msg, ok := answer["error"].(string)
	if !ok {
		return nil
	}
	node, _ := answer["node"].(string)
	return fmt.Errorf("%w: node %q could not store the change: %s", adapter.ErrUnavailable, node, msg)
}

// DisconnectSockets implements adapter.Adapter.
func (a *namespaceAdapter) DisconnectSockets(ctx context.Context, opts adapter.Options, closeConn bool) error {
	a.DisconnectLocal(opts, closeConn)
	if opts.Local {
		return nil
	}
	return a.send(ctx, request{kind: reqKindDisconnect, opts: opts, close: closeConn})
}

// ServerSideEmit implements adapter.Adapter.
func (a *namespaceAdapter) ServerSideEmit(ctx context.Context, args []any) error {
	data, err := forWireAll(args)
	if err != nil {
		return err
	}
	return a.send(ctx, request{kind: reqKindServerSideEmit, data: data})
}

// ServerSideEmitWithAck implements adapter.Adapter: every other node
// answers once; the answers are returned when all arrived, or with
// adapter.ErrAckTimeout when ctx ends or the request timeout passes.
func (a *namespaceAdapter) ServerSideEmitWithAck(ctx context.Context, args []any) ([][]any, error) {
	data, err := forWireAll(args)
	if err != nil {
		return nil, err
	}
	p, requestID, err := a.request(ctx)
	if err != nil || p == nil {
		return nil, err
	}
	defer a.pending.del(requestID)
	if err := a.send(ctx, request{kind: reqKindServerSideEmit, id: requestID, data: data}); err != nil {
		return nil, err
	}
	err = p.wait(ctx, a.b.timeout)
	_, answers := p.result()
	return answers, err
}

// ServerCount implements adapter.Adapter: the subscribers of the channel
// every node of the namespace subscribes to (PUBSUB NUMSUB, or SHARDNUMSUB),
// this node included.
func (a *namespaceAdapter) ServerCount(ctx context.Context) (int, error) {
	if err := a.usable(); err != nil {
		return 0, err
	}
	return a.b.subscribers(ctx, a.proto.countChannel())
}

// answerArgs reads an answer: "args" when a Roomcast node sent it, else the
// single value under key.
func answerArgs(resp map[string]any, key string) []any {
	if args, ok := resp["args"].([]any); ok {
		return toGo(args).([]any)
	}
	return []any{toGo(resp[key])}
}

// parseSockets reads the sockets of a fetchSockets answer.
func parseSockets(v any) []adapter.SocketInfo {
	arr, _ := v.([]any)
	socks := make([]adapter.SocketInfo, 0, len(arr))
	for _, s := range arr {
		if info, ok := parseSocketInfo(s); ok {
			socks = append(socks, info)
		}
	}
	return socks
}

// socketValues is the wire form of sockets in a fetchSockets answer.
func socketValues(socks []adapter.SocketInfo) []any {
	out := make([]any, len(socks))
	for i, s := range socks {
		out[i] = socketInfoValue(s)
	}
	return out
}
