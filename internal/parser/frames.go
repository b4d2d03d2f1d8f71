package parser

import (
	"slices"

	"github.com/roomcast/roomcast/engineio"
)

// AppendFrames appends the Engine.IO frames that carry p to dst: one text
// frame, the message packet type '4' followed by AppendText's encoding of
// p, then each attachment of p as a binary frame. It is the one place a
// Socket.IO packet becomes Engine.IO frames; the frames alias p's
// attachments.
func AppendFrames(dst []engineio.Frame, p *Packet) []engineio.Frame {
	dst = slices.Grow(dst, 1+len(p.Attachments))
	text := make([]byte, 0, 24+len(p.Namespace)+len(p.Data))
	text = AppendText(append(text, '4'), p)
	dst = append(dst, engineio.Frame{Data: text})
	for _, a := range p.Attachments {
		dst = append(dst, engineio.Frame{Binary: true, Data: a})
	}
	return dst
}

// reserved are the event names socket.io keeps for itself: socket.io-client
// refuses them in an EVENT packet (it closes the connection), and a server
// neither accepts them from a client nor emits them.
var reserved = map[string]bool{
	"connect":        true,
	"connect_error":  true,
	"disconnect":     true,
	"disconnecting":  true,
	"newListener":    true,
	"removeListener": true,
}

// Reserved reports whether event is a name socket.io keeps for itself.
// Compare the unescaped name (EventName's): "\u0063onnect" is "connect".
func Reserved(event string) bool { return reserved[event] }
