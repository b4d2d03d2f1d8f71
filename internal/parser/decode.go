package parser

import (
	"encoding/json"
	"fmt"
	"math"
	"unicode/utf8"
)

// Decoder reassembles packets from the Engine.IO messages of one connection.
// It is not safe for concurrent use; the connection's read loop owns it. The
// zero value is ready to use.
type Decoder struct {
	// MaxAttachments is the most attachments one binary packet may
	// announce. Defaults to MaxAttachments when 0 or negative.
	MaxAttachments int

	pending *Packet // binary packet awaiting attachments, nil when none
	want    int     // attachments pending needs in all
}

// Decode feeds one Engine.IO message: the text of a packet (without the
// Engine.IO "4" prefix) when binary is false, an attachment when binary is
// true. It returns the complete packet, or (nil, nil) while a binary packet
// still awaits attachments.
//
// A binary message with no pending packet, a text message while attachments
// are pending, or an invalid packet return an error wrapping
// ErrInvalidPacket; a binary packet announcing more than MaxAttachments
// attachments returns an error wrapping both ErrTooManyAttachments and
// ErrInvalidPacket. After an error the Decoder is reset.
//
// A binary packet keeps its type (BinaryEvent or BinaryAck) and its
// placeholders; it must announce at least one attachment, and every
// placeholder must name one of them.
//
// Validation follows socket.io-parser 4.2.7, with these tightenings: EVENT
// and ACK need a payload and CONNECT_ERROR one too; the event name (first
// element of an EVENT payload) must be a string, not a number; only EVENT and
// ACK packets may carry an ack id, and an ACK must; an ack id must fit an
// int64; a namespace must be valid UTF-8; the payload must follow the header
// directly (trailing JSON whitespace is accepted and dropped from Data).
// Reserved event names are accepted here; the server refuses them.
//
// Decode copies what it keeps: the caller may reuse data once it returns.
func (d *Decoder) Decode(data []byte, binary bool) (*Packet, error) {
	if binary {
		p := d.pending
		if p == nil {
			return nil, fmt.Errorf("%w: binary message without a binary packet awaiting attachments", ErrInvalidPacket)
		}
		p.Attachments = append(p.Attachments, clone(data))
		if len(p.Attachments) < d.want {
			return nil, nil
		}
		d.Reset()
		return p, nil
	}
	if d.pending != nil {
		missing := d.want - len(d.pending.Attachments)
		d.Reset()
		return nil, fmt.Errorf("%w: text message while %d attachment(s) are still awaited", ErrInvalidPacket, missing)
	}
	limit := d.MaxAttachments
	if limit <= 0 {
		limit = MaxAttachments
	}
	p, n, err := decodeText(data, limit)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return p, nil
	}
	p.Attachments = make([][]byte, 0, n)
	d.pending, d.want = p, n
	return nil, nil
}

// Reset drops a binary packet awaiting attachments, if any.
func (d *Decoder) Reset() {
	d.pending, d.want = nil, 0
}

func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidPacket}, args...)...)
}

// decodeText parses the text form of a packet and returns it with the number
// of attachments it announces.
func decodeText(data []byte, maxAttachments int) (*Packet, int, error) {
	if len(data) == 0 {
		return nil, 0, invalid("empty message")
	}
	if c := data[0]; c < '0' || c > '0'+byte(BinaryAck) {
		return nil, 0, invalid("unknown packet type %q", c)
	}
	t := Type(data[0] - '0')
	i := 1

	n := 0
	if t.IsBinary() {
		start := i
		for i < len(data) && isDigit(data[i]) {
			if n <= maxAttachments { // saturate: the value only matters up to the limit
				n = n*10 + int(data[i]-'0')
			}
			i++
		}
		if i == start || i == len(data) || data[i] != '-' || n == 0 {
			return nil, 0, invalid("%s without a valid attachment count", t)
		}
		i++
		if n > maxAttachments {
			return nil, 0, fmt.Errorf("%w: %w: more than %d", ErrInvalidPacket, ErrTooManyAttachments, maxAttachments)
		}
	}

	nsp := "/"
	if i < len(data) && data[i] == '/' {
		end := i
		for end < len(data) && data[end] != ',' {
			end++
		}
		raw := data[i:end]
		if !utf8.Valid(raw) {
			return nil, 0, invalid("namespace is not valid UTF-8")
		}
		if len(raw) > 1 {
			nsp = string(raw)
		}
		i = end
		if i < len(data) { // skip the comma
			i++
		}
	}

	id := NoID
	if i < len(data) && isDigit(data[i]) {
		var v int64
		for i < len(data) && isDigit(data[i]) {
			d := int64(data[i] - '0')
			if v > (math.MaxInt64-d)/10 {
				return nil, 0, invalid("ack id overflows")
			}
			v = v*10 + d
			i++
		}
		id = v
	}

	var payload []byte
	if i < len(data) {
		if isSpace(data[i]) {
			return nil, 0, invalid("whitespace before the %s payload", t)
		}
		payload = trimRightSpace(data[i:])
		if !json.Valid(payload) {
			return nil, 0, invalid("%s payload is not valid JSON", t)
		}
	}
	if err := validate(t, id, payload); err != nil {
		return nil, 0, err
	}
	if n > 0 {
		if err := checkPlaceholders(payload, n); err != nil {
			return nil, 0, invalid("%s with %d attachment(s): %v", t, n, err)
		}
	}

	p := &Packet{Type: t, Namespace: nsp, ID: id}
	if payload != nil {
		p.Data = clone(payload)
	}
	return p, n, nil
}

// validate checks the payload kind and the ack id against the packet type.
// payload is valid JSON without surrounding whitespace, or nil.
func validate(t Type, id int64, payload []byte) error {
	var kind byte // first byte of the payload, 0 when absent
	if len(payload) > 0 {
		kind = payload[0]
	}
	switch t {
	case Connect:
		if kind != 0 && kind != '{' {
			return invalid("CONNECT payload must be an object")
		}
	case Disconnect:
		if kind != 0 {
			return invalid("DISCONNECT takes no payload")
		}
	case ConnectError:
		if kind != '{' && kind != '"' {
			return invalid("CONNECT_ERROR payload must be an object or a string")
		}
	case Event, BinaryEvent:
		if kind != '[' || !firstIsString(payload) {
			return invalid("%s payload must be an array starting with the event name", t)
		}
	case Ack, BinaryAck:
		if kind != '[' {
			return invalid("%s payload must be an array", t)
		}
		if id == NoID {
			return invalid("%s without an ack id", t)
		}
	}
	if id != NoID && t != Event && t != BinaryEvent && t != Ack && t != BinaryAck {
		return invalid("%s cannot carry an ack id", t)
	}
	return nil
}
