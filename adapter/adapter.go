package adapter

import (
	"context"
	"sync"
)

// DefaultPrefix starts every Redis channel and key when no prefix is
// configured: @socket.io/redis-adapter's default key.
const DefaultPrefix = "socket.io"

// Options selects sockets: members of any of Rooms (all sockets when empty)
// that are in none of Except. It is socket.io's BroadcastOptions.
type Options struct {
	Rooms  []string
	Except []string
	// Volatile drops the packet for sockets that are not ready to write it.
	Volatile bool
	// Local restricts the operation to this node.
	Local bool
	// Log, when set, is the broadcast's position in a broadcast log
	// (package broadcastlog) that every Roomcast node tails and delivers
	// from: the adapter only relays the broadcast to nodes that do not read
	// the log (socket.io servers in a mixed fleet), marked with it, and
	// delivers it to no socket itself, locally or on receipt.
	Log string
}

// Handshake is what a socket presented when it connected.
type Handshake struct {
	Headers map[string]string `json:"headers"`
	Time    string            `json:"time"`
	Address string            `json:"address"`
	XDomain bool              `json:"xdomain"`
	Secure  bool              `json:"secure"`
	Issued  int64             `json:"issued"`
	URL     string            `json:"url"`
	Query   map[string]string `json:"query"`
	Auth    map[string]any    `json:"auth"`
}

// SocketInfo describes a socket anywhere in the cluster (socket.io's RemoteSocket).
// A cluster adapter does not send a socket's credentials to other nodes: a
// remote socket's Handshake carries no Headers, Query, Address or Auth.
type SocketInfo struct {
	ID        string    `json:"id"`
	Handshake Handshake `json:"handshake"`
	Rooms     []string  `json:"rooms"`
	Data      any       `json:"data"`
	// Node is the id of the node that holds the socket.
	Node string `json:"node,omitempty"`
}

// Socket is a node-local socket as an adapter drives it.
type Socket interface {
	ID() string
	// Deliver queues m for the client without blocking. It reports false when
	// the packet was dropped (volatile and not ready, or closed).
	Deliver(m *Message, volatile bool) bool
	// DeliverWithAck is Deliver for a message with an ack id: onAck is called
	// once with the client's answer.
	DeliverWithAck(m *Message, onAck func(args []any)) bool
	// Info describes the socket; Rooms and Node are filled by the adapter.
	Info() SocketInfo
	// Disconnect disconnects the socket from its namespace, and closes its
	// underlying connection when close is true.
	Disconnect(close bool)
}

// Namespace is the namespace an adapter serves.
type Namespace interface {
	Name() string
	// HandleServerSideEmit delivers a serverSideEmit from another node. ack is
	// nil when the sender does not wait for an answer.
	HandleServerSideEmit(args []any, ack func(args []any))
}

// Factory creates the adapter of one namespace.
type Factory func(nsp Namespace) (Adapter, error)

// Adapter is the contract between a namespace and the cluster.
type Adapter interface {
	// AddAll puts a local socket in rooms (creating its entry if needed).
	AddAll(s Socket, rooms ...string) error
	// Del removes a local socket from room.
	Del(s Socket, room string)
	// DelAll removes a local socket from every room and from the adapter.
	DelAll(s Socket)
	// Rooms returns the rooms of a local socket.
	Rooms(id string) []string
	// Socket returns a local socket by id.
	Socket(id string) (Socket, bool)
	// LocalRooms returns the rooms that have a member on this node.
	LocalRooms() []string

	// Broadcast delivers m to the selected sockets of every node.
	Broadcast(ctx context.Context, m *Message, opts Options) error
	// BroadcastWithAck delivers m (whose Packet.ID is set) to the selected
	// sockets and waits for each client's ack until ctx ends; on timeout it
	// returns the acks received and ErrAckTimeout.
	BroadcastWithAck(ctx context.Context, m *Message, opts Options) ([][]any, error)
	// FetchSockets lists the selected sockets of every node.
	FetchSockets(ctx context.Context, opts Options) ([]SocketInfo, error)
	// AddSockets makes the selected sockets join rooms. It returns once
	// every node applied the join and (SocketsMover) stored what it moved;
	// an error wrapping ErrAckTimeout when some node did not confirm in
	// time (the join may or may not have been applied there).
	AddSockets(ctx context.Context, opts Options, rooms []string) error
	// DelSockets makes the selected sockets leave rooms, confirmed as
	// AddSockets is.
	DelSockets(ctx context.Context, opts Options, rooms []string) error
	// DisconnectSockets disconnects the selected sockets.
	DisconnectSockets(ctx context.Context, opts Options, close bool) error
	// ServerSideEmit sends an event to the other nodes' namespaces.
	ServerSideEmit(ctx context.Context, args []any) error
	// ServerSideEmitWithAck sends an event to the other nodes and waits for
	// each node's answer until ctx ends (ErrAckTimeout with partial answers).
	ServerSideEmitWithAck(ctx context.Context, args []any) ([][]any, error)
	// ServerCount returns the number of nodes serving the namespace.
	ServerCount(ctx context.Context) (int, error)
	// Close releases the adapter's resources.
	Close() error
}

