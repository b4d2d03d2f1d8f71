package redisqueue

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/queue/internal/core"
)

// Wire formats shared with the Lua scripts (see scripts.go).
//
// A stream entry has the fields n (namespace), e (event), d (data: the JSON
// array of arguments) and, when there are attachments, a: the attachments
// as consecutive frames. A frame is "<decimal length>:<bytes>".
//
// A live pub/sub payload is the frames of the entry ID, the namespace, the
// event and the data, followed by the attachment frames.

// Stream entry field names.
const (
	fieldNamespace   = "n"
	fieldEvent       = "e"
	fieldData        = "d"
	fieldAttachments = "a"
)

var errFrame = errors.New("queue: malformed frame")

// appendFrame appends "<len>:<b>" to dst.
func appendFrame(dst, b []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, ':')
	return append(dst, b...)
}

// encodeAttachments returns the frames of atts, or nil when there are none.
func encodeAttachments(atts [][]byte) []byte {
	if len(atts) == 0 {
		return nil
	}
	n := 0
	for _, a := range atts {
		n += len(a) + 12
	}
	out := make([]byte, 0, n)
	for _, a := range atts {
		out = appendFrame(out, a)
	}
	return out
}

// nextFrame splits the first frame off s.
func nextFrame(s string) (frame, rest string, err error) {
	i := 0
	for i < len(s) && i < 11 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i >= len(s) || s[i] != ':' || (i > 1 && s[0] == '0') {
		return "", "", errFrame
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil || n > len(s)-i-1 {
		return "", "", errFrame
	}
	start := i + 1
	return s[start : start+n], s[start+n:], nil
}

// decodeAttachments parses the frames of an "a" field.
func decodeAttachments(s string) ([][]byte, error) {
	if s == "" {
		return nil, nil
	}
	var out [][]byte
	for s != "" {
		f, rest, err := nextFrame(s)
		if err != nil {
			return nil, err
		}
		out = append(out, []byte(f))
		s = rest
	}
	return out, nil
}

// decodeLive parses a live pub/sub payload.
func decodeLive(payload string) (queue.Message, error) {
	var parts [4]string
	s := payload
	for i := range parts {
		f, rest, err := nextFrame(s)
		if err != nil {
			return queue.Message{}, err
		}
		parts[i], s = f, rest
	}
	if _, err := core.ParseID(parts[0]); err != nil {
		return queue.Message{}, errFrame
	}
	atts, err := decodeAttachments(s)
	if err != nil {
		return queue.Message{}, err
	}
	m := queue.Message{ID: parts[0], Namespace: parts[1], Event: parts[2], Attachments: atts}
	if parts[3] != "" {
		m.Data = json.RawMessage(parts[3])
	}
	return m, nil
}

// encodeLive builds the live payload of m, as the Append script does; the
// tests and the in-memory store's fuzz seeds use it.
func encodeLive(m queue.Message) []byte {
	var out []byte
	out = appendFrame(out, []byte(m.ID))
	out = appendFrame(out, []byte(m.Namespace))
	out = appendFrame(out, []byte(m.Event))
	out = appendFrame(out, m.Data)
	return append(out, encodeAttachments(m.Attachments)...)
}

// decodeEntry builds a queue.Message from a stream entry's ID and its field/value
// list as XRANGE returns it.
func decodeEntry(id string, fields []any) (queue.Message, error) {
	if _, err := core.ParseID(id); err != nil || len(fields)%2 != 0 {
		return queue.Message{}, errFrame
	}
	m := queue.Message{ID: id}
	for i := 0; i < len(fields); i += 2 {
		k, ok1 := fields[i].(string)
		v, ok2 := fields[i+1].(string)
		if !ok1 || !ok2 {
			return queue.Message{}, errFrame
		}
		switch k {
		case fieldNamespace:
			m.Namespace = v
		case fieldEvent:
			m.Event = v
		case fieldData:
			if v != "" {
				m.Data = json.RawMessage(v)
			}
		case fieldAttachments:
			atts, err := decodeAttachments(v)
			if err != nil {
				return queue.Message{}, err
			}
			m.Attachments = atts
		}
	}
	return m, nil
}
