package gateway

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/roomcast/roomcast/hook"
	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/socketio"
)

// connectGrant is what the backend granted a socket: the connect hook's
// answer (patterns replacing the token's, session data) and the rooms a
// backend put it in (the connect hook's rooms, a webhook answer's joins).
// It is part of the Session, so the socket's recovery session keeps it: a
// recovered socket is not asked about again (the connect hook's answer is
// cached per pid) and keeps the rooms the backend gave it, which its token's
// patterns alone would drop (Recovery.MayRejoin).
//
// Join, Publish and Session do not change once the grant is built; rooms
// change under mu.
type connectGrant struct {
	// TokenUser is the token's sub ("" when anonymous): a recovery with a
	// token for someone else asks the connect hook again.
	TokenUser string `json:"tokenUser,omitempty"`
	// Connect is true when the connect hook accepted the socket.
	Connect bool            `json:"connect,omitempty"`
	Join    *[]string       `json:"join,omitempty"`
	Publish *[]string       `json:"publish,omitempty"`
	Session json.RawMessage `json:"session,omitempty"`

	mu    sync.Mutex
	rooms []string
}

type grantJSON struct {
	TokenUser string          `json:"tokenUser,omitempty"`
	Connect   bool            `json:"connect,omitempty"`
	Join      *[]string       `json:"join,omitempty"`
	Publish   *[]string       `json:"publish,omitempty"`
	Session   json.RawMessage `json:"session,omitempty"`
	Rooms     []string        `json:"rooms,omitempty"`
}

// MarshalJSON stores the grant with its rooms (in the recovery session).
func (g *connectGrant) MarshalJSON() ([]byte, error) {
	g.mu.Lock()
	rooms := slices.Clone(g.rooms)
	g.mu.Unlock()
	return json.Marshal(grantJSON{TokenUser: g.TokenUser, Connect: g.Connect, Join: g.Join, Publish: g.Publish, Session: g.Session, Rooms: rooms})
}

// grantFromData reads a grant from a restored session's decoded data.
func grantFromData(v any) *connectGrant {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var j grantJSON
	if json.Unmarshal(raw, &j) != nil {
		return nil
	}
	return &connectGrant{TokenUser: j.TokenUser, Connect: j.Connect, Join: j.Join, Publish: j.Publish, Session: j.Session, rooms: j.Rooms}
}

func (g *connectGrant) hasRoom(room string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Contains(g.rooms, room)
}

func (g *connectGrant) addRoom(room string) {
	g.mu.Lock()
	if !slices.Contains(g.rooms, room) {
		g.rooms = append(g.rooms, room)
	}
	g.mu.Unlock()
}

func (g *connectGrant) removeRoom(room string) {
	g.mu.Lock()
	g.rooms = slices.DeleteFunc(g.rooms, func(r string) bool { return r == room })
	g.mu.Unlock()
}

// authenticateWithHooks is the connect middleware when hooks are set:
// authenticate, then the connect hook (or its cached answer), then a fresh
// grant for the rooms backends give the socket.
func (g *Gateway) authenticateWithHooks(s *socketio.Socket) error {
	var prev *connectGrant
	var prevUser string
	if s.Recovered() {
		p := sessionFromInfo(s.Data())
		prev, prevUser = p.Grant, p.User
	}
	if err := g.authenticate(s); err != nil {
		return err
	}
	sess := sessionOf(s)
	tokenUser := ""
	if !sess.Anonymous {
		tokenUser = sess.User
	}
	raw := sess.raw
	sess.raw = nil
	if prev != nil && prev.TokenUser == tokenUser && (prev.Connect || g.hooks.connect == nil) {
		// A recovery of the same user's session: the connect hook's answer
		// (and the rooms backends gave) stand.
		sess.Grant = prev
		if prevUser != "" && prevUser != sess.User {
			return g.switchUser(s, sess, prevUser)
		}
		return nil
	}
	sess.Grant = &connectGrant{TokenUser: tokenUser}
	if g.hooks.connect == nil {
		return nil
	}
	return g.askConnect(s, sess, raw)
}

