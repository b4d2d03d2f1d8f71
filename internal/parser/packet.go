package parser

import (
	"encoding/json"
	"strconv"
)

// Type is a Socket.IO packet type, the first character of a packet's text.
type Type byte

// The Socket.IO v5 packet types.
const (
	Connect      Type = iota // 0: connect to a namespace, or the server's answer
	Disconnect               // 1: leave a namespace
	Event                    // 2: an event, with an ack id when an answer is wanted
	Ack                      // 3: the answer to an event
	ConnectError             // 4: the server refused a connection to a namespace
	BinaryEvent              // 5: an event followed by binary attachments
	BinaryAck                // 6: an ack followed by binary attachments
)

// String returns the name the protocol specification uses for t, such as
// "BINARY_EVENT", or "Type(n)" for an unknown type.
func (t Type) String() string {
	switch t {
	case Connect:
		return "CONNECT"
	case Disconnect:
		return "DISCONNECT"
	case Event:
		return "EVENT"
	case Ack:
		return "ACK"
	case ConnectError:
		return "CONNECT_ERROR"
	case BinaryEvent:
		return "BINARY_EVENT"
	case BinaryAck:
		return "BINARY_ACK"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// IsBinary reports whether packets of type t carry binary attachments
// (BinaryEvent and BinaryAck).
func (t Type) IsBinary() bool { return t == BinaryEvent || t == BinaryAck }

// MaxAttachments is the default limit on the attachments of one binary
// packet, the default of socket.io's maxAttachments option.
const MaxAttachments = 10

// NoID marks a packet without an ack id. Ack ids on the wire are
// non-negative; 0 is a valid id (the official client starts counting at 0),
// so a Packet built by hand must set ID to NoID explicitly.
const NoID int64 = -1

// Packet is one Socket.IO packet.
type Packet struct {
	Type Type

	// Namespace is the namespace the packet belongs to. Decode always sets
	// it, to "/" when the wire omits it. AppendText treats "" as "/". A
	// namespace starts with "/" and cannot contain a comma.
	Namespace string

	// ID is the ack id, or NoID when absent.
	ID int64

	// Data is the raw JSON payload with binary placeholders left in, nil
	// when the packet has none. EVENT and ACK payloads are arrays (the
	// event name first for events), CONNECT payloads objects, CONNECT_ERROR
	// payloads objects or strings.
	Data json.RawMessage

	// Attachments are the binary attachments of a BinaryEvent or BinaryAck,
	// in placeholder order.
	Attachments [][]byte
}
