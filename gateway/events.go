package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/socketio"
)

// Error codes of reserved-event acks.
const (
	codeBadRequest   = "bad_request"
	codeForbidden    = "forbidden"
	codeUnavailable  = "unavailable"
	codeUnknownEvent = "unknown_event"
	codeRateLimited  = "rate_limited"
	codeTooLarge     = "too_large"
	codeQueueFull    = "queue_full"
	codeQuota        = "quota_exceeded"
)

const maxRoomLen = 256

func errorAck(code, message string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": message}}
}

var okAck = map[string]any{"ok": true}

func (g *Gateway) setupNamespace(nsp *socketio.Namespace) {
	authenticate := g.authenticate
	if g.hooks != nil {
		authenticate = g.authenticateWithHooks
	}
	nsp.Use(g.limits.connectMiddleware(authenticate))
	nsp.Use(g.checkMemberships)
	// The event handlers are the namespace's, not copied onto each socket
	// (an idle connection keeps no handler table).
	nsp.UseEvent(g.limits.limitEvent)
	nsp.OnEvent(authEvent, g.onAuth)
	nsp.OnEvent("join", g.onJoin)
	nsp.OnEvent("leave", g.onLeave)
	nsp.OnEvent("publish", g.onPublish)
	nsp.OnEvent("presence", g.onPresence)
	nsp.OnUnhandledEvent(g.onHookEvent)
	nsp.OnConnection(func(s *socketio.Socket) {
		g.limits.eventKeys(s)
		g.onConnected(s)
		g.tracker.connected(s)
		s.OnDisconnect(func(reason string) { g.tracker.disconnected(s, reason) })
		if !s.Connected() {
			g.tracker.disconnected(s, string(engineio.ReasonTransportClose)) // gone before OnDisconnect was registered
		}
	})
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + s + `"`
}

func reply(e *socketio.Event, v any) {
	if e.HasAck() {
		_ = e.Ack(v)
	}
}

// roomArg reads a room name given as a string or as {"room": name}.
func roomArg(e *socketio.Event) (string, bool) {
	if len(e.Args) == 0 {
		return "", false
	}
	var room string
	switch v := e.Args[0].(type) {
	case string:
		room = v
	case map[string]any:
		room, _ = v["room"].(string)
	}
	return room, validRoom(room)
}

func validRoom(room string) bool {
	return room != "" && len(room) <= maxRoomLen
}

func (g *Gateway) onJoin(e *socketio.Event) {
	room, ok := roomArg(e)
	if !ok {
		reply(e, errorAck(codeBadRequest, "join expects a room name (1 to 256 bytes)"))
		return
	}
	s := e.Socket()
	sess := sessionOf(s)
	if strings.HasPrefix(room, userRoomPrefix) || !sess.canJoin(room) {
		reply(e, errorAck(codeForbidden, "not allowed to join "+quote(room)))
		return
	}
	if err := s.Join(room); err != nil {
		if errors.Is(err, socketio.ErrAnonymousDurable) {
			reply(e, errorAck(codeForbidden, "durable room "+quote(room)+" needs a signed-in user"))
			return
		}
		if errors.Is(err, queue.ErrRoomFull) {
			reply(e, errorAck(codeForbidden, "durable room "+quote(room)+" is full"))
			return
		}
		reply(e, errorAck(codeUnavailable, err.Error()))
		return
	}
	if ack := g.joinHistory(e, room); ack != nil { // {room, rewind} or {room, since}
		reply(e, ack)
		return
	}
	reply(e, okAck)
}

func (g *Gateway) onLeave(e *socketio.Event) {
	room, ok := roomArg(e)
	if !ok {
		reply(e, errorAck(codeBadRequest, "leave expects a room name"))
		return
	}
	if strings.HasPrefix(room, userRoomPrefix) {
		reply(e, errorAck(codeForbidden, "not allowed to leave "+quote(room)))
		return
	}
	if err := e.Socket().Leave(room); err != nil {
		reply(e, errorAck(codeUnavailable, err.Error()))
		return
	}
	reply(e, okAck)
}

// publishRequest is the payload of the reserved "publish" event.
type publishRequest struct {
	rooms   []string
	user    string
	event   string
	data    any
	hasData bool
	key     string          // idempotencyKey, "" without
	answer  func(any, bool) // sends the ack; nil: reply to the event
}

