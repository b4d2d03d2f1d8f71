package redisadapter

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/internal/msgpack"
	"github.com/roomcast/roomcast/internal/redispubsub"
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

// classic is the protocol of @socket.io/redis-adapter 8.x (Mode Classic).
type classic struct {
	a           *namespaceAdapter
	specificRes bool

	channel          string // <prefix>#<nsp>#
	requestChannel   string // <prefix>-request#<nsp>#
	responseChannel  string // <prefix>-response#<nsp>#
	specificResponse string // <prefix>-response#<nsp>#<uid>#
}

func newClassic(a *namespaceAdapter, specificRes bool) *classic {
	name := a.nsp.Name()
	p := &classic{
		a:               a,
		specificRes:     specificRes,
		channel:         a.b.prefix + "#" + name + "#",
		requestChannel:  a.b.prefix + "-request#" + name + "#",
		responseChannel: a.b.prefix + "-response#" + name + "#",
	}
	p.specificResponse = p.responseChannel + a.uid + "#"
	return p
}

func (p *classic) listen() []func() {
	b := p.a.b
	return []func(){
		b.listen(redispubsub.Key{Kind: redispubsub.Pattern, Name: p.channel + "*"}, p.onMessage),
		b.listen(redispubsub.Key{Kind: redispubsub.Channel, Name: p.requestChannel}, p.onRequest),
		b.listen(redispubsub.Key{Kind: redispubsub.Channel, Name: p.responseChannel}, p.onResponse),
		b.listen(redispubsub.Key{Kind: redispubsub.Channel, Name: p.specificResponse}, p.onResponse),
	}
}

func (p *classic) close() {}

// countChannel implements protocol: every node subscribes to the request
// channel.
func (p *classic) countChannel() string { return p.requestChannel }

// encodeBroadcast implements protocol: m goes on <prefix>#<nsp># (or
// <prefix>#<nsp>#<room># for exactly one room) as [uid, packet, opts] in
// MessagePack.
func (p *classic) encodeBroadcast(m *adapter.Message, opts adapter.Options) (channel string, payload []byte, err error) {
	if payload, err = p.encode(m, opts); err != nil {
		return "", nil, err
	}
	channel = p.channel
	if len(opts.Rooms) == 1 {
		channel += opts.Rooms[0] + "#"
	}
	return channel, payload, nil
}

func (p *classic) encode(m *adapter.Message, opts adapter.Options) ([]byte, error) {
	packet, err := packetValue(m)
	if err != nil {
		return nil, err
	}
	return msgpack.Marshal([]any{p.a.uid, packet, optionsValue(opts, nil)})
}

// send implements protocol: requests go on the request channel, as 8.x
// encodes each type.
func (p *classic) send(ctx context.Context, r request) error {
	sel := map[string]any{"rooms": nonNil(r.opts.Rooms), "except": nonNil(r.opts.Except)}
	var v map[string]any
	auto := true
	switch r.kind {
	case reqKindBroadcastWithAck:
		v = map[string]any{
			"requestId": r.id,
			"type":      int64(reqBroadcast),
			"packet":    r.packet,
			"opts":      optionsValue(r.opts, r.flags),
		}
		auto = false
	case reqKindFetch:
		v = map[string]any{"requestId": r.id, "type": int64(reqRemoteFetch), "opts": sel}
	case reqKindJoin, reqKindLeave:
		// With a requestId, which 8.x ignores on this form (it applies
		// the request and answers nothing), Roomcast nodes confirm.
		typ := int64(reqRemoteJoin)
		if r.kind == reqKindLeave {
			typ = reqRemoteLeave
		}
		v = map[string]any{"type": typ, "opts": sel, "rooms": nonNil(r.rooms)}
		if r.id != "" {
			v["requestId"] = r.id
		}
	case reqKindDisconnect:
		v = map[string]any{"type": int64(reqRemoteDisconnect), "opts": sel, "close": r.close}
	case reqKindServerSideEmit:
		v = map[string]any{"type": int64(reqServerSideEmit), "data": r.data}
		if r.id != "" {
			v["requestId"] = r.id
		}
	}
	v["uid"] = p.a.uid
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
	return p.a.b.publish(ctx, p.requestChannel, payload)
}

