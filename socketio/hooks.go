package socketio

import (
	"context"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/engineio"
)

// extension is the one component that extends the core across sockets and
// nodes: connection state recovery and durable delivery (recovery.go) with
// Config.Recovery, plain otherwise. The core calls it at the points below
// and never asks which one it has.
type extension interface {
	// socket runs when a CONNECT arrives, before the namespace's
	// middlewares, and returns the socket's hooks (the connect lookup: a
	// recovery takes the session the auth payload names).
	socket(s *Socket, auth map[string]any) socketHooks
	// broadcast takes an emit that the extension delivers itself (to
	// durable rooms); handled false leaves it to the adapter.
	broadcast(ctx context.Context, b BroadcastOperator, event string, args []any) (handled bool, err error)
	// broadcastAsync is broadcast for EmitAsync: when handled, done is
	// called once (maybe later, from another goroutine) with its outcome.
	broadcastAsync(b BroadcastOperator, event string, args []any, done func(error)) (handled bool)
	// socketsJoin and socketsLeave run before the adapter moves the
	// selected sockets, wherever they are (durable membership of their
	// users); an error stops the move.
	socketsJoin(ctx context.Context, b BroadcastOperator, rooms []string) error
	socketsLeave(ctx context.Context, b BroadcastOperator, rooms []string) error
	// close runs once at Shutdown, after the connections closed: the
	// extension stops what it runs per namespace (the broadcast log tails).
	close()
}

// socketHooks are the points of one socket's life where the extension
// takes part; its per-socket state is behind them (Socket.ext).
type socketHooks interface {
	// connecting runs after the middlewares, before the socket is
	// attached; what it sends precedes the CONNECT reply (a replay). An
	// error refuses the socket: the connection is closed so that the
	// client retries.
	connecting() error
	// connected runs once the socket is attached, in its own room and
	// connected. It sends the CONNECT reply by calling reply (once, with
	// the fields to add beside "sid") and may emit after it. An error,
	// before reply, closes the connection instead.
	connected(reply func(extra map[string]string)) error
	// join and leave make the adapter's change themselves, by calling add
	// or del, and return once whatever the extension keeps of the socket
	// reflects it (recovery: the stored session, so that a crash after
	// Join returned recovers the room). An error (a durable room refused,
	// the session not saved) leaves the rooms as they were.
	join(ctx context.Context, rooms []string, add func() error) error
	leave(ctx context.Context, room string, del func()) error
	// moved runs after SocketsJoin/SocketsLeave changed the socket's rooms
	// on this node, before the operation returns (or this node answers
	// another's request): recovery stores the session.
	moved() error
	// disconnected runs once when the socket ends: after its
	// OnDisconnecting handlers, before it leaves its rooms; or when it
	// could not be attached after connecting succeeded.
	disconnected(reason engineio.Reason)
	// sendEvent queues an EVENT without an ack id (the frame tail: a
	// recovery adds the socket's offset as the last argument; m.Log is the
	// broadcast's log position when it comes from the broadcast log).
	sendEvent(m *adapter.Message) bool
	// sendEvents is sendEvent for several messages, handed to the
	// connection together where it can.
	sendEvents(ms []*adapter.Message) bool
}

// plain is the extension of a server without Recovery: no hooks.
type plain struct{}

func (plain) socket(s *Socket, _ map[string]any) socketHooks { return (*plainSocket)(s.client) }

func (plain) broadcast(context.Context, BroadcastOperator, string, []any) (bool, error) {
	return false, nil
}

func (plain) broadcastAsync(BroadcastOperator, string, []any, func(error)) bool { return false }

func (plain) socketsJoin(context.Context, BroadcastOperator, []string) error  { return nil }
func (plain) socketsLeave(context.Context, BroadcastOperator, []string) error { return nil }
func (plain) close()                                                          {}

// plainSocket is a socket's client seen as the socket's hooks: nothing to
// add, and no allocation to get them.
type plainSocket client

func (*plainSocket) connecting() error { return nil }

func (*plainSocket) connected(reply func(map[string]string)) error {
	reply(nil)
	return nil
}

func (*plainSocket) join(_ context.Context, _ []string, add func() error) error { return add() }

func (*plainSocket) leave(_ context.Context, _ string, del func()) error {
	del()
	return nil
}

func (*plainSocket) moved() error { return nil }

func (*plainSocket) disconnected(engineio.Reason) {}

func (p *plainSocket) sendEvent(m *adapter.Message) bool {
	return (*client)(p).send(m.Frames())
}

func (p *plainSocket) sendEvents(ms []*adapter.Message) bool {
	ok := true
	for _, m := range ms {
		ok = p.sendEvent(m) && ok
	}
	return ok
}
