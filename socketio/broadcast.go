package socketio

import (
	"context"
	"time"

	"github.com/roomcast/roomcast/adapter"
)

// BroadcastOperator selects sockets across the cluster and acts on them. It
// is a value: each modifier returns a new operator.
type BroadcastOperator struct {
	nsp     *Namespace
	opts    adapter.Options
	timeout time.Duration
}

func (b BroadcastOperator) clone() BroadcastOperator {
	b.opts.Rooms = append([]string(nil), b.opts.Rooms...)
	b.opts.Except = append([]string(nil), b.opts.Except...)
	return b
}

// To adds rooms to the selection.
func (b BroadcastOperator) To(rooms ...string) BroadcastOperator {
	b = b.clone()
	b.opts.Rooms = appendNew(b.opts.Rooms, rooms)
	return b
}

// In is To.
func (b BroadcastOperator) In(rooms ...string) BroadcastOperator { return b.To(rooms...) }

// Except excludes the sockets in rooms.
func (b BroadcastOperator) Except(rooms ...string) BroadcastOperator {
	b = b.clone()
	b.opts.Except = appendNew(b.opts.Except, rooms)
	return b
}

// Local restricts the operation to this node.
func (b BroadcastOperator) Local() BroadcastOperator { b = b.clone(); b.opts.Local = true; return b }

// Volatile drops the packet for clients that are not ready for it.
func (b BroadcastOperator) Volatile() BroadcastOperator {
	b = b.clone()
	b.opts.Volatile = true
	return b
}

// Timeout bounds EmitWithAck.
func (b BroadcastOperator) Timeout(d time.Duration) BroadcastOperator { b.timeout = d; return b }

// Options returns the selection.
func (b BroadcastOperator) Options() adapter.Options { return b.clone().opts }

func appendNew(dst, add []string) []string {
outer:
	for _, r := range add {
		for _, d := range dst {
			if d == r {
				continue outer
			}
		}
		dst = append(dst, r)
	}
	return dst
}

func (b BroadcastOperator) adapter() adapter.Adapter { return b.nsp.adapter }

// Emit broadcasts event with args to the selected sockets on every node.
func (b BroadcastOperator) Emit(event string, args ...any) error {
	return b.EmitContext(context.Background(), event, args...)
}

// EmitContext is Emit with a context bounding the relay to other nodes.
func (b BroadcastOperator) EmitContext(ctx context.Context, event string, args ...any) error {
	if err := checkEvent(event); err != nil {
		return err
	}
	if handled, err := b.nsp.srv.ext.broadcast(ctx, b, event, args); handled {
		return err
	}
	m, err := adapter.NewMessage(b.nsp.name, event, args)
	if err != nil {
		return err
	}
	return b.adapter().Broadcast(ctx, m, b.opts)
}

// EmitWithAck broadcasts event and waits for every selected client's ack
// until the Timeout (or ctx) ends. On timeout it returns the answers that
// arrived with ErrAckTimeout.
func (b BroadcastOperator) EmitWithAck(ctx context.Context, event string, args ...any) ([][]any, error) {
	if err := checkEvent(event); err != nil {
		return nil, err
	}
	if b.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.timeout)
		defer cancel()
	}
	m, err := adapter.NewMessage(b.nsp.name, event, args)
	if err != nil {
		return nil, err
	}
	m.Packet.ID = b.nsp.nextAckID()
	m.AckDeadline, _ = ctx.Deadline()
	out, err := b.adapter().BroadcastWithAck(ctx, m, b.opts)
	if err == adapter.ErrAckTimeout {
		err = ErrAckTimeout
	}
	return out, err
}

// RemoteSocket is a socket anywhere in the cluster, as FetchSockets returns it.
// The Handshake of a socket on another node has no headers, query, address
// or auth: credentials do not cross Redis (adapter/redisadapter).
type RemoteSocket struct {
	adapter.SocketInfo
	nsp *Namespace
}

func (r RemoteSocket) self() BroadcastOperator {
	return BroadcastOperator{nsp: r.nsp, opts: adapter.Options{Rooms: []string{r.ID}}}
}

