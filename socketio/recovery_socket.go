package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/clock"
	"github.com/roomcast/roomcast/internal/parser"
	"github.com/roomcast/roomcast/queue"
)

// recoverySocket is one socket's recovery state: its session, its user and
// its offset. It is the socket's hooks (Socket.ext) with Config.Recovery.
type recoverySocket struct {
	r *recovery
	s *Socket

	// Set while connecting (on the read loop), read-only once connected.
	pid          string
	user         string
	anonymous    bool
	asked        bool   // the CONNECT carried a pid or an offset
	askOffset    string // the offset it carried
	restored     *queue.Session
	restoredData int    // Socket.dataSets when the session's data was restored; -1: not restored
	recovered    bool   // the session was recovered
	replayed     bool   // the user's queue after the offset was sent
	why          string // why recovery was not possible
	stopLive     func()
	settled      bool // the user is known (connecting ran)

	attached   atomic.Bool              // connected ran: the session is the socket's to save
	dropped    atomic.Pointer[[]string] // the session's rooms MayRejoin refused
	superseded atomic.Bool              // a reconnect of the client replaced this socket

	// saveMu serializes the socket's session saves with the room changes
	// they store: a save snapshots and stores under it, so a later save
	// never goes to the Store before an earlier one and never carries
	// older rooms. Held across one Store round trip.
	saveMu sync.Mutex
	ended  bool // disconnected took the last snapshot: no more saves

	refreshMu      sync.Mutex
	refreshEntry   clock.Entry // on the recovery's refresh clock: the session is stored again every Window
	refreshStopped bool        // disconnected: no more refreshes

	tailMu sync.Mutex // orders offset changes with sends
	offset string     // ID of the last durable message sent
	tail   []byte     // the frame tail of the offset (setTail)
	log    socketLog  // the broadcast log's part (recovery_log.go)
}

var _ socketHooks = (*recoverySocket)(nil)

// socket implements extension, the connect lookup: it runs before the
// middlewares; when the CONNECT carries a pid whose session belongs to this
// namespace, the socket takes that session's id, pid and data
// (tentatively: connecting checks the user).
func (r *recovery) socket(s *Socket, auth map[string]any) socketHooks {
	rs := &recoverySocket{r: r, s: s, pid: newID(), restoredData: -1}
	pid, _ := auth["pid"].(string)
	rs.askOffset, _ = auth["offset"].(string)
	rs.asked = pid != "" || rs.askOffset != ""
	if pid == "" {
		return rs
	}
	rs.why = resultUnknown
	if len(pid) > 128 {
		return rs
	}
	ctx, cancel := r.bound(context.Background())
	defer cancel()
	r.awaitDisconnectSave(ctx, pid)
	sess, err := r.Store.LoadSession(ctx, pid)
	if err != nil {
		if !errors.Is(err, queue.ErrSessionNotFound) {
			rs.why = resultError
			r.srv.log.Warn("socketio: loading a session failed", "err", err)
		}
		return rs
	}
	if sess.Namespace != s.nsp.name || sess.SID == "" {
		return rs
	}
	rs.restored = &sess
	rs.pid = sess.PID
	if _, ok := s.nsp.Socket(sess.SID); !ok {
		s.id = sess.SID
	} // else the old socket is still here: the socket takes its sid in connecting, once the user is checked
	if len(sess.Data) > 0 {
		var v any
		if json.Unmarshal(sess.Data, &v) == nil {
			s.mu.Lock()
			s.data, rs.restoredData = v, s.dataSets
			s.mu.Unlock()
		}
	}
	return rs
}

