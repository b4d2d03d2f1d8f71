package socketio

// This file and recovery_socket.go are connection state recovery and durable
// delivery: one component, the server's extension (hooks.go) when
// Config.Recovery is set. recovery is its server half (durable broadcasts,
// durable membership, ToUser); recoverySocket its per-socket state.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/broadcastlog"
	"github.com/roomcast/roomcast/internal/clock"
	"github.com/roomcast/roomcast/internal/parser"
	"github.com/roomcast/roomcast/queue"
)

// Recovery turns on connection state recovery and durable delivery, the
// socket.io (≥ 4.6) way, backed by a queue.Store:
//
//   - the CONNECT reply carries a private session id (pid), and the session
//     is stored when the socket connects (refreshed while it stays), and
//     by every Socket.Join and Leave before it returns, so a crashed node's
//     sessions are recoverable on any node with the rooms they were
//     acknowledged;
//   - every non-volatile EVENT without an ack id carries the socket's
//     offset as its last argument: the stream entry ID of the last durable
//     message the socket was sent (and, with Log, the position of the last
//     logged broadcast), which the official client keeps;
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
	// Socket.Join and Socket.Leave, from SocketsJoin and SocketsLeave (with
	// Member) and from UserOperator.Join and UserOperator.Leave.
	DurableRoom func(room string) bool
	// Member names the user that a socket makes a member of a durable room,
	// from its SocketInfo (a local socket's, or another node's as
	// FetchSockets returns it); "" when the socket may not be a member
	// (an anonymous visitor). Socket.Join asks it besides the socket's own
	// user; SocketsJoin and SocketsLeave ask it for every selected socket.
	// Nil: a socket with a User is a member; SocketsJoin and SocketsLeave
	// only move sockets.
	Member func(info adapter.SocketInfo) string
	// MayRejoin reports whether a recovered socket may be put back into
	// room, one of its session's rooms, once the namespace's middlewares
	// ran (its Data is then the current one: the application's rights
	// follow the credentials of the reconnect, not those of the session).
	// The rooms it refuses are not rejoined; the socket is still recovered
	// and Socket.DroppedRooms lists them. Nil: every room is rejoined.
	MayRejoin func(s *Socket, room string) bool
	// Admit, when set, is asked before every durable append (ToUser's Emit
	// and broadcasts to durable rooms) with the message as it would be
	// stored and its recipient users (possibly repeated); an error refuses
	// the message for every recipient and is returned by the emit. ctx is
	// the emitter's (EmitContext's or Emit's). Nil: every message is
	// admitted.
	Admit func(ctx context.Context, msg queue.Message, users []string) error
	// PageSize is the number of messages read per page of a replay.
	// Defaults to queue.DefaultPageSize.
	PageSize int
	// Log, when set, is the broadcast log: every broadcast that is not
	// volatile, Local or to durable rooms is appended to it once and
	// delivered from it (by every node's tail of it, in log order), and a
	// recovering socket is sent, before its CONNECT reply, every broadcast
	// of its rooms it missed, merged with its user's queued messages.
	// When the log no longer holds all of what it missed, it is not
	// recovered. The offset carries both positions (ParseOffset). Its
	// retention should be at least Window. Nil: room broadcasts are live
	// only and a recovery does not replay them.
	Log broadcastlog.Log
	// Timeout bounds each Store call made while a socket connects or
	// disconnects, or for a caller whose context has no deadline, and how
	// long a replay waits for a slow client to take the backlog. Defaults
	// to 10 seconds.
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
const NotRecoveredEvent = ReservedEventPrefix + "not-recovered"

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

// DurableRoomError is the error of a change of a durable room's members
// that the Store refused (queue.ErrRoomFull) or could not record. Its
// message is the Store's.
type DurableRoomError struct {
	Room string
	Err  error
}

func (e *DurableRoomError) Error() string { return e.Err.Error() }
func (e *DurableRoomError) Unwrap() error { return e.Err }

// replayHighWater is the send-queue size above which a replay waits for the
// client before sending more of the backlog.
const replayHighWater = 512 << 10

// recovery is the server half of the component: the configuration, the
// durable broadcasts and the durable membership of SocketsJoin/Leave.
type recovery struct {
	Recovery
	srv *Server

	tailsMu     sync.Mutex
	tails       map[string]*logTail // by namespace (recovery_log.go)
	tailsClosed bool

	disconnectSaves sync.Map // pid → chan struct{}, closed once its disconnect-time save is done

	// refreshes files each connected socket for its session's next
	// refresh (one timer for every socket); each refresh runs on a
	// goroutine of its own.
	refreshes *clock.Clock[recoverySocket]
}

