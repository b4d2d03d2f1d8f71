package queue

import (
	"context"
	"encoding/json"
	"time"

	"github.com/roomcast/roomcast/queue/internal/core"
)

// Defaults shared by the implementations.
const (
	// DefaultMaxLen bounds the length of each user's stream.
	DefaultMaxLen = 10000
	// DefaultMaxBytes bounds the payload bytes (Message.Size) held in each
	// user's stream.
	DefaultMaxBytes = 1 << 20
	// DefaultRetention bounds the age of each user's stream entries.
	DefaultRetention = 24 * time.Hour
	// DefaultMaxMembers bounds the members of each durable room.
	DefaultMaxMembers = 10000
	// DefaultPageSize is the page size of Read and Replay when none is given.
	DefaultPageSize = core.DefaultPageSize
)

// Message is one durable message in a user's stream.
type Message struct {
	// ID is the stream entry ID ("1700000000000-0"), set by Append and
	// returned by Read and live deliveries. It is the client's offset.
	ID        string
	Namespace string
	Event     string
	// Data holds the event's arguments as a JSON array; binary arguments
	// are placeholders ({"_placeholder":true,"num":N}) for Attachments[N].
	Data        json.RawMessage
	Attachments [][]byte
}

// Size is the message's payload as the quotas count it: the bytes of its
// event name, of its JSON arguments and of its binary attachments — what
// a store keeps for it, without the entry ID and the namespace.
func (m Message) Size() int {
	n := len(m.Event) + len(m.Data)
	for _, a := range m.Attachments {
		n += len(a)
	}
	return n
}

// Session is what a disconnected socket leaves behind for connection state
// recovery (socket.io's private session id, pid).
type Session struct {
	PID       string          `json:"pid"`
	SID       string          `json:"sid"`
	User      string          `json:"user"`
	Namespace string          `json:"nsp"`
	Rooms     []string        `json:"rooms,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	// Offset is the ID of the last message the socket was sent.
	Offset string `json:"offset"`
}

// Store is a per-user durable queue with live delivery, recovery sessions
// and durable room membership. Implementations are safe for concurrent use.
type Store interface {
	// Append stores msg at the end of each user's stream and publishes it
	// live to that user's subscribers in one atomic step per user, so every
	// live delivery carries its entry ID. It returns the IDs in users order
	// (a user listed twice is appended once and gets the same ID). Each
	// user's append stands alone: a user's stream that is full (MaxLen
	// entries, or MaxBytes bytes of Message.Size with msg) refuses msg
	// (ErrQueueFull) and keeps what it holds — nothing is trimmed to make
	// room — while the other users get it. When msg was not stored for some
	// user, Append returns the IDs of the users that have it ("" for the
	// others) and an *AppendError saying why per user (ErrQueueFull, or an
	// error wrapping ErrUnavailable). msg.ID is ignored. Implementations may keep msg.Data and
	// msg.Attachments: the caller must not modify them afterwards.
	Append(ctx context.Context, users []string, msg Message) ([]string, error)
	// Subscribe calls fn with each message appended to user's stream after
	// Subscribe returns, in stream order (IDs only increase), until cancel is
	// called. (Messages appended shortly before it returned may be delivered
	// too, after a reconnection; Replay filters them out by ID.) fn is called from the Store's delivery goroutine and must not
	// block or call back into the Store's Append; it may call cancel. If the
	// subscription ends on its own (the Store closed, or its live stream
	// could not be delivered without a gap) fn is called once with a zero
	// Message and an error wrapping ErrClosed or ErrGap, and never again.
	// A call already running when cancel returns may still complete.
	Subscribe(ctx context.Context, user string, fn func(Message, error)) (cancel func(), err error)
	// Read returns up to limit messages strictly after the offset after,
	// oldest first (limit <= 0 means DefaultPageSize). It returns
	// ErrOffsetExpired, and never a partial history, when entries after
	// after were already trimmed, when after is older than the retention,
	// or when after lies beyond the stream's last entry.
	Read(ctx context.Context, user, after string, limit int) ([]Message, error)
	// Last returns the offset of a fresh session: the newest entry ID of
	// user's stream, or, when the stream is empty, an offset that precedes
	// every entry appended later.
	Last(ctx context.Context, user string) (string, error)
	// SaveSession stores s under s.PID for ttl, replacing any previous one.
	SaveSession(ctx context.Context, s Session, ttl time.Duration) error
	// LoadSession returns the session saved under pid, or ErrSessionNotFound.
	LoadSession(ctx context.Context, pid string) (Session, error)
	// DeleteSession removes the session saved under pid, if any.
	DeleteSession(ctx context.Context, pid string) error
	// AddMember makes user a durable member of room (idempotent). It returns
	// ErrRoomFull when room already holds its maximum number of members.
	AddMember(ctx context.Context, room, user string) error
	// RemoveMember ends user's durable membership of room (idempotent).
	RemoveMember(ctx context.Context, room, user string) error
	// Members returns up to limit members of room in byte order (limit <= 0:
	// all of them).
	Members(ctx context.Context, room string, limit int) ([]string, error)
	// MemberOf returns the durable rooms user is a member of, in byte
	// order (none: an empty list), so that the memberships can be checked
	// against the user's current rights.
	MemberOf(ctx context.Context, user string) ([]string, error)
	// Ready reports whether the Store can serve requests.
	Ready(ctx context.Context) error
	// Close ends every subscription and makes later calls fail with
	// ErrClosed. It does not close a Redis client it was given.
	Close() error
}

// CompareOffsets compares two offsets (stream entry IDs) by stream order:
// -1 when a precedes b, 0 when equal, +1 when a follows b. It returns
// ErrInvalidOffset when either is malformed. Clients de-duplicate
// deliveries by keeping the greatest offset seen.
func CompareOffsets(a, b string) (int, error) {
	x, err := core.ParseID(a)
	if err != nil {
		return 0, err
	}
	y, err := core.ParseID(b)
	if err != nil {
		return 0, err
	}
	switch {
	case x.Less(y):
		return -1, nil
	case y.Less(x):
		return 1, nil
	}
	return 0, nil
}
