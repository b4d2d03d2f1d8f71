package main

import (
	"fmt"
	"strings"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

const (
	userRoomPrefix = "user:"
	maxRoomLen     = 256
	maxEventLen    = 128
	maxRooms       = 64
)

// newServer builds the socket.io server with the contract of
// loadtest/peer/server.js. Options are the library's defaults (websocket
// and polling, ping every 25 s with a 20 s timeout, 1 MB messages, no
// per-message deflate), as the Node peer keeps socket.io's; CORS reflects
// any origin as the Node peer's {origin: true}.
func newServer(v *verifier) *socket.Server {
	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	opts.SetCors(&types.Cors{Origin: true})
	io := socket.NewServer(nil, opts)

	io.Use(func(s *socket.Socket, next func(*socket.ExtendedError)) {
		var token any
		if auth := s.Handshake().Auth; auth != nil {
			token = auth["token"]
		}
		c, err := v.verify(token)
		if err != nil {
			next(socket.NewExtendedError(err.Error(), nil))
			return
		}
		s.SetData(c)
		next(nil)
	})

	_ = io.On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		c := s.Data().(*claims)
		s.Join(socket.Room(userRoomPrefix + c.Sub))
		_ = s.On("join", func(args ...any) { onJoin(s, c, args) })
		_ = s.On("leave", func(args ...any) { onLeave(s, args) })
		_ = s.On("publish", func(args ...any) { onPublish(s, c, args) })
		s.OnAny(func(args ...any) {
			ev, _ := args[0].(string)
			if ev == "join" || ev == "leave" || ev == "publish" {
				return
			}
			_, ack := split(args[1:])
			reply(ack, errorAck("unknown_event", fmt.Sprintf(`event "%s" is not handled by this server`, clip(ev))))
		})
	})
	return io
}

func onJoin(s *socket.Socket, c *claims, args []any) {
	arg, ack := split(args)
	room, ok := roomArg(arg)
	if !ok {
		reply(ack, errorAck("bad_request", "join expects a room name (1 to 256 bytes)"))
		return
	}
	if strings.HasPrefix(room, userRoomPrefix) || !allowed(c.Join, room) {
		reply(ack, errorAck("forbidden", fmt.Sprintf(`not allowed to join "%s"`, clip(room))))
		return
	}
	s.Join(socket.Room(room))
	reply(ack, okAck())
}

func onLeave(s *socket.Socket, args []any) {
	arg, ack := split(args)
	room, ok := roomArg(arg)
	if !ok {
		reply(ack, errorAck("bad_request", "leave expects a room name"))
		return
	}
	if strings.HasPrefix(room, userRoomPrefix) {
		reply(ack, errorAck("forbidden", fmt.Sprintf(`not allowed to leave "%s"`, clip(room))))
		return
	}
	s.Leave(socket.Room(room))
	reply(ack, okAck())
}

func onPublish(s *socket.Socket, c *claims, args []any) {
	arg, ack := split(args)
	var p map[string]any
	switch v := arg.(type) {
	case map[string]any:
		p = v
	case []any: // an object in JavaScript too, without the fields
		p = map[string]any{}
	default:
		reply(ack, errorAck("bad_request", "publish expects an object {room|rooms, event, data}"))
		return
	}
	var rooms []any
	if r, ok := p["room"].(string); ok {
		rooms = append(rooms, r)
	}
	if rs, ok := p["rooms"].([]any); ok {
		rooms = append(rooms, rs...)
	}
	if len(rooms) == 0 {
		reply(ack, errorAck("bad_request", "publish needs room or rooms"))
		return
	}
	if len(rooms) > maxRooms {
		reply(ack, errorAck("bad_request", "at most 64 rooms per publish"))
		return
	}
	names := make([]string, len(rooms))
	for i, r := range rooms {
		name, ok := r.(string)
		if !ok || name == "" || len(name) > maxRoomLen {
			reply(ack, errorAck("bad_request", "room names are 1 to 256 bytes"))
			return
		}
		if strings.HasPrefix(name, userRoomPrefix) || !allowed(c.Publish, name) {
			reply(ack, errorAck("forbidden", fmt.Sprintf(`not allowed to publish to "%s"`, clip(name))))
			return
		}
		names[i] = name
	}
	ev, _ := p["event"].(string)
	if ev == "" || len(ev) > maxEventLen {
		reply(ack, errorAck("bad_request", "publish needs an event name (1 to 128 bytes)"))
		return
	}
	for _, r := range names {
		// To excludes the publishing socket itself, as socket.to() in Node.
		if err := s.To(socket.Room(r)).Emit(ev, p["data"], map[string]any{"room": r, "user": c.Sub}); err != nil {
			reply(ack, errorAck("bad_request", err.Error())) // a reserved event name
			return
		}
	}
	reply(ack, okAck())
}

// split separates an event's first argument from its ack callback, which
// the library appends last when the client asked for one.
func split(args []any) (arg any, ack socket.Ack) {
	if n := len(args); n > 0 {
		if a, ok := args[n-1].(socket.Ack); ok {
			ack, args = a, args[:n-1]
		}
	}
	if len(args) > 0 {
		arg = args[0]
	}
	return arg, ack
}

// roomArg reads a room given as a name or as {room}.
func roomArg(arg any) (string, bool) {
	var room string
	switch v := arg.(type) {
	case string:
		room = v
	case map[string]any:
		room, _ = v["room"].(string)
	}
	return room, room != "" && len(room) <= maxRoomLen
}

func reply(ack socket.Ack, v any) {
	if ack != nil {
		ack([]any{v}, nil)
	}
}

func okAck() map[string]any { return map[string]any{"ok": true} }

func errorAck(code, message string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": message}}
}

// clip shortens a name quoted in an error message to 64 characters.
func clip(s string) string {
	n := 0
	for i := range s {
		if n == 64 {
			return s[:i]
		}
		n++
	}
	return s
}
