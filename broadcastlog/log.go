package broadcastlog

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
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

// Position is a parsed position: a stream entry ID.
type Position struct{ Ms, Seq uint64 }

// maxMillis bounds the time part, as the queue does.
const maxMillis = 1<<53 - 1

// ParsePosition parses a canonical "<ms>-<seq>" position.
func ParsePosition(s string) (Position, error) {
	i := strings.IndexByte(s, '-')
	if i <= 0 || i == len(s)-1 {
		return Position{}, fmt.Errorf("%w: %q", ErrInvalidPosition, s)
	}
	ms, ok1 := decimal(s[:i])
	seq, ok2 := decimal(s[i+1:])
	if !ok1 || !ok2 || ms > maxMillis {
		return Position{}, fmt.Errorf("%w: %q", ErrInvalidPosition, s)
	}
	return Position{ms, seq}, nil
}

func decimal(s string) (uint64, bool) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// String formats p as "<ms>-<seq>".
func (p Position) String() string { return string(p.Append(nil)) }

// Append appends p's text to b.
func (p Position) Append(b []byte) []byte {
	b = strconv.AppendUint(b, p.Ms, 10)
	b = append(b, '-')
	return strconv.AppendUint(b, p.Seq, 10)
}

// Less reports whether p precedes q.
func (p Position) Less(q Position) bool {
	return p.Ms < q.Ms || (p.Ms == q.Ms && p.Seq < q.Seq)
}

// Next is the smallest position after p.
func (p Position) Next() Position {
	if p.Seq == ^uint64(0) {
		return Position{p.Ms + 1, 0}
	}
	return Position{p.Ms, p.Seq + 1}
}

// ClampLimit applies the page size defaults.
func ClampLimit(limit int) int {
	if limit <= 0 {
		return DefaultPageSize
	}
	return min(limit, maxPageSize)
}
