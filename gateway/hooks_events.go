package gateway

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/roomcast/roomcast/hook"
	"github.com/roomcast/roomcast/socketio"
)

// socketHooks is one socket's queue of work for the backend: its events
// (and hooked publishes) go out one at a time, in the order the client sent
// them, from a goroutine that exists only while the queue is not empty.
// Hangs off the socket's Session.
type socketHooks struct {
	mu      sync.Mutex
	jobs    []hookJob
	running bool
}

// hookJob is one piece of queued work; deadline is its arrival plus
// --hook-timeout, so a client hears back within the timeout even when the
// events before it took all of theirs.
type hookJob struct {
	deadline time.Time
	run      func(ctx context.Context)
	refuse   func(err error) // the socket is gone, or the job expired in the queue
}

// enqueueHook queues job on s's queue, or refuses it when the queue is full.
func (g *Gateway) enqueueHook(s *socketio.Socket, job hookJob, hook string) {
	sess := sessionOf(s)
	q := sess.hooks
	if q == nil {
		job.refuse(errHookQueue) // not a gateway socket
		return
	}
	q.mu.Lock()
	if len(q.jobs) >= g.cfg.HookQueue {
		q.mu.Unlock()
		g.hooks.m.requests.WithLabelValues(hook, hookQueueFull).Inc()
		job.refuse(errHookQueue)
		return
	}
	q.jobs = append(q.jobs, job)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start && !s.Go(func(ctx context.Context) { q.work(ctx) }) {
		q.mu.Lock()
		jobs := q.jobs
		q.jobs, q.running = nil, false
		q.mu.Unlock()
		for _, j := range jobs {
			j.refuse(socketio.ErrDisconnected)
		}
	}
}

// work runs the queued jobs until the queue is empty; ctx ends with the socket.
func (q *socketHooks) work(ctx context.Context) {
	for {
		q.mu.Lock()
		if len(q.jobs) == 0 {
			q.jobs, q.running = nil, false
			q.mu.Unlock()
			return
		}
		job := q.jobs[0]
		q.jobs[0] = hookJob{}
		q.jobs = q.jobs[1:]
		q.mu.Unlock()
		if ctx.Err() != nil {
			job.refuse(socketio.ErrDisconnected)
			continue
		}
		if !time.Now().Before(job.deadline) {
			job.refuse(errHookTimeout)
			continue
		}
		jctx, cancel := context.WithDeadline(ctx, job.deadline)
		job.run(jctx)
		cancel()
	}
}

// onHookEvent is the handler of every client event the gateway does not
// handle itself: sent to the namespace's webhook, whose answer is the ack;
// without a webhook, an unknown_event error ack.
func (g *Gateway) onHookEvent(e *socketio.Event) {
	s := e.Socket()
	t := g.hooks.webhookOf(s.Namespace().Name())
	if t == nil {
		reply(e, errorAck(codeUnknownEvent, "event "+quote(e.Name)+" is not handled by this gateway"))
		return
	}
	g.enqueueHook(s, hookJob{
		deadline: time.Now().Add(g.cfg.HookTimeout),
		run:      func(ctx context.Context) { g.forwardEvent(ctx, t, e) },
		refuse:   func(err error) { reply(e, hookErrorAck(err)) },
	}, hookEvent)
}

// hookErrorAck is what a client hears when its backend could not answer.
func hookErrorAck(err error) map[string]any {
	return errorAck(codeUnavailable, "backend: "+clientError(err).Error())
}

// hookSocket is the part of every request that says who it is about, from
// the session (never from client input).
func hookSocket(s *socketio.Socket) hook.Socket {
	sess := sessionOf(s)
	hs := hook.Socket{Namespace: s.Namespace().Name(), Socket: s.ID(), User: sess.User, Anonymous: sess.Anonymous}
	if sess.Grant != nil {
		hs.Session = sess.Grant.Session
	}
	return hs
}

// clientRooms are s's rooms without its own id room and user room.
func clientRooms(s *socketio.Socket) []string {
	user := userRoom(sessionOf(s).User)
	rooms := slices.DeleteFunc(s.Rooms(), func(r string) bool { return r == s.ID() || r == user })
	slices.Sort(rooms)
	if rooms == nil {
		rooms = []string{}
	}
	return rooms
}

