package presence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// Event types, the lifecycle of sockets and rooms.
const (
	EventConnect    = "connect"    // a socket connected (not one that recovered)
	EventDisconnect = "disconnect" // a socket is gone for good (Reason says why)
	EventJoin       = "join"       // the first socket of a user joined a room
	EventLeave      = "leave"      // the last socket of a user left a room
	EventOccupied   = "occupied"   // a room got its first member
	EventVacated    = "vacated"    // a room lost its last member
)

// ReasonNodeLost is the disconnect reason of the sockets of a node that
// stopped refreshing its lease, given by the node that swept them.
const ReasonNodeLost = "node lost"

// ErrUnavailable wraps the errors of a Store that cannot reach its backend.
var ErrUnavailable = errors.New("presence: unavailable")

// Event is one lifecycle event. Its ID is deterministic: whichever node
// decides or re-decides it (a sweep that resumes another's) gives it the
// same ID, so consumers de-duplicate by it.
type Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Namespace string          `json:"namespace"`
	Room      string          `json:"room,omitempty"`
	Socket    string          `json:"socket,omitempty"`
	User      string          `json:"user,omitempty"`
	Info      json.RawMessage `json:"info,omitempty"` // the user's public info (join, leave)
	Node      string          `json:"node"`
	Reason    string          `json:"reason,omitempty"`
	Members   int             `json:"members"` // the room's member users after the event
	Time      int64           `json:"time"`    // Unix milliseconds when it was decided
}

// EventID is the deterministic id of an event: a hash of its type, its
// subject (namespace, room, user or socket) and the generation the Store
// gave it (a user's membership of a room, a room's occupancy; empty for
// socket events, whose socket id is unique).
func EventID(typ, nsp, room, subject, gen string) string {
	h := sha256.New()
	for _, s := range []string{typ, nsp, room, subject, gen} {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	return typ + "-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// Socket is a socket as presence sees it.
type Socket struct {
	Namespace string
	ID        string
	User      string
	// Info is the user's public info (a JSON object), kept while the user
	// is a member and shown with it. Optional.
	Info json.RawMessage
}

// Member is one user of a room.
type Member struct {
	User    string          `json:"user"`
	Sockets int             `json:"sockets"`
	Info    json.RawMessage `json:"info,omitempty"`
}

// Page is a part of a room's members.
type Page struct {
	Members []Member // ordered by user
	Users   int      // member users of the room
	Sockets int      // sockets in the room
	// Next is the cursor of the next page; empty when this is the last.
	Next string
}

// RoomCount is a room with its member users and sockets.
type RoomCount struct {
	Name    string `json:"name"`
	Users   int    `json:"users"`
	Sockets int    `json:"sockets"`
}

// Store keeps presence. Every write returns the events it decided, in
// order (occupied before join, leave before vacated); the events are
// also handed to the Store's listener (Config.Listener), after the stream
// has them when there is one.
type Store interface {
	// Connect records that this node owns s. A socket that recovered (its
	// id is known, owned by any node) is taken over without an event;
	// otherwise the event is a connect.
	Connect(ctx context.Context, s Socket) ([]Event, error)
	// Disconnect ends s if this node still owns it: its disconnect event
	// carries reason. The socket's rooms must have been left before.
	Disconnect(ctx context.Context, s Socket, reason string) ([]Event, error)
	// Join puts s in room. A socket already in it (recovered on another
	// node) is taken over without an event.
	Join(ctx context.Context, s Socket, room string) ([]Event, error)
	// Leave takes s out of room if this node owns its entry there.
	Leave(ctx context.Context, s Socket, room string) ([]Event, error)
	// Members reads one page of room's members after cursor ("" for the
	// first), at most limit of them (limit 0: counts only).
	Members(ctx context.Context, nsp, room, cursor string, limit int) (Page, error)
	// Rooms lists the occupied rooms of nsp with their counts, by name.
	Rooms(ctx context.Context, nsp string) ([]RoomCount, error)
	// Throttle reports whether the caller is the one to send room's
	// coalesced count change for the next interval: true at most once
	// per interval per room, cluster-wide.
	Throttle(ctx context.Context, nsp, room string, interval time.Duration) (bool, error)
	// Close stops the Store's background work.
	Close() error
}

// Listener is told of the events a Store decided, on this node, after
// they were recorded (in the event stream when the Store has one),
// including those of a sweep of a dead node. It must not block for long;
// it is the point where a dispatcher (webhooks) or the gateway's
// announcements plug in.
type Listener func(events []Event)
