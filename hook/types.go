package hook

import (
	"encoding/base64"
	"encoding/json"
)

// Request types, the "type" of every request body.
const (
	TypeEvent   = "event"
	TypeConnect = "connect"
	TypePublish = "publish"
	// TypeLifecycle is a batch of lifecycle events (--lifecycle-hook).
	TypeLifecycle = "lifecycle"
)

// Lifecycle event types, the "type" of a LifecycleEvent.
const (
	LifecycleConnect    = "connect"    // a socket connected (not one that recovered)
	LifecycleDisconnect = "disconnect" // a socket is gone for good (Reason says why)
	LifecycleJoin       = "join"       // the first socket of a user joined a room
	LifecycleLeave      = "leave"      // the last socket of a user left a room
	LifecycleOccupied   = "occupied"   // a room got its first member
	LifecycleVacated    = "vacated"    // a room lost its last member
)

// BinaryKey marks a binary value: {"$binary": "<standard base64>"}.
const BinaryKey = "$binary"

// Binary wraps b for a response's ack or emit args: the gateway sends it to
// the client as a binary attachment.
func Binary(b []byte) map[string]any {
	return map[string]any{BinaryKey: base64.StdEncoding.EncodeToString(b)}
}

// BinaryOf returns the bytes of a decoded {"$binary": ...} value, and false
// for anything else.
func BinaryOf(v any) ([]byte, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, false
	}
	s, ok := m[BinaryKey].(string)
	if !ok {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}

// Socket is who a request is about: filled by the gateway from the
// verified token (or the connect hook's answer), never from client input.
type Socket struct {
	// Namespace is the socket's namespace ("/", "/chat").
	Namespace string `json:"namespace"`
	// Socket is the socket id. Emitting to sockets: [Socket] reaches it
	// alone; except: [Socket] spares it.
	Socket string `json:"socket"`
	// User is the token's sub (or the connect hook's override), or a
	// random "anon:..." id for an anonymous client.
	User string `json:"user"`
	// Anonymous is true for a client without a token.
	Anonymous bool `json:"anonymous,omitempty"`
	// Session is the data the connect hook returned for this socket.
	Session json.RawMessage `json:"session,omitempty"`
}

// EventRequest is a client event the gateway does not handle itself, sent
// to the webhook (--webhook, or the namespace's).
type EventRequest struct {
	Type string `json:"type"` // "event"
	// ID identifies the request; a retry carries the same ID.
	ID string `json:"id"`
	Socket
	// Rooms are the rooms the socket is in, its own id room and user room
	// excepted.
	Rooms []string `json:"rooms"`
	// Event is the event name the client emitted.
	Event string `json:"event"`
	// Args are the event's arguments; binary ones as {"$binary": base64}.
	Args []any `json:"args"`
	// Ack is true when the client waits for an acknowledgement: the
	// response's "ack" answers it.
	Ack bool `json:"ack"`
}

// EventResponse is the webhook's answer. Its actions run in this order:
// leave, join, emit, then the ack goes out, then the disconnect.
type EventResponse struct {
	// Ack are the arguments of the client's acknowledgement callback (when
	// it asked for one); absent means an ack without arguments.
	Ack []any `json:"ack,omitempty"`
	// Join and Leave are rooms this socket joins and leaves ("user:" rooms
	// excepted). The backend is trusted: the token's patterns do not apply.
	Join  []string `json:"join,omitempty"`
	Leave []string `json:"leave,omitempty"`
	// Emit are messages to send, each like a POST /api/v1/emit body.
	Emit []Emit `json:"emit,omitempty"`
	// Disconnect ends the socket (a Socket.IO DISCONNECT: the client does
	// not reconnect on its own).
	Disconnect bool `json:"disconnect,omitempty"`
}

// Emit is one message of a response, addressed like POST /api/v1/emit:
// to the sockets in any of Rooms, Sockets or Users and in none of Except,
// or to the whole namespace with Broadcast. Messages to Users are durable.
type Emit struct {
	Rooms     []string `json:"rooms,omitempty"`
	Sockets   []string `json:"sockets,omitempty"`
	Users     []string `json:"users,omitempty"`
	Except    []string `json:"except,omitempty"`
	Broadcast bool     `json:"broadcast,omitempty"`
	Volatile  bool     `json:"volatile,omitempty"`
	Event     string   `json:"event"`
	Args      []any    `json:"args,omitempty"`
}

