package engineio

import (
	"bytes"
	"encoding/base64"
	"fmt"
)

// Frame is one Engine.IO message packet ready for the wire. For a text frame
// Data holds the encoded Engine.IO packet INCLUDING its leading '4' (message)
// type byte, so one broadcast can hand the same bytes to every connection
// whatever its transport. For a binary frame Data is the raw payload. Frames
// are immutable once sent: the engine never modifies Data.
type Frame struct {
	Binary bool
	Data   []byte
	// Tail, when set, follows Data in the same message: a short
	// per-recipient ending of a text frame whose Data is shared (Socket.IO
	// appends each socket's offset this way). Its bytes must not change
	// once sent.
	Tail []byte
	// End, when set, follows Tail: an ending shared again by every
	// recipient (Socket.IO puts a logged broadcast's position there, after
	// each socket's own part of the offset). Its bytes must not change
	// once sent.
	End []byte
}

// size is the number of bytes the frame puts on the wire.
func (f *Frame) size() int { return len(f.Data) + len(f.Tail) + len(f.End) }

// TextFrame returns a text frame for payload (allocates "4"+payload).
func TextFrame(payload string) Frame {
	b := make([]byte, 1+len(payload))
	b[0] = typeMessage
	copy(b[1:], payload)
	return Frame{Data: b}
}

// BinaryFrame returns a binary frame carrying data as is (no copy: data must
// not be modified afterwards).
func BinaryFrame(data []byte) Frame {
	return Frame{Binary: true, Data: data}
}

// Engine.IO v4 packet types, as their wire characters.
const (
	typeOpen    = '0'
	typeClose   = '1'
	typePing    = '2'
	typePong    = '3'
	typeMessage = '4'
	typeUpgrade = '5'
	typeNoop    = '6'

	// binaryPrefix starts a base64-encoded binary message in a text payload.
	binaryPrefix = 'b'
	// separator joins packets in a polling payload (ASCII record separator).
	separator = 0x1e
)

// Control frames the engine queues itself. Their bytes are shared and never
// modified.
var (
	framePing  = Frame{Data: []byte{typePing}}
	frameNoop  = Frame{Data: []byte{typeNoop}}
	frameClose = Frame{Data: []byte{typeClose}}
)

// packet is one decoded incoming packet.
type packet struct {
	typ    byte   // one of the type* constants
	binary bool   // a binary message (typ is typeMessage)
	data   []byte // payload after the type byte, or the decoded binary
}

// decodePacket decodes one text-encoded packet: an element of a polling
// payload or a websocket text message. For a text packet data aliases b; a
// base64 binary message is decoded into a new slice.
func decodePacket(b []byte) (packet, error) {
	if len(b) == 0 {
		return packet{}, fmt.Errorf("%w: empty packet", ErrParse)
	}
	switch t := b[0]; t {
	case binaryPrefix:
		enc := b[1:]
		data := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
		n, err := base64.StdEncoding.Decode(data, enc)
		if err != nil {
			return packet{}, fmt.Errorf("%w: bad base64: %v", ErrParse, err)
		}
		return packet{typ: typeMessage, binary: true, data: data[:n]}, nil
	case typeOpen, typeClose, typePing, typePong, typeMessage, typeUpgrade, typeNoop:
		return packet{typ: t, data: b[1:]}, nil
	default:
		return packet{}, fmt.Errorf("%w: unknown packet type %q", ErrParse, t)
	}
}

// payloadDecoder splits a polling payload (packets joined by \x1e) fed in
// arbitrary chunks. Every message it emits owns its data.
type payloadDecoder struct {
	partial []byte // bytes of the packet not yet terminated
}

// write feeds the next chunk of the payload, emitting every packet it
// completes. The first error (a malformed packet, or emit's) stops decoding.
func (d *payloadDecoder) write(p []byte, emit func(packet) error) error {
	for len(p) > 0 {
		i := bytes.IndexByte(p, separator)
		if i < 0 {
			d.partial = append(d.partial, p...)
			return nil
		}
		raw := p[:i]
		if len(d.partial) > 0 {
			d.partial = append(d.partial, raw...)
			raw = d.partial
		}
		if err := d.emit(raw, emit); err != nil {
			return err
		}
		d.partial = d.partial[:0]
		p = p[i+1:]
	}
	return nil
}

// finish ends the payload: what was fed since the last separator is the
// last packet.
func (d *payloadDecoder) finish(emit func(packet) error) error {
	err := d.emit(d.partial, emit)
	d.partial = d.partial[:0]
	return err
}

func (d *payloadDecoder) emit(raw []byte, emit func(packet) error) error {
	pkt, err := decodePacket(raw)
	if err != nil {
		return err
	}
	if !pkt.binary {
		// raw points into the caller's chunk or d.partial, both reused.
		pkt.data = bytes.Clone(pkt.data)
	}
	return emit(pkt)
}

// decodePayload decodes a whole polling payload.
func decodePayload(payload []byte) ([]packet, error) {
	var (
		d   payloadDecoder
		out []packet
	)
	collect := func(p packet) error {
		out = append(out, p)
		return nil
	}
	if err := d.write(payload, collect); err != nil {
		return out, err
	}
	return out, d.finish(collect)
}

// appendPayload appends frames encoded as one polling payload to dst: text
// frames as they are, binary frames as 'b' + standard base64, joined by \x1e.
func appendPayload(dst []byte, frames []Frame) []byte {
	for i, f := range frames {
		if i > 0 {
			dst = append(dst, separator)
		}
		if f.Binary {
			dst = append(dst, binaryPrefix)
			dst = base64.StdEncoding.AppendEncode(dst, f.Data)
		} else {
			dst = append(dst, f.Data...)
			dst = append(dst, f.Tail...)
			dst = append(dst, f.End...)
		}
	}
	return dst
}