// connecting implements socketHooks. It runs after the middlewares, before
// the socket is attached: it settles the socket's user, keeps or drops the
// restored session, and sends what the client missed (or starts a fresh
// session at the end of the user's queue), subscribing the socket to its
// user's live messages. An error means the Store failed: the socket cannot
// connect.
func (rs *recoverySocket) connecting() error {
	r, s := rs.r, rs.s
	if r.User != nil {
		rs.user = r.User(s)
	}
	rs.anonymous = rs.user == ""
	rs.settled = true
	if rs.restored != nil && rs.restored.User != rs.userOf() {
		rs.demote() // someone else's session
	}
	if rs.restored != nil && s.id != rs.restored.SID {
		if old, ok := s.nsp.Socket(rs.restored.SID); ok {
			// The client is back before this node noticed that its previous
			// connection died: that one goes, without saving over the
			// session.
			if old.connected.Load() {
				// Its rooms are newer than the stored session's.
				rs.restored.Rooms = slices.DeleteFunc(old.Rooms(), func(room string) bool { return room == old.id })
			}
			if ors := old.recoveryState(); ors != nil {
				ors.superseded.Store(true)
			}
			old.client.closeWith(engineio.ReasonTransportClose)
			old.cleanup(engineio.ReasonTransportClose)
			// Its cleanup may be running on another goroutine: the sid is
			// free once it has left its rooms.
			select {
			case <-old.Done():
			case <-time.After(r.Timeout):
				return fmt.Errorf("socketio: the previous socket %s did not leave", old.id)
			}
		}
		rs.rekey(rs.restored.SID)
	}
	if rs.anonymous {
		rs.user = anonUser(rs.pid)
	}
	rs.mayRejoin()
	if err := rs.startLog(); err != nil {
		return err
	}
	after := ""
	switch {
	case rs.restored != nil:
		after = rs.askOffset
		if after == "" {
			after = rs.restored.Offset
		}
	case rs.askOffset != "" && !rs.anonymous:
		after = rs.askOffset // an offset the application kept
	}
	after, err := rs.recoverLog(after)
	if err != nil {
		return err
	}
	if after != "" {
		err := rs.replay(after)
		switch {
		case err == nil:
			rs.replayed = true
			if rs.restored != nil {
				rs.recovered, rs.why = true, ""
				rs.count(resultRecovered)
			} else if rs.why == "" {
				rs.count(resultRecovered) // an offset the application kept
			} else {
				// The session is gone but the queue was replayed in full:
				// only the socket's rooms and live-only packets are lost.
				rs.count(rs.why)
			}
			return nil
		case errors.Is(err, queue.ErrOffsetExpired), errors.Is(err, queue.ErrInvalidOffset):
			rs.why = resultExpired
			if rs.restored != nil {
				rs.demote()
				if rs.anonymous {
					rs.user = anonUser(rs.pid)
				}
			}
		default:
			rs.count(resultError)
			return err
		}
	}
	if rs.asked {
		if rs.why == "" {
			rs.why = resultUnknown // an anonymous socket has no queue to replay
		}
		rs.count(rs.why)
	}
	ctx, cancel := r.bound(context.Background())
	last, err := r.Store.Last(ctx, rs.user)
	cancel()
	if err != nil {
		return err
	}
	return rs.replay(last)
}

func (rs *recoverySocket) userOf() string {
	if rs.anonymous {
		return anonUser(rs.pid)
	}
	return rs.user
}

func (rs *recoverySocket) count(result string) { rs.r.srv.cfg.Metrics.Recovery(result) }

// demote drops the restored session before the socket is attached: a new
// id and pid, the rooms the middlewares joined moved over, and the
// session's data unless a middleware replaced it.
func (rs *recoverySocket) demote() {
	s := rs.s
	if s.id == rs.restored.SID {
		rs.rekey(newID())
	}
	rs.pid = newID()
	rs.restored = nil
	s.mu.Lock()
	if rs.restoredData == s.dataSets {
		s.data = nil
	}
	rs.restoredData = -1
	s.mu.Unlock()
}

// rekey gives a socket that is not attached yet another id, moving the
// rooms the middlewares joined.
func (rs *recoverySocket) rekey(id string) {
	s := rs.s
	old := s.id
	rooms := slices.DeleteFunc(s.nsp.adapter.Rooms(old), func(room string) bool { return room == old })
	s.nsp.adapter.DelAll(s)
	s.id = id
	if len(rooms) > 0 {
		if err := s.nsp.adapter.AddAll(s, rooms...); err != nil {
			rs.r.srv.log.Warn("socketio: adapter join failed", "sid", s.id, "err", err)
		}
	}
}

// replay sends the user's messages after offset after, then subscribes the
// socket to the live ones (queue.Replay's gap-free handoff). While it sends
// the backlog it waits for the client whenever the connection's send queue
// is over replayHighWater, so that a long backlog does not make it a slow
// consumer; live messages never wait.
func (rs *recoverySocket) replay(after string) error {
	r := rs.r
	rs.tailMu.Lock()
	rs.offset = after
	rs.setTail()
	rs.tailMu.Unlock()
	backlog, live := context.WithCancel(context.Background())
	defer live()
	send := func(m queue.Message) error {
		if backlog.Err() == nil {
			if err := rs.waitForClient(backlog); err != nil {
				return err
			}
		}
		if err := rs.sendBacklogBefore(m.ID); err != nil {
			return err
		}
		return rs.deliverDurable(m)
	}
	stop, err := queue.Replay(context.Background(), r.Store, rs.user, after, r.PageSize, send, rs.liveEnded)
	live()
	if err != nil {
		return err
	}
	rs.stopLive = stop
	if err := rs.sendBacklogBefore(""); err != nil {
		stop()
		return err
	}
	return nil
}

