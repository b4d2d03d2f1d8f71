package gateway

// Presence: who is in which room, in a presence.Store (Redis with
// --redis, memory on a single node), written by the node that owns each
// socket and read by any node without asking the others; join/leave
// announcements to rooms matching --presence-rooms; lifecycle events.
//
// The tracker follows the rooms of every connected socket (except its own
// room and its user:<id> room) and writes them to the Store. A socket
// that disconnects for a reason it can recover from (anything but an
// explicit namespace disconnect) keeps its entries for the recovery
// window: if it recovers — on this node or another, which takes its
// entries over — nobody sees it leave and come back; if it does not, its
// rooms are left and its disconnect recorded when the window ends (or by
// the sweep, when this node dies first).

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/presence"
	"github.com/roomcast/roomcast/presence/redispresence"
	"github.com/roomcast/roomcast/socketio"
)

// Events the gateway sends to the members of a room matching --presence-rooms.
const (
	presenceJoinEvent   = "roomcast:join"
	presenceLeaveEvent  = "roomcast:leave"
	presenceCountEvent  = "roomcast:presence"
	maxPresenceInfo     = 1024 // bytes of a token's info claim kept in presence
	defaultPresencePage = 100
	maxPresencePage     = 1000
)

// presenceTracker follows the connected sockets' rooms into the Store.
type presenceTracker struct {
	g *Gateway

	mu     sync.Mutex
	socks  map[string]*presenceSocket // nsp + "\x00" + sid
	ticks  map[*time.Timer]struct{}   // coalesced count events waiting
	closed bool
}

// presenceSocket is one socket's presence. Its mutex orders the Store
// calls of the socket (its read loop, moves by other nodes, its
// disconnect and the end of its recovery window).
type presenceSocket struct {
	mu      sync.Mutex
	sock    *socketio.Socket // the connection that owns it now; nil while pending
	ps      presence.Socket
	rooms   []string
	pending *time.Timer // the end of the recovery window, after a disconnect
}

func newPresenceTracker(g *Gateway) *presenceTracker {
	return &presenceTracker{g: g, socks: make(map[string]*presenceSocket), ticks: make(map[*time.Timer]struct{})}
}

// openPresence opens the presence Store: in Redis with --redis (its sweep
// asks the node registry for the live nodes), else in memory.
func (g *Gateway) openPresence() error {
	g.tracker = newPresenceTracker(g)
	if g.rdb == nil {
		g.presence = presence.NewMemory(presence.MemoryConfig{Node: g.cfg.NodeID, Listener: g.onPresenceEvents})
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RedisConnectTimeout)
	defer cancel()
	st, err := redispresence.New(ctx, redispresence.Config{
		Client: g.rdb, Prefix: g.cfg.RedisPrefix, Node: g.cfg.NodeID,
		Live:         g.cluster.Nodes,
		StreamMaxLen: g.cfg.EventsMaxLen,
		Listener:     g.onPresenceEvents,
		OnLost:       g.tracker.resync,
		Logger:       g.log,
	})
	if err != nil {
		return err
	}
	g.presence = st
	return nil
}

// OnLifecycle registers fn to be told of the lifecycle events this node
// decides (connect, disconnect, join, leave, occupied, vacated), those of
// the sweep of a dead node included, once they are in the event stream.
// It is the point where a dispatcher (webhooks) plugs in on the node; a
// backend may instead read <prefix>:events with a consumer group. fn must
// not block.
func (g *Gateway) OnLifecycle(fn presence.Listener) {
	g.lifeMu.Lock()
	g.lifecycle = append(g.lifecycle, fn)
	g.lifeMu.Unlock()
}

// presenceRoom reports whether room is kept in presence: every room but a
// socket's own and the user rooms.
func presenceRoom(s *socketio.Socket, room string) bool {
	return room != s.ID() && !strings.HasPrefix(room, userRoomPrefix)
}

// announced reports whether room's joins and leaves are sent to its members.
func (g *Gateway) announced(room string) bool {
	for _, p := range g.cfg.PresenceRooms {
		if auth.Match(p, room) {
			return true
		}
	}
	return false
}

func (t *presenceTracker) key(s *socketio.Socket) string {
	return s.Namespace().Name() + "\x00" + s.ID()
}

func (t *presenceTracker) get(s *socketio.Socket) *presenceSocket {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.socks[t.key(s)]
}

func (t *presenceTracker) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), t.g.cfg.EventTimeout)
}

func (t *presenceTracker) warn(what string, err error) {
	if err != nil {
		t.g.log.Warn("roomcast gateway: presence "+what+" failed", "err", err)
	}
}

// presenceInfo is the public info a socket shows in presence: its name
// and its token's info claim.
func presenceInfo(sess *Session) json.RawMessage {
	if sess.Name == "" && sess.info == nil {
		return nil
	}
	m := map[string]any{}
	if sess.Name != "" {
		m["name"] = sess.Name
	}
	if sess.info != nil {
		m["info"] = sess.info
	}
	b, _ := json.Marshal(m)
	return b
}

