package socketio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/parser"
)

// Handshake is what the client presented when it connected.
type Handshake = adapter.Handshake

// Socket is one client connected to one namespace (socket.io's Socket).
// Its methods are safe for concurrent use.
type Socket struct {
	id        string
	nsp       *Namespace
	client    *client
	auth      map[string]any // the CONNECT's auth payload
	issued    time.Time      // when the socket connected
	connected atomic.Bool
	gone      atomic.Bool        // disconnected after having connected
	adopted   bool               // handed over from another node (HandedOver)
	working   atomic.Int32       // Socket.Go goroutines running
	ctx       context.Context    // ends when the socket disconnects
	cancel    context.CancelFunc // ends ctx

	// ext is the socket's part in the server's extension (hooks.go):
	// its recovery state with Config.Recovery, the socket itself otherwise.
	// Set before the middlewares run, then never changed.
	ext socketHooks

	mu              sync.Mutex
	data            any
	dataSets        int // SetData calls, so a restored Data can tell it was replaced
	handlers        map[string]func(*Event)
	fallback        func(*Event)
	middleware      []func(*Event) error
	onDisconnect    []func(reason string)
	onDisconnecting []func(reason string)
	acks            map[int64]pendingAck
}

// pendingAck is an ack the socket waits for; deadline (if set) is when its
// sender gave up, after which it is swept.
type pendingAck struct {
	fn       func(args []any)
	deadline time.Time
}

// maxPendingBeforeSweep is the pending-ack count above which adding one
// first drops those whose sender gave up.
const maxPendingBeforeSweep = 64

var _ adapter.RunSocket = (*Socket)(nil)

func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func newSocket(n *Namespace, c *client, auth map[string]any) *Socket {
	s := &Socket{
		id:     newID(),
		nsp:    n,
		client: c,
		auth:   auth,
		issued: time.Now(),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

func buildHandshake(c *client, auth map[string]any, now time.Time) Handshake {
	r := c.conn.Request()
	h := Handshake{
		Headers: make(map[string]string, len(r.Header)),
		Time:    now.UTC().Format(time.RFC1123),
		Issued:  now.UnixMilli(),
		URL:     r.URL.RequestURI(),
		Query:   make(map[string]string),
		Auth:    auth,
		Secure:  r.TLS != nil,
		XDomain: r.Header.Get("Origin") != "",
	}
	for k, v := range r.Header {
		h.Headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			h.Query[k] = v[0]
		}
	}
	h.Address = r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		h.Address = host
	}
	return h
}

// ID returns the socket id (not the Engine.IO session id).
func (s *Socket) ID() string { return s.id }

// Namespace returns the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Handshake returns the connection details, including the CONNECT auth
// payload. It is built from the handshake request on each call (an idle
// socket does not keep a copy of the headers and query).
func (s *Socket) Handshake() Handshake { return buildHandshake(s.client, s.auth, s.issued) }

// Auth returns the CONNECT's auth payload (Handshake().Auth, without
// building the rest).
func (s *Socket) Auth() map[string]any { return s.auth }

// Connected reports whether the socket is still connected.
func (s *Socket) Connected() bool { return s.connected.Load() }

// Done is closed when the socket disconnects.
func (s *Socket) Done() <-chan struct{} { return s.ctx.Done() }

// Context ends when the socket disconnects, or when its CONNECT is refused
// or fails (then without OnDisconnect): whatever a middleware acquired for
// the socket can be released with context.AfterFunc(s.Context(), ...).
func (s *Socket) Context() context.Context { return s.ctx }

// Request returns the HTTP request that opened the socket's Engine.IO
// session (URL, Header, RemoteAddr), for reading the client's address
// behind proxies. It must not be modified.
func (s *Socket) Request() *http.Request { return s.client.conn.Request() }

// Go runs fn on a goroutine of its own, owned by the Server: ctx ends when
// the socket disconnects, and Server.Shutdown waits for fn to return. Use it
// for handler work that must not hold up the connection's read loop (a
// cluster-wide FetchSockets, an EmitWithAck to the same client). It reports
// false, without running fn, when the socket is already gone.
func (s *Socket) Go(fn func(ctx context.Context)) bool {
	if s.gone.Load() || s.ctx.Err() != nil {
		return false
	}
	srv := s.nsp.srv
	srv.wg.Add(1)
	s.working.Add(1)
	go func() {
		defer srv.wg.Done()
		defer s.working.Add(-1)
		fn(s.ctx)
	}()
	return true
}

