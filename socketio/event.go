package socketio

import (
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/roomcast/roomcast/internal/parser"
)

// Event is an event a client sent.
type Event struct {
	// Name is the event name.
	Name string
	// Args are the event's arguments: JSON values decoded as map[string]any,
	// []any, string, json.Number, bool and nil, with binary attachments as []byte.
	Args []any

	socket *Socket
	ackID  int64
	acked  atomic.Bool
}

// Socket returns the socket the event came from.
func (e *Event) Socket() *Socket { return e.socket }

// HasAck reports whether the client waits for an acknowledgement.
func (e *Event) HasAck() bool { return e.ackID != parser.NoID }

// Ack answers the client's acknowledgement callback with args. It may be
// called once, from any goroutine.
func (e *Event) Ack(args ...any) error {
	if !e.HasAck() {
		return ErrNoAck
	}
	if !e.acked.CompareAndSwap(false, true) {
		return ErrAlreadyAcked
	}
	s := e.socket
	if !s.connected.Load() {
		return ErrDisconnected
	}
	data, atts, typ, err := parser.MarshalArgs("", args, true)
	if err != nil {
		return err
	}
	if !s.client.sendPacket(&parser.Packet{Type: typ, Namespace: s.nsp.name, ID: e.ackID, Data: data, Attachments: atts}) {
		return ErrDisconnected
	}
	return nil
}

// Decode decodes argument i into v (through JSON; binary attachments inside
// are restored only into []byte or any fields).
func (e *Event) Decode(i int, v any) error {
	if i < 0 || i >= len(e.Args) {
		return fmt.Errorf("socketio: event %q has no argument %d", e.Name, i)
	}
	if b, ok := e.Args[i].([]byte); ok {
		if p, ok := v.(*[]byte); ok {
			*p = b
			return nil
		}
	}
	raw, err := json.Marshal(e.Args[i])
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}
