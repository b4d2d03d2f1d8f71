package parser

import "errors"

var (
	// ErrInvalidPacket reports a message that is not a valid Socket.IO packet,
	// or that arrives when the Decoder does not expect it. The connection that
	// sent it should be closed, as socket.io does.
	ErrInvalidPacket = errors.New("parser: invalid packet")

	// ErrTooManyAttachments reports a binary packet announcing more
	// attachments than Decoder.MaxAttachments. Errors wrapping it also wrap
	// ErrInvalidPacket.
	ErrTooManyAttachments = errors.New("parser: too many attachments")

	// ErrUnsupportedValue reports an argument MarshalArgs cannot encode: a
	// value nested too deeply (usually a cycle), a NaN or infinite number, or
	// a json.RawMessage that is not valid JSON.
	ErrUnsupportedValue = errors.New("parser: unsupported value")
)
