package queue

import (
	"errors"
	"fmt"

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
	// ErrQueueFull is the reason an Append refused a message for a user:
	// the user's stream holds its maximum number of entries or bytes. The
	// stream is unchanged; entries leave it by age (the retention).
	ErrQueueFull = errors.New("queue: user queue is full")
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

// AppendError is the error of an Append that did not store its message for
// every user. Errs has one element per user given to Append, in order: nil
// where the message was stored, the reason where it was not (ErrQueueFull,
// or an error wrapping ErrUnavailable). errors.Is matches each reason.
type AppendError struct {
	Errs []error
}

func (e *AppendError) Error() string {
	var first error
	n := 0
	for _, err := range e.Errs {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	if n == 1 {
		return first.Error()
	}
	return fmt.Sprintf("%v (and %d more users)", first, n-1)
}

// Unwrap returns the reasons.
func (e *AppendError) Unwrap() []error {
	var out []error
	for _, err := range e.Errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// appendError is nil when no user failed, else an *AppendError over the
// caller's positions (pos maps them to the distinct users of errs).
func appendError(errs []error, pos []int) error {
	failed := false
	for _, err := range errs {
		failed = failed || err != nil
	}
	if !failed {
		return nil
	}
	out := make([]error, len(pos))
	for i, p := range pos {
		out[i] = errs[p]
	}
	return &AppendError{Errs: out}
}
