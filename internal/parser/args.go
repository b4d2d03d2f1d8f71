package parser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds the nesting MarshalArgs follows, so a cyclic []any or
// map[string]any fails instead of exhausting the stack. It is the nesting
// limit of encoding/json's decoder, so whatever UnmarshalArgs returns can be
// marshalled again.
const maxDepth = 10000

// MarshalArgs encodes the payload of an event (event != "": the event name,
// then args) or of an ack (event == "": args alone) as a JSON array.
//
// Every []byte found at any depth of []any and map[string]any values is
// replaced by {"_placeholder":true,"num":N} and returned as attachment N, in
// order; map members are visited in sorted key order, which is also the
// order encoding/json writes them. A nil []byte is an empty attachment. A
// json.RawMessage is copied verbatim (nil is null; invalid JSON is an error).
// Other values are marshalled with encoding/json, without HTML escaping, so
// a []byte inside a struct or a typed slice becomes a base64 string as
// encoding/json makes it.
//
// typ is Event, or BinaryEvent when there are attachments; with ack true it
// is Ack or BinaryAck. Errors wrap ErrUnsupportedValue or the error of
// encoding/json.
func MarshalArgs(event string, args []any, ack bool) (data json.RawMessage, attachments [][]byte, typ Type, err error) {
	e := argEncoder{buf: make([]byte, 0, 64)}
	e.buf = append(e.buf, '[')
	if event != "" {
		e.buf = appendString(e.buf, event)
	}
	for i, a := range args {
		if i > 0 || event != "" {
			e.buf = append(e.buf, ',')
		}
		if err := e.value(a, 1); err != nil {
			return nil, nil, 0, err
		}
	}
	e.buf = append(e.buf, ']')

	typ = Event
	if ack {
		typ = Ack
	}
	if len(e.atts) > 0 {
		typ += BinaryEvent - Event // Event -> BinaryEvent, Ack -> BinaryAck
	}
	return e.buf, e.atts, typ, nil
}

type argEncoder struct {
	buf  []byte
	atts [][]byte

	// encoding/json fallback, created on first use
	scratch *bytes.Buffer
	enc     *json.Encoder
}

func (e *argEncoder) value(v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested deeper than %d levels (a cycle?)", ErrUnsupportedValue, maxDepth)
	}
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case string:
		e.buf = appendString(e.buf, x)
	case []byte:
		e.buf = append(e.buf, `{"_placeholder":true,"num":`...)
		e.buf = strconv.AppendInt(e.buf, int64(len(e.atts)), 10)
		e.buf = append(e.buf, '}')
		if x == nil {
			x = []byte{}
		}
		e.atts = append(e.atts, x)
	case json.RawMessage:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			break
		}
		if !json.Valid(x) {
			return fmt.Errorf("%w: json.RawMessage is not valid JSON", ErrUnsupportedValue)
		}
		e.buf = append(e.buf, x...)
	case []any:
		e.buf = append(e.buf, '[')
		for i, el := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.value(el, depth+1); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
	case map[string]any:
		e.buf = append(e.buf, '{')
		for i, k := range slices.Sorted(maps.Keys(x)) {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = appendString(e.buf, k)
			e.buf = append(e.buf, ':')
			if err := e.value(x[k], depth+1); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, '}')
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case uint:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint64:
		e.buf = strconv.AppendUint(e.buf, x, 10)
	case uint32:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case float64:
		return e.float(x, 64)
	case float32:
		return e.float(float64(x), 32)
	default:
		return e.fallback(v)
	}
	return nil
}

// float writes f the way encoding/json does (and JSON.stringify, for
// float64): shortest representation, exponent form only below 1e-6 or from
// 1e21 up, without a leading zero in the exponent.
func (e *argEncoder) float(f float64, bits int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("%w: %v has no JSON form", ErrUnsupportedValue, f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		small, large := abs < 1e-6, abs >= 1e21
		if bits == 32 {
			small, large = float32(abs) < 1e-6, float32(abs) >= 1e21
		}
		if small || large {
			format = 'e'
		}
	}
	start := len(e.buf)
	e.buf = strconv.AppendFloat(e.buf, f, format, -1, bits)
	if format == 'e' {
		// 1e-07 -> 1e-7
		if n := len(e.buf); n-start >= 4 && e.buf[n-4] == 'e' && e.buf[n-3] == '-' && e.buf[n-2] == '0' {
			e.buf[n-2] = e.buf[n-1]
			e.buf = e.buf[:n-1]
		}
	}
	return nil
}