// Transport returns the current transport: "polling" or "websocket".
func (s *Socket) Transport() string { return s.client.transportName() }

// ConnID returns the Engine.IO session id the socket is multiplexed on.
func (s *Socket) ConnID() string { return s.client.conn.ID() }

// Data returns the value set with SetData; it is shared with FetchSockets.
func (s *Socket) Data() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

// SetData attaches application data to the socket.
func (s *Socket) SetData(v any) {
	s.mu.Lock()
	s.data = v
	s.dataSets++
	s.mu.Unlock()
}

// Info implements adapter.Socket.
func (s *Socket) Info() adapter.SocketInfo {
	return adapter.SocketInfo{ID: s.id, Handshake: s.Handshake(), Data: s.Data()}
}

// On registers the handler of event. Handlers run one at a time on the
// connection's read loop, in the order the client sent the events; a handler
// that blocks delays that client's next packets (not other clients). Do not
// wait on EmitWithAck to the same client inside a handler: start a goroutine.
func (s *Socket) On(event string, fn func(e *Event)) {
	s.mu.Lock()
	if s.handlers == nil {
		s.handlers = make(map[string]func(*Event), 8)
	}
	s.handlers[event] = fn
	s.mu.Unlock()
}

// OnUnhandled registers fn for events that have no handler.
func (s *Socket) OnUnhandled(fn func(e *Event)) {
	s.mu.Lock()
	s.fallback = fn
	s.mu.Unlock()
}

// Use adds a middleware run for every incoming event before its handler;
// an error drops the event (the middleware may answer its ack itself).
func (s *Socket) Use(mw func(e *Event) error) {
	s.mu.Lock()
	s.middleware = append(s.middleware, mw)
	s.mu.Unlock()
}

// OnDisconnect registers fn, called once with the reason when the socket disconnects.
func (s *Socket) OnDisconnect(fn func(reason string)) {
	s.mu.Lock()
	s.onDisconnect = append(s.onDisconnect, fn)
	s.mu.Unlock()
}

// OnDisconnecting registers fn, called before the socket leaves its rooms.
func (s *Socket) OnDisconnecting(fn func(reason string)) {
	s.mu.Lock()
	s.onDisconnecting = append(s.onDisconnecting, fn)
	s.mu.Unlock()
}

// Emit sends event with args to this client. A []byte anywhere in args is
// sent as a binary attachment.
func (s *Socket) Emit(event string, args ...any) error {
	if err := checkEvent(event); err != nil {
		return err
	}
	return s.emit(false, event, args)
}

func (s *Socket) emit(volatile bool, event string, args []any) error {
	if !s.connected.Load() {
		return ErrDisconnected
	}
	m, err := adapter.NewMessage(s.nsp.name, event, args)
	if err != nil {
		return err
	}
	if !s.Deliver(m, volatile) && !volatile {
		return ErrDisconnected
	}
	return nil
}

// EmitWithAck sends event and waits for the client's acknowledgement until
// ctx ends (ErrAckTimeout) or the socket disconnects (ErrDisconnected).
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	if err := checkEvent(event); err != nil {
		return nil, err
	}
	m, err := adapter.NewMessage(s.nsp.name, event, args)
	if err != nil {
		return nil, err
	}
	m.Packet.ID = s.nsp.nextAckID()
	m.AckDeadline, _ = ctx.Deadline()
	ch := make(chan []any, 1)
	if !s.DeliverWithAck(m, func(a []any) { ch <- a }) {
		return nil, ErrDisconnected
	}
	select {
	case a := <-ch:
		return a, nil
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.acks, m.Packet.ID)
		s.mu.Unlock()
		return nil, ErrAckTimeout
	case <-s.ctx.Done():
		return nil, ErrDisconnected
	}
}

// Volatile returns an emitter whose packets are dropped when the client is
// not ready for them.
func (s *Socket) Volatile() VolatileEmitter { return VolatileEmitter{s} }

// VolatileEmitter emits volatile packets to one socket.
type VolatileEmitter struct{ s *Socket }