// waitForClient holds a replay until the engine reports the client's send
// queue below the high-water mark, for at most Timeout. The wait ends
// early, without error, when backlog ends (the replay went live) or the
// connection closes (the send that follows fails).
func (rs *recoverySocket) waitForClient(backlog context.Context) error {
	ctx, cancel := context.WithTimeout(backlog, rs.r.Timeout)
	defer cancel()
	err := rs.s.client.conn.WaitBelow(ctx, replayHighWater)
	if errors.Is(err, context.DeadlineExceeded) && backlog.Err() == nil {
		return fmt.Errorf("socketio: client took no backlog for %v", rs.r.Timeout)
	}
	return nil
}

// deliverDurable sends a message of the socket's user queue; its entry ID
// becomes the socket's offset. Messages of other namespaces are skipped.
func (rs *recoverySocket) deliverDurable(m queue.Message) error {
	s := rs.s
	if m.Namespace != s.nsp.name {
		return nil
	}
	data, err := parser.EventData(m.Event, m.Data)
	if err != nil {
		s.nsp.srv.log.Warn("socketio: skipping a corrupt queued message", "user", rs.user, "id", m.ID, "err", err)
		return nil
	}
	p := parser.Packet{Type: parser.Event, Namespace: s.nsp.name, ID: parser.NoID, Data: data, Attachments: m.Attachments}
	if len(m.Attachments) > 0 {
		p.Type = parser.BinaryEvent
	}
	frames := parser.AppendFrames(nil, &p)
	text := frames[0].Data
	rs.tailMu.Lock()
	defer rs.tailMu.Unlock()
	tail := rs.formatTail(rs.log.pos, m.ID)
	frames[0].Data, frames[0].Tail = text[:len(text)-1], tail
	if s.gone.Load() || !s.client.send(frames) {
		return ErrDisconnected
	}
	rs.offset, rs.tail = m.ID, tail
	return nil
}

// sendEvents implements socketHooks: the broadcast log's runs go to the
// connection together (sendLoggedRun).
func (rs *recoverySocket) sendEvents(ms []*adapter.Message) bool {
	if rs.r.Log != nil && !slices.ContainsFunc(ms, func(m *adapter.Message) bool { return m.Log == "" }) {
		return rs.sendLoggedRun(ms)
	}
	ok := true
	for _, m := range ms {
		ok = rs.sendEvent(m) && ok
	}
	return ok
}

// sendEvent implements socketHooks, the frame tail: it sends the shared
// frames of a live-only EVENT with the socket's offset as its last
// argument. Reading the offset and queueing the frames happen under one
// lock, so the offsets a client sees never go back.
func (rs *recoverySocket) sendEvent(m *adapter.Message) bool {
	if m.Log != "" && rs.r.Log != nil {
		return rs.sendLogged(m)
	}
	frames := m.Frames()
	c := rs.s.client
	first := frames[0]
	if n := len(first.Data); n == 0 || first.Data[n-1] != ']' {
		return c.send(frames)
	}
	first.Data = first.Data[:len(first.Data)-1]
	rs.tailMu.Lock()
	defer rs.tailMu.Unlock()
	if rs.tail == nil {
		rs.setTail() // after logged broadcasts moved the offset
	}
	first.Tail = rs.tail
	if len(frames) == 1 {
		one := [1]engineio.Frame{first}
		return c.send(one[:])
	}
	out := make([]engineio.Frame, len(frames))
	copy(out, frames)
	out[0] = first
	return c.send(out)
}

// liveEnded is called when the socket's live subscription ended on its own
// (the Store closed or could not deliver without a gap): the transport is
// closed so that the client reconnects and recovers from its offset.
func (rs *recoverySocket) liveEnded(err error) {
	rs.r.srv.log.Warn("socketio: live queue delivery ended; closing so the client recovers", "sid", rs.s.id, "user", rs.user, "err", err)
	rs.s.client.closeWith(engineio.ReasonTransportError)
}

// snapshot is the socket's session as the Store keeps it.
func (rs *recoverySocket) snapshot() queue.Session {
	s := rs.s
	rooms := slices.DeleteFunc(s.Rooms(), func(room string) bool { return room == s.id })
	var data json.RawMessage
	if v := s.Data(); v != nil {
		data, _ = json.Marshal(v)
	}
	rs.tailMu.Lock()
	offset := rs.sessionOffset()
	rs.tailMu.Unlock()
	return queue.Session{
		PID: rs.pid, SID: s.id, User: rs.user, Namespace: s.nsp.name,
		Rooms: rooms, Data: data, Offset: offset,
	}
}