// AsyncBroadcaster is implemented by adapters that can publish without the
// caller waiting: done is called once, from another goroutine, when the
// broadcast reached the broker (nil) or could not (an error wrapping
// ErrUnavailable or ErrClosed). done must not block.
type AsyncBroadcaster interface {
	BroadcastAsync(m *Message, opts Options, done func(error))
}

// AckIDSource is implemented by a Namespace that hands out the ack ids of
// its broadcasts. Multi-node adapters take the ids of broadcasts with acks
// coming from other nodes from it, so they never collide with the ids the
// namespace gives its own emits on the same socket.
type AckIDSource interface {
	NextAckID() int64
}

// Collector gathers acknowledgements for an operation that expects answers
// from several nodes: each node first reports how many answers it will send
// (Expect), then the answers arrive (Add). Safe for concurrent use; answers that
// arrive after Wait returned are dropped.
type Collector struct {
	mu       sync.Mutex
	out      [][]any
	want     int
	reported int
	done     bool
	notify   chan struct{}
}

// NewCollector returns an empty Collector.
func NewCollector() *Collector {
	return &Collector{notify: make(chan struct{}, 1)}
}

func (c *Collector) signal() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Expect records that one node will send n answers.
func (c *Collector) Expect(n int) {
	c.mu.Lock()
	c.want += n
	c.reported++
	c.mu.Unlock()
	c.signal()
}

// Add records one answer.
func (c *Collector) Add(args []any) {
	c.mu.Lock()
	if !c.done {
		c.out = append(c.out, args)
	}
	c.mu.Unlock()
	c.signal()
}

// Wait returns once nodes have reported and every expected answer arrived,
// or when ctx ends (then with ErrAckTimeout and the answers so far).
func (c *Collector) Wait(ctx context.Context, nodes int) ([][]any, error) {
	for {
		c.mu.Lock()
		if c.reported >= nodes && len(c.out) >= c.want {
			c.done = true
			out := c.out
			c.mu.Unlock()
			return out, nil
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-ctx.Done():
			c.mu.Lock()
			c.done = true
			out := c.out
			c.mu.Unlock()
			return out, ErrAckTimeout
		}
	}
}

// LocalRunner is an adapter that delivers several messages to the same
// rooms to its local sockets socket by socket (Memory, and the Redis
// adapters that embed it): the broadcast log's tail uses it so that a
// socket's writer sends a read's entries in one write. Wrappers of an
// adapter pass it through.
type LocalRunner interface {
	// DeliverLocalRun delivers msgs, in order, to the local sockets in
	// any of rooms (every socket when rooms is empty); message i skips
	// the sockets in any of except[i] (except may be shorter than msgs,
	// or nil: no exceptions). None is volatile or has an ack id. It
	// returns how many sockets were sent each message.
	DeliverLocalRun(msgs []*Message, rooms []string, except [][]string) []int
}

// RunSocket is a Socket that takes several messages in one hand-off
// (DeliverRun): its writer is woken once for all of them, not per message.
// Memory.DeliverLocalRun uses it when a socket has it.
type RunSocket interface {
	Socket
	// DeliverRun queues msgs (none volatile, none with an ack id) for the
	// client, in order, without blocking. It reports false when they were
	// dropped (the socket is closed).
	DeliverRun(msgs []*Message) bool
}
