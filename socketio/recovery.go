package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/parser"
	"github.com/roomcast/roomcast/queue"
)

// Recovery turns on connection state recovery and durable delivery, the
// socket.io (≥ 4.6) way, backed by a queue.Store:
//
//   - the CONNECT reply carries a private session id (pid), and the session
//     is stored when the socket connects (refreshed while it stays), so a
//     crashed node's sessions are recoverable on any node;
//   - every non-volatile EVENT without an ack id carries the socket's
//     offset as its last argument: the stream entry ID of the last durable
//     message the socket was sent, which the official client keeps;
//   - a reconnect with {pid, offset} is recovered: the messages of the
//     socket's user after the offset are sent first, then the CONNECT reply
//     with the old sid and pid ("socket.recovered" is true on the client);
//   - a client that gives auth.offset without a pid (an app that stored
//     the offset) is sent what its user missed after it, then live messages;
//   - when recovery was asked for and is not possible (offset older than
//     the retention, unknown session) the socket connects as a new one and
//     then receives NotRecoveredEvent.
//
// Durable messages are those appended to users' queues: Namespace.ToUser,
// and broadcasts to durable rooms (DurableRoom). Other packets are live
// only, as before; they carry the offset so that the client's offset is
// always one it can recover from.
type Recovery struct {
	// Store keeps the per-user queues, the sessions and the durable room
	// members. Required.
	Store queue.Store
	// Window is how long a disconnected socket can be recovered. Defaults
	// to 2 minutes.
	Window time.Duration
	// User names the user of a socket once the namespace's middlewares ran
	// (a JWT subject, say); it is called once per connection. "" (or a nil
	// User) makes the socket anonymous: its user is "anon:" + its pid, so
	// its queue lives as long as its session.
	User func(s *Socket) string
	// DurableRoom reports whether room is durable: its members are users,
	// kept in the Store (a join adds the socket's user, an explicit Leave
	// removes it, a disconnect does not), and a broadcast to it is appended
	// to each member's queue. Nil: no durable rooms. Membership comes from
	// Socket.Join and Socket.Leave; SocketsJoin/SocketsLeave (which may run
	// on other nodes) only move sockets: record members with the Store's
	// AddMember/RemoveMember, as the gateway's API does.
	DurableRoom func(room string) bool
	// PageSize is the number of messages read per page of a replay.
	// Defaults to queue.DefaultPageSize.
	PageSize int
	// Timeout bounds each Store call made while a socket connects or
	// disconnects, and how long a replay waits for a slow client to take
	// the backlog. Defaults to 10 seconds.
	Timeout time.Duration
}

// NotRecoveredEvent is emitted to a socket that asked to be recovered (its
// CONNECT carried a pid or an offset) when that was not possible; it
// connected as a new socket and missed messages: the application should
// reload its state. Its argument is {"reason", "replayed"}: reason is
// "expired" when the offset is older than what the queue keeps (or
// malformed), "unknown" when the session is gone (its window passed, or
// another user's), "error" when the Store could not be asked; replayed is
// true when the user's queued messages after the offset were nonetheless
// sent in full (only the socket's rooms and live-only packets were lost).
const NotRecoveredEvent = "roomcast:not-recovered"

// Recovery results, the label values of roomcast_recoveries_total.
const (
	resultRecovered = "recovered"
	resultExpired   = "expired"
	resultUnknown   = "unknown"
	resultError     = "error"
)

var (
	// ErrNoRecovery is returned by durable operations on a server without
	// a Recovery configuration.
	ErrNoRecovery = errors.New("socketio: no durable queue configured (Config.Recovery)")
	// ErrMixedDurable is returned by a broadcast that selects both durable
	// and other rooms, or a durable room with Volatile or Local.
	ErrMixedDurable = errors.New("socketio: a broadcast to durable rooms cannot mix in other rooms, Volatile or Local")
	// ErrAnonymousDurable is returned when an anonymous socket joins a
	// durable room, or a socket joins one before it is connected.
	ErrAnonymousDurable = errors.New("socketio: durable rooms need a socket with a user, once connected")
)

// replayHighWater is the send-queue size above which a replay waits for the
// client before sending more of the backlog.
const replayHighWater = 512 << 10

