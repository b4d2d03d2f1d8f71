package ratelimit

import "errors"

var (
	// ErrTooMany is returned by Acquire when the key already holds its
	// maximum number of connections.
	ErrTooMany = errors.New("ratelimit: too many connections")
	// ErrUnavailable wraps the Redis errors passed to OnError callbacks.
	ErrUnavailable = errors.New("ratelimit: redis unavailable")
	// ErrClosed is returned by Acquire after Close.
	ErrClosed = errors.New("ratelimit: closed")
)