// connected registers a socket that connected (OnConnection): a new one,
// or one that recovered, whose entries (kept pending here, or held by the
// node it was on) it takes over.
func (t *presenceTracker) connected(s *socketio.Socket) {
	sess := sessionOf(s)
	k := t.key(s)
	t.mu.Lock()
	p := t.socks[k]
	if p == nil {
		p = &presenceSocket{}
		t.socks[k] = p
	}
	t.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending != nil {
		p.pending.Stop()
		p.pending = nil
	}
	p.sock = s
	p.ps = presence.Socket{Namespace: s.Namespace().Name(), ID: s.ID(), User: sess.User, Info: presenceInfo(sess)}
	ctx, cancel := t.ctx()
	defer cancel()
	_, err := t.g.presence.Connect(ctx, p.ps)
	t.warn("connect", err)
	t.syncLocked(ctx, p, s.Rooms())
}

// syncLocked makes p's entries the presence rooms among rooms.
func (t *presenceTracker) syncLocked(ctx context.Context, p *presenceSocket, rooms []string) {
	want := make([]string, 0, len(rooms))
	for _, r := range rooms {
		if presenceRoom(p.sock, r) {
			want = append(want, r)
		}
	}
	for _, r := range p.rooms {
		if !slices.Contains(want, r) {
			_, err := t.g.presence.Leave(ctx, p.ps, r)
			t.warn("leave", err)
		}
	}
	for _, r := range want {
		// Join again even when p has it: a recovered socket takes over
		// the entry the node it was on holds (no event).
		_, err := t.g.presence.Join(ctx, p.ps, r)
		t.warn("join", err)
	}
	p.rooms = want
}

// joined: s joined rooms (its Join, a recovery's rejoin).
func (t *presenceTracker) joined(s *socketio.Socket, rooms []string) {
	p := t.get(s)
	if p == nil {
		return // not connected yet: connected reads its rooms
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sock != s {
		return
	}
	ctx, cancel := t.ctx()
	defer cancel()
	for _, r := range rooms {
		if presenceRoom(s, r) && !slices.Contains(p.rooms, r) {
			_, err := t.g.presence.Join(ctx, p.ps, r)
			t.warn("join", err)
			p.rooms = append(p.rooms, r)
		}
	}
}

// left: s left room.
func (t *presenceTracker) left(s *socketio.Socket, room string) {
	p := t.get(s)
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sock != s || !slices.Contains(p.rooms, room) {
		return
	}
	ctx, cancel := t.ctx()
	defer cancel()
	_, err := t.g.presence.Leave(ctx, p.ps, room)
	t.warn("leave", err)
	p.rooms = slices.DeleteFunc(p.rooms, func(r string) bool { return r == room })
}

// reconcile follows s's rooms after a move by SocketsJoin/SocketsLeave.
func (t *presenceTracker) reconcile(s *socketio.Socket) {
	p := t.get(s)
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sock != s {
		return
	}
	ctx, cancel := t.ctx()
	defer cancel()
	rooms := s.Rooms()
	want := slices.DeleteFunc(slices.Clone(rooms), func(r string) bool { return !presenceRoom(s, r) })
	for _, r := range p.rooms {
		if !slices.Contains(want, r) {
			_, err := t.g.presence.Leave(ctx, p.ps, r)
			t.warn("leave", err)
		}
	}
	for _, r := range want {
		if !slices.Contains(p.rooms, r) {
			_, err := t.g.presence.Join(ctx, p.ps, r)
			t.warn("join", err)
		}
	}
	p.rooms = want
}

// disconnected: s is gone from this node. An explicit namespace
// disconnect ends its presence now; any other reason keeps its entries
// for the recovery window.
func (t *presenceTracker) disconnected(s *socketio.Socket, reason string) {
	p := t.get(s)
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sock != s {
		return // a newer connection (recovered here) owns it
	}
	p.sock = nil
	if engineio.Reason(reason).Explicit() {
		t.endLocked(p, reason)
		return
	}
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return // the node stops: its entries are swept when its lease expires
	}
	p.pending = time.AfterFunc(t.g.cfg.RecoveryWindow, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.sock != nil || p.pending == nil {
			return // recovered here meanwhile
		}
		p.pending = nil
		t.endLocked(p, reason)
	})
}

// endLocked leaves p's rooms and records its disconnect. On a node that a
// socket recovered on, the Store sees that it no longer owns them and
// does nothing.
func (t *presenceTracker) endLocked(p *presenceSocket, reason string) {
	ctx, cancel := t.ctx()
	defer cancel()
	for _, r := range p.rooms {
		_, err := t.g.presence.Leave(ctx, p.ps, r)
		t.warn("leave", err)
	}
	p.rooms = nil
	_, err := t.g.presence.Disconnect(ctx, p.ps, reason)
	t.warn("disconnect", err)
	t.mu.Lock()
	k := p.ps.Namespace + "\x00" + p.ps.ID
	if t.socks[k] == p {
		delete(t.socks, k)
	}
	t.mu.Unlock()
}