type recovery struct {
	Recovery
	srv *Server
}

func newRecovery(srv *Server, cfg Recovery) (*recovery, error) {
	if cfg.Store == nil {
		return nil, errors.New("socketio: Recovery.Store is required")
	}
	if cfg.Window <= 0 {
		cfg.Window = 2 * time.Minute
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = queue.DefaultPageSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &recovery{Recovery: cfg, srv: srv}, nil
}

func (r *recovery) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.Timeout)
}

func (r *recovery) durable(room string) bool { return r.DurableRoom != nil && r.DurableRoom(room) }

func anonUser(pid string) string { return "anon:" + pid }

// offsetTail is the ending of an EVENT text frame that carries offset as
// its last argument.
func offsetTail(offset string) []byte {
	b := make([]byte, 0, len(offset)+4)
	b = append(b, ',', '"')
	b = append(b, offset...)
	return append(b, '"', ']')
}

// lookup runs before the middlewares: when the CONNECT carries a pid whose
// session belongs to this namespace, the socket takes that session's id,
// pid and data (tentatively: begin checks the user).
func (r *recovery) lookup(s *Socket, auth map[string]any) {
	s.pid = newID()
	pid, _ := auth["pid"].(string)
	s.askOffset, _ = auth["offset"].(string)
	s.asked = pid != "" || s.askOffset != ""
	if pid == "" {
		return
	}
	s.why = resultUnknown
	if len(pid) > 128 {
		return
	}
	ctx, cancel := r.ctx()
	defer cancel()
	sess, err := r.Store.LoadSession(ctx, pid)
	if err != nil {
		if !errors.Is(err, queue.ErrSessionNotFound) {
			s.why = resultError
			r.srv.log.Warn("socketio: loading a session failed", "err", err)
		}
		return
	}
	if sess.Namespace != s.nsp.name || sess.SID == "" {
		return
	}
	s.restored = &sess
	s.pid = sess.PID
	if _, ok := s.nsp.Socket(sess.SID); !ok {
		s.id = sess.SID
	} // else the old socket is still here: the socket takes its sid in begin, once the user is checked
	if len(sess.Data) > 0 {
		var v any
		if json.Unmarshal(sess.Data, &v) == nil {
			s.data, s.dataRestored = v, true
		}
	}
}

// begin runs after the middlewares, before the socket is attached: it
// settles the socket's user, keeps or drops the restored session, and
// sends what the client missed (or starts a fresh session at the end of
// the user's queue), subscribing the socket to its user's live messages.
// An error means the Store failed: the socket cannot connect.
func (r *recovery) begin(s *Socket) error {
	if r.User != nil {
		s.user = r.User(s)
	}
	s.anonymous = s.user == ""
	if s.restored != nil && s.restored.User != r.userOf(s) {
		r.demote(s) // someone else's session
	}
	if s.restored != nil && s.id != s.restored.SID {
		if old, ok := s.nsp.Socket(s.restored.SID); ok {
			// The client is back before this node noticed that its previous
			// connection died: that one goes, without saving over the
			// session.
			if old.connected.Load() {
				// Its rooms are newer than the stored session's.
				s.restored.Rooms = slices.DeleteFunc(old.Rooms(), func(room string) bool { return room == old.id })
			}
			old.superseded.Store(true)
			old.client.closeWith("transport close")
			old.cleanup("transport close")
			// Its cleanup may be running on another goroutine: the sid is
			// free once it has left its rooms.
			select {
			case <-old.done:
			case <-time.After(r.Timeout):
				return fmt.Errorf("socketio: the previous socket %s did not leave", old.id)
			}
		}
		r.rekey(s, s.restored.SID)
	}
	if s.anonymous {
		s.user = anonUser(s.pid)
	}
	after := ""
	switch {
	case s.restored != nil:
		after = s.askOffset
		if after == "" {
			after = s.restored.Offset
		}
	case s.askOffset != "" && !s.anonymous:
		after = s.askOffset // an offset the application kept
	}
	if after != "" {
		err := r.replay(s, after)
		switch {
		case err == nil:
			s.replayed = true
			if s.restored != nil {
				s.recovered, s.why = true, ""
				r.count(resultRecovered)
			} else if s.why == "" {
				r.count(resultRecovered) // an offset the application kept
			} else {
				// The session is gone but the queue was replayed in full:
				// only the socket's rooms and live-only packets are lost.
				r.count(s.why)
			}
			return nil
		case errors.Is(err, queue.ErrOffsetExpired), errors.Is(err, queue.ErrInvalidOffset):
			s.why = resultExpired
			if s.restored != nil {
				r.demote(s)
				if s.anonymous {
					s.user = anonUser(s.pid)
				}
			}
		default:
			r.count(resultError)
			return err
		}
	}
	if s.asked {
		if s.why == "" {
			s.why = resultUnknown // an anonymous socket has no queue to replay
		}
		r.count(s.why)
	}
	ctx, cancel := r.ctx()
	last, err := r.Store.Last(ctx, s.user)
	cancel()
	if err != nil {
		return err
	}
	return r.replay(s, last)
}