// askConnect calls the connect hook for s and applies its answer.
func (g *Gateway) askConnect(s *socketio.Socket, sess *Session, claims map[string]any) error {
	h := s.Handshake()
	authPayload := maps.Clone(h.Auth)
	delete(authPayload, "token")
	id := newRequestID()
	req := &hook.ConnectRequest{
		Type: hook.TypeConnect, ID: id, Socket: hookSocket(s),
		Claims: claims, Headers: g.hookHeaders(s.Request()), Auth: authPayload,
		Address: g.limits.clientIP(s.Request()),
	}
	ctx, cancel := context.WithTimeout(s.Context(), g.cfg.HookTimeout)
	defer cancel()
	var resp *hook.ConnectResponse
	err := g.hooks.call(ctx, g.hooks.connect, id, req, func(body []byte) error {
		var err error
		resp, err = hook.DecodeConnectResponse(body)
		return err
	})
	if err != nil {
		g.log.Debug("roomcast gateway: connect hook failed", "sid", s.ID(), "err", err)
		return &socketio.ConnectError{Message: "unavailable: backend: " + clientError(err).Error(), Data: map[string]any{"code": codeUnavailable}, Reason: "hook"}
	}
	if !resp.Accept {
		msg := resp.Message
		if msg == "" {
			msg = "connection refused by the backend"
		}
		return &socketio.ConnectError{Message: msg, Data: resp.Data, Reason: "hook"}
	}
	if len(resp.Session) > maxHookSession {
		return &socketio.ConnectError{Message: "unavailable: backend: session data over 4 KiB", Data: map[string]any{"code": codeUnavailable}, Reason: "hook"}
	}
	gr := sess.Grant
	gr.Connect, gr.Join, gr.Publish = true, resp.Join, resp.Publish
	if len(resp.Session) > 0 && string(resp.Session) != "null" {
		gr.Session = resp.Session
	}
	if resp.User != "" && resp.User != sess.User {
		if !validName(resp.User) {
			return &socketio.ConnectError{Message: "unavailable: backend: invalid user", Data: map[string]any{"code": codeUnavailable}, Reason: "hook"}
		}
		if err := g.switchUser(s, sess, resp.User); err != nil {
			return err
		}
	}
	for _, room := range resp.Rooms {
		if !g.actionRoom(s, "join", room) {
			continue
		}
		if err := s.JoinContext(ctx, room); err != nil {
			return &socketio.ConnectError{Message: "unavailable: " + err.Error(), Data: map[string]any{"code": codeUnavailable}, Reason: "hook"}
		}
		gr.addRoom(room)
	}
	return nil
}

// switchUser makes user the socket's user: its user room and its identity.
func (g *Gateway) switchUser(s *socketio.Socket, sess *Session, user string) error {
	if err := s.Leave(userRoom(sess.User)); err != nil {
		return &socketio.ConnectError{Message: "unavailable: " + err.Error(), Reason: "adapter"}
	}
	sess.User = user
	if err := s.Join(userRoom(user)); err != nil {
		return &socketio.ConnectError{Message: "unavailable: " + err.Error(), Reason: "adapter"}
	}
	return nil
}

// hookHeaders are the request's headers named by --connect-hook-headers.
func (g *Gateway) hookHeaders(r *http.Request) map[string]string {
	if len(g.cfg.ConnectHookHeaders) == 0 || r == nil {
		return nil
	}
	out := map[string]string{}
	for _, name := range g.cfg.ConnectHookHeaders {
		name = strings.ToLower(strings.TrimSpace(name))
		if v := r.Header.Values(name); len(v) > 0 {
			out[name] = strings.Join(v, ", ")
		}
	}
	return out
}

func matchAny(patterns []string, room string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return auth.Match(p, room) })
}