// resync writes every socket of this node to the Store again: it lost
// them (this node was swept while alive, or Redis lost its data).
func (t *presenceTracker) resync() {
	t.mu.Lock()
	all := make([]*presenceSocket, 0, len(t.socks))
	for _, p := range t.socks {
		all = append(all, p)
	}
	t.mu.Unlock()
	t.g.log.Warn("roomcast gateway: presence entries of this node were gone from Redis; writing them again", "sockets", len(all))
	for _, p := range all {
		p.mu.Lock()
		if p.sock != nil {
			ctx, cancel := t.ctx()
			_, err := t.g.presence.Connect(ctx, p.ps)
			t.warn("connect", err)
			rooms := p.rooms
			p.rooms = nil
			t.syncLocked(ctx, p, rooms)
			cancel()
		}
		p.mu.Unlock()
	}
}

// close stops the pending windows and coalesced events: the node's
// entries stay for the sweep.
func (t *presenceTracker) close() {
	t.mu.Lock()
	t.closed = true
	socks := make([]*presenceSocket, 0, len(t.socks))
	for _, p := range t.socks {
		socks = append(socks, p)
	}
	for tm := range t.ticks {
		tm.Stop()
	}
	clear(t.ticks)
	t.mu.Unlock()
	for _, p := range socks {
		p.mu.Lock()
		if p.pending != nil {
			p.pending.Stop()
			p.pending = nil
		}
		p.mu.Unlock()
	}
}

// onPresenceEvents is the Store's listener: it announces joins and leaves
// to the rooms matching --presence-rooms (coalesced into count events in
// rooms above --presence-coalesce-above members) and tells the
// lifecycle listeners.
func (g *Gateway) onPresenceEvents(events []presence.Event) {
	for _, e := range events {
		if (e.Type != presence.EventJoin && e.Type != presence.EventLeave) || !g.announced(e.Room) {
			continue
		}
		nsp, err := g.sio.Namespace(e.Namespace)
		if err != nil {
			continue
		}
		if g.cfg.PresenceCoalesceAbove > 0 && e.Members > g.cfg.PresenceCoalesceAbove {
			g.tracker.coalesce(nsp, e.Room)
			continue
		}
		body := map[string]any{"room": e.Room, "user": e.User, "members": e.Members}
		addInfo(body, e.Info)
		name := presenceLeaveEvent
		if e.Type == presence.EventJoin {
			name = presenceJoinEvent
		}
		nsp.To(e.Room).Except(userRoom(e.User)).EmitAsync(func(error) {}, name, body)
	}
	g.lifeMu.Lock()
	fns := g.lifecycle
	g.lifeMu.Unlock()
	for _, fn := range fns {
		fn(events)
	}
}

// addInfo flattens a member's public info ({name, info}) into m.
func addInfo(m map[string]any, info json.RawMessage) {
	if len(info) == 0 {
		return
	}
	var v map[string]any
	if json.Unmarshal(info, &v) == nil {
		for k, x := range v {
			m[k] = x
		}
	}
}

// coalesce sends room's member count once the interval passes, if this
// node is the one to send it (Store.Throttle, cluster-wide).
func (t *presenceTracker) coalesce(nsp *socketio.Namespace, room string) {
	iv := t.g.cfg.PresenceCoalesceInterval
	ctx, cancel := t.ctx()
	ok, err := t.g.presence.Throttle(ctx, nsp.Name(), room, iv)
	cancel()
	if err != nil || !ok {
		t.warn("throttle", err)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	var tm *time.Timer
	// Read the count just after the throttle expires: a change after the
	// read takes the throttle again and is sent in the next interval.
	tm = time.AfterFunc(iv+10*time.Millisecond, func() {
		t.mu.Lock()
		_, live := t.ticks[tm]
		delete(t.ticks, tm)
		t.mu.Unlock()
		if !live {
			return
		}
		ctx, cancel := t.ctx()
		defer cancel()
		p, err := t.g.presence.Members(ctx, nsp.Name(), room, "", 0)
		if err != nil {
			t.warn("count", err)
			return
		}
		nsp.To(room).EmitAsync(func(error) {}, presenceCountEvent,
			map[string]any{"room": room, "members": p.Users, "sockets": p.Sockets})
	})
	t.ticks[tm] = struct{}{}
}

// presencePage is the answer of the presence event and of
// GET /api/v1/presence: {users: [{user, sockets, name?, info?}], count,
// sockets, next?}.
func (g *Gateway) presencePage(ctx context.Context, nsp, room, cursor string, limit int) (map[string]any, error) {
	p, err := g.presence.Members(ctx, nsp, room, cursor, limit)
	if err != nil {
		return nil, err
	}
	users := make([]map[string]any, 0, len(p.Members))
	for _, m := range p.Members {
		u := map[string]any{"user": m.User, "sockets": m.Sockets}
		addInfo(u, m.Info)
		users = append(users, u)
	}
	v := map[string]any{"users": users, "count": p.Users, "sockets": p.Sockets}
	if p.Next != "" {
		v["next"] = p.Next
	}
	return v, nil
}
