package adapter

import "errors"

var (
	// ErrUnavailable is returned when the adapter cannot reach its broker.
	ErrUnavailable = errors.New("adapter: redis unavailable")
	// ErrAckTimeout is returned when some acknowledgements did not arrive in
	// time: clients' acks, other nodes' answers to a request, or their
	// confirmations of a join or leave (AddSockets, DelSockets).
	ErrAckTimeout = errors.New("adapter: operation has timed out")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("adapter: closed")
)