// liveTTL is how long a connected socket's session is kept: refreshed every
// Window, it outlives a crash of its node by at least Window.
func (rs *recoverySocket) liveTTL() time.Duration { return 2 * rs.r.Window }

// save stores the session of a connected socket.
func (rs *recoverySocket) save() error {
	rs.saveMu.Lock()
	defer rs.saveMu.Unlock()
	if rs.ended {
		return nil
	}
	return rs.saveLocked(context.Background())
}

// moved implements socketHooks: SocketsJoin/SocketsLeave changed the
// socket's rooms, and the session is stored before that is answered.
func (rs *recoverySocket) moved() error {
	if !rs.attached.Load() {
		return nil // not connected yet: connected saves it
	}
	return rs.save()
}

// saveLocked stores the socket's session as it is now; saveMu is held.
func (rs *recoverySocket) saveLocked(ctx context.Context) error {
	ctx, cancel := rs.r.bound(ctx)
	defer cancel()
	return rs.r.Store.SaveSession(ctx, rs.snapshot(), rs.liveTTL())
}

// connected implements socketHooks. It runs once the socket is attached:
// a recovered socket rejoins the rooms of its session that MayRejoin allows, the session is stored (a crash
// from now on is recoverable) and kept fresh, the CONNECT reply carries the
// pid, and a socket that could not be recovered is told so after it.
// mayRejoin keeps, of the restored session's rooms, those Recovery.MayRejoin
// allows (the middlewares have run: the socket's Data is the reconnect's),
// and records the others for Socket.DroppedRooms. It runs before the
// broadcast log is read for those rooms, so a refused room's missed
// broadcasts are not replayed either.
func (rs *recoverySocket) mayRejoin() {
	if rs.restored == nil || rs.r.MayRejoin == nil || len(rs.restored.Rooms) == 0 {
		return
	}
	var dropped []string
	rs.restored.Rooms = slices.DeleteFunc(slices.Clone(rs.restored.Rooms), func(room string) bool {
		if rs.r.MayRejoin(rs.s, room) {
			return false
		}
		dropped = append(dropped, room)
		return true
	})
	if dropped != nil {
		rs.dropped.Store(&dropped)
	}
}

func (rs *recoverySocket) connected(reply func(extra map[string]string)) error {
	s := rs.s
	rs.attached.Store(true)
	if rs.recovered && len(rs.restored.Rooms) > 0 {
		// MayRejoin already filtered them in connecting, before the log
		// was read for them.
		rooms := rs.restored.Rooms
		if len(rooms) > 0 {
			if err := s.nsp.adapter.AddAll(s, rooms...); err != nil {
				rs.r.srv.log.Warn("socketio: adapter join failed", "sid", s.id, "err", err)
			}
		}
	}
	if err := rs.catchUp(); err != nil {
		return err
	}
	if err := rs.save(); err != nil {
		return err
	}
	rs.refreshMu.Lock()
	if !rs.refreshStopped {
		rs.r.refreshes.Schedule(rs, time.Now().Add(rs.r.Window))
	}
	rs.refreshMu.Unlock()
	reply(map[string]string{"pid": rs.pid})
	if !rs.recovered && rs.why != "" {
		_ = s.emit(false, NotRecoveredEvent, []any{map[string]any{"reason": rs.why, "replayed": rs.replayed}})
	}
	return nil
}

func (rs *recoverySocket) refreshSession() {
	s := rs.s
	if !s.connected.Load() {
		return
	}
	if err := rs.save(); err != nil {
		rs.r.srv.log.Warn("socketio: refreshing a session failed", "sid", s.id, "err", err)
	}
	rs.refreshMu.Lock()
	if !rs.refreshStopped && s.connected.Load() {
		rs.r.refreshes.Schedule(rs, time.Now().Add(rs.r.Window))
	}
	rs.refreshMu.Unlock()
}