// ConnectRequest asks the connect hook (--connect-hook) whether a socket
// may connect, before its CONNECT is answered.
type ConnectRequest struct {
	Type string `json:"type"` // "connect"
	ID   string `json:"id"`
	Socket
	// Claims are the verified token's claims; null for an anonymous client.
	Claims map[string]any `json:"claims"`
	// Headers are the handshake's headers named by --connect-hook-headers
	// (lower-case names); cookies only when "cookie" is named.
	Headers map[string]string `json:"headers,omitempty"`
	// Auth is the CONNECT auth payload without its "token".
	Auth map[string]any `json:"auth,omitempty"`
	// Address is the client's IP address (behind --trusted-proxies).
	Address string `json:"address,omitempty"`
}

// ConnectResponse accepts or refuses a connection.
type ConnectResponse struct {
	// Accept must be true to let the socket connect.
	Accept bool `json:"accept"`
	// Message is the refusal's text, the client's connect_error message;
	// Data its err.data.
	Message string `json:"message,omitempty"`
	Data    any    `json:"data,omitempty"`
	// User, when set, replaces the socket's user (its "user:" room, its
	// queue, its limits).
	User string `json:"user,omitempty"`
	// Rooms are joined before the CONNECT is answered.
	Rooms []string `json:"rooms,omitempty"`
	// Join and Publish, when present, replace the token's join and
	// publish patterns for this socket ([] allows none).
	Join    *[]string `json:"join,omitempty"`
	Publish *[]string `json:"publish,omitempty"`
	// Session is kept with the socket (through recovery too) and sent
	// with its event and publish requests. At most 4 KiB.
	Session json.RawMessage `json:"session,omitempty"`
}

// PublishRequest asks the publish hook of a room pattern whether a
// client's publish may be delivered.
type PublishRequest struct {
	Type string `json:"type"` // "publish"
	ID   string `json:"id"`
	Socket
	// Rooms are the publish's rooms (every one the token allows).
	Rooms []string `json:"rooms"`
	Event string   `json:"event"`
	Data  any      `json:"data"`
}

// PublishResponse accepts, rewrites or refuses a publish.
type PublishResponse struct {
	// Accept must be true to deliver.
	Accept bool `json:"accept"`
	// Message is the refusal's text, in the client's forbidden error ack.
	Message string `json:"message,omitempty"`
	// Rewrite, when present, replaces the event and data delivered.
	Rewrite *Rewrite `json:"rewrite,omitempty"`
}

// Rewrite replaces a publish's event (when not empty) and data.
type Rewrite struct {
	Event string `json:"event,omitempty"`
	Data  any    `json:"data"`
}

// LifecycleRequest is a batch of lifecycle events, POSTed to the lifecycle
// hook (--lifecycle-hook) at least once: a batch the backend did not
// answer with a 2xx is sent again, and a node that died with a batch in
// flight leaves it to another node, so the same events (and the same
// batch ID) may arrive more than once. De-duplicate by LifecycleEvent.ID.
// The answer's body is ignored; any 2xx acknowledges the whole batch.
type LifecycleRequest struct {
	Type string `json:"type"` // "lifecycle"
	// ID identifies the batch: a hash of its events' IDs, the same on
	// every retry of the same events.
	ID string `json:"id"`
	// Events are in the order they were decided on one node (with Redis,
	// the order of the event stream); batches may interleave across nodes.
	Events []LifecycleEvent `json:"events"`
}

// LifecycleEvent is one event of the lifecycle of sockets and rooms, as
// in the event stream <prefix>:events (docs/PROTOCOL.md).
type LifecycleEvent struct {
	// ID is deterministic: whichever node decides (or re-decides, after a
	// crash) the event gives it the same ID.
	ID string `json:"id"`
	// Type is one of the Lifecycle* constants.
	Type      string `json:"type"`
	Namespace string `json:"namespace"`
	// Room is set for join, leave, occupied and vacated.
	Room string `json:"room,omitempty"`
	// Socket is set for connect and disconnect (and join and leave: the
	// socket that made the change).
	Socket string `json:"socket,omitempty"`
	// User is the socket's user (connect, disconnect, join, leave).
	User string `json:"user,omitempty"`
	// Info is the user's public info (join, leave): {name?, info?}.
	Info json.RawMessage `json:"info,omitempty"`
	// Node is the node that held the socket (or, for occupied and vacated,
	// the room entry) the event is about: for the events of a lost node's
	// sweep, the lost node, not the sweeper.
	Node string `json:"node"`
	// Reason is a disconnect's socket.io reason, or "node lost".
	Reason string `json:"reason,omitempty"`
	// Members is the room's member users after the event.
	Members int `json:"members"`
	// Time is when the event was decided, in Unix milliseconds.
	Time int64 `json:"time"`
}