// forwardEvent sends e to the webhook t and carries out its answer.
func (g *Gateway) forwardEvent(ctx context.Context, t *hookURL, e *socketio.Event) {
	s := e.Socket()
	id := newRequestID()
	req := &hook.EventRequest{
		Type: hook.TypeEvent, ID: id, Socket: hookSocket(s),
		Rooms: clientRooms(s), Event: e.Name, Args: encodeBinary(e.Args).([]any), Ack: e.HasAck(),
	}
	var resp *hook.EventResponse
	err := g.hooks.call(ctx, t, id, req, func(body []byte) error {
		var err error
		resp, err = hook.DecodeEventResponse(body)
		return err
	})
	if err != nil {
		g.log.Debug("roomcast gateway: webhook failed", "event", e.Name, "sid", s.ID(), "err", err)
		reply(e, hookErrorAck(err))
		return
	}
	g.runActions(ctx, s, resp)
	if e.HasAck() {
		_ = e.Ack(decodeBinary(resp.Ack).([]any)...)
	}
	if resp.Disconnect {
		s.Disconnect(false)
	}
}

// runActions carries out a webhook answer's leave, join and emit for s.
// The backend is trusted: the token's patterns do not apply, but nobody
// joins or leaves another user's room (that would read their direct
// messages) or its own socket room. Failures are logged: the backend asked
// for something the client did not, and the ack still goes out.
func (g *Gateway) runActions(ctx context.Context, s *socketio.Socket, resp *hook.EventResponse) {
	for _, room := range resp.Leave {
		if !g.actionRoom(s, "leave", room) {
			continue
		}
		if err := s.LeaveContext(ctx, room); err != nil {
			g.log.Warn("roomcast gateway: webhook leave failed", "room", room, "sid", s.ID(), "err", err)
			continue
		}
		if gr := sessionOf(s).Grant; gr != nil {
			gr.removeRoom(room)
		}
	}
	for _, room := range resp.Join {
		if !g.actionRoom(s, "join", room) {
			continue
		}
		// Granted before the join, so that the recovery session the join
		// stores already allows the room back.
		gr := sessionOf(s).Grant
		if gr != nil {
			gr.addRoom(room)
		}
		if err := s.JoinContext(ctx, room); err != nil {
			g.log.Warn("roomcast gateway: webhook join failed", "room", room, "sid", s.ID(), "err", err)
			if gr != nil {
				gr.removeRoom(room)
			}
		}
	}
	for i := range resp.Emit {
		em := &resp.Emit[i]
		req := &emitRequest{
			selector:  selector{Rooms: em.Rooms, Except: em.Except, Sockets: em.Sockets, Users: em.Users},
			Event:     em.Event,
			Volatile:  em.Volatile,
			Broadcast: em.Broadcast,
		}
		if _, err := g.emit(ctx, s.Namespace(), req, decodeBinary(em.Args).([]any)); err != nil {
			g.log.Warn("roomcast gateway: webhook emit failed", "event", em.Event, "sid", s.ID(), "err", err)
		}
	}
}

// actionRoom reports whether a backend may make s join or leave room.
func (g *Gateway) actionRoom(s *socketio.Socket, what, room string) bool {
	if validName(room) && !strings.HasPrefix(room, userRoomPrefix) && room != s.ID() {
		return true
	}
	g.log.Warn("roomcast gateway: webhook "+what+" refused: not a room a backend may move a socket through", "room", room, "sid", s.ID())
	return false
}

// encodeBinary returns v with every []byte replaced by {"$binary": base64}
// (a nil slice becomes an empty []any).
func encodeBinary(v any) any {
	switch x := v.(type) {
	case []byte:
		return hook.Binary(x)
	case []any:
		out := make([]any, len(x))
		for i, y := range x {
			out[i] = encodeBinary(y)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, y := range x {
			out[k] = encodeBinary(y)
		}
		return out
	}
	return v
}

// decodeBinary is the inverse of encodeBinary, for what the backend sends.
func decodeBinary(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, y := range x {
			out[i] = decodeBinary(y)
		}
		return out
	case map[string]any:
		if b, ok := hook.BinaryOf(x); ok {
			return b
		}
		out := make(map[string]any, len(x))
		for k, y := range x {
			out[k] = decodeBinary(y)
		}
		return out
	}
	return v
}
