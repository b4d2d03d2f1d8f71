package broadcastlog

import "errors"

var (
	// ErrExpired is returned by Read when entries after the position were
	// already trimmed (retention, length cap, Redis lost them) or the
	// position lies beyond the log's end: what follows it cannot be given
	// in full.
	ErrExpired = errors.New("broadcastlog: position expired")
	// ErrInvalidPosition is returned for a malformed position.
	ErrInvalidPosition = errors.New("broadcastlog: invalid position")
	// ErrUnavailable wraps every failure to reach the backing store.
	ErrUnavailable = errors.New("broadcastlog: unavailable")
	// ErrClosed is returned by calls on a closed Log.
	ErrClosed = errors.New("broadcastlog: closed")
)