// refreshGranularity bounds how late after Window a session is refreshed:
// a fiftieth of the window, at most this (its TTL is twice the window).
const refreshGranularity = 5 * time.Second

var _ extension = (*recovery)(nil)

func newRecovery(srv *Server, cfg Recovery) (*recovery, error) {
	if cfg.Store == nil {
		return nil, errors.New("socketio: Recovery.Store is required")
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultRecoveryWindow
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = queue.DefaultPageSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	r := &recovery{Recovery: cfg, srv: srv}
	r.refreshes = clock.New(min(cfg.Window/50, refreshGranularity),
		func(rs *recoverySocket) *clock.Entry { return &rs.refreshEntry },
		func(rs *recoverySocket) {
			// A session save is a Store round trip: never one after the
			// other on the clock's goroutine (a socket that disconnects
			// meanwhile skips it).
			go rs.refreshSession()
		})
	return r, nil
}

// recoveryOf returns the server's recovery, nil without Config.Recovery.
func recoveryOf(srv *Server) *recovery {
	r, _ := srv.ext.(*recovery)
	return r
}

// bound gives a Store call Timeout when ctx has no deadline of its own.
func (r *recovery) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, r.Timeout)
}

func (r *recovery) durable(room string) bool { return r.DurableRoom != nil && r.DurableRoom(room) }

// durableAmong returns the durable rooms among rooms.
func (r *recovery) durableAmong(rooms []string) []string {
	var out []string
	for _, room := range rooms {
		if r.durable(room) {
			out = append(out, room)
		}
	}
	return out
}

func anonUser(pid string) string { return "anon:" + pid }

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

// UserOperator sends durable messages to users and manages their durable
// room memberships.
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
// When some users could not be stored it returns the IDs that were ("" for
// the others) and the Store's *queue.AppendError, which says why per user
// (queue.ErrQueueFull, or queue.ErrUnavailable); an error of Recovery.Admit
// refuses the message for every user.
func (u UserOperator) Emit(ctx context.Context, event string, args ...any) ([]string, error) {
	r := recoveryOf(u.nsp.srv)
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
	if r.Admit != nil {
		if err := r.Admit(ctx, msg, u.users); err != nil {
			return nil, err
		}
	}
	return r.Store.Append(ctx, u.users, msg)
}

// Join makes the selected users members of the durable rooms among rooms,
// whether or not they are connected (other rooms are for sockets: see
// SocketsJoin). An error is a *DurableRoomError.
func (u UserOperator) Join(ctx context.Context, rooms ...string) error {
	return u.membership(ctx, rooms, true)
}

// Leave ends the selected users' membership of the durable rooms among
// rooms. An error is a *DurableRoomError.
func (u UserOperator) Leave(ctx context.Context, rooms ...string) error {
	return u.membership(ctx, rooms, false)
}

func (u UserOperator) membership(ctx context.Context, rooms []string, join bool) error {
	if len(u.users) == 0 {
		return nil
	}
	r := recoveryOf(u.nsp.srv)
	if r == nil {
		return ErrNoRecovery
	}
	return r.setMembers(ctx, r.durableAmong(rooms), u.users, join)
}

