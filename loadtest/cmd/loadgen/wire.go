package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Engine.IO v4 frames as they travel over a websocket: one packet per
// message, the first byte is the Engine.IO type. Socket.IO packets ride in
// Engine.IO "message" packets (type 4), so a Socket.IO EVENT is "42...",
// an ACK "43...", CONNECT "40...", CONNECT_ERROR "44...", DISCONNECT "41".
const (
	eioOpen    = '0'
	eioClose   = '1'
	eioPing    = '2'
	eioPong    = '3'
	eioMessage = '4'
	eioNoop    = '6'

	sioConnect      = '0'
	sioDisconnect   = '1'
	sioEvent        = '2'
	sioAck          = '3'
	sioConnectError = '4'
)

// pongFrame answers a server ping.
var pongFrame = []byte{eioPong}

// openPacket is the part of the Engine.IO OPEN packet loadgen uses.
type openPacket struct {
	SID          string `json:"sid"`
	PingInterval int    `json:"pingInterval"`
	PingTimeout  int    `json:"pingTimeout"`
	MaxPayload   int    `json:"maxPayload"`
}

// parseOpen decodes an Engine.IO OPEN packet ("0{...}").
func parseOpen(p []byte) (openPacket, error) {
	var o openPacket
	if len(p) < 2 || p[0] != eioOpen {
		return o, fmt.Errorf("%w: want OPEN, got %q", errFrame, clip(p))
	}
	if err := json.Unmarshal(p[1:], &o); err != nil {
		return o, fmt.Errorf("%w: OPEN payload: %v", errFrame, err)
	}
	if o.SID == "" {
		return o, fmt.Errorf("%w: OPEN without sid", errFrame)
	}
	return o, nil
}

// appendConnect appends a Socket.IO CONNECT to the main namespace carrying
// {"token": token} as auth (no auth payload when token is empty).
func appendConnect(b []byte, token string) []byte {
	b = append(b, eioMessage, sioConnect)
	if token == "" {
		return b
	}
	b = append(b, `{"token":`...)
	b = appendJSONString(b, token)
	return append(b, '}')
}

// connectReply classifies a frame received while waiting for the CONNECT
// reply of the main namespace.
type connectReply int

const (
	replyOther   connectReply = iota // anything else (ignore it)
	replyOK                          // 40{"sid":...}
	replyRefused                     // 44{...}
)

// parseConnectReply recognises the reply to a CONNECT on "/" and, for a
// refusal, returns the server's message.
func parseConnectReply(p []byte) (connectReply, string) {
	if len(p) < 2 || p[0] != eioMessage {
		return replyOther, ""
	}
	switch p[1] {
	case sioConnect:
		if len(p) > 2 && p[2] == '/' {
			return replyOther, "" // another namespace
		}
		return replyOK, ""
	case sioConnectError:
		if len(p) > 2 && p[2] == '/' {
			return replyOther, ""
		}
		var e struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal(p[2:], &e); err != nil || e.Message == "" {
			return replyRefused, string(clip(p[2:]))
		}
		return replyRefused, e.Message
	}
	return replyOther, ""
}

// appendJoin appends `42<id>["join",<room>]`; room is already JSON-quoted.
func appendJoin(b []byte, id uint64, quotedRoom []byte) []byte {
	b = append(b, eioMessage, sioEvent)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `["join",`...)
	b = append(b, quotedRoom...)
	return append(b, ']')
}