// join implements socketHooks: the socket's user becomes a member of the
// durable rooms among rooms (ErrAnonymousDurable for an anonymous socket,
// one whose Member is "", or one not connected yet), then the socket joins
// the rooms and its session is stored with them before join returns. When
// the session cannot be stored the socket leaves the rooms it joined and
// the Store's error is returned: the socket is never in a room its stored
// session lacks once join returned. Before the socket is attached (a
// middleware) nothing is stored: connected saves the session.
func (rs *recoverySocket) join(ctx context.Context, rooms []string, add func() error) error {
	if durable := rs.r.durableAmong(rooms); len(durable) > 0 {
		if !rs.member() {
			return ErrAnonymousDurable
		}
		if err := rs.r.setMembers(ctx, durable, []string{rs.user}, true); err != nil {
			var dre *DurableRoomError
			if errors.As(err, &dre) {
				return dre.Err // Socket.Join returns the Store's error, as ever
			}
			return err
		}
	}
	if !rs.attached.Load() {
		return add()
	}
	rs.saveMu.Lock()
	defer rs.saveMu.Unlock()
	if rs.ended {
		return ErrDisconnected
	}
	s := rs.s
	before := s.Rooms()
	undo := func() {
		for _, room := range rooms {
			if !slices.Contains(before, room) {
				s.nsp.adapter.Del(s, room)
			}
		}
	}
	if err := add(); err != nil {
		undo()
		return err
	}
	if err := rs.saveLocked(ctx); err != nil {
		undo()
		return fmt.Errorf("join: saving the session: %w", err)
	}
	return nil
}

// leave implements socketHooks: leaving a durable room ends the membership
// of the socket's user, then the socket leaves room and its session is
// stored without it before leave returns; when it cannot be stored the
// socket is put back in room and the Store's error is returned.
func (rs *recoverySocket) leave(ctx context.Context, room string, del func()) error {
	if rs.r.durable(room) && rs.settled && !rs.anonymous && rs.user != "" {
		ctx, cancel := rs.r.bound(ctx)
		defer cancel()
		if err := rs.r.Store.RemoveMember(ctx, room, rs.user); err != nil {
			return err
		}
	}
	if !rs.attached.Load() {
		del()
		return nil
	}
	rs.saveMu.Lock()
	defer rs.saveMu.Unlock()
	s := rs.s
	was := s.InRoom(room)
	del()
	if rs.ended {
		return nil // the disconnect removes every room anyway
	}
	if err := rs.saveLocked(ctx); err != nil {
		if was {
			if aerr := s.nsp.adapter.AddAll(s, room); aerr != nil {
				rs.r.srv.log.Warn("socketio: adapter join failed", "sid", s.id, "err", aerr)
			}
		}
		return fmt.Errorf("leave: saving the session: %w", err)
	}
	return nil
}

// member reports whether the socket's user may be a durable room member.
func (rs *recoverySocket) member() bool {
	if !rs.settled || rs.anonymous || rs.user == "" {
		return false
	}
	return rs.r.Member == nil || rs.r.Member(rs.s.Info()) != ""
}

// disconnected implements socketHooks. It runs when the socket disconnects,
// before it leaves its rooms: live delivery stops, and the session is kept
// for Window so that the client can recover, unless the disconnect was an
// explicit one, which ends the session as socket.io does. A socket that
// was never attached only stops its live delivery.
func (rs *recoverySocket) disconnected(reason engineio.Reason) {
	if rs.stopLive != nil {
		rs.stopLive()
	}
	rs.refreshMu.Lock()
	rs.refreshStopped = true
	rs.r.refreshes.Stop(rs)
	rs.refreshMu.Unlock()
	if !rs.attached.Load() || rs.superseded.Load() {
		return
	}
	r := rs.r
	// The last snapshot: a join or leave still storing its save finishes
	// first (and is in it), later ones fail.
	rs.saveMu.Lock()
	rs.ended = true
	sess := rs.snapshot()
	rs.saveMu.Unlock()
	// A reconnect of the client to this node waits for this save before it
	// loads the session (awaitDisconnectSave).
	done := make(chan struct{})
	r.disconnectSaves.Store(sess.PID, done)
	r.srv.wg.Add(1)
	go func() {
		defer r.srv.wg.Done()
		defer func() {
			r.disconnectSaves.CompareAndDelete(sess.PID, done)
			close(done)
		}()
		ctx, cancel := r.bound(context.Background())
		defer cancel()
		var err error
		if reason.Explicit() {
			err = r.Store.DeleteSession(ctx, sess.PID)
		} else {
			err = r.Store.SaveSession(ctx, sess, r.Window)
		}
		if err != nil {
			r.srv.log.Warn("socketio: storing a session at disconnect failed", "sid", sess.SID, "err", err)
		}
	}()
}

// awaitDisconnectSave waits, until ctx ends, for the disconnect-time save
// of session pid on this node, if one is under way: a client that
// reconnects here before it landed would otherwise load the older session.
func (r *recovery) awaitDisconnectSave(ctx context.Context, pid string) {
	v, ok := r.disconnectSaves.Load(pid)
	if !ok {
		return
	}
	select {
	case <-v.(chan struct{}):
	case <-ctx.Done():
	}
}