// Emit sends event unless the client is busy.
func (v VolatileEmitter) Emit(event string, args ...any) error {
	if err := checkEvent(event); err != nil {
		return err
	}
	return v.s.emit(true, event, args)
}

// Deliver implements adapter.Socket.
func (s *Socket) Deliver(m *adapter.Message, volatile bool) bool {
	if !s.connected.Load() {
		return false
	}
	if volatile && s.client.conn.Buffered() > 0 {
		s.nsp.srv.cfg.Metrics.VolatileDropped()
		return false
	}
	if !volatile && m.Packet.ID == parser.NoID &&
		(m.Packet.Type == parser.Event || m.Packet.Type == parser.BinaryEvent) {
		return s.ext.sendEvent(m)
	}
	return s.client.send(m.Frames())
}

// DeliverRun implements adapter.RunSocket: msgs are handed to the
// connection together (one wake-up of its writer).
func (s *Socket) DeliverRun(msgs []*adapter.Message) bool {
	if !s.connected.Load() {
		return false
	}
	for _, m := range msgs {
		if m.Packet.ID != parser.NoID || (m.Packet.Type != parser.Event && m.Packet.Type != parser.BinaryEvent) {
			ok := true
			for _, m := range msgs {
				ok = s.Deliver(m, false) && ok
			}
			return ok
		}
	}
	return s.ext.sendEvents(msgs)
}

// DeliverWithAck implements adapter.Socket.
func (s *Socket) DeliverWithAck(m *adapter.Message, onAck func(args []any)) bool {
	s.mu.Lock()
	if len(s.acks) >= maxPendingBeforeSweep {
		now := time.Now()
		for id, p := range s.acks {
			if !p.deadline.IsZero() && now.After(p.deadline) {
				delete(s.acks, id)
			}
		}
	}
	if s.acks == nil {
		s.acks = make(map[int64]pendingAck)
	}
	s.acks[m.Packet.ID] = pendingAck{fn: onAck, deadline: m.AckDeadline}
	s.mu.Unlock()
	if s.Deliver(m, false) {
		return true
	}
	s.mu.Lock()
	delete(s.acks, m.Packet.ID)
	s.mu.Unlock()
	return false
}

// Join adds the socket to rooms. A middleware may already call it. With
// Recovery, joining a durable room makes the socket's user a member of it
// (ErrAnonymousDurable for an anonymous socket or from a middleware;
// queue.ErrRoomFull when the room has its maximum of members), and Join
// returns only once the socket's session is stored with the rooms: a crash
// of the node after Join returned recovers them. When the session cannot be
// stored, Join returns the Store's error and the socket is not in the rooms
// it was not in before (a durable membership it recorded stands). The Store
// is given Recovery.Timeout. Joins and leaves of one socket are stored in
// the order they return.
func (s *Socket) Join(rooms ...string) error { return s.JoinContext(context.Background(), rooms...) }

// JoinContext is Join with ctx bounding the Store calls (durable
// membership, session save; Recovery.Timeout when ctx has no deadline).
func (s *Socket) JoinContext(ctx context.Context, rooms ...string) error {
	if s.gone.Load() {
		return ErrDisconnected
	}
	return s.ext.join(ctx, rooms, func() error { return s.nsp.adapter.AddAll(s, rooms...) })
}

// Leave removes the socket from room. Leaving a durable room ends the
// membership of the socket's user; the error is the Store's when it could
// not record that (the socket stays in the room). With Recovery, Leave
// returns once the socket's session is stored without room; when it
// cannot be, the socket stays in room (a durable membership it ended stays
// ended) and Leave returns the Store's error.
func (s *Socket) Leave(room string) error { return s.LeaveContext(context.Background(), room) }

// LeaveContext is Leave with ctx bounding the Store calls (durable
// membership, session save; Recovery.Timeout when ctx has no deadline).
func (s *Socket) LeaveContext(ctx context.Context, room string) error {
	return s.ext.leave(ctx, room, func() { s.nsp.adapter.Del(s, room) })
}

// Rooms returns the rooms the socket is in, its own id room included.
func (s *Socket) Rooms() []string { return s.nsp.adapter.Rooms(s.id) }

// InRoom reports whether the socket is in room.
func (s *Socket) InRoom(room string) bool {
	for _, r := range s.Rooms() {
		if r == room {
			return true
		}
	}
	return false
}