// appendPublish appends
// `42<id>["publish",{"room":<room>,"event":<event>,"data":{"t":<t>,"seq":<seq>}}]`;
// quotedRoom and quotedEvent are already JSON-quoted.
func appendPublish(b []byte, id uint64, quotedRoom, quotedEvent []byte, t, seq int64) []byte {
	b = append(b, eioMessage, sioEvent)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `["publish",{"room":`...)
	b = append(b, quotedRoom...)
	b = append(b, `,"event":`...)
	b = append(b, quotedEvent...)
	b = append(b, `,"data":{"t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	return append(b, `}}]`...)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// ack is a parsed Socket.IO ACK on the main namespace.
type ack struct {
	ID   uint64
	OK   bool   // first argument starts with {"ok":true
	Code string // the error code of {"error":{"code":...}}, when not OK
}

// parseAck recognises `43<id>[...]` on the main namespace.
func parseAck(p []byte) (ack, bool) {
	var a ack
	if len(p) < 4 || p[0] != eioMessage || p[1] != sioAck {
		return a, false
	}
	i := 2
	id, i, ok := scanUint(p, i)
	if !ok || i >= len(p) || p[i] != '[' {
		return a, false
	}
	a.ID = id
	body := p[i+1:]
	if bytes.HasPrefix(body, []byte(`{"ok":true`)) {
		a.OK = true
		return a, true
	}
	var e []struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(p[i:], &e); err == nil && len(e) > 0 && e[0].Error.Code != "" {
		a.Code = e[0].Error.Code
	} else {
		a.Code = "unrecognised"
	}
	return a, true
}

// delivery is what a subscriber needs from a delivered event.
type delivery struct {
	T   int64 // publish time, Unix nanoseconds
	Seq int64
}

// parseDelivery recognises `42[<event>,{...,"t":T,...,"seq":S,...},...]` on
// the main namespace (an ack id, if any, is skipped) and extracts the
// top-level numeric fields "t" and "seq" of the first argument. The event name
// is compared byte for byte with quotedEvent (JSON-quoted). It never panics
// and reads p once, left to right.
func parseDelivery(p []byte, quotedEvent []byte) (delivery, bool) {
	var d delivery
	if len(p) < 3 || p[0] != eioMessage || p[1] != sioEvent {
		return d, false
	}
	i := 2
	if p[i] == '/' {
		return d, false // another namespace
	}
	_, i, _ = scanUint(p, i) // optional ack id
	if i >= len(p) || p[i] != '[' {
		return d, false
	}
	i = skipWS(p, i+1)
	if !bytes.HasPrefix(p[i:], quotedEvent) {
		return d, false
	}
	i = skipWS(p, i+len(quotedEvent))
	if i >= len(p) || p[i] != ',' {
		return d, false
	}
	d, _, ok := scanTSeq(p, skipWS(p, i+1))
	return d, ok
}

// scanTSeq reads the JSON object at p[i:] and extracts its top-level numeric
// fields "t" and "seq"; next is the index after the object. It never panics.
func scanTSeq(p []byte, i int) (d delivery, next int, ok bool) {
	if i >= len(p) || p[i] != '{' {
		return d, i, false
	}
	i++
	var haveT, haveSeq bool
	for {
		i = skipWS(p, i)
		if i >= len(p) {
			return d, i, false
		}
		if p[i] == '}' {
			break
		}
		if p[i] == ',' {
			i = skipWS(p, i+1)
		}
		ks, ke, ok := scanString(p, i)
		if !ok {
			return d, i, false
		}
		key := p[ks:ke]
		i = skipWS(p, ke+1)
		if i >= len(p) || p[i] != ':' {
			return d, i, false
		}
		i = skipWS(p, i+1)
		switch {
		case len(key) == 1 && key[0] == 't':
			d.T, i, ok = scanNumber(p, i)
			haveT = ok
		case string(key) == "seq":
			d.Seq, i, ok = scanNumber(p, i)
			haveSeq = ok
		default:
			i, ok = skipValue(p, i)
		}
		if !ok {
			return d, i, false
		}
	}
	return d, i + 1, haveT && haveSeq
}

// scanUint reads decimal digits at p[i:]; ok is false when there are none
// or they overflow.
func scanUint(p []byte, i int) (v uint64, next int, ok bool) {
	start := i
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		if v > (math.MaxUint64-9)/10 {
			return 0, i, false
		}
		v = v*10 + uint64(p[i]-'0')
		i++
	}
	return v, i, i > start
}

func skipWS(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// scanString expects a JSON string at p[i] and returns the bounds of its raw
// contents (escapes left as they are): p[start:end] with p[end] == '"'.
func scanString(p []byte, i int) (start, end int, ok bool) {
	if i >= len(p) || p[i] != '"' {
		return 0, 0, false
	}
	i++
	start = i
	for i < len(p) {
		switch p[i] {
		case '\\':
			i += 2
		case '"':
			return start, i, true
		default:
			i++
		}
	}
	return 0, 0, false
}

// scanNumber reads a JSON number at p[i:] as an int64. Integers are read
// exactly; a number with a fraction or exponent (a JavaScript server may
// print one) is read as float64 and truncated.
func scanNumber(p []byte, i int) (int64, int, bool) {
	start := i
	if i < len(p) && p[i] == '-' {
		i++
	}
	integral := true
	for i < len(p) {
		c := p[i]
		switch {
		case c >= '0' && c <= '9':
		case c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-':
			integral = false
		default:
			goto done
		}
		i++
	}
done:
	if i == start {
		return 0, i, false
	}
	if integral {
		v, ok := parseInt(p[start:i])
		return v, i, ok
	}
	f, err := strconv.ParseFloat(string(p[start:i]), 64)
	if err != nil || math.IsNaN(f) || f >= math.MaxInt64 || f <= math.MinInt64 {
		return 0, i, false
	}
	return int64(f), i, true
}

// parseInt reads an optionally negative decimal integer that fits an int64.
func parseInt(p []byte) (int64, bool) {
	neg := len(p) > 0 && p[0] == '-'
	if neg {
		p = p[1:]
	}
	if len(p) == 0 || len(p) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// skipValue skips one JSON value at p[i:] (strings, numbers, literals, and
// nested objects and arrays, counting depth outside strings).
func skipValue(p []byte, i int) (int, bool) {
	if i >= len(p) {
		return i, false
	}
	switch p[i] {
	case '"':
		_, end, ok := scanString(p, i)
		return end + 1, ok
	case '{', '[':
		depth := 0
		for i < len(p) {
			switch p[i] {
			case '"':
				_, end, ok := scanString(p, i)
				if !ok {
					return i, false
				}
				i = end
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return i, false
	default:
		start := i
		for i < len(p) && p[i] != ',' && p[i] != '}' && p[i] != ']' {
			i++
		}
		return i, i > start
	}
}

// readMessage reads one websocket message from r into buf (reused, grown up
// to limit bytes) and returns it.
func readMessage(r io.Reader, buf []byte, limit int) ([]byte, error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= limit {
				return buf, errTooLarge
			}
			n := 2*cap(buf) + 512
			if n > limit {
				n = limit
			}
			nb := make([]byte, len(buf), n)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// clip bounds a frame quoted in an error message.
func clip(p []byte) []byte {
	if len(p) > 120 {
		return p[:120]
	}
	return p
}
