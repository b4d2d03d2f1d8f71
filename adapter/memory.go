package adapter

import (
	"context"
	"slices"

	"github.com/roomcast/roomcast/metrics"
	"github.com/roomcast/roomcast/room"
)

// MemoryConfig configures a Memory adapter.
type MemoryConfig struct {
	// Node names this node in SocketInfo.Node. Defaults to "local".
	Node string
	// Metrics records broadcasts and deliveries. Defaults to none.
	Metrics *metrics.Metrics
	// OnRoomCreated and OnRoomEmptied are told when a room gains its first
	// local member and loses its last one (a sharded adapter subscribes and
	// unsubscribes there). Optional.
	OnRoomCreated func(room string) error
	OnRoomEmptied func(room string)
}

// Memory is the single-node adapter, and the local half of the Redis ones.
type Memory struct {
	nsp   Namespace
	cfg   MemoryConfig
	index *room.Index[Socket]
}

var (
	_ Adapter          = (*Memory)(nil)
	_ AsyncBroadcaster = (*Memory)(nil)
)

// NewMemory returns a Memory adapter for nsp.
func NewMemory(nsp Namespace, cfg MemoryConfig) *Memory {
	if cfg.Node == "" {
		cfg.Node = "local"
	}
	a := &Memory{nsp: nsp, cfg: cfg, index: room.New[Socket]()}
	return a
}

// MemoryFactory returns a Factory of Memory adapters.
func MemoryFactory(cfg MemoryConfig) Factory {
	return func(nsp Namespace) (Adapter, error) { return NewMemory(nsp, cfg), nil }
}