// setMembers adds users to (or removes them from) each of the durable rooms,
// in order, stopping at the first error.
func (r *recovery) setMembers(ctx context.Context, durable, users []string, join bool) error {
	if len(durable) == 0 || len(users) == 0 {
		return nil
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	users = slices.Compact(slices.Sorted(slices.Values(users)))
	for _, room := range durable {
		for _, u := range users {
			var err error
			if join {
				err = r.Store.AddMember(ctx, room, u)
			} else {
				err = r.Store.RemoveMember(ctx, room, u)
			}
			if err != nil {
				return &DurableRoomError{Room: room, Err: err}
			}
		}
	}
	return nil
}

// socketsJoin implements extension: the users of the selected sockets,
// on every node, become members of the durable rooms among rooms.
func (r *recovery) socketsJoin(ctx context.Context, b BroadcastOperator, rooms []string) error {
	return r.socketsMembership(ctx, b, rooms, true)
}

// socketsLeave implements extension.
func (r *recovery) socketsLeave(ctx context.Context, b BroadcastOperator, rooms []string) error {
	return r.socketsMembership(ctx, b, rooms, false)
}

func (r *recovery) socketsMembership(ctx context.Context, b BroadcastOperator, rooms []string, join bool) error {
	durable := r.durableAmong(rooms)
	if len(durable) == 0 || r.Member == nil {
		return nil
	}
	socks, err := b.FetchSockets(ctx)
	if err != nil {
		return err
	}
	var users []string
	for _, s := range socks {
		if u := r.Member(s.SocketInfo); u != "" {
			users = append(users, u)
		}
	}
	return r.setMembers(ctx, durable, users, join)
}

// broadcast implements extension: a broadcast to durable rooms is appended
// to the members' queues instead of going through the adapter; any other
// non-volatile one goes through the broadcast log.
func (r *recovery) broadcast(ctx context.Context, b BroadcastOperator, event string, args []any) (bool, error) {
	durable, err := r.durableRooms(b)
	switch {
	case err != nil:
		return true, err
	case durable:
		ctx, cancel := r.bound(ctx)
		defer cancel()
		return true, r.emitDurable(ctx, b, event, args)
	case r.logged(b):
		return true, r.logBroadcast(ctx, b, event, args)
	}
	return false, nil
}

// broadcastAsync implements extension: broadcast for EmitAsync. A logged
// broadcast does not hold the caller (a client's read loop) for the
// append's round trip when the log appends asynchronously: done is called
// once it is logged, or not.
func (r *recovery) broadcastAsync(b BroadcastOperator, event string, args []any, done func(error)) bool {
	aa, async := r.Log.(broadcastlog.AsyncAppender)
	if !async || !r.logged(b) {
		handled, err := r.broadcast(context.Background(), b, event, args)
		if handled {
			done(err)
		}
		return handled
	}
	durable, err := r.durableRooms(b)
	switch {
	case err != nil:
		done(err)
	case durable:
		ctx, cancel := r.bound(context.Background())
		done(r.emitDurable(ctx, b, event, args))
		cancel()
	default:
		r.logBroadcastAsync(aa, b, event, args, done)
	}
	return true
}

// durableRooms reports whether the selection is made of durable rooms.
func (r *recovery) durableRooms(b BroadcastOperator) (bool, error) {
	if r.DurableRoom == nil || len(b.opts.Rooms) == 0 {
		return false, nil
	}
	n := len(r.durableAmong(b.opts.Rooms))
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
func (r *recovery) emitDurable(ctx context.Context, b BroadcastOperator, event string, args []any) error {
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
	users = slices.Compact(users)
	if r.Admit != nil {
		if err := r.Admit(ctx, msg, users); err != nil {
			return err
		}
	}
	_, err = r.Store.Append(ctx, users, msg)
	return err
}

// recoveryState returns the socket's recovery state, nil without Recovery.
func (s *Socket) recoveryState() *recoverySocket {
	rs, _ := s.ext.(*recoverySocket)
	return rs
}

// PID returns the private session id the client recovers with ("" when
// the server has no Recovery).
func (s *Socket) PID() string {
	if rs := s.recoveryState(); rs != nil {
		return rs.pid
	}
	return ""
}

// Recovered reports whether the socket is a recovered session: the client
// reconnected with its pid and offset and got what it missed. In a
// middleware it reports that a session was found (the user is checked
// after the middlewares); its Data is then the session's, as JSON values.
func (s *Socket) Recovered() bool {
	rs := s.recoveryState()
	return rs != nil && (rs.recovered || (rs.restored != nil && !s.connected.Load()))
}

// DroppedRooms returns the rooms of a recovered socket's session that it
// was not put back into because Recovery.MayRejoin refused them, in the
// session's order (nil when none, or when the socket was not recovered).
// It is set before the namespace's OnConnection handlers run.
func (s *Socket) DroppedRooms() []string {
	if rs := s.recoveryState(); rs != nil && rs.recovered {
		if d := rs.dropped.Load(); d != nil {
			return slices.Clone(*d)
		}
	}
	return nil
}

// User returns the socket's user for durable delivery, once connected
// ("anon:" + pid for an anonymous socket; "" without Recovery).
func (s *Socket) User() string {
	if rs := s.recoveryState(); rs != nil {
		return rs.user
	}
	return ""
}

// Offset returns the offset its client holds: the ID of the last durable
// message sent to the socket and, with Recovery.Log, the log position of
// the last logged broadcast ("<user ID>~<log position>", see ParseOffset).
func (s *Socket) Offset() string {
	rs := s.recoveryState()
	if rs == nil {
		return ""
	}
	rs.tailMu.Lock()
	defer rs.tailMu.Unlock()
	return rs.offsetString()
}
