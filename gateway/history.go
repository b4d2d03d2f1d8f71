package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/roomcast/roomcast/socketio"
)

// codeExpired answers a history request whose since is older than what the
// broadcast log keeps.
const codeExpired = "expired"

// maxHistory caps one history request.
const maxHistory = 1000

// historyArg reads the history part of a join, {room, rewind: n} or
// {room, since: offset}; ok is false when the join asks for none.
func historyArg(e *socketio.Event) (since string, limit int, ok bool) {
	m, _ := e.Args[0].(map[string]any)
	if m == nil {
		return "", 0, false
	}
	if s, isStr := m["since"].(string); isStr && s != "" {
		return s, maxHistory, true
	}
	if n, isNum := m["rewind"].(json.Number); isNum {
		if v, err := n.Int64(); err == nil && v > 0 {
			return "", int(min(v, maxHistory)), true
		}
	}
	return "", 0, false
}

// joinHistory sends the history a join asked for to the socket, before the
// join's ack; it returns the error ack to answer instead, or nil.
func (g *Gateway) joinHistory(e *socketio.Event, room string) map[string]any {
	since, limit, ok := historyArg(e)
	if !ok {
		return nil
	}
	s := e.Socket()
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.EventTimeout)
	defer cancel()
	entries, err := s.Namespace().History(ctx, room, since, limit)
	if errors.Is(err, socketio.ErrHistoryExpired) {
		return errorAck(codeExpired, "the history after "+quote(since)+" is no longer kept")
	}
	if err != nil {
		return errorAck(codeUnavailable, err.Error())
	}
	if err := s.EmitHistory(entries); err != nil {
		return errorAck(codeUnavailable, err.Error())
	}
	return nil
}

type historyEntry struct {
	Offset      string          `json:"offset"`
	Data        json.RawMessage `json:"data"`
	Attachments [][]byte        `json:"attachments,omitempty"`
}

// apiHistory answers GET /api/v1/history?room=&since=&limit=&namespace=:
// the broadcasts to room after since (the last limit without since).
func (g *Gateway) apiHistory(r *http.Request) (any, error) {
	q := r.URL.Query()
	room := q.Get("room")
	if !validRoom(room) {
		return nil, badRequest("room is required")
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			return nil, badRequest("limit must be a positive integer")
		}
		limit = min(v, maxHistory)
	}
	nsp, err := g.namespace(q.Get("namespace"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.APITimeout)
	defer cancel()
	entries, err := nsp.History(ctx, room, q.Get("since"), limit)
	if errors.Is(err, socketio.ErrHistoryExpired) {
		return nil, &apiError{status: http.StatusGone, code: codeExpired, message: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	out := make([]historyEntry, len(entries))
	for i, e := range entries {
		out[i] = historyEntry{Offset: e.Offset, Data: e.Data, Attachments: e.Attachments}
	}
	return map[string]any{"entries": out}, nil
}
