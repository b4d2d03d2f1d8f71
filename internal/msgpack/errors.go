package msgpack

import "errors"

var (
	// ErrTruncated is returned when the data ends inside a value.
	ErrTruncated = errors.New("msgpack: unexpected end of data")
	// ErrTrailingBytes is returned when bytes follow the value.
	ErrTrailingBytes = errors.New("msgpack: trailing bytes after the value")
	// ErrInvalid is returned for a byte that starts no value (0xc1) or a
	// malformed extension.
	ErrInvalid = errors.New("msgpack: invalid data")
	// ErrTooDeep is returned for values nested deeper than MaxDepth.
	ErrTooDeep = errors.New("msgpack: nested too deeply")
	// ErrUnsupportedValue is returned by the encoder for a Go value it has no
	// MessagePack form for.
	ErrUnsupportedValue = errors.New("msgpack: unsupported value")
)
