package redisadapter

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/internal/msgpack"
	"github.com/roomcast/roomcast/internal/parser"
)

// This file converts between the adapter's values and the generic values
// (maps, arrays, strings, numbers, binaries) that @socket.io/redis-adapter
// publishes as JSON or MessagePack.

// errMalformed marks a message from Redis the adapter cannot use; it is
// logged and dropped, never returned to a caller.
var errMalformed = errors.New("adapter: malformed message")

// decodePayload decodes a message the way the Node adapters do: JSON when it
// starts with '{', MessagePack otherwise.
func decodePayload(b []byte) (any, error) {
	if len(b) > 0 && b[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: json: %v", errMalformed, err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, fmt.Errorf("%w: json: data after the object", errMalformed)
		}
		return v, nil
	}
	v, err := msgpack.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return v, nil
}

// encodeJSON marshals v without HTML escaping, as JSON.stringify does.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// encodeAuto encodes v as MessagePack when it holds binary data and as JSON
// otherwise, the choice the Node adapters make for messages that may carry
// binary (JSON has no binary type).
func encodeAuto(v any) ([]byte, error) {
	if hasBinary(v) {
		return msgpack.Marshal(v)
	}
	return encodeJSON(v)
}

// hasBinary reports whether v holds a []byte at any depth.
func hasBinary(v any) bool {
	switch x := v.(type) {
	case []byte:
		return true
	case []any:
		for _, el := range x {
			if hasBinary(el) {
				return true
			}
		}
	case map[string]any:
		for _, el := range x {
			if hasBinary(el) {
				return true
			}
		}
	}
	return false
}

// packetMessage turns a Socket.IO packet as the Node adapters publish it,
// {type, data: [event, ...args], nsp}, into an adapter.Message for namespace nsp.
func packetMessage(nsp string, v any) (*adapter.Message, error) {
	p, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: packet is not an object", errMalformed)
	}
	if typ, _ := asInt(p["type"]); typ != int64(parser.Event) && typ != int64(parser.BinaryEvent) {
		return nil, fmt.Errorf("%w: packet type %v is not an event", errMalformed, p["type"])
	}
	data, ok := p["data"].([]any)
	if !ok || len(data) == 0 {
		return nil, fmt.Errorf("%w: packet data is not a non-empty array", errMalformed)
	}
	ev, ok := data[0].(string)
	// socket.io-client closes the connection on a reserved event name: a
	// broadcast carrying one is dropped.
	if !ok || parser.Reserved(ev) {
		return nil, fmt.Errorf("%w: event name %v", errMalformed, data[0])
	}
	for i := range data {
		data[i] = jsonable(data[i])
	}
	raw, atts, typ, err := parser.MarshalArgs("", data, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return &adapter.Message{Packet: parser.Packet{
		Type: typ, Namespace: nsp, ID: parser.NoID, Data: raw, Attachments: atts,
	}}, nil
}

// packetValue is the reverse of packetMessage: the packet of m as the Node
// adapters publish it. The type is always EVENT (2): socket.io-parser turns
// it into BINARY_EVENT itself when the data holds binaries.
func packetValue(m *adapter.Message) (map[string]any, error) {
	args, err := parser.UnmarshalArgs(m.Packet.Data, m.Packet.Attachments)
	if err != nil {
		return nil, err
	}
	return map[string]any{"type": int64(parser.Event), "data": args, "nsp": m.Packet.Namespace}, nil
}

// optionsValue is the {rooms, except, flags} object of the Node adapters.
func optionsValue(opts adapter.Options, flags map[string]any) map[string]any {
	if flags == nil {
		flags = map[string]any{}
	}
	if opts.Volatile {
		flags["volatile"] = true
	}
	v := map[string]any{
		"rooms":  nonNil(opts.Rooms),
		"except": nonNil(opts.Except),
		"flags":  flags,
	}
	if opts.Log != "" {
		// A member the Node adapters ignore (they read rooms, except and
		// flags): Roomcast nodes take the broadcast from the log instead.
		v["log"] = opts.Log
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// parseOptions reads {rooms, except, flags}; missing members select
// everything.
func parseOptions(v any) adapter.Options {
	m, _ := v.(map[string]any)
	o := adapter.Options{Rooms: asStrings(m["rooms"]), Except: asStrings(m["except"])}
	o.Log, _ = m["log"].(string)
	if flags, ok := m["flags"].(map[string]any); ok {
		o.Volatile, _ = flags["volatile"].(bool)
	}
	return o
}

// asInt reads an integral number of any of the decoded kinds.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			return int64(x), true
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true
		}
		if f, err := x.Float64(); err == nil {
			return asInt(f)
		}
	}
	return 0, false
}

// asStrings reads an array of room names; numbers become their decimal form
// (JavaScript allows numeric rooms), anything else is skipped.
func asStrings(v any) []string {
	arr, _ := v.([]any)
	if len(arr) == 0 {
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, el := range arr {
		switch x := el.(type) {
		case string:
			out = append(out, x)
		case int64, uint64, float64, json.Number:
			out = append(out, numberString(x))
		}
	}
	return out
}

func numberString(v any) string {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return msgpack.FormatNumber(x)
	case json.Number:
		return string(x)
	}
	return ""
}

