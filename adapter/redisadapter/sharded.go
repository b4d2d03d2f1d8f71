package redisadapter

import (
	"context"
	"sync"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/internal/msgpack"
	"github.com/roomcast/roomcast/internal/redispubsub"
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

// sharded is the protocol of @socket.io/redis-adapter's
// createShardedAdapter in its dynamic mode (Mode Sharded).
type sharded struct {
	a *namespaceAdapter

	channel         string // <prefix>#<nsp>#
	responseChannel string // <prefix>#<nsp>#<uid>#

	roomMu sync.Mutex
	rooms  map[string]func() // room channels subscribed to, and how to stop
}

func newSharded(a *namespaceAdapter) *sharded {
	p := &sharded{a: a, rooms: make(map[string]func())}
	p.channel = a.b.prefix + "#" + a.nsp.Name() + "#"
	p.responseChannel = p.channel + a.uid + "#"
	return p
}

func (p *sharded) listen() []func() {
	b := p.a.b
	return []func(){
		b.listen(redispubsub.Key{Kind: redispubsub.Shard, Name: p.channel}, p.onMessage),
		b.listen(redispubsub.Key{Kind: redispubsub.Shard, Name: p.responseChannel}, p.onMessage),
	}
}

// roomChannel returns the shard channel of room, the one single-room
// broadcasts use; ok is false for a room that has none (a socket id).
func (p *sharded) roomChannel(room string) (channel string, ok bool) {
	if !dynamicRoom(room) {
		return p.channel, false
	}
	return p.channel + room + "#", true
}

// dynamicRoom reports whether room gets its own channel: every room but
// those that look like a socket id, as the dynamic mode decides.
func dynamicRoom(room string) bool { return jsLength(room) != socketIDLength }

// syncRoom subscribes to the channel of room while it has a local member
// and unsubscribes when it has none. It reads the current membership rather
// than trusting the event that called it, so callbacks that race leave the
// subscription matching the last state.
func (p *sharded) syncRoom(room string) {
	if !dynamicRoom(room) {
		return
	}
	p.roomMu.Lock()
	defer p.roomMu.Unlock()
	if p.a.closed.Load() {
		return
	}
	has := p.a.HasRoom(room)
	stop, subscribed := p.rooms[room]
	switch {
	case has && !subscribed:
		key := redispubsub.Key{Kind: redispubsub.Shard, Name: p.channel + room + "#"}
		p.rooms[room] = p.a.b.listen(key, p.onMessage)
	case !has && subscribed:
		stop()
		delete(p.rooms, room)
	}
}

// close implements protocol: the room channels are unsubscribed.
func (p *sharded) close() {
	p.roomMu.Lock()
	for room, stop := range p.rooms {
		stop()
		delete(p.rooms, room)
	}
	p.roomMu.Unlock()
}

// countChannel implements protocol: every node subscribes to the namespace
// channel.
func (p *sharded) countChannel() string { return p.channel }

// encode makes the wire form of a message: {uid, nsp, type, data}, in
// MessagePack when it may and does hold binary data, JSON otherwise.
func (p *sharded) encode(typ int64, data map[string]any) ([]byte, error) {
	msg := map[string]any{"uid": p.a.uid, "nsp": p.a.nsp.Name(), "type": typ, "data": data}
	if shardedBinaryTypes&(1<<typ) != 0 && hasBinary(data) {
		return msgpack.Marshal(msg)
	}
	return encodeJSON(msg)
}

func (p *sharded) publish(ctx context.Context, channel string, typ int64, data map[string]any) error {
	payload, err := p.encode(typ, data)
	if err != nil {
		return err
	}
	return p.a.b.publish(ctx, channel, payload)
}

// respond publishes a reply on the requester's channel.
func (p *sharded) respond(requester string, typ int64, data map[string]any) {
	payload, err := p.encode(typ, data)
	if err != nil {
		p.a.b.log.Warn("adapter: reply not encodable", "err", err)
		return
	}
	p.a.b.reply(p.channel+requester+"#", payload)
}

// encodeBroadcast implements protocol: m goes to the room's channel (one
// room that is not a socket id) or the namespace's.
func (p *sharded) encodeBroadcast(m *adapter.Message, opts adapter.Options) (channel string, payload []byte, err error) {
	packet, err := packetValue(m)
	if err != nil {
		return "", nil, err
	}
	channel = p.channel
	if len(opts.Rooms) == 1 && dynamicRoom(opts.Rooms[0]) {
		channel += opts.Rooms[0] + "#"
	}
	payload, err = p.encode(msgBroadcast, map[string]any{"packet": packet, "opts": optionsValue(opts, nil)})
	return channel, payload, err
}

// send implements protocol: requests go to the namespace channel, whose
// subscribers (the server count) are every node.
func (p *sharded) send(ctx context.Context, r request) error {
	var typ int64
	var data map[string]any
	switch r.kind {
	case reqKindBroadcastWithAck:
		typ = msgBroadcast
		data = map[string]any{"packet": r.packet, "requestId": r.id, "opts": optionsValue(r.opts, r.flags)}
	case reqKindFetch:
		typ = msgFetchSockets
		data = map[string]any{"opts": optionsValue(r.opts, nil), "requestId": r.id}
	case reqKindJoin, reqKindLeave:
		typ = msgSocketsJoin
		if r.kind == reqKindLeave {
			typ = msgSocketsLeave
		}
		data = map[string]any{"opts": optionsValue(r.opts, nil), "rooms": nonNil(r.rooms)}
		if r.id != "" {
			// ClusterAdapter ignores it; Roomcast nodes confirm.
			data["requestId"] = r.id
		}
	case reqKindDisconnect:
		typ = msgDisconnectSockets
		data = map[string]any{"opts": optionsValue(r.opts, nil), "close": r.close}
	case reqKindServerSideEmit:
		typ = msgServerSideEmit
		data = map[string]any{"packet": r.data}
		if r.id != "" {
			data["requestId"] = r.id
		}
	}
	return p.publish(ctx, p.channel, typ, data)
}

// onMessage handles the namespace, room and response channels.
func (p *sharded) onMessage(channel string, payload []byte) {
	v, err := decodePayload(payload)
	if err != nil {
		p.a.b.log.Debug("adapter: malformed message", "channel", channel, "err", err)
		return
	}
	msg, ok := v.(map[string]any)
	if !ok {
		return
	}
	typ, _ := asInt(msg["type"])
	data, _ := msg["data"].(map[string]any)
	if channel == p.responseChannel {
		p.onResponse(typ, data)
		return
	}
	uid, _ := msg["uid"].(string)
	if uid == p.a.uid {
		return
	}
	if nsp, _ := msg["nsp"].(string); nsp != p.a.nsp.Name() {
		return
	}
	switch typ {
	case msgBroadcast:
		p.onBroadcast(uid, data)
	case msgSocketsJoin, msgSocketsLeave:
		p.onMove(uid, typ, data)
	case msgDisconnectSockets:
		closeConn, _ := data["close"].(bool)
		p.a.DisconnectLocal(parseOptions(data["opts"]), closeConn)
	case msgFetchSockets:
		requestID, _ := data["requestId"].(string)
		socks := p.a.FetchLocal(parseOptions(data["opts"]))
		p.respond(uid, msgFetchSocketsResponse, map[string]any{"requestId": requestID, "sockets": socketValues(socks)})
	case msgServerSideEmit:
		p.onServerSideEmit(uid, data)
	case msgFetchSocketsResponse, msgServerSideEmitResponse, msgBroadcastClientCount, msgBroadcastAck:
		p.onResponse(typ, data)
	}
}

// onMove applies SOCKETS_JOIN or SOCKETS_LEAVE; with a requestId (a
// Roomcast requester) it is answered on the requester's channel, once the
// moved sockets' sessions are stored, with the request's type and
// {requestId, node} plus error when they could not be.
func (p *sharded) onMove(uid string, typ int64, data map[string]any) {
	requestID, _ := data["requestId"].(string)
	p.a.onMove(typ == msgSocketsJoin, parseOptions(data["opts"]), asStrings(data["rooms"]), func(err error) {
		if requestID == "" {
			return
		}
		answer := map[string]any{"requestId": requestID, "node": p.a.b.node}
		if err != nil {
			answer["error"] = err.Error()
		}
		p.respond(uid, typ, answer)
	})
}

func (p *sharded) onBroadcast(uid string, data map[string]any) {
	m, err := packetMessage(p.a.nsp.Name(), data["packet"])
	if err != nil {
		p.a.b.log.Debug("adapter: broadcast dropped", "err", err)
		return
	}
	opts := parseOptions(data["opts"])
	requestID, withAck := data["requestId"].(string)
	if !withAck {
		p.a.DeliverLocal(m, opts, true)
		return
	}
	m.Packet.ID = p.a.b.nextAckID(p.a.nsp)
	n := p.a.DeliverLocalWithAck(m, opts, func(answer []any) {
		args, err := forWireAll(answer)
		if err != nil {
			p.a.b.log.Warn("adapter: ack not encodable", "err", err)
			return
		}
		p.respond(uid, msgBroadcastAck, answerData(requestID, args))
	}, true)
	p.respond(uid, msgBroadcastClientCount, map[string]any{"requestId": requestID, "clientCount": int64(n)})
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

func (p *sharded) onServerSideEmit(uid string, data map[string]any) {
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
					p.a.b.log.Warn("adapter: serverSideEmit answer not encodable", "err", err)
					return
				}
				p.respond(uid, msgServerSideEmitResponse, answerData(requestID, out))
			})
		}
	}
	p.a.b.async(func(context.Context) { p.a.nsp.HandleServerSideEmit(args, ack) })
}

func (p *sharded) onResponse(typ int64, data map[string]any) {
	requestID, _ := data["requestId"].(string)
	req := p.a.pending.get(requestID)
	if req == nil {
		return
	}
	switch typ {
	case msgBroadcastClientCount:
		if n, ok := asInt(data["clientCount"]); ok && n >= 0 && req.acks != nil {
			req.acks.Expect(int(n))
		}
	case msgBroadcastAck:
		if req.acks != nil {
			req.acks.Add(answerArgs(data, "packet"))
		}
	case msgFetchSocketsResponse:
		req.answer(parseSockets(data["sockets"]), nil, false)
	case msgServerSideEmitResponse:
		req.answer(nil, answerArgs(data, "packet"), true)
	case msgSocketsJoin, msgSocketsLeave: // on the response channel: a confirmation
		req.confirm(answerError(data))
	}
}