// AddAll implements Adapter.
func (a *Memory) AddAll(s Socket, rooms ...string) error {
	created := a.index.Join(s, rooms...)
	if a.cfg.OnRoomCreated != nil {
		for _, r := range created {
			if err := a.cfg.OnRoomCreated(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// Del implements Adapter.
func (a *Memory) Del(s Socket, room string) {
	if a.index.Leave(s, room) && a.cfg.OnRoomEmptied != nil {
		a.cfg.OnRoomEmptied(room)
	}
}

// DelAll implements Adapter.
func (a *Memory) DelAll(s Socket) {
	emptied := a.index.Remove(s)
	if a.cfg.OnRoomEmptied != nil {
		for _, r := range emptied {
			a.cfg.OnRoomEmptied(r)
		}
	}
}

// Rooms implements Adapter.
func (a *Memory) Rooms(id string) []string { return a.index.Rooms(id) }

// Socket implements Adapter.
func (a *Memory) Socket(id string) (Socket, bool) { return a.index.Get(id) }

// LocalRooms implements Adapter.
func (a *Memory) LocalRooms() []string { return a.index.AllRooms() }

// HasRoom reports whether room has a member on this node.
func (a *Memory) HasRoom(room string) bool { return a.index.RoomLen(room) > 0 }

// Broadcast implements Adapter.
func (a *Memory) Broadcast(_ context.Context, m *Message, opts Options) error {
	a.DeliverLocal(m, opts, false)
	return nil
}

// BroadcastAsync implements AsyncBroadcaster: a single node has nothing to
// wait for.
func (a *Memory) BroadcastAsync(m *Message, opts Options, done func(error)) {
	a.DeliverLocal(m, opts, false)
	done(nil)
}

// DeliverLocal fans m out to the selected local sockets and returns how many
// were handed the packet. remote says whether m came from another node.
func (a *Memory) DeliverLocal(m *Message, opts Options, remote bool) int {
	if opts.Log != "" {
		return 0 // delivered from the broadcast log (Options.Log)
	}
	m.Frames() // encode before taking any lock
	volatile := opts.Volatile
	n := 0
	a.index.Each(opts.Rooms, opts.Except, func(s Socket) {
		if s.Deliver(m, volatile) {
			n++
		}
	})
	a.observe(m, n, remote)
	return n
}

// DeliverLocalRun implements LocalRunner: it fans several messages to the
// same rooms out to the selected local sockets, socket by socket. Each
// socket is handed all of its messages back to back, in one DeliverRun
// when it is a RunSocket, so that its writer finds them queued together
// and sends them in one write, rather than waking once per message (what
// delivering them one after the other, each to every socket, does). The
// messages may have different exceptions (a room's messages from several
// publishers, each sent to the room except its own socket): a socket gets
// those that do not except it. The broadcast log's tail delivers a read's
// entries this way.
func (a *Memory) DeliverLocalRun(msgs []*Message, rooms []string, except [][]string) []int {
	for _, m := range msgs {
		m.Frames() // encode before taking any lock
	}
	n := make([]int, len(msgs))
	skip := a.runExclusions(except)
	skipped := func(i int, id string) bool { return i < len(skip) && skip[i].has(id) }
	var (
		mine []*Message // the messages one socket gets, reused
		idx  []int      // their indexes in msgs
	)
	if skip != nil {
		mine, idx = make([]*Message, 0, len(msgs)), make([]int, 0, len(msgs))
	}
	a.index.Each(rooms, nil, func(s Socket) {
		rs, run := s.(RunSocket)
		if !run {
			for i, m := range msgs {
				if !skipped(i, s.ID()) && s.Deliver(m, false) {
					n[i]++
				}
			}
			return
		}
		if skip == nil {
			if rs.DeliverRun(msgs) {
				for i := range n {
					n[i]++
				}
			}
			return
		}
		id := s.ID()
		mine, idx = mine[:0], idx[:0]
		for i, m := range msgs {
			if !skipped(i, id) {
				mine, idx = append(mine, m), append(idx, i)
			}
		}
		if len(mine) > 0 && rs.DeliverRun(mine) {
			for _, i := range idx {
				n[i]++
			}
		}
	})
	for i, m := range msgs {
		a.observe(m, n[i], false)
	}
	return n
}

// memberSet is the members of some rooms, by id: a short list searched
// linearly (a publisher's own socket, the usual exception), or a map.
type memberSet struct {
	ids []string
	m   map[string]struct{}
}

const memberSetLinear = 8

func (s *memberSet) has(id string) bool {
	if s == nil {
		return false
	}
	if s.m != nil {
		_, ok := s.m[id]
		return ok
	}
	for _, x := range s.ids {
		if x == id {
			return true
		}
	}
	return false
}

// runExclusions returns, for each message of a run, the local sockets its
// exceptions exclude (nil when no message has any). Equal exception lists
// among the last few distinct ones share one set.
func (a *Memory) runExclusions(except [][]string) []*memberSet {
	if !slices.ContainsFunc(except, func(x []string) bool { return len(x) > 0 }) {
		return nil
	}
	type seen struct {
		except []string
		set    *memberSet
	}
	var recent [4]seen
	nrecent := 0
	out := make([]*memberSet, len(except))
	for i, x := range except {
		if len(x) == 0 {
			continue
		}
		for _, r := range recent[:nrecent] {
			if slices.Equal(r.except, x) {
				out[i] = r.set
				break
			}
		}
		if out[i] != nil {
			continue
		}
		set := &memberSet{}
		a.index.Each(x, nil, func(s Socket) {
			id := s.ID()
			switch {
			case set.m != nil:
				set.m[id] = struct{}{}
			case len(set.ids) < memberSetLinear:
				set.ids = append(set.ids, id)
			default:
				set.m = make(map[string]struct{}, 2*memberSetLinear)
				for _, y := range set.ids {
					set.m[y] = struct{}{}
				}
				set.m[id] = struct{}{}
				set.ids = nil
			}
		})
		out[i] = set
		copy(recent[1:], recent[:len(recent)-1])
		recent[0] = seen{except: x, set: set}
		nrecent = min(nrecent+1, len(recent))
	}
	return out
}

func (a *Memory) observe(m *Message, n int, remote bool) {
	a.cfg.Metrics.Broadcast(remote, n, m.Published)
}

// DeliverLocalWithAck fans m out to the selected local sockets, calling onAck
// for each answer, and returns how many sockets were sent the packet.
func (a *Memory) DeliverLocalWithAck(m *Message, opts Options, onAck func([]any), remote bool) int {
	m.Frames()
	n := 0
	a.index.Each(opts.Rooms, opts.Except, func(s Socket) {
		if s.DeliverWithAck(m, onAck) {
			n++
		}
	})
	a.observe(m, n, remote)
	return n
}

// BroadcastWithAck implements Adapter.
func (a *Memory) BroadcastWithAck(ctx context.Context, m *Message, opts Options) ([][]any, error) {
	c := NewCollector()
	c.Expect(a.DeliverLocalWithAck(m, opts, c.Add, false))
	return c.Wait(ctx, 1)
}

// Select returns the selected local sockets.
func (a *Memory) Select(opts Options) []Socket {
	var out []Socket
	a.index.Each(opts.Rooms, opts.Except, func(s Socket) { out = append(out, s) })
	return out
}

// FetchLocal describes the selected local sockets.
func (a *Memory) FetchLocal(opts Options) []SocketInfo {
	socks := a.Select(opts)
	out := make([]SocketInfo, 0, len(socks))
	for _, s := range socks {
		info := s.Info()
		info.Rooms = a.index.Rooms(s.ID())
		info.Node = a.cfg.Node
		out = append(out, info)
	}
	return out
}

// FetchSockets implements Adapter.
func (a *Memory) FetchSockets(_ context.Context, opts Options) ([]SocketInfo, error) {
	return a.FetchLocal(opts), nil
}

// AddLocal makes the selected local sockets join rooms and, once they did,
// tells the namespace (SocketsMover), whose answer it returns with the
// first error.
func (a *Memory) AddLocal(opts Options, rooms []string) error {
	socks, err := a.JoinLocal(opts, rooms)
	if merr := a.Moved(socks); merr != nil && err == nil {
		err = merr
	}
	return err
}

// JoinLocal makes the selected local sockets join rooms and returns them,
// without telling the namespace: the caller calls Moved with them (the
// Redis adapter changes the rooms on its subscriber's read loop, in the
// order of what other nodes sent, and stores the sessions off it).
func (a *Memory) JoinLocal(opts Options, rooms []string) ([]Socket, error) {
	var first error
	socks := a.Select(opts)
	for _, s := range socks {
		if err := a.AddAll(s, rooms...); err != nil && first == nil {
			first = err
		}
	}
	return socks, first
}

// SocketsMover is implemented by a Namespace that must hear of the local
// sockets SocketsJoin/SocketsLeave moved before the operation returns (or,
// for another node's request, before this node answers it): socketio
// stores their recovery sessions, so that a move the caller was told about
// survives a crash of this node.
type SocketsMover interface {
	SocketsMoved(sockets []Socket) error
}

// Moved tells the namespace, when it is a SocketsMover, that socks were
// moved by JoinLocal or LeaveLocal, and returns its answer.
func (a *Memory) Moved(socks []Socket) error {
	if m, ok := a.nsp.(SocketsMover); ok && len(socks) > 0 {
		return m.SocketsMoved(socks)
	}
	return nil
}

// AddSockets implements Adapter.
func (a *Memory) AddSockets(_ context.Context, opts Options, rooms []string) error {
	return a.AddLocal(opts, rooms)
}

// DelLocal makes the selected local sockets leave rooms and tells the
// namespace, as AddLocal does.
func (a *Memory) DelLocal(opts Options, rooms []string) error {
	return a.Moved(a.LeaveLocal(opts, rooms))
}

// LeaveLocal makes the selected local sockets leave rooms and returns them,
// without telling the namespace (see JoinLocal).
func (a *Memory) LeaveLocal(opts Options, rooms []string) []Socket {
	socks := a.Select(opts)
	for _, s := range socks {
		for _, r := range rooms {
			a.Del(s, r)
		}
	}
	return socks
}

// DelSockets implements Adapter.
func (a *Memory) DelSockets(_ context.Context, opts Options, rooms []string) error {
	return a.DelLocal(opts, rooms)
}

// DisconnectLocal disconnects the selected local sockets.
func (a *Memory) DisconnectLocal(opts Options, close bool) {
	for _, s := range a.Select(opts) {
		s.Disconnect(close)
	}
}

// DisconnectSockets implements Adapter.
func (a *Memory) DisconnectSockets(_ context.Context, opts Options, close bool) error {
	a.DisconnectLocal(opts, close)
	return nil
}

// ServerSideEmit implements Adapter: with one node there is nobody to tell.
func (a *Memory) ServerSideEmit(context.Context, []any) error { return nil }

// ServerSideEmitWithAck implements Adapter: with one node there are no answers.
func (a *Memory) ServerSideEmitWithAck(context.Context, []any) ([][]any, error) {
	return nil, nil
}

// ServerCount implements Adapter.
func (a *Memory) ServerCount(context.Context) (int, error) { return 1, nil }

// Close implements Adapter.
func (a *Memory) Close() error { return nil }