func (r *recovery) userOf(s *Socket) string {
	if s.anonymous {
		return anonUser(s.pid)
	}
	return s.user
}

func (r *recovery) count(result string) {
	if m := r.srv.cfg.Metrics; m != nil && result != "" {
		m.Recoveries.WithLabelValues(result).Inc()
	}
}

// demote drops the restored session before the socket is attached: a new
// id and pid, the rooms the middlewares joined moved over.
func (r *recovery) demote(s *Socket) {
	if s.id == s.restored.SID {
		r.rekey(s, newID())
	}
	s.pid = newID()
	s.restored = nil
	s.mu.Lock()
	if s.dataRestored {
		s.data, s.dataRestored = nil, false
	}
	s.mu.Unlock()
}

// rekey gives a socket that is not attached yet another id, moving the
// rooms the middlewares joined.
func (r *recovery) rekey(s *Socket, id string) {
	old := s.id
	rooms := slices.DeleteFunc(s.nsp.adapter.Rooms(old), func(room string) bool { return room == old })
	s.nsp.adapter.DelAll(s)
	s.id = id
	if len(rooms) > 0 {
		if err := s.nsp.adapter.AddAll(s, rooms...); err != nil {
			r.srv.log.Warn("socketio: adapter join failed", "sid", s.id, "err", err)
		}
	}
}

// replay sends the user's messages after offset after, then subscribes the
// socket to the live ones (queue.Replay's gap-free handoff).
func (r *recovery) replay(s *Socket, after string) error {
	s.tailMu.Lock()
	s.offset, s.tail = after, offsetTail(after)
	s.tailMu.Unlock()
	var backlog atomic.Bool
	backlog.Store(true)
	send := func(m queue.Message) error {
		if backlog.Load() {
			if err := r.waitForClient(s, &backlog); err != nil {
				return err
			}
		}
		return s.deliverDurable(m)
	}
	stop, err := queue.Replay(context.Background(), r.Store, s.user, after, r.PageSize, send, s.liveEnded)
	backlog.Store(false)
	if err != nil {
		return err
	}
	s.stopLive = stop
	return nil
}

