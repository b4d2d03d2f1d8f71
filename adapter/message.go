package adapter

import (
	"sync"
	"time"

	"github.com/roomcast/roomcast/broadcastlog"
	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/parser"
)

// Message is one Socket.IO packet on its way to many sockets. Its frames are
// encoded once, on first use, and shared by every recipient.
type Message struct {
	// Packet is the EVENT (or BINARY_EVENT) packet; its Namespace is set.
	Packet parser.Packet
	// Published is when the broadcast started (NewMessage sets it; a logged
	// broadcast's is its append time), for the latency histogram; zero for a
	// message that came from another node.
	Published time.Time
	// LogEnd, for a logged broadcast delivered with offsets, is the shared
	// end of every recipient's offset: the log position and the closing
	// `"]` (each socket adds its own part before it, as a frame tail).
	LogEnd []byte
	// AckDeadline, for a message with an ack id, is when the sender stops
	// waiting: a socket may forget the pending ack after it. Zero = never.
	AckDeadline time.Time
	// Log is the message's position in the broadcast log when it is
	// delivered from the log ("" otherwise): a socket with connection
	// state recovery puts it in the offset it attaches.
	Log string
	// LogPosition is Log parsed, set with it by whoever builds the
	// message (the broadcast log's tail), so that no delivery parses it;
	// the zero position means "parse Log".
	LogPosition broadcastlog.Position

	once   sync.Once
	frames []engineio.Frame
}

// NewMessage builds the EVENT packet of event and args for namespace nsp.
// A []byte anywhere in args becomes a binary attachment.
func NewMessage(nsp, event string, args []any) (*Message, error) {
	data, atts, typ, err := parser.MarshalArgs(event, args, false)
	if err != nil {
		return nil, err
	}
	return &Message{
		Packet: parser.Packet{
			Type: typ, Namespace: nsp, ID: parser.NoID, Data: data, Attachments: atts,
		},
		Published: time.Now(),
	}, nil
}

// Frames returns the encoded frames: the text frame, then the attachments.
// The slice and its bytes must not be modified.
func (m *Message) Frames() []engineio.Frame {
	m.once.Do(func() { m.frames = parser.AppendFrames(nil, &m.Packet) })
	return m.frames
}