// onMessage handles a broadcast from another node (or an emitter).
func (p *classic) onMessage(channel string, payload []byte) {
	if !strings.HasPrefix(channel, p.channel) || !strings.HasSuffix(channel, "#") {
		return
	}
	if len(channel) > len(p.channel) {
		if room := channel[len(p.channel) : len(channel)-1]; room != "" && !p.a.HasRoom(room) {
			return // nobody here is in the room: skip decoding
		}
	}
	m, opts, err := p.decodeBroadcast(payload)
	if err != nil {
		if err != errOwnMessage && err != errOtherNamespace {
			p.a.b.log.Debug("adapter: broadcast dropped", "channel", channel, "err", err)
		}
		return
	}
	p.a.DeliverLocal(m, opts, true)
}

var (
	errOwnMessage     = fmt.Errorf("%w: sent by this node", errMalformed)
	errOtherNamespace = fmt.Errorf("%w: for another namespace", errMalformed)
)

// decodeBroadcast reads [uid, packet, opts].
func (p *classic) decodeBroadcast(payload []byte) (*adapter.Message, adapter.Options, error) {
	v, err := msgpack.Decode(payload)
	if err != nil {
		return nil, adapter.Options{}, fmt.Errorf("%w: %v", errMalformed, err)
	}
	arr, ok := v.([]any)
	if !ok || len(arr) < 2 {
		return nil, adapter.Options{}, fmt.Errorf("%w: not [uid, packet, opts]", errMalformed)
	}
	if uid, _ := arr[0].(string); uid == p.a.uid {
		return nil, adapter.Options{}, errOwnMessage
	}
	pkt, _ := arr[1].(map[string]any)
	nsp, ok := pkt["nsp"].(string)
	if !ok {
		nsp = "/"
	}
	if nsp != p.a.nsp.Name() {
		return nil, adapter.Options{}, errOtherNamespace
	}
	m, err := packetMessage(nsp, pkt)
	if err != nil {
		return nil, adapter.Options{}, err
	}
	var opts adapter.Options
	if len(arr) > 2 {
		opts = parseOptions(arr[2])
	}
	return m, opts, nil
}

// onRequest handles the request channel.
func (p *classic) onRequest(channel string, payload []byte) {
	v, err := decodePayload(payload)
	if err != nil {
		p.a.b.log.Debug("adapter: malformed request", "err", err)
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
	if uid == p.a.uid {
		return // applied locally when sent
	}
	requestID, _ := req["requestId"].(string)
	switch typ {
	case reqSockets:
		opts := adapter.Options{Rooms: asStrings(req["rooms"])}
		ids := []string{}
		for _, s := range p.a.Select(opts) {
			ids = append(ids, s.ID())
		}
		p.respondJSON(uid, map[string]any{"requestId": requestID, "sockets": ids})
	case reqAllRooms:
		p.respondJSON(uid, map[string]any{"requestId": requestID, "rooms": nonNil(p.a.LocalRooms())})
	case reqRemoteJoin, reqRemoteLeave, reqRemoteDisconnect:
		p.onRemoteSelection(typ, uid, requestID, req)
	case reqRemoteFetch:
		socks := p.a.FetchLocal(parseOptions(req["opts"]))
		p.respondJSON(uid, map[string]any{"requestId": requestID, "sockets": socketValues(socks)})
	case reqServerSideEmit:
		p.onServerSideEmit(requestID, req["data"])
	case reqBroadcast:
		if p.a.pending.get(requestID) != nil {
			return // our own request
		}
		p.onBroadcastWithAck(uid, requestID, req)
	}
}

// onRemoteSelection handles REMOTE_JOIN, REMOTE_LEAVE and REMOTE_DISCONNECT:
// with opts they select sockets (8.x), with sid one socket and an answer
// (the older form, still served). A join or leave with opts and a
// requestId comes from a Roomcast node: it is answered, once the moved
// sockets' sessions are stored, with {type, requestId} plus error when
// they could not be.
func (p *classic) onRemoteSelection(typ int64, uid, requestID string, req map[string]any) {
	if o, ok := req["opts"]; ok && o != nil {
		opts := parseOptions(o)
		switch typ {
		case reqRemoteJoin, reqRemoteLeave:
			p.a.onMove(typ == reqRemoteJoin, opts, asStrings(req["rooms"]), func(err error) {
				if requestID == "" {
					return
				}
				answer := map[string]any{"type": typ, "requestId": requestID, "node": p.a.b.node}
				if err != nil {
					answer["error"] = err.Error()
				}
				p.respondJSON(uid, answer)
			})
		case reqRemoteDisconnect:
			closeConn, _ := req["close"].(bool)
			p.a.DisconnectLocal(opts, closeConn)
		}
		return
	}
	sid, _ := req["sid"].(string)
	s, ok := p.a.Socket(sid)
	if !ok {
		return
	}
	room, _ := req["room"].(string)
	switch typ {
	case reqRemoteJoin:
		_ = p.a.AddAll(s, room)
	case reqRemoteLeave:
		p.a.Del(s, room)
	case reqRemoteDisconnect:
		closeConn, _ := req["close"].(bool)
		s.Disconnect(closeConn)
	}
	p.respondJSON(uid, map[string]any{"requestId": requestID})
}

// onServerSideEmit runs the namespace's handler on a reply worker; with a
// request id its answer is published on the shared response channel, as
// 8.x does: {type: 6, requestId, data: <first argument>}, plus args (every
// argument) which Roomcast nodes read.
func (p *classic) onServerSideEmit(requestID string, data any) {
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
					p.a.b.log.Warn("adapter: serverSideEmit answer not encodable", "err", err)
					return
				}
				p.a.b.reply(p.responseChannel, payload)
			})
		}
	}
	p.a.b.async(func(context.Context) { p.a.nsp.HandleServerSideEmit(args, ack) })
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

