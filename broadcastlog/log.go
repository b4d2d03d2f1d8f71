package broadcastlog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/roomcast/roomcast/internal/streamid"
)

// Defaults shared by the implementations.
const (
	// DefaultRetention is how long entries are kept: socketio's default
	// recovery window.
	DefaultRetention = 2 * time.Minute
	// DefaultMaxLen caps each namespace's log.
	DefaultMaxLen = 100_000
	// DefaultPageSize is the page size of Read when none is given.
	DefaultPageSize = 500
	maxPageSize     = 10_000
)

// Entry is one logged broadcast: the selection and the packet.
type Entry struct {
	// ID is the entry's position, set by Append and returned by Read and
	// Tail.
	ID string
	// Rooms and Except are the broadcast's selection (empty Rooms: the
	// whole namespace).
	Rooms  []string
	Except []string
	// Data is the EVENT packet's data: the JSON array [event, ...args],
	// binary arguments as placeholders for Attachments.
	Data        json.RawMessage
	Attachments [][]byte
}

// Selects reports whether a socket in rooms (its own id room included)
// is selected by the entry: in one of Rooms (or Rooms is empty) and in
// none of Except.
func (e *Entry) Selects(rooms []string) bool {
	for _, x := range e.Except {
		for _, r := range rooms {
			if x == r {
				return false
			}
		}
	}
	if len(e.Rooms) == 0 {
		return true
	}
	for _, want := range e.Rooms {
		for _, r := range rooms {
			if want == r {
				return true
			}
		}
	}
	return false
}

// AsyncAppender is a Log that can append without its caller waiting:
// appends queued while one round trip is in flight go together in the
// next, in the order they were queued (so one publisher's broadcasts keep
// their order). done is called once, from the log's own goroutine, with
// the entry's position or the error Append would have returned; it must
// not block.
type AsyncAppender interface {
	AppendAsync(nsp string, e Entry, done func(id string, err error))
}

// Log is a per-namespace broadcast log.
type Log interface {
	// Append adds e at the end of namespace nsp's log and returns its
	// position. e.ID is ignored; the log may keep e's slices.
	Append(ctx context.Context, nsp string, e Entry) (string, error)
	// Read returns up to limit entries strictly after the position after,
	// oldest first (limit <= 0: DefaultPageSize). It returns ErrExpired,
	// never a partial history, when entries after after were trimmed or
	// after lies beyond the log's end. With after "" it reads from the
	// oldest entry the log still holds (history), never ErrExpired.
	Read(ctx context.Context, nsp, after string, limit int) ([]Entry, error)
	// Last returns the position of the newest entry of nsp's log ("0-0"
	// when it is empty): every later entry follows it.
	Last(ctx context.Context, nsp string) (string, error)
	// Tail calls fn with the entries appended after the position after, in
	// order, in batches, from one goroutine, until cancel is called or ctx
	// ends. If the log cannot continue without a gap (entries were trimmed
	// before fn could have them) fn is called with ErrExpired and the tail
	// goes on from the oldest entry left. fn must not block for long.
	Tail(ctx context.Context, nsp, after string, fn func([]Entry, error)) (cancel func(), err error)
	// Close ends every tail; later calls fail with ErrClosed.
	Close() error
}

// Position is a parsed position: a stream entry ID, ordered and formatted
// as the queue's offsets are (Less, Next, String, Append).
type Position = streamid.ID

// ParsePosition parses a canonical "<ms>-<seq>" position.
func ParsePosition(s string) (Position, error) {
	p, err := streamid.Parse(s)
	if err != nil {
		return Position{}, fmt.Errorf("%w: %q", ErrInvalidPosition, s)
	}
	return p, nil
}

// ClampLimit applies the page size defaults.
func ClampLimit(limit int) int {
	if limit <= 0 {
		return DefaultPageSize
	}
	return min(limit, maxPageSize)
}
