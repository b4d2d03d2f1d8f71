package socketio

import (
	"errors"
	"fmt"
	"strings"

	"github.com/roomcast/roomcast/internal/parser"
)

var (
	// ErrReservedEvent is returned when emitting an event name Socket.IO keeps
	// for itself (or, through CheckEvent, one of Roomcast's own).
	ErrReservedEvent = errors.New("socketio: reserved event name")
	// ErrDisconnected is returned when the socket is gone.
	ErrDisconnected = errors.New("socketio: socket disconnected")
	// ErrUnknownNamespace is returned by Server.Namespace for a name never set up with Of.
	ErrUnknownNamespace = errors.New("socketio: unknown namespace")
	// ErrAckTimeout is returned when an acknowledgement did not arrive in time.
	ErrAckTimeout = errors.New("socketio: operation has timed out")
	// ErrAlreadyAcked is returned by Event.Ack after the first call.
	ErrAlreadyAcked = errors.New("socketio: event already acknowledged")
	// ErrNoAck is returned by Event.Ack when the client asked for no ack.
	ErrNoAck = errors.New("socketio: event has no ack")
)

// ConnectError refuses a connection from a middleware: the client receives a
// CONNECT_ERROR packet {"message": Message, "data": Data} and its
// "connect_error" listener is called with an Error whose message is Message.
type ConnectError struct {
	Message string
	Data    any
	// Reason is a short label for metrics ("auth", "middleware"...).
	// Defaults to "middleware".
	Reason string
	// Close, when true, closes the client's connection (every namespace on
	// it) once the CONNECT_ERROR is flushed: for a client that must not
	// keep retrying on the same transport (a rate limit).
	Close bool
}

func (e *ConnectError) Error() string { return e.Message }

// NewConnectError returns a ConnectError with message and optional data.
func NewConnectError(message string, data any) *ConnectError {
	return &ConnectError{Message: message, Data: data}
}

func connectErrorOf(err error) *ConnectError {
	var ce *ConnectError
	if errors.As(err, &ce) {
		return ce
	}
	return &ConnectError{Message: err.Error()}
}

func checkEvent(event string) error {
	if parser.Reserved(event) {
		return fmt.Errorf("%w: %q", ErrReservedEvent, event)
	}
	return nil
}

// ReservedEventPrefix starts the names of the events Roomcast itself sends
// (NotRecoveredEvent, the gateway's roomcast:token-expiring, ...), so that a
// client can trust them: CheckEvent refuses them to everyone else.
const ReservedEventPrefix = "roomcast:"

// CheckEvent returns ErrReservedEvent for the event names that a client or
// a backend may not emit through the server: those Socket.IO keeps for
// itself and Roomcast's own (ReservedEventPrefix). The server's own emits
// are checked against Socket.IO's names only.
func CheckEvent(event string) error {
	if strings.HasPrefix(event, ReservedEventPrefix) {
		return fmt.Errorf("%w: %q (the %s prefix is Roomcast's own)", ErrReservedEvent, event, ReservedEventPrefix)
	}
	return checkEvent(event)
}