// waitForClient holds a replay while the client's send queue is above the
// high-water mark, so a long backlog does not make it a slow consumer.
func (r *recovery) waitForClient(s *Socket, backlog *atomic.Bool) error {
	deadline := time.Now().Add(r.Timeout)
	for backlog.Load() && s.client.conn.Buffered() > replayHighWater {
		if time.Now().After(deadline) {
			return fmt.Errorf("socketio: client took no backlog for %v", r.Timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// deliverDurable sends a message of the socket's user queue; its entry ID
// becomes the socket's offset. Messages of other namespaces are skipped.
func (s *Socket) deliverDurable(m queue.Message) error {
	if m.Namespace != s.nsp.name {
		return nil
	}
	data, err := parser.EventData(m.Event, m.Data)
	if err != nil {
		s.nsp.srv.log.Warn("socketio: skipping a corrupt queued message", "user", s.user, "id", m.ID, "err", err)
		return nil
	}
	p := parser.Packet{Type: parser.Event, Namespace: s.nsp.name, ID: parser.NoID, Data: data, Attachments: m.Attachments}
	if len(m.Attachments) > 0 {
		p.Type = parser.BinaryEvent
	}
	text := parser.AppendText([]byte{'4'}, &p)
	tail := offsetTail(m.ID)
	frames := make([]engineio.Frame, 1, 1+len(m.Attachments))
	frames[0] = engineio.Frame{Data: text[:len(text)-1], Tail: tail}
	for _, a := range m.Attachments {
		frames = append(frames, engineio.Frame{Binary: true, Data: a})
	}
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	if s.gone.Load() || !s.client.send(frames) {
		return ErrDisconnected
	}
	s.offset, s.tail = m.ID, tail
	return nil
}

// deliverWithOffset sends the shared frames of a live-only EVENT with the
// socket's offset as its last argument. Reading the offset and queueing
// the frames happen under one lock, so the offsets a client sees never go
// back.
func (s *Socket) deliverWithOffset(frames []engineio.Frame) bool {
	first := frames[0]
	if n := len(first.Data); n == 0 || first.Data[n-1] != ']' {
		return s.client.send(frames)
	}
	first.Data = first.Data[:len(first.Data)-1]
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	first.Tail = s.tail
	if len(frames) == 1 {
		one := [1]engineio.Frame{first}
		return s.client.send(one[:])
	}
	out := make([]engineio.Frame, len(frames))
	copy(out, frames)
	out[0] = first
	return s.client.send(out)
}

// liveEnded is called when the socket's live subscription ended on its own
// (the Store closed or could not deliver without a gap): the transport is
// closed so that the client reconnects and recovers from its offset.
func (s *Socket) liveEnded(err error) {
	s.nsp.srv.log.Warn("socketio: live queue delivery ended; closing so the client recovers", "sid", s.id, "user", s.user, "err", err)
	s.client.closeWith("transport error")
}

// snapshot is the socket's session as the Store keeps it.
func (r *recovery) snapshot(s *Socket) queue.Session {
	rooms := slices.DeleteFunc(s.Rooms(), func(room string) bool { return room == s.id })
	var data json.RawMessage
	if v := s.Data(); v != nil {
		data, _ = json.Marshal(v)
	}
	s.tailMu.Lock()
	offset := s.offset
	s.tailMu.Unlock()
	return queue.Session{
		PID: s.pid, SID: s.id, User: s.user, Namespace: s.nsp.name,
		Rooms: rooms, Data: data, Offset: offset,
	}
}

// liveTTL is how long a connected socket's session is kept: refreshed every
// Window, it outlives a crash of its node by at least Window.
func (r *recovery) liveTTL() time.Duration { return 2 * r.Window }

// save stores the session of a connected socket.
func (r *recovery) save(s *Socket) error {
	ctx, cancel := r.ctx()
	defer cancel()
	return r.Store.SaveSession(ctx, r.snapshot(s), r.liveTTL())
}

// connected runs once the socket is attached: the session is stored (a
// crash from now on is recoverable) and kept fresh.
func (r *recovery) connected(s *Socket) error {
	if err := r.save(s); err != nil {
		return err
	}
	s.mu.Lock()
	s.refresh = time.AfterFunc(r.Window, func() { r.refreshSession(s) })
	s.mu.Unlock()
	return nil
}

func (r *recovery) refreshSession(s *Socket) {
	if !s.connected.Load() {
		return
	}
	if err := r.save(s); err != nil {
		r.srv.log.Warn("socketio: refreshing a session failed", "sid", s.id, "err", err)
	}
	s.mu.Lock()
	if s.refresh != nil && s.connected.Load() {
		s.refresh.Reset(r.Window)
	}
	s.mu.Unlock()
}

// changed saves the session soon after its rooms changed.
func (r *recovery) changed(s *Socket) {
	if !s.connected.Load() || !s.savePending.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(100*time.Millisecond, func() {
		s.savePending.Store(false)
		if s.connected.Load() {
			if err := r.save(s); err != nil {
				r.srv.log.Warn("socketio: saving a session failed", "sid", s.id, "err", err)
			}
		}
	})
}

// end runs when the socket disconnects, before it leaves its rooms: live
// delivery stops, and the session is kept for Window so that the client
// can recover — unless the disconnect was an explicit one, which ends the
// session as socket.io does.
func (r *recovery) end(s *Socket, reason string) {
	if s.stopLive != nil {
		s.stopLive()
	}
	s.mu.Lock()
	if s.refresh != nil {
		s.refresh.Stop()
	}
	s.mu.Unlock()
	if s.superseded.Load() {
		return
	}
	explicit := reason == "client namespace disconnect" || reason == "server namespace disconnect"
	sess := r.snapshot(s)
	r.srv.wg.Add(1)
	go func() {
		defer r.srv.wg.Done()
		ctx, cancel := r.ctx()
		defer cancel()
		var err error
		if explicit {
			err = r.Store.DeleteSession(ctx, sess.PID)
		} else {
			err = r.Store.SaveSession(ctx, sess, r.Window)
		}
		if err != nil {
			r.srv.log.Warn("socketio: storing a session at disconnect failed", "sid", sess.SID, "err", err)
		}
	}()
}

// queueMessage is the queue form of event and args in namespace nsp.
func queueMessage(nsp, event string, args []any) (queue.Message, error) {
	if err := checkEvent(event); err != nil {
		return queue.Message{}, err
	}
	data, atts, _, err := parser.MarshalArgs("", args, false)
	if err != nil {
		return queue.Message{}, err
	}
	return queue.Message{Namespace: nsp, Event: event, Data: data, Attachments: atts}, nil
}

// UserOperator sends durable messages to users.
type UserOperator struct {
	nsp   *Namespace
	users []string
}

// ToUser selects users (every socket of each, on every node, now or when
// it reconnects within the retention) for a durable Emit.
func (n *Namespace) ToUser(users ...string) UserOperator {
	return UserOperator{nsp: n, users: append([]string(nil), users...)}
}

// Emit appends event with args to each selected user's queue and delivers
// it live to the user's connected sockets. It returns once the Store has
// the message, with its entry ID (the offset) per user in the order given.
// When some users could not be stored it returns an error wrapping
// queue.ErrUnavailable, with the IDs that were ("" for the others).
func (u UserOperator) Emit(ctx context.Context, event string, args ...any) ([]string, error) {
	r := u.nsp.srv.rec
	if r == nil {
		return nil, ErrNoRecovery
	}
	msg, err := queueMessage(u.nsp.name, event, args)
	if err != nil {
		return nil, err
	}
	if len(u.users) == 0 {
		return nil, nil
	}
	return r.Store.Append(ctx, u.users, msg)
}

// durableRooms reports whether the selection is made of durable rooms.
func (b BroadcastOperator) durableRooms() (bool, error) {
	r := b.nsp.srv.rec
	if r == nil || r.DurableRoom == nil || len(b.opts.Rooms) == 0 {
		return false, nil
	}
	n := 0
	for _, room := range b.opts.Rooms {
		if r.durable(room) {
			n++
		}
	}
	switch {
	case n == 0:
		return false, nil
	case n < len(b.opts.Rooms), b.opts.Volatile, b.opts.Local:
		return false, ErrMixedDurable
	}
	return true, nil
}

// emitDurable appends a broadcast to durable rooms to the queue of every
// member user (once per user, whatever the number of rooms). Except does
// not apply: members are users, the sender's own user included.
func (b BroadcastOperator) emitDurable(ctx context.Context, event string, args []any) error {
	r := b.nsp.srv.rec
	msg, err := queueMessage(b.nsp.name, event, args)
	if err != nil {
		return err
	}
	var users []string
	for _, room := range b.opts.Rooms {
		members, err := r.Store.Members(ctx, room, 0)
		if err != nil {
			return err
		}
		users = append(users, members...)
	}
	if len(users) == 0 {
		return nil
	}
	slices.Sort(users)
	_, err = r.Store.Append(ctx, slices.Compact(users), msg)
	return err
}

// joinDurable makes the socket's user a member of the durable rooms among
// rooms.
func (s *Socket) joinDurable(rooms []string) error {
	r := s.nsp.srv.rec
	var durable []string
	for _, room := range rooms {
		if r.durable(room) {
			durable = append(durable, room)
		}
	}
	if len(durable) == 0 {
		return nil
	}
	if s.anonymous || s.user == "" {
		return ErrAnonymousDurable
	}
	ctx, cancel := r.ctx()
	defer cancel()
	for _, room := range durable {
		if err := r.Store.AddMember(ctx, room, s.user); err != nil {
			return err
		}
	}
	return nil
}
