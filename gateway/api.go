package gateway

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"unicode"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/socketio"
)

// apiError is the body of every API error: {"error":{"code","message"}}.
type apiError struct {
	status  int
	code    string
	message string
	extra   map[string]any // more fields of the body
}

func (e *apiError) Error() string { return e.message }

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeBadRequest, message: fmt.Sprintf(format, args...)}
}

func (g *Gateway) apiHandler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern, name string, fn func(r *http.Request) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			status := http.StatusOK
			v, err := fn(r)
			if err != nil {
				var ae *apiError
				if !errors.As(err, &ae) {
					ae = &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable, message: err.Error()}
				}
				status = ae.status
				body := errorAck(ae.code, ae.message)
				for k, x := range ae.extra {
					body[k] = x
				}
				v = body
			}
			g.metrics.APIRequest(name, status)
			writeJSON(w, status, v)
		})
	}
	route("POST /api/v1/emit", "emit", g.apiEmit)
	route("GET /api/v1/sockets", "sockets", g.apiSockets)
	route("POST /api/v1/sockets/join", "sockets_join", g.apiSocketsJoin)
	route("POST /api/v1/sockets/leave", "sockets_leave", g.apiSocketsLeave)
	route("POST /api/v1/sockets/disconnect", "sockets_disconnect", g.apiSocketsDisconnect)
	route("GET /api/v1/rooms", "rooms", g.apiRooms)
	route("GET /api/v1/presence", "presence", g.apiPresence)
	route("GET /api/v1/nodes", "nodes", g.apiNodes)
	route("GET /api/v1/history", "history", g.apiHistory)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.cfg.APIToken == "" {
			writeJSON(w, http.StatusNotFound, errorAck("not_found", "the HTTP API is off: start the gateway with --api-token"))
			return
		}
		const prefix = "Bearer "
		h := r.Header.Get("Authorization")
		if len(h) <= len(prefix) || h[:len(prefix)] != prefix ||
			subtle.ConstantTimeCompare([]byte(h[len(prefix):]), []byte(g.cfg.APIToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="roomcast"`)
			g.metrics.APIRequest("unauthorized", http.StatusUnauthorized)
			writeJSON(w, http.StatusUnauthorized, errorAck("unauthorized", "missing or wrong bearer token"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, g.cfg.Engine.MaxPayload)
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{status: http.StatusRequestEntityTooLarge, code: "too_large", message: "body over the maximum payload"}
		}
		return badRequest("invalid JSON body: %v", err)
	}
	return nil
}

func (g *Gateway) namespace(name string) (*socketio.Namespace, error) {
	if name == "" {
		name = "/"
	}
	nsp, err := g.sio.Namespace(name)
	if err != nil {
		return nil, &apiError{status: http.StatusNotFound, code: "unknown_namespace", message: "unknown namespace " + quote(name)}
	}
	return nsp, nil
}

// selector picks sockets: in any of rooms, sockets (ids) or users, and in none of except.
type selector struct {
	Namespace string   `json:"namespace"`
	Rooms     []string `json:"rooms"`
	Except    []string `json:"except"`
	Sockets   []string `json:"sockets"`
	Users     []string `json:"users"`
}

func (s selector) options() adapter.Options {
	rooms := append([]string(nil), s.Rooms...)
	rooms = append(rooms, s.Sockets...)
	for _, u := range s.Users {
		rooms = append(rooms, userRoom(u))
	}
	return adapter.Options{Rooms: rooms, Except: s.Except}
}

func (s selector) empty() bool { return len(s.Rooms)+len(s.Sockets)+len(s.Users) == 0 }

// validate refuses names no socket, room or user can have: empty, over 256
// bytes, or with control characters. (An empty user id would otherwise be
// a storage error, which a backend retries.)
func (s selector) validate() error {
	for _, list := range []struct {
		field string
		names []string
	}{{"rooms", s.Rooms}, {"except", s.Except}, {"sockets", s.Sockets}, {"users", s.Users}} {
		for _, name := range list.names {
			if !validName(name) {
				return badRequest("%s: %s is not a valid name (1 to %d bytes, no control characters)", list.field, quote(name), maxRoomLen)
			}
		}
	}
	return nil
}

// validName reports whether name may name a room, a socket or a user in an
// API request.
func validName(name string) bool {
	if !validRoom(name) {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

type emitRequest struct {
	selector
	Event    string            `json:"event"`
	Args     []json.RawMessage `json:"args"`
	Volatile bool              `json:"volatile"`
	// Broadcast must be true to emit to the whole namespace: an emit
	// without a (non-empty) selector is refused, so that a backend that
	// computed an empty audience does not reach everyone.
	Broadcast bool `json:"broadcast"`
	// IdempotencyKey makes a repeat within --idempotency-window answer the
	// first answer without delivering again (idempotency.go).
	IdempotencyKey string `json:"idempotencyKey"`
}

func (g *Gateway) apiEmit(r *http.Request) (any, error) {
	var req emitRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	nsp, err := g.namespace(req.Namespace)
	if err != nil {
		return nil, err
	}
	args := make([]any, len(req.Args))
	for i, a := range req.Args {
		args[i] = a
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.APITimeout)
	defer cancel()
	if req.IdempotencyKey == "" {
		return g.emit(ctx, nsp, &req, args)
	}
	if !validIdempotencyKey(req.IdempotencyKey) {
		return nil, badRequest("idempotencyKey: 1 to %d bytes, no spaces or control characters", maxIdempotencyKey)
	}
	key := "api:" + nsp.Name() + ":" + req.IdempotencyKey
	return g.once(ctx, key, func(ctx context.Context) (map[string]any, error) {
		return g.emit(queue.WithIdempotencyKey(ctx, key, g.cfg.IdempotencyWindow), nsp, &req, args)
	}, g.keepEmitFailure)
}

// keepEmitFailure reports whether a failed emit's answer must stand for its
// idempotency key: not when nothing was delivered (a refused request), nor
// when only messages to users failed with Redis, whose appends are
// deduplicated per user; else a repeat could deliver twice.
func (g *Gateway) keepEmitFailure(ae *apiError) bool {
	switch ae.status {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
		return false
	}
	_, users := ae.extra["ids"]
	return !(users && g.rdb != nil)
}

// emit sends the message of req (its Args already decoded into args) in
// nsp: POST /api/v1/emit, and a webhook response's emits. The answer is
// {"ok": true} plus, for users, the durable entry IDs by user.
func (g *Gateway) emit(ctx context.Context, nsp *socketio.Namespace, req *emitRequest, args []any) (map[string]any, error) {
	if req.Event == "" {
		return nil, badRequest("event is required")
	}
	if err := socketio.CheckEvent(req.Event); err != nil {
		return nil, badRequest("%v", err)
	}
	switch {
	case req.Broadcast && !req.empty():
		return nil, badRequest("broadcast reaches the whole namespace: it takes no rooms, sockets or users")
	case !req.Broadcast && req.empty():
		return nil, badRequest("name the audience: rooms, sockets or users (non-empty), or broadcast: true for the whole namespace")
	}
	if err := req.validate(); err != nil {
		return nil, err
	}
	resp := map[string]any{"ok": true}
	if len(req.Users) > 0 {
		// Messages to users are durable: appended to each user's queue
		// (and delivered live) before the answer, which carries the entry
		// IDs; 503 when Redis could not store them.
		if req.Volatile {
			return nil, badRequest("messages to users are durable: volatile does not apply")
		}
		ids, err := nsp.ToUser(req.Users...).Emit(ctx, req.Event, args...)
		byUser := make(map[string]string, len(ids))
		for i, u := range req.Users {
			if i < len(ids) && ids[i] != "" {
				byUser[u] = ids[i]
			}
		}
		if err != nil {
			// Each user's append stands alone: say which users have it (a
			// retry can skip them) and why each other one does not.
			ae := g.durableAPIError(err)
			ae.extra = map[string]any{"ids": byUser}
			var qe *queue.AppendError
			if errors.As(err, &qe) {
				refused := map[string]string{}
				for i, e := range qe.Errs {
					if e != nil && i < len(req.Users) {
						refused[req.Users[i]] = codeUnavailable
						if errors.Is(e, queue.ErrQueueFull) {
							refused[req.Users[i]] = codeQueueFull
						}
					}
				}
				ae.extra["refused"] = refused
			}
			return nil, ae
		}
		resp["ids"] = byUser
	}
	if len(req.Rooms)+len(req.Sockets) == 0 && len(req.Users) > 0 {
		return resp, nil
	}
	rooms := append(append([]string(nil), req.Rooms...), req.Sockets...)
	op := nsp.To(rooms...).Except(req.Except...)
	if req.Volatile {
		op = op.Volatile()
	}
	if err := op.EmitContext(ctx, req.Event, args...); err != nil {
		if errors.Is(err, socketio.ErrMixedDurable) {
			return nil, badRequest("%v", err)
		}
		return nil, g.durableAPIError(err)
	}
	return resp, nil
}

// durableAPIError is the API error of a durable emit: 413 for a message
// over --max-durable-message, 429 when full queues refused it (and Redis
// stored it for every other recipient), else 503.
func (g *Gateway) durableAPIError(err error) *apiError {
	code, msg := g.durableError(err)
	status := http.StatusServiceUnavailable
	switch code {
	case codeTooLarge:
		status = http.StatusRequestEntityTooLarge
	case codeQueueFull:
		status = http.StatusTooManyRequests
	}
	return &apiError{status: status, code: code, message: msg}
}

type socketView struct {
	ID    string   `json:"id"`
	User  string   `json:"user"`
	Name  string   `json:"name,omitempty"`
	Rooms []string `json:"rooms"`
	Node  string   `json:"node"`
}

func (g *Gateway) fetch(ctx context.Context, nsp *socketio.Namespace, opts adapter.Options) ([]socketView, error) {
	op := nsp.To(opts.Rooms...).Except(opts.Except...)
	socks, err := op.FetchSockets(ctx)
	out := make([]socketView, 0, len(socks))
	for _, s := range socks {
		sess := sessionFromInfo(s.Data)
		rooms := append([]string{}, s.Rooms...)
		sort.Strings(rooms)
		out = append(out, socketView{ID: s.ID, User: sess.User, Name: sess.Name, Rooms: rooms, Node: s.Node})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

func (g *Gateway) apiSockets(r *http.Request) (any, error) {
	q := r.URL.Query()
	nsp, err := g.namespace(q.Get("namespace"))
	if err != nil {
		return nil, err
	}
	var opts adapter.Options
	if room := q.Get("room"); room != "" {
		opts.Rooms = []string{room}
	}
	if user := q.Get("user"); user != "" {
		opts.Rooms = append(opts.Rooms, userRoom(user))
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.APITimeout)
	defer cancel()
	socks, err := g.fetch(ctx, nsp, opts)
	if err != nil && len(socks) == 0 {
		return nil, err
	}
	return map[string]any{"sockets": socks}, nil
}

type roomsRequest struct {
	selector
	Join  []string `json:"join"`
	Leave []string `json:"leave"`
	Close bool     `json:"close"`
}

// selected decodes a request that selects sockets and returns the operator
// over them and the operator over the users it lists.
func (g *Gateway) selected(r *http.Request, req *roomsRequest) (socketio.BroadcastOperator, socketio.UserOperator, error) {
	if err := decodeBody(r, req); err != nil {
		return socketio.BroadcastOperator{}, socketio.UserOperator{}, err
	}
	if req.empty() {
		return socketio.BroadcastOperator{}, socketio.UserOperator{}, badRequest("select sockets with rooms, sockets or users")
	}
	if err := req.validate(); err != nil {
		return socketio.BroadcastOperator{}, socketio.UserOperator{}, err
	}
	nsp, err := g.namespace(req.Namespace)
	if err != nil {
		return socketio.BroadcastOperator{}, socketio.UserOperator{}, err
	}
	opts := req.options()
	return nsp.To(opts.Rooms...).Except(opts.Except...), nsp.ToUser(req.Users...), nil
}

// apiSocketsJoin makes the selected sockets join rooms. For the durable
// rooms among them, the users listed in the request (connected or not) and
// the users of the selected sockets become members first; socketio records
// them in the durable queue.
func (g *Gateway) apiSocketsJoin(r *http.Request) (any, error) {
	var req roomsRequest
	op, users, err := g.selected(r, &req)
	if err != nil {
		return nil, err
	}
	if len(req.Join) == 0 {
		return nil, badRequest("join lists the rooms to join")
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.APITimeout)
	defer cancel()
	if err := users.Join(ctx, req.Join...); err != nil {
		return nil, membershipError(err)
	}
	if err := op.SocketsJoin(ctx, req.Join...); err != nil {
		return nil, membershipError(err)
	}
	return okAck, nil
}

// codeNotConfirmed is the error code of a sockets/join or sockets/leave
// that some node did not confirm in time.
const codeNotConfirmed = "not_confirmed"

// membershipError is the API error of a membership change or a move: 409
// when a durable room is full; 504 not_confirmed when some node did not
// confirm the move within the request timeout (it may or may not have been
// applied there); anything else 503 unavailable (Redis, or a node that
// could not store the move).
func membershipError(err error) error {
	var dre *socketio.DurableRoomError
	if errors.As(err, &dre) && errors.Is(err, queue.ErrRoomFull) {
		return &apiError{status: http.StatusConflict, code: "room_full", message: "durable room " + quote(dre.Room) + " is full"}
	}
	if errors.Is(err, adapter.ErrAckTimeout) {
		return &apiError{status: http.StatusGatewayTimeout, code: codeNotConfirmed,
			message: "not confirmed by every node in time, so it may or may not have been applied (retrying is safe): " + err.Error()}
	}
	return err
}

// apiSocketsLeave makes the selected sockets leave rooms; the listed users
// and the users of the selected sockets stop being members of the durable
// ones.
func (g *Gateway) apiSocketsLeave(r *http.Request) (any, error) {
	var req roomsRequest
	op, users, err := g.selected(r, &req)
	if err != nil {
		return nil, err
	}
	if len(req.Leave) == 0 {
		return nil, badRequest("leave lists the rooms to leave")
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.APITimeout)
	defer cancel()
	if err := users.Leave(ctx, req.Leave...); err != nil {
		return nil, membershipError(err)
	}
	if err := op.SocketsLeave(ctx, req.Leave...); err != nil {
		return nil, membershipError(err)
	}
	return okAck, nil
}

func (g *Gateway) apiSocketsDisconnect(r *http.Request) (any, error) {
	var req roomsRequest
	op, _, err := g.selected(r, &req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.APITimeout)
	defer cancel()
	if err := op.DisconnectSockets(ctx, req.Close); err != nil {
		return nil, err
	}
	return okAck, nil
}

// apiRooms lists the namespace's occupied rooms with their member users
// and sockets, from the presence Store (no question to other nodes).
func (g *Gateway) apiRooms(r *http.Request) (any, error) {
	nsp, err := g.namespace(r.URL.Query().Get("namespace"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.APITimeout)
	defer cancel()
	rooms, err := g.presence.Rooms(ctx, nsp.Name())
	if err != nil {
		return nil, err
	}
	return map[string]any{"rooms": rooms}, nil
}

// apiPresence answers GET /api/v1/presence?room=&namespace=&cursor=&limit=
// as the presence event does.
func (g *Gateway) apiPresence(r *http.Request) (any, error) {
	q := r.URL.Query()
	nsp, err := g.namespace(q.Get("namespace"))
	if err != nil {
		return nil, err
	}
	room := q.Get("room")
	if !validRoom(room) {
		return nil, badRequest("room is 1 to %d bytes", maxRoomLen)
	}
	limit := defaultPresencePage
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 0 || limit > maxPresencePage {
			return nil, badRequest("limit is 0 (counts only) to %d", maxPresencePage)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.APITimeout)
	defer cancel()
	return g.presencePage(ctx, nsp.Name(), room, q.Get("cursor"), limit)
}

func (g *Gateway) apiNodes(r *http.Request) (any, error) {
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.APITimeout)
	defer cancel()
	socks, err := g.fetch(ctx, g.sio.Sockets(), adapter.Options{})
	if err != nil && len(socks) == 0 {
		return nil, err
	}
	counts := map[string]int{g.cfg.NodeID: 0}
	if g.cluster != nil {
		ids, err := g.cluster.Nodes(ctx)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if _, ok := counts[id]; !ok {
				counts[id] = 0 // a live node with no socket
			}
		}
	}
	for _, s := range socks {
		counts[s.Node]++
	}
	type nodeView struct {
		ID      string `json:"id"`
		Sockets int    `json:"sockets"`
	}
	nodes := make([]nodeView, 0, len(counts))
	for id, n := range counts {
		nodes = append(nodes, nodeView{id, n})
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	return map[string]any{"nodes": nodes}, nil
}