// onBroadcastWithAck delivers a broadcast with acks from another node and
// answers with the client count, then each client's ack.
func (p *classic) onBroadcastWithAck(uid, requestID string, req map[string]any) {
	m, err := packetMessage(p.a.nsp.Name(), req["packet"])
	if err != nil {
		p.a.b.log.Debug("adapter: broadcast with ack dropped", "err", err)
		return
	}
	m.Packet.ID = p.a.b.nextAckID(p.a.nsp)
	opts := parseOptions(req["opts"])
	n := p.a.DeliverLocalWithAck(m, opts, func(answer []any) {
		// 8.x encodes this reply with MessagePack whatever it holds.
		payload, err := ackResponse(reqBroadcastAck, requestID, "packet", answer, true)
		if err != nil {
			p.a.b.log.Warn("adapter: ack not encodable", "err", err)
			return
		}
		p.respondRaw(uid, payload)
	}, true)
	p.respondJSON(uid, map[string]any{"type": int64(reqBroadcastClientCount), "requestId": requestID, "clientCount": n})
}

func (p *classic) responseChannelFor(uid string) string {
	if p.specificRes && uid != "" {
		return p.responseChannel + uid + "#"
	}
	return p.responseChannel
}

func (p *classic) respondJSON(uid string, v map[string]any) {
	payload, err := encodeJSON(v)
	if err != nil {
		p.a.b.log.Warn("adapter: reply not encodable", "err", err)
		return
	}
	p.respondRaw(uid, payload)
}

func (p *classic) respondRaw(uid string, payload []byte) {
	p.a.b.reply(p.responseChannelFor(uid), payload)
}

// onResponse handles the response channels.
func (p *classic) onResponse(_ string, payload []byte) {
	v, err := decodePayload(payload)
	if err != nil {
		return
	}
	resp, ok := v.(map[string]any)
	if !ok {
		return
	}
	requestID, _ := resp["requestId"].(string)
	req := p.a.pending.get(requestID)
	if req == nil {
		return
	}
	typ, _ := asInt(resp["type"])
	if req.acks != nil {
		switch typ {
		case reqBroadcastClientCount:
			if n, ok := asInt(resp["clientCount"]); ok && n >= 0 {
				req.acks.Expect(int(n))
			}
		case reqBroadcastAck:
			req.acks.Add(answerArgs(resp, "packet"))
		}
		return
	}
	if arr, ok := resp["sockets"].([]any); ok {
		req.answer(parseSockets(arr), nil, false)
		return
	}
	if typ == reqRemoteJoin || typ == reqRemoteLeave {
		req.confirm(answerError(resp))
		return
	}
	if typ == reqServerSideEmit {
		req.answer(nil, answerArgs(resp, "data"), true)
	}
}
