package socketio

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/parser"
)

// Middleware runs before a socket joins a namespace. Returning an error
// refuses the connection with a CONNECT_ERROR (use *ConnectError to send data).
type Middleware func(s *Socket) error

// Namespace is a communication channel that splits the logic of an
// application over one shared connection (socket.io's Namespace).
type Namespace struct {
	srv     *Server
	name    string
	adapter adapter.Adapter
	ids     atomic.Int64 // ack ids, shared by the namespace's sockets as in socket.io

	// events are the handlers every socket of the namespace has (OnEvent):
	// copied on write, read without a lock for each incoming event.
	events atomic.Pointer[eventHandlers]

	mu           sync.RWMutex
	middleware   []Middleware
	onConnection []func(*Socket)
	serverSide   map[string]func(args []any, ack func(args ...any))
	sockets      map[string]*Socket
}

var (
	_ adapter.Namespace    = (*Namespace)(nil)
	_ adapter.SocketsMover = (*Namespace)(nil)
)

// SocketsMoved implements adapter.SocketsMover: the local sockets that
// SocketsJoin/SocketsLeave moved store their recovery session before the
// operation returns, so that a move the caller was told about survives a
// crash of this node. It returns the first error.
func (n *Namespace) SocketsMoved(sockets []adapter.Socket) error {
	var first error
	for _, as := range sockets {
		if s, ok := as.(*Socket); ok && s.ext != nil {
			if err := s.ext.moved(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

func newNamespace(s *Server, name string) *Namespace {
	return &Namespace{
		srv:        s,
		name:       name,
		sockets:    make(map[string]*Socket),
		serverSide: make(map[string]func([]any, func(...any))),
	}
}

// Name returns the namespace name, such as "/" or "/chat".
func (n *Namespace) Name() string { return n.name }

// Server returns the server the namespace belongs to.
func (n *Namespace) Server() *Server { return n.srv }

// Adapter returns the namespace's adapter.
func (n *Namespace) Adapter() adapter.Adapter { return n.adapter }

// Use adds a middleware run for every incoming connection, in order.
func (n *Namespace) Use(mw Middleware) {
	n.mu.Lock()
	n.middleware = append(n.middleware, mw)
	n.mu.Unlock()
}

// eventHandlers are a namespace's handlers for its sockets' events.
type eventHandlers struct {
	handlers   map[string]func(*Event)
	fallback   func(*Event)
	middleware []func(*Event) error
}

// setEvents replaces the namespace's event handlers with edit's change to a
// copy of them.
func (n *Namespace) setEvents(edit func(h *eventHandlers)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := eventHandlers{handlers: map[string]func(*Event){}}
	if old := n.events.Load(); old != nil {
		for k, v := range old.handlers {
			h.handlers[k] = v
		}
		h.fallback = old.fallback
		h.middleware = append([]func(*Event) error(nil), old.middleware...)
	}
	edit(&h)
	n.events.Store(&h)
}

// OnEvent registers the handler of event for every socket of the namespace,
// present and future: the same as calling Socket.On on each, without a
// handler table per socket. A socket's own handler (Socket.On) takes
// precedence, then this one, then the socket's OnUnhandled, then the
// namespace's.
func (n *Namespace) OnEvent(event string, fn func(e *Event)) {
	n.setEvents(func(h *eventHandlers) { h.handlers[event] = fn })
}

// OnUnhandledEvent registers fn for the events of the namespace's sockets
// that no handler takes.
func (n *Namespace) OnUnhandledEvent(fn func(e *Event)) {
	n.setEvents(func(h *eventHandlers) { h.fallback = fn })
}

// UseEvent adds a middleware run for every incoming event of every socket
// of the namespace, before the socket's own (Socket.Use) and the handler;
// an error drops the event (the middleware may answer its ack itself).
func (n *Namespace) UseEvent(mw func(e *Event) error) {
	n.setEvents(func(h *eventHandlers) { h.middleware = append(h.middleware, mw) })
}

// OnConnection registers fn to run for each new socket. It runs on the
// connection's read loop: set up handlers there and return.
func (n *Namespace) OnConnection(fn func(s *Socket)) {
	n.mu.Lock()
	n.onConnection = append(n.onConnection, fn)
	n.mu.Unlock()
}

// Socket returns a socket connected to this namespace on this node.
func (n *Namespace) Socket(id string) (*Socket, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	s, ok := n.sockets[id]
	return s, ok
}

// LocalSockets returns the sockets connected to this namespace on this node.
func (n *Namespace) LocalSockets() []*Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]*Socket, 0, len(n.sockets))
	for _, s := range n.sockets {
		out = append(out, s)
	}
	return out
}

func (n *Namespace) connect(c *client, auth map[string]any) { n.connectAs(c, auth, false) }

// connectAs connects a socket of client c with the CONNECT's auth payload.
// adopted is a socket handed over from another node (handover.go): it is
// recovered without a word to the client, or the connection closes. It
// reports whether the socket connected.
func (n *Namespace) connectAs(c *client, auth map[string]any, adopted bool) bool {
	s := newSocket(n, c, auth)
	s.adopted = adopted
	s.ext = n.srv.ext.socket(s, auth)
	n.mu.RLock()
	mws := n.middleware
	n.mu.RUnlock()
	for _, mw := range mws {
		if err := mw(s); err != nil {
			ce := connectErrorOf(err)
			reason := ce.Reason
			if reason == "" {
				reason = "middleware"
			}
			n.srv.cfg.Metrics.ConnectRefused(reason)
			if adopted {
				n.adapter.DelAll(s)
				s.cancel()
				n.srv.log.Info("socketio: a handed-over socket was refused; closing so the client reconnects", "sid", s.id, "reason", reason)
				c.closeWith(engineio.ReasonTransportError)
				return false
			}
			body := map[string]any{"message": ce.Message}
			if ce.Data != nil {
				body["data"] = ce.Data
			}
			data, _ := json.Marshal(body)
			c.sendPacket(&parser.Packet{Type: parser.ConnectError, Namespace: n.name, ID: parser.NoID, Data: data})
			n.adapter.DelAll(s) // rooms a middleware may have joined
			s.cancel()
			if ce.Close {
				c.closeWith(engineio.ReasonForcedServerClose)
			}
			return false
		}
	}
	if err := s.ext.connecting(); err != nil {
		n.srv.log.Warn("socketio: durable queue unavailable; closing so the client retries", "err", err)
		n.adapter.DelAll(s)
		s.cancel()
		n.srv.cfg.Metrics.ConnectRefused("queue")
		c.closeWith(engineio.ReasonTransportError)
		return false
	}
	if adopted && !s.Recovered() {
		// The client believes it is connected: a fresh socket would be a
		// silent gap. It reconnects and is told it was not recovered.
		s.ext.disconnected(engineio.ReasonTransportError)
		n.adapter.DelAll(s)
		s.cancel()
		n.srv.cfg.Metrics.ConnectRefused("handover")
		c.closeWith(engineio.ReasonTransportError)
		return false
	}
	if !c.attach(s) {
		s.ext.disconnected(engineio.ReasonTransportClose)
		n.adapter.DelAll(s)
		s.cancel()
		return false
	}
	n.mu.Lock()
	n.sockets[s.id] = s
	n.mu.Unlock()
	if err := n.adapter.AddAll(s, s.id); err != nil {
		n.srv.log.Warn("socketio: adapter join failed", "sid", s.id, "err", err)
	}
	s.connected.Store(true)
	err := s.ext.connected(func(extra map[string]string) {
		reply := map[string]string{"sid": s.id}
		for k, v := range extra {
			reply[k] = v
		}
		if !adopted { // the client has had its reply
			data, _ := json.Marshal(reply)
			c.sendPacket(&parser.Packet{Type: parser.Connect, Namespace: n.name, ID: parser.NoID, Data: data})
		}
		n.srv.cfg.Metrics.Connected(c.transportName(), n.name)
	})
	if err != nil {
		n.srv.log.Warn("socketio: storing the session failed; closing so the client retries", "sid", s.id, "err", err)
		c.closeWith(engineio.ReasonTransportError)
		return false
	}
	n.mu.RLock()
	fns := n.onConnection
	n.mu.RUnlock()
	for _, fn := range fns {
		fn(s)
	}
	return true
}

func (n *Namespace) remove(s *Socket) {
	n.mu.Lock()
	if n.sockets[s.id] == s {
		delete(n.sockets, s.id)
	}
	n.mu.Unlock()
}

func (n *Namespace) nextAckID() int64 { return n.ids.Add(1) - 1 }

func (n *Namespace) op() BroadcastOperator { return BroadcastOperator{nsp: n} }

// To selects the sockets in rooms (To and In are the same).
func (n *Namespace) To(rooms ...string) BroadcastOperator { return n.op().To(rooms...) }

// In selects the sockets in rooms.
func (n *Namespace) In(rooms ...string) BroadcastOperator { return n.op().To(rooms...) }

// Except excludes the sockets in rooms.
func (n *Namespace) Except(rooms ...string) BroadcastOperator { return n.op().Except(rooms...) }

// Local restricts the next operation to this node.
func (n *Namespace) Local() BroadcastOperator { return n.op().Local() }

// Volatile drops the packet for clients that are not ready for it.
func (n *Namespace) Volatile() BroadcastOperator { return n.op().Volatile() }

// Emit broadcasts event to every socket of the namespace, on every node.
func (n *Namespace) Emit(event string, args ...any) error { return n.op().Emit(event, args...) }

// FetchSockets lists the namespace's sockets on every node.
func (n *Namespace) FetchSockets(ctx context.Context) ([]RemoteSocket, error) {
	return n.op().FetchSockets(ctx)
}

// SocketsJoin makes every socket of the namespace join rooms.
func (n *Namespace) SocketsJoin(ctx context.Context, rooms ...string) error {
	return n.op().SocketsJoin(ctx, rooms...)
}

// SocketsLeave makes every socket of the namespace leave rooms.
func (n *Namespace) SocketsLeave(ctx context.Context, rooms ...string) error {
	return n.op().SocketsLeave(ctx, rooms...)
}

// DisconnectSockets disconnects every socket of the namespace.
func (n *Namespace) DisconnectSockets(ctx context.Context, close bool) error {
	return n.op().DisconnectSockets(ctx, close)
}

// ServerSideEmit sends event to the same namespace on the other nodes,
// where OnServerSideEmit handlers receive it.
func (n *Namespace) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	if err := checkEvent(event); err != nil {
		return err
	}
	return n.adapter.ServerSideEmit(ctx, append([]any{event}, args...))
}