// ack answers the publish: through answer when set (a keyed publish
// records its answer), else as the event's ack.
func (p *publishRequest) ack(e *socketio.Event, v any) {
	if p.answer != nil {
		p.answer(v, true)
		return
	}
	reply(e, v)
}

// refuse answers a publish that was not delivered (the backend refused it
// or could not be asked): a keyed publish releases its key.
func (p *publishRequest) refuse(e *socketio.Event, v any) {
	if p.answer != nil {
		p.answer(v, false)
		return
	}
	reply(e, v)
}

func parsePublish(e *socketio.Event) (publishRequest, string) {
	var p publishRequest
	if len(e.Args) == 0 {
		return p, "publish expects an object {room|rooms|user, event, data}"
	}
	obj, ok := e.Args[0].(map[string]any)
	if !ok {
		return p, "publish expects an object {room|rooms|user, event, data}"
	}
	if r, ok := obj["room"].(string); ok {
		p.rooms = append(p.rooms, r)
	}
	if rs, ok := obj["rooms"].([]any); ok {
		for _, r := range rs {
			s, ok := r.(string)
			if !ok {
				return p, "rooms must be strings"
			}
			p.rooms = append(p.rooms, s)
		}
	}
	p.user, _ = obj["user"].(string)
	if len(p.rooms) == 0 && p.user == "" {
		return p, "publish needs room, rooms or user"
	}
	if len(p.rooms) > 0 && p.user != "" {
		return p, "publish takes rooms or a user, not both"
	}
	if len(p.rooms) > 64 {
		return p, "at most 64 rooms per publish"
	}
	for _, r := range p.rooms {
		if !validRoom(r) {
			return p, "room names are 1 to 256 bytes"
		}
	}
	p.event, _ = obj["event"].(string)
	if p.event == "" || len(p.event) > 128 {
		return p, "publish needs an event name (1 to 128 bytes)"
	}
	if k, ok := obj["idempotencyKey"]; ok {
		p.key, _ = k.(string)
		if !validIdempotencyKey(p.key) {
			return p, fmt.Sprintf("idempotencyKey: 1 to %d bytes, no spaces or control characters", maxIdempotencyKey)
		}
	}
	p.data, p.hasData = obj["data"]
	return p, ""
}

func (g *Gateway) onPublish(e *socketio.Event) {
	p, msg := parsePublish(e)
	if msg != "" {
		reply(e, errorAck(codeBadRequest, msg))
		return
	}
	if err := socketio.CheckEvent(p.event); err != nil {
		reply(e, errorAck(codeBadRequest, err.Error()))
		return
	}
	s := e.Socket()
	sess := sessionOf(s)
	meta := map[string]any{"user": sess.User}
	if sess.Name != "" {
		meta["name"] = sess.Name
	}
	if p.user != "" && !sess.canDM(p.user, g.cfg.AllowAnonymousDM) {
		g.metrics.LimitRefused("dm_forbidden")
		reply(e, errorAck(codeForbidden, "not allowed to message user "+quote(p.user)))
		return
	}
	for _, r := range p.rooms {
		if strings.HasPrefix(r, userRoomPrefix) || !sess.canPublish(r) {
			reply(e, errorAck(codeForbidden, "not allowed to publish to "+quote(r)))
			return
		}
	}
	if p.key != "" && !g.beginKeyedPublish(e, &p) {
		return // answered: a duplicate, in progress, or no record
	}
	if p.user != "" {
		// A direct message is durable: it waits in the user's queue for
		// every device that is away. The ack goes out once it is stored,
		// or says which quota refused it.
		ctx, cancel := context.WithTimeout(withSender(context.Background(), sess.User), g.cfg.EventTimeout)
		if p.key != "" {
			ctx = queue.WithIdempotencyKey(ctx, publishKey(s, p.key), g.cfg.IdempotencyWindow)
		}
		ids, err := s.Namespace().ToUser(p.user).Emit(ctx, p.event, p.data, meta)
		cancel()
		if err != nil {
			code, msg := g.durableError(err)
			p.ack(e, errorAck(code, msg))
			return
		}
		p.ack(e, map[string]any{"ok": true, "id": ids[0]})
		return
	}
	if t := g.hooks.publishHookOf(p.rooms); t != nil {
		g.enqueueHook(s, hookJob{
			deadline: time.Now().Add(g.cfg.HookTimeout),
			run:      func(ctx context.Context) { g.checkPublish(ctx, t, e, p, meta) },
			refuse:   func(err error) { p.refuse(e, hookErrorAck(err)) },
		}, hookPublish)
		return
	}
	g.publishToRooms(e, p, meta)
}