// jsonable rewrites what a decoded MessagePack value holds that has no JSON
// form the way JSON.stringify treats it on the Node side: a Date becomes its
// ISO string, NaN and the infinities null.
func jsonable(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05.000Z")
	case []any:
		for i := range x {
			x[i] = jsonable(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = jsonable(x[k])
		}
	}
	return v
}

// toGo turns a decoded value into what application code gets elsewhere from
// the parser: numbers as json.Number, binaries as []byte, dates as ISO
// strings.
func toGo(v any) any {
	switch x := v.(type) {
	case int64, uint64, float64:
		if f, ok := x.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return nil
		}
		return json.Number(numberString(x))
	case time.Time:
		return jsonable(x)
	case []any:
		for i := range x {
			x[i] = toGo(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = toGo(x[k])
		}
	}
	return v
}

// forWire turns application values (ack answers, serverSideEmit arguments)
// into values the encoders take: the generic kinds pass (recursively), other
// values go through encoding/json, as the Socket.IO argument encoder treats
// them.
func forWire(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, []byte, json.Number, time.Time,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32:
		return v, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, nil
		}
		return v, nil
	case json.RawMessage:
		return fromJSON(x)
	case []any:
		out := make([]any, len(x))
		for i, el := range x {
			w, err := forWire(el)
			if err != nil {
				return nil, err
			}
			out[i] = w
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, el := range x {
			w, err := forWire(el)
			if err != nil {
				return nil, err
			}
			out[k] = w
		}
		return out, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return fromJSON(b)
}

func fromJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// forWireAll applies forWire to each of args.
func forWireAll(args []any) ([]any, error) {
	out := make([]any, len(args))
	for i, a := range args {
		w, err := forWire(a)
		if err != nil {
			return nil, err
		}
		out[i] = w
	}
	return out, nil
}

// randomID returns n random bytes in hex (2n characters).
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// jsLength is the length JavaScript gives s: UTF-16 code units.
func jsLength(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x10000 && r != utf8.RuneError {
			n++
		}
	}
	return n
}

// socketInfoValue is the JSON form of a local socket in a fetchSockets
// answer: {id, handshake, rooms, data} as socket.io's RemoteSocket expects,
// plus node (Node servers ignore it). Data that encoding/json refuses is
// sent as null. The handshake is reduced by wireHandshake: credentials do
// not cross Redis.
func socketInfoValue(info adapter.SocketInfo) map[string]any {
	hs := wireHandshake(info.Handshake)
	data, err := forWire(info.Data)
	if err != nil {
		data = nil
	}
	out := map[string]any{
		"id":        info.ID,
		"handshake": hs,
		"rooms":     nonNil(info.Rooms),
		"data":      data,
	}
	if info.Node != "" {
		out["node"] = info.Node
	}
	return out
}

// wireHandshake is what another node learns of a socket's handshake: its
// shape (socket.io's RemoteSocket.handshake, every field present so that
// Node code reading handshake.headers[...] does not throw) with the time,
// the flags and the URL's path — never the headers (Cookie,
// Authorization), the query, the URL's query, the client's address or the
// CONNECT auth payload (tokens). A FetchSockets answer is published to every
// node, so whatever it carries is on Redis; what a socket presented stays
// on its own node (Socket.Handshake).
func wireHandshake(h adapter.Handshake) map[string]any {
	path, _, _ := strings.Cut(h.URL, "?")
	return map[string]any{
		"headers": map[string]any{},
		"time":    h.Time,
		"address": "",
		"xdomain": h.XDomain,
		"secure":  h.Secure,
		"issued":  h.Issued,
		"url":     path,
		"query":   map[string]any{},
		"auth":    map[string]any{},
	}
}

// parseSocketInfo reads one socket of a fetchSockets answer, tolerating what
// Node puts in a handshake (array-valued headers and query parameters).
func parseSocketInfo(v any) (adapter.SocketInfo, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return adapter.SocketInfo{}, false
	}
	id, ok := m["id"].(string)
	if !ok {
		return adapter.SocketInfo{}, false
	}
	info := adapter.SocketInfo{ID: id, Rooms: asStrings(m["rooms"]), Data: toGo(m["data"])}
	info.Node, _ = m["node"].(string)
	if hs, ok := m["handshake"].(map[string]any); ok {
		h := &info.Handshake
		h.Headers = stringMap(hs["headers"])
		h.Query = stringMap(hs["query"])
		h.Time, _ = hs["time"].(string)
		h.Address, _ = hs["address"].(string)
		h.URL, _ = hs["url"].(string)
		h.XDomain, _ = hs["xdomain"].(bool)
		h.Secure, _ = hs["secure"].(bool)
		h.Issued, _ = asInt(hs["issued"])
		if auth, ok := toGo(hs["auth"]).(map[string]any); ok {
			h.Auth = auth
		}
	}
	return info, true
}

// stringMap reads an object of strings; array values are joined with ", "
// (how Node folds repeated headers), other scalars formatted.
func stringMap(v any) map[string]string {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, el := range m {
		switch x := el.(type) {
		case string:
			out[k] = x
		case []any:
			s := ""
			for i, part := range x {
				if i > 0 {
					s += ", "
				}
				s += fmt.Sprint(toGo(part))
			}
			out[k] = s
		case nil:
		default:
			out[k] = fmt.Sprint(toGo(x))
		}
	}
	return out
}