func (s *Socket) op() BroadcastOperator {
	return BroadcastOperator{nsp: s.nsp, opts: adapter.Options{Except: []string{s.id}}}
}

// To selects the sockets in rooms, this one excluded.
func (s *Socket) To(rooms ...string) BroadcastOperator { return s.op().To(rooms...) }

// In is To.
func (s *Socket) In(rooms ...string) BroadcastOperator { return s.op().To(rooms...) }

// Except selects every other socket but those in rooms.
func (s *Socket) Except(rooms ...string) BroadcastOperator { return s.op().Except(rooms...) }

// Broadcast selects every other socket of the namespace.
func (s *Socket) Broadcast() BroadcastOperator { return s.op() }

// Disconnect disconnects the socket from its namespace; with close it also
// closes the underlying connection (and every other namespace on it).
func (s *Socket) Disconnect(close bool) {
	if close {
		s.client.closeWith(engineio.ReasonForcedServerClose)
		return
	}
	if !s.connected.Load() {
		return
	}
	s.client.sendPacket(&parser.Packet{Type: parser.Disconnect, Namespace: s.nsp.name, ID: parser.NoID})
	s.cleanup(engineio.ReasonServerNamespaceDisconnect)
}

// CloseConn closes the socket's connection (every namespace on it) after
// flushing what is queued, reporting reason to the disconnect handlers and
// the metrics. The client sees its transport close and reconnects, as
// after a network failure (a recoverable socket keeps its session).
func (s *Socket) CloseConn(reason engineio.Reason) { s.client.closeWith(reason) }

func (s *Socket) onPacket(p *parser.Packet) {
	switch p.Type {
	case parser.Event, parser.BinaryEvent:
		s.onEvent(p)
	case parser.Ack, parser.BinaryAck:
		args, err := parser.UnmarshalArgs(p.Data, p.Attachments)
		if err != nil {
			s.client.closeWith(engineio.ReasonParseError)
			return
		}
		s.mu.Lock()
		pending, ok := s.acks[p.ID]
		delete(s.acks, p.ID)
		s.mu.Unlock()
		if ok {
			pending.fn(args)
		}
	case parser.Disconnect:
		s.cleanup(engineio.ReasonClientNamespaceDisconnect)
	default:
		s.client.closeWith(engineio.ReasonParseError)
	}
}

func (s *Socket) onEvent(p *parser.Packet) {
	args, err := parser.UnmarshalArgs(p.Data, p.Attachments)
	if err != nil || len(args) == 0 {
		s.client.closeWith(engineio.ReasonParseError)
		return
	}
	name, ok := args[0].(string)
	if !ok || parser.Reserved(name) {
		s.client.closeWith(engineio.ReasonParseError)
		return
	}
	e := &Event{Name: name, Args: args[1:], socket: s, ackID: p.ID}
	s.mu.Lock()
	mws := s.middleware
	fn := s.handlers[name]
	fallback := s.fallback
	s.mu.Unlock()
	nh := s.nsp.events.Load()
	if nh != nil {
		for _, mw := range nh.middleware {
			if mw(e) != nil {
				return
			}
		}
		if fn == nil {
			fn = nh.handlers[name]
		}
	}
	if fn == nil {
		fn = fallback
	}
	if fn == nil && nh != nil {
		fn = nh.fallback
	}
	for _, mw := range mws {
		if mw(e) != nil {
			return
		}
	}
	if fn != nil {
		fn(e)
	}
}

func (s *Socket) cleanup(reason engineio.Reason) {
	if !s.connected.CompareAndSwap(true, false) {
		return
	}
	s.gone.Store(true)
	s.mu.Lock()
	disconnecting := s.onDisconnecting
	disconnect := s.onDisconnect
	s.acks = map[int64]pendingAck{}
	s.mu.Unlock()
	for _, fn := range disconnecting {
		fn(string(reason))
	}
	s.ext.disconnected(reason)
	s.nsp.adapter.DelAll(s)
	s.nsp.remove(s)
	s.client.detach(s)
	s.cancel()
	s.nsp.srv.cfg.Metrics.Disconnected(reason, s.client.transportName(), s.nsp.name)
	for _, fn := range disconnect {
		fn(string(reason))
	}
}