func (e *argEncoder) fallback(v any) error {
	if e.enc == nil {
		e.scratch = new(bytes.Buffer)
		e.enc = json.NewEncoder(e.scratch)
		e.enc.SetEscapeHTML(false)
	}
	e.scratch.Reset()
	if err := e.enc.Encode(v); err != nil {
		return fmt.Errorf("parser: marshal %T: %w", v, err)
	}
	out := e.scratch.Bytes()
	e.buf = append(e.buf, out[:len(out)-1]...) // drop the newline Encode adds
	return nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping what JSON.stringify
// escapes (quote, backslash, control characters) and replacing invalid UTF-8
// by U+FFFD as encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// UnmarshalArgs decodes a packet's payload array into Go values: json.Number
// for numbers, string, bool, nil, []any and map[string]any. When attachments
// is not empty, every placeholder (an object whose "_placeholder" member is
// true) is replaced by the []byte attachment its "num" names; the slices
// alias attachments. A placeholder whose num is not the index of an
// attachment is an error. Like socket.io-parser, a payload that came without
// attachments is returned as it is, placeholder-shaped objects included.
//
// Errors wrap ErrInvalidPacket.
func UnmarshalArgs(data json.RawMessage, attachments [][]byte) ([]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: arguments: %v", ErrInvalidPacket, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: arguments: data after the JSON array", ErrInvalidPacket)
	}
	args, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: arguments are not a JSON array", ErrInvalidPacket)
	}
	if len(attachments) == 0 {
		return args, nil
	}
	for i, a := range args {
		r, err := resolve(a, attachments)
		if err != nil {
			return nil, err
		}
		args[i] = r
	}
	return args, nil
}

// resolve replaces the placeholders in v, in place where v is a container.
func resolve(v any, attachments [][]byte) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if is, _ := x["_placeholder"].(bool); is {
			num, _ := x["num"].(json.Number)
			i, ok := attachmentIndex(string(num), len(attachments))
			if !ok {
				return nil, fmt.Errorf("%w: placeholder num %q does not name one of %d attachment(s)", ErrInvalidPacket, string(num), len(attachments))
			}
			return attachments[i], nil
		}
		for k, el := range x {
			r, err := resolve(el, attachments)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
	case []any:
		for i, el := range x {
			r, err := resolve(el, attachments)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
	}
	return v, nil
}

// EventName returns the event name of an EVENT payload, its first element,
// without decoding the rest of the array. It fails, with an error wrapping
// ErrInvalidPacket, when data is not an array starting with a string.
func EventName(data json.RawMessage) (string, error) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return "", fmt.Errorf("%w: event payload is not an array", ErrInvalidPacket)
	}
	i = skipSpace(data, i+1)
	if i >= len(data) || data[i] != '"' {
		return "", fmt.Errorf("%w: event name is not a string", ErrInvalidPacket)
	}
	end, verbatim := scanString(data, i)
	if end < 0 {
		return "", fmt.Errorf("%w: unterminated event name", ErrInvalidPacket)
	}
	if verbatim {
		return string(data[i+1 : end-1]), nil
	}
	var name string
	if err := json.Unmarshal(data[i:end], &name); err != nil {
		return "", fmt.Errorf("%w: event name: %v", ErrInvalidPacket, err)
	}
	return name, nil
}

// EventData returns the data of an EVENT packet: the string event followed
// by the elements of args, a JSON array (as MarshalArgs("", ...) makes it).
// It fails, with an error wrapping ErrInvalidPacket, when args is not an
// array.
func EventData(event string, args json.RawMessage) (json.RawMessage, error) {
	args = trimRightSpace(args)
	i := skipSpace(args, 0)
	if i >= len(args) || args[i] != '[' || args[len(args)-1] != ']' {
		return nil, fmt.Errorf("%w: arguments are not an array", ErrInvalidPacket)
	}
	inner := args[i+1 : len(args)-1]
	out := make([]byte, 0, len(event)+len(args)+4)
	out = append(out, '[')
	out = appendString(out, event)
	if skipSpace(inner, 0) < len(inner) {
		out = append(out, ',')
		out = append(out, inner...)
	}
	out = append(out, ']')
	if !json.Valid(out) {
		return nil, fmt.Errorf("%w: arguments are not valid JSON", ErrInvalidPacket)
	}
	return out, nil
}