// ServerSideEmitWithAck is ServerSideEmit waiting for every other node's
// answer until ctx ends.
func (n *Namespace) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([][]any, error) {
	if err := checkEvent(event); err != nil {
		return nil, err
	}
	return n.adapter.ServerSideEmitWithAck(ctx, append([]any{event}, args...))
}

// OnServerSideEmit handles event sent by another node's ServerSideEmit. ack
// answers a ServerSideEmitWithAck (a no-op otherwise).
func (n *Namespace) OnServerSideEmit(event string, fn func(args []any, ack func(args ...any))) {
	n.mu.Lock()
	n.serverSide[event] = fn
	n.mu.Unlock()
}

// HandleServerSideEmit implements adapter.Namespace.
func (n *Namespace) HandleServerSideEmit(args []any, ack func(args []any)) {
	if len(args) == 0 {
		return
	}
	event, _ := args[0].(string)
	n.mu.RLock()
	fn := n.serverSide[event]
	n.mu.RUnlock()
	if fn == nil {
		return
	}
	reply := func(a ...any) {
		if ack != nil {
			ack(a)
		}
	}
	fn(args[1:], reply)
}

// ServerCount returns the number of nodes serving the namespace.
func (n *Namespace) ServerCount(ctx context.Context) (int, error) {
	return n.adapter.ServerCount(ctx)
}

// Timeout bounds the next EmitWithAck.
func (n *Namespace) Timeout(d time.Duration) BroadcastOperator { return n.op().Timeout(d) }

// EmitWithAck broadcasts event to every socket of the namespace and waits
// for their acks until ctx ends.
func (n *Namespace) EmitWithAck(ctx context.Context, event string, args ...any) ([][]any, error) {
	return n.op().EmitWithAck(ctx, event, args...)
}

// NextAckID returns a fresh ack id of the namespace; adapters use it for
// broadcasts with acks that come from other nodes.
func (n *Namespace) NextAckID() int64 { return n.nextAckID() }
