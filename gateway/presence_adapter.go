package gateway

import (
	"context"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/socketio"
)

// Presence follows every room change of a connected socket without a
// branch in socketio: the gateway wraps the adapter factory. A socket's
// own Join, Leave and a recovery's rejoin go through the adapter's AddAll
// and Del; a SocketsJoin/SocketsLeave (API, other nodes) is applied inside
// the adapter, which then tells its namespace (adapter.SocketsMover) —
// the namespace the wrapped factory is given is wrapped too.

// presenceFactory wraps inner so that presence hears of room changes.
func (g *Gateway) presenceFactory(inner adapter.Factory) adapter.Factory {
	return func(nsp adapter.Namespace) (adapter.Adapter, error) {
		a, err := inner(&presenceNamespace{Namespace: nsp, t: g.tracker})
		if err != nil {
			return nil, err
		}
		return &presenceAdapter{Adapter: a, t: g.tracker}, nil
	}
}

// presenceNamespace is the namespace as the inner adapter sees it.
type presenceNamespace struct {
	adapter.Namespace
	t *presenceTracker
}

var (
	_ adapter.SocketsMover = (*presenceNamespace)(nil)
	_ adapter.AckIDSource  = (*presenceNamespace)(nil)
)

// SocketsMoved implements adapter.SocketsMover: the namespace stores the
// moved sessions, then presence follows the sockets' rooms.
func (n *presenceNamespace) SocketsMoved(socks []adapter.Socket) error {
	var err error
	if m, ok := n.Namespace.(adapter.SocketsMover); ok {
		err = m.SocketsMoved(socks)
	}
	for _, s := range socks {
		if ss, ok := s.(*socketio.Socket); ok {
			n.t.reconcile(ss)
		}
	}
	return err
}

// NextAckID implements adapter.AckIDSource.
func (n *presenceNamespace) NextAckID() int64 {
	if src, ok := n.Namespace.(adapter.AckIDSource); ok {
		return src.NextAckID()
	}
	return 0
}

// presenceAdapter is the namespace's adapter, telling presence of the
// rooms its sockets join and leave.
type presenceAdapter struct {
	adapter.Adapter
	t *presenceTracker
}

var (
	_ adapter.AsyncBroadcaster = (*presenceAdapter)(nil)
	_ adapter.LocalRunner      = (*presenceAdapter)(nil)
)

// DeliverLocalRun implements adapter.LocalRunner for the adapters that do
// (both of Roomcast's), and delivers one message after the other for
// others.
func (a *presenceAdapter) DeliverLocalRun(msgs []*adapter.Message, rooms []string, except [][]string) []int {
	if r, ok := a.Adapter.(adapter.LocalRunner); ok {
		return r.DeliverLocalRun(msgs, rooms, except)
	}
	for i, m := range msgs {
		opts := adapter.Options{Rooms: rooms, Local: true}
		if i < len(except) {
			opts.Except = except[i]
		}
		_ = a.Adapter.Broadcast(context.Background(), m, opts)
	}
	return make([]int, len(msgs))
}

func (a *presenceAdapter) AddAll(s adapter.Socket, rooms ...string) error {
	if err := a.Adapter.AddAll(s, rooms...); err != nil {
		return err
	}
	if ss, ok := s.(*socketio.Socket); ok {
		a.t.joined(ss, rooms)
	}
	return nil
}

func (a *presenceAdapter) Del(s adapter.Socket, room string) {
	a.Adapter.Del(s, room)
	if ss, ok := s.(*socketio.Socket); ok {
		a.t.left(ss, room)
	}
}

// BroadcastAsync implements adapter.AsyncBroadcaster for the adapters
// that do (both of Roomcast's), and runs Broadcast on a goroutine for
// others.
func (a *presenceAdapter) BroadcastAsync(m *adapter.Message, opts adapter.Options, done func(error)) {
	if ab, ok := a.Adapter.(adapter.AsyncBroadcaster); ok {
		ab.BroadcastAsync(m, opts, done)
		return
	}
	go func() { done(a.Adapter.Broadcast(context.Background(), m, opts)) }()
}
