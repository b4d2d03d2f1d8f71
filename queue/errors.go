package queue

import (
	"errors"

	"github.com/roomcast/roomcast/queue/internal/core"
)

var (
	// ErrUnavailable wraps every failure to reach the backing store (Redis
	// down, timeouts, script errors). An Append that returns it did not
	// store the message for at least one user.
	ErrUnavailable = errors.New("queue: redis unavailable")
	// ErrOffsetExpired is returned by Read and Replay when entries after the
	// offset are no longer retained (trimmed by length or age), when the
	// offset is older than the retention, or when it is not a position of
	// the user's stream. The caller must treat the session as not recovered.
	ErrOffsetExpired = errors.New("queue: offset expired")
	// ErrInvalidOffset is returned when an offset is not a stream entry ID
	// ("<ms>-<seq>").
	ErrInvalidOffset = core.ErrInvalidOffset
	// ErrInvalidArgument is returned for an empty user, room or session id,
	// or a non-positive TTL.
	ErrInvalidArgument = core.ErrInvalidArgument
	// ErrSessionNotFound is returned by LoadSession when the session does
	// not exist or has expired.
	ErrSessionNotFound = errors.New("queue: session not found")
	// ErrRoomFull is returned by AddMember when the durable room already
	// holds its maximum number of members.
	ErrRoomFull = errors.New("queue: durable room is full")
	// ErrGap ends a live subscription that can no longer be delivered
	// without a gap: its pub/sub connection was lost and the entries
	// published meanwhile were trimmed before they could be read back.
	ErrGap = errors.New("queue: live stream has a gap")
	// ErrClosed is returned after Close, and ends live subscriptions.
	ErrClosed = errors.New("queue: closed")
	// ErrStopped is returned by Replay when its stop function was called
	// before the backlog was sent.
	ErrStopped = errors.New("queue: replay stopped")
)