// Emit sends event to this socket, wherever it is.
func (r RemoteSocket) Emit(event string, args ...any) error { return r.self().Emit(event, args...) }

// Join makes the socket join rooms.
func (r RemoteSocket) Join(ctx context.Context, rooms ...string) error {
	return r.self().SocketsJoin(ctx, rooms...)
}

// Leave makes the socket leave rooms.
func (r RemoteSocket) Leave(ctx context.Context, rooms ...string) error {
	return r.self().SocketsLeave(ctx, rooms...)
}

// Disconnect disconnects the socket.
func (r RemoteSocket) Disconnect(ctx context.Context, close bool) error {
	return r.self().DisconnectSockets(ctx, close)
}

// FetchSockets lists the selected sockets on every node.
func (b BroadcastOperator) FetchSockets(ctx context.Context) ([]RemoteSocket, error) {
	infos, err := b.adapter().FetchSockets(ctx, b.opts)
	out := make([]RemoteSocket, len(infos))
	for i, info := range infos {
		out[i] = RemoteSocket{SocketInfo: info, nsp: b.nsp}
	}
	return out, err
}

// SocketsJoin makes the selected sockets join rooms. With Recovery and
// Recovery.Member, the users of the selected sockets (on every node) first
// become members of the durable rooms among rooms; an error there
// (*DurableRoomError) moves no socket. With Recovery it returns nil only
// once the moved sockets' sessions hold the rooms on every node (with the
// Redis adapter: every Roomcast node confirmed, see adapter.Adapter's
// AddSockets); an error wrapping adapter.ErrAckTimeout means some node did
// not confirm in time, adapter.ErrUnavailable that one could not store it.
func (b BroadcastOperator) SocketsJoin(ctx context.Context, rooms ...string) error {
	if err := b.nsp.srv.ext.socketsJoin(ctx, b, rooms); err != nil {
		return err
	}
	return b.adapter().AddSockets(ctx, b.opts, rooms)
}

// SocketsLeave makes the selected sockets leave rooms. With Recovery and
// Recovery.Member, the users of the selected sockets first stop being
// members of the durable rooms among rooms. It returns as SocketsJoin does.
func (b BroadcastOperator) SocketsLeave(ctx context.Context, rooms ...string) error {
	if err := b.nsp.srv.ext.socketsLeave(ctx, b, rooms); err != nil {
		return err
	}
	return b.adapter().DelSockets(ctx, b.opts, rooms)
}

// DisconnectSockets disconnects the selected sockets.
func (b BroadcastOperator) DisconnectSockets(ctx context.Context, close bool) error {
	return b.adapter().DisconnectSockets(ctx, b.opts, close)
}

// EmitAsync is Emit without waiting for other nodes: the selected local
// sockets get the packet before it returns, and done is called exactly once
// with the outcome of the relay to the other nodes. Broadcasts made with
// EmitAsync on one node reach the other nodes in the order they were made.
//
// done is called before EmitAsync returns, on the caller's goroutine, when
// there is nothing to wait for: the emit failed at once (a reserved event
// name, arguments that cannot be marshalled, a relay that cannot be queued
// because the adapter is closed or its publish queue is full), it went to
// durable rooms (appended to the members' queues first, within
// Recovery.Timeout), or the adapter relays to no other node
// (adapter.Memory). Otherwise the adapter calls it later, from its publish
// goroutine, once Redis has the broadcast or refused it. done must not
// block.
func (b BroadcastOperator) EmitAsync(done func(error), event string, args ...any) {
	if err := checkEvent(event); err != nil {
		done(err)
		return
	}
	if b.nsp.srv.ext.broadcastAsync(b, event, args, done) {
		return
	}
	m, err := adapter.NewMessage(b.nsp.name, event, args)
	if err != nil {
		done(err)
		return
	}
	if ab, ok := b.adapter().(adapter.AsyncBroadcaster); ok {
		ab.BroadcastAsync(m, b.opts, done)
		return
	}
	done(b.adapter().Broadcast(context.Background(), m, b.opts))
}
