package gateway

import (
	"context"

	"github.com/roomcast/roomcast/hook"
	"github.com/roomcast/roomcast/socketio"
)

// publishHookOf is the publish hook of the first --publish-hooks pattern
// that matches one of rooms, or nil.
func (h *hooks) publishHookOf(rooms []string) *hookURL {
	if h == nil {
		return nil
	}
	for _, ph := range h.publish {
		for _, r := range rooms {
			if matchAny([]string{ph.pattern}, r) {
				return ph.target
			}
		}
	}
	return nil
}

// checkPublish asks the publish hook t about a client publish the token
// allows, then delivers it as the backend said: refused (a forbidden
// error ack with the backend's message), as is, or rewritten.
func (g *Gateway) checkPublish(ctx context.Context, t *hookURL, e *socketio.Event, p publishRequest, meta map[string]any) {
	s := e.Socket()
	id := newRequestID()
	req := &hook.PublishRequest{
		Type: hook.TypePublish, ID: id, Socket: hookSocket(s),
		Rooms: p.rooms, Event: p.event, Data: encodeBinary(p.data),
	}
	var resp *hook.PublishResponse
	err := g.hooks.call(ctx, t, id, req, func(body []byte) error {
		var err error
		resp, err = hook.DecodePublishResponse(body)
		return err
	})
	if err != nil {
		p.refuse(e, hookErrorAck(err))
		return
	}
	if !resp.Accept {
		msg := resp.Message
		if msg == "" {
			msg = "publish refused by the backend"
		}
		p.refuse(e, errorAck(codeForbidden, msg))
		return
	}
	if rw := resp.Rewrite; rw != nil {
		if rw.Event != "" {
			if err := socketio.CheckEvent(rw.Event); err != nil {
				p.refuse(e, hookErrorAck(errHookBadResponse))
				return
			}
			p.event = rw.Event
		}
		p.data = decodeBinary(rw.Data)
	}
	g.publishToRooms(e, p, meta)
}