// publishToRooms delivers a client publish to its rooms (checked) and acks
// once every room's relay is done.
func (g *Gateway) publishToRooms(e *socketio.Event, p publishRequest, meta map[string]any) {
	s := e.Socket()
	sess := sessionOf(s)
	// The read loop does not wait for Redis: each room's broadcast is
	// delivered locally now and relayed through the node's ordered publish
	// pipeline; the ack goes out once every relay is done, with the first
	// error if any.
	var (
		mu      sync.Mutex
		pending = len(p.rooms)
		first   error
	)
	done := func(err error) {
		mu.Lock()
		if err != nil && first == nil {
			first = err
		}
		pending--
		last, ferr := pending == 0, first
		mu.Unlock()
		if !last {
			return
		}
		if ferr != nil {
			code, msg := g.durableError(ferr)
			p.ack(e, errorAck(code, msg))
			return
		}
		p.ack(e, okAck)
	}
	for _, r := range p.rooms {
		m := map[string]any{"room": r}
		for k, v := range meta {
			m[k] = v
		}
		// One broadcast per room so each receiver learns the room; a socket
		// in several of the rooms receives one copy per room.
		if g.durableRoom(r) {
			// Appended to the members' queues now (EmitAsync would too),
			// charged to the sender's durable budget.
			ctx, cancel := context.WithTimeout(withSender(context.Background(), sess.User), g.cfg.EventTimeout)
			done(s.To(r).EmitContext(ctx, p.event, p.data, m))
			cancel()
			continue
		}
		s.To(r).EmitAsync(done, p.event, p.data, m)
	}
}

// durableError is the ack code and message of a durable emit's error, and
// counts the refusals of full queues (one per recipient refused).
func (g *Gateway) durableError(err error) (code, message string) {
	switch {
	case errors.Is(err, errTooLarge):
		return codeTooLarge, fmt.Sprintf("a durable message is at most %d bytes", g.cfg.MaxDurableMessage)
	case errors.Is(err, errBudget):
		return codeQuota, fmt.Sprintf("durable budget of %d bytes per minute used up", g.cfg.DurableBudget)
	}
	var ae *queue.AppendError
	if errors.As(err, &ae) && !errors.Is(err, queue.ErrUnavailable) {
		full := 0
		for _, e := range ae.Errs {
			if errors.Is(e, queue.ErrQueueFull) {
				g.metrics.LimitRefused("queue_full")
				full++
			}
		}
		if full > 0 {
			return codeQueueFull, fmt.Sprintf("the queue of %d of %d recipients is full", full, len(ae.Errs))
		}
	}
	return codeUnavailable, err.Error()
}

func (g *Gateway) onPresence(e *socketio.Event) {
	room, ok := roomArg(e)
	if !ok {
		reply(e, errorAck(codeBadRequest, "presence expects {room, cursor?, limit?}"))
		return
	}
	var cursor string
	limit := defaultPresencePage
	if obj, ok := e.Args[0].(map[string]any); ok {
		cursor, _ = obj["cursor"].(string)
		if l, ok := obj["limit"].(float64); ok {
			limit = int(l)
		}
	}
	if limit < 0 || limit > maxPresencePage {
		reply(e, errorAck(codeBadRequest, fmt.Sprintf("limit is 0 (counts only) to %d", maxPresencePage)))
		return
	}
	s := e.Socket()
	if strings.HasPrefix(room, userRoomPrefix) || !sessionOf(s).canJoin(room) {
		reply(e, errorAck(codeForbidden, "not allowed to see "+quote(room)))
		return
	}
	// One read of the presence Store (Redis with --redis), never a
	// question to other nodes; from a goroutine, so this client's read
	// loop keeps going. The socket owns it: it ends with the socket (or
	// after --event-timeout) and the server's Shutdown waits for it.
	s.Go(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, g.cfg.EventTimeout)
		defer cancel()
		v, err := g.presencePage(ctx, s.Namespace().Name(), room, cursor, limit)
		if err != nil {
			reply(e, errorAck(codeUnavailable, err.Error()))
			return
		}
		v["ok"] = true
		reply(e, v)
	})
}
