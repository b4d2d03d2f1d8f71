package redisadapter

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/roomcast/roomcast/adapter"
	"os"
	"reflect"
	"testing"

	"github.com/roomcast/roomcast/internal/msgpack"
	"github.com/roomcast/roomcast/internal/parser"
)

// nodeMessages are the messages of internal/msgpack/testdata/vectors.json:
// what @socket.io/redis-adapter 8.3 and @socket.io/redis-emitter 5 publish,
// encoded by notepack.io (see gen_vectors.mjs there).
func nodeMessages(t testing.TB) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile("../../internal/msgpack/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Messages []struct{ Name, Hex string }
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, m := range f.Messages {
		raw, err := hex.DecodeString(m.Hex)
		if err != nil {
			t.Fatal(err)
		}
		out[m.Name] = raw
	}
	if len(out) == 0 {
		t.Fatal("no messages")
	}
	return out
}

type stubNamespace string

func (n stubNamespace) Name() string                          { return string(n) }
func (stubNamespace) HandleServerSideEmit([]any, func([]any)) {}

func TestDecodeNodeBroadcasts(t *testing.T) {
	msgs := nodeMessages(t)
	tests := []struct {
		name string
		nsp  string
		text string // the packet as our server writes it
		atts [][]byte
		opts adapter.Options
	}{
		{"classic broadcast to everyone", "/", `2["chat","hello",{"f":1.5,"n":1}]`, nil, adapter.Options{}},
		{"classic broadcast to one room", "/", `2["news","x"]`, nil, adapter.Options{Rooms: []string{"room1"}}},
		{"classic broadcast, rooms and except", "/", `2["news",42,null,true]`, nil,
			adapter.Options{Rooms: []string{"a", "b"}, Except: []string{"c"}, Volatile: true}},
		{"classic broadcast with binary", "/chat",
			`52-/chat,["file",{"_placeholder":true,"num":0},{"nested":[{"_placeholder":true,"num":1}]}]`,
			[][]byte{{1, 2, 3}, []byte("abc")}, adapter.Options{}},
		{"classic broadcast without flags", "/", `2["e"]`, nil, adapter.Options{}},
		{"emitter broadcast", "/", `2["from emitter",{"a":[1,2]}]`, nil, adapter.Options{Rooms: []string{"r"}}},
		{"emitter volatile binary", "/admin", `51-/admin,["bin",{"_placeholder":true,"num":0}]`,
			[][]byte{bytes.Repeat([]byte{1}, 300)}, adapter.Options{Except: []string{"x"}, Volatile: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, ok := msgs[tt.name]
			if !ok {
				t.Fatal("no such vector")
			}
			a := testClassic("self", stubNamespace(tt.nsp))
			m, opts, err := a.decodeBroadcast(payload)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(parser.AppendText(nil, &m.Packet)); got != tt.text {
				t.Errorf("packet %s, want %s", got, tt.text)
			}
			if !reflect.DeepEqual(m.Packet.Attachments, tt.atts) {
				t.Errorf("attachments %v, want %v", m.Packet.Attachments, tt.atts)
			}
			if fmt.Sprint(opts) != fmt.Sprint(tt.opts) {
				t.Errorf("opts %+v, want %+v", opts, tt.opts)
			}
			// The same message from another namespace, or from this node, is ignored.
			other := testClassic("self", stubNamespace("/elsewhere"))
			if _, _, err := other.decodeBroadcast(payload); !errors.Is(err, errOtherNamespace) {
				t.Errorf("other namespace: %v", err)
			}
		})
	}
	self := testClassic("Xy12ab", stubNamespace("/"))
	if _, _, err := self.decodeBroadcast(msgs["classic broadcast to everyone"]); !errors.Is(err, errOwnMessage) {
		t.Errorf("own message: %v", err)
	}
}

// TestEncodeBroadcast checks the shape Node servers decode: [uid,
// {type: 2, data, nsp}, {rooms, except, flags}], binaries as bin.
func TestEncodeBroadcast(t *testing.T) {
	m, err := adapter.NewMessage("/chat", "ev", []any{1, []byte{9}, map[string]any{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	a := testClassic("me", stubNamespace("/chat"))
	b, err := a.encode(m, adapter.Options{Rooms: []string{"r"}, Volatile: true})
	if err != nil {
		t.Fatal(err)
	}
	v, err := msgpack.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{
		"me",
		map[string]any{"type": int64(2), "nsp": "/chat", "data": []any{"ev", int64(1), []byte{9}, map[string]any{"k": "v"}}},
		map[string]any{"rooms": []any{"r"}, "except": []any{}, "flags": map[string]any{"volatile": true}},
	}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("encoded %#v\nwant %#v", v, want)
	}
	// And it decodes back to the same packet.
	other := testClassic("other", stubNamespace("/chat"))
	back, opts, err := other.decodeBroadcast(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Packet.Data, m.Packet.Data) || back.Packet.Type != m.Packet.Type ||
		!reflect.DeepEqual(back.Packet.Attachments, m.Packet.Attachments) {
		t.Fatalf("round trip %+v, want %+v", back.Packet, m.Packet)
	}
	if !opts.Volatile || fmt.Sprint(opts.Rooms) != "[r]" {
		t.Fatalf("opts %+v", opts)
	}
}

func TestPacketMessageRefuses(t *testing.T) {
	tests := map[string]any{
		"not an object":    []any{"x"},
		"ack packet":       map[string]any{"type": int64(3), "data": []any{"x"}},
		"no data":          map[string]any{"type": int64(2)},
		"empty data":       map[string]any{"type": int64(2), "data": []any{}},
		"numeric event":    map[string]any{"type": int64(2), "data": []any{int64(1)}},
		"reserved event":   map[string]any{"type": int64(2), "data": []any{"connect"}},
		"disconnect event": map[string]any{"type": int64(2), "data": []any{"disconnect", "x"}},
	}
	for name, v := range tests {
		if _, err := packetMessage("/", v); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestParseNodeFetchResponse(t *testing.T) {
	v, err := decodePayload(nodeMessages(t)["classic REMOTE_FETCH response"])
	if err != nil {
		t.Fatal(err)
	}
	socks := v.(map[string]any)["sockets"].([]any)
	info, ok := parseSocketInfo(socks[0])
	if !ok {
		t.Fatal("not parsed")
	}
	if info.ID != "AbCdEfGhIjKlMnOpQrSt" || fmt.Sprint(info.Rooms) != "[AbCdEfGhIjKlMnOpQrSt room1]" {
		t.Fatalf("info %+v", info)
	}
	h := info.Handshake
	if h.Headers["set-cookie"] != "a=1, b=2" || h.Headers["host"] != "localhost" ||
		h.Query["t"] != "1, 2" || h.Issued != 1704067200000 || h.Address != "::1" || h.Auth["token"] != "x" {
		t.Fatalf("handshake %+v", h)
	}
	if fmt.Sprint(info.Data) != "map[n:3 user:alice]" {
		t.Fatalf("data %#v", info.Data)
	}
}

func TestSocketInfoRoundTrip(t *testing.T) {
	in := adapter.SocketInfo{
		ID: "s1", Rooms: []string{"s1", "r"}, Node: "n7",
		Handshake: adapter.Handshake{
			Headers: map[string]string{"cookie": "session=COOKIESECRET", "authorization": "Bearer x"}, Issued: 5,
			URL: "/socket.io/?EIO=4&token=QUERYSECRET", Query: map[string]string{"token": "QUERYSECRET"},
			Address: "10.0.0.1", Auth: map[string]any{"token": "JWTSECRET"},
		},
		Data: map[string]any{"user": "bob", "bin": []byte{1}},
	}
	b, err := encodeJSON(socketInfoValue(in))
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodePayload(b)
	if err != nil {
		t.Fatal(err)
	}
	out, ok := parseSocketInfo(v)
	// JSON, as 8.x sends it: a binary in the data becomes base64.
	if !ok || out.ID != in.ID || out.Node != "n7" || fmt.Sprint(out.Rooms) != "[s1 r]" ||
		out.Handshake.Issued != 5 || out.Handshake.URL != "/socket.io/" || fmt.Sprint(out.Data) != "map[bin:AQ== user:bob]" {
		t.Fatalf("round trip %+v", out)
	}
	// The handshake's credentials stay on the socket's node: an answer is
	// published to every node through Redis.
	for _, secret := range []string{"COOKIESECRET", "Bearer", "QUERYSECRET", "JWTSECRET", "10.0.0.1"} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the wire form carries %q: %s", secret, b)
		}
	}
	if len(out.Handshake.Headers) != 0 || len(out.Handshake.Query) != 0 || len(out.Handshake.Auth) != 0 || out.Handshake.Address != "" {
		t.Errorf("handshake %+v, want no headers, query, auth or address", out.Handshake)
	}
	// The shape stays what socket.io's RemoteSocket has.
	hs, _ := v.(map[string]any)["handshake"].(map[string]any)
	for _, k := range []string{"headers", "time", "address", "xdomain", "secure", "issued", "url", "query", "auth"} {
		if _, ok := hs[k]; !ok {
			t.Errorf("handshake lacks %q: %s", k, b)
		}
	}
}

func TestCodecHelpers(t *testing.T) {
	if got := asStrings([]any{"a", int64(1), 2.5, json.Number("3"), true, nil}); fmt.Sprint(got) != "[a 1 2.5 3]" {
		t.Errorf("asStrings = %v", got)
	}
	for s, n := range map[string]int{"": 0, "abc": 3, "é": 1, "🎉": 2, "AbCdEfGhIjKlMnOpQrSt": 20} {
		if got := jsLength(s); got != n {
			t.Errorf("jsLength(%q) = %d, want %d", s, got, n)
		}
	}
	if dynamicRoom("AbCdEfGhIjKlMnOpQrSt") || !dynamicRoom("room") {
		t.Error("dynamicRoom")
	}
	if !hasBinary(map[string]any{"a": []any{1, []byte{}}}) || hasBinary([]any{"x", map[string]any{}}) {
		t.Error("hasBinary")
	}
	if b, _ := encodeAuto(map[string]any{"a": "<&>"}); string(b) != `{"a":"<&>"}` {
		t.Errorf("encodeAuto JSON = %s", b)
	}
	if b, _ := encodeAuto(map[string]any{"a": []byte{1}}); b[0] == '{' {
		t.Errorf("encodeAuto with binary = %x, want MessagePack", b)
	}
	type point struct{ X int }
	w, err := forWire([]any{point{3}, 1.5, []byte{1}})
	if err != nil || fmt.Sprint(w) != "[map[X:3] 1.5 [1]]" {
		t.Errorf("forWire = %v, %v", w, err)
	}
	if g := toGo([]any{int64(1), 2.5, uint64(1 << 63)}); fmt.Sprintf("%#v", g) != `[]interface {}{"1", "2.5", "9223372036854775808"}` {
		t.Errorf("toGo = %#v", g)
	}
	if got := answerArgs(map[string]any{"packet": "x"}, "packet"); fmt.Sprint(got) != "[x]" {
		t.Errorf("answerArgs(Node) = %v", got)
	}
	if got := answerArgs(map[string]any{"packet": "x", "args": []any{"x", int64(2)}}, "packet"); fmt.Sprint(got) != "[x 2]" {
		t.Errorf("answerArgs(Roomcast) = %v", got)
	}
}

// FuzzDecodeMessage feeds arbitrary payloads to the decoders of messages
// received from Redis, seeded with what the Node packages publish. Nothing
// may panic, and a broadcast that decodes must make frames our own packet
// decoder accepts back unchanged (what clients are sent must be valid).
func FuzzDecodeMessage(f *testing.F) {
	for _, b := range nodeMessages(f) {
		f.Add(b)
	}
	m, _ := adapter.NewMessage("/", "ev", []any{"x", []byte{1, 2}, map[string]any{"n": 1}})
	enc, _ := testClassic("u", stubNamespace("/")).encode(m, adapter.Options{Rooms: []string{"r"}})
	f.Add(enc)
	f.Add([]byte(`{"type":7,"packet":{"type":2,"data":["a"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, nsp := range []string{"/", "/chat", "/admin"} {
			a := testClassic("self", stubNamespace(nsp))
			if m, _, err := a.decodeBroadcast(data); err == nil {
				checkFrames(t, m)
			}
		}
		v, err := decodePayload(data)
		if err != nil {
			return
		}
		msg, _ := v.(map[string]any)
		parseOptions(msg["opts"])
		answerArgs(msg, "packet")
		if socks, ok := msg["sockets"].([]any); ok {
			for _, s := range socks {
				parseSocketInfo(s)
			}
		}
		for _, p := range []any{msg["packet"], mapOf(msg["data"])["packet"]} {
			if m, err := packetMessage("/", p); err == nil {
				checkFrames(t, m)
			}
		}
		data2 := mapOf(msg["data"])
		parseOptions(data2["opts"])
		answerArgs(data2, "packet")
		if socks, ok := data2["sockets"].([]any); ok {
			for _, s := range socks {
				parseSocketInfo(s)
			}
		}
	})
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func checkFrames(t *testing.T, m *adapter.Message) {
	t.Helper()
	frames := m.Frames()
	if len(frames) == 0 || frames[0].Binary || frames[0].Data[0] != '4' {
		t.Fatalf("frames %v", frames)
	}
	d := parser.Decoder{MaxAttachments: len(frames)}
	var got *parser.Packet
	for i, fr := range frames {
		data := fr.Data
		if i == 0 {
			data = data[1:]
		}
		p, err := d.Decode(data, fr.Binary)
		if err != nil {
			t.Fatalf("our decoder refuses %q: %v", fr.Data, err)
		}
		if p != nil {
			got = p
		}
	}
	if got == nil || got.Type != m.Packet.Type || !bytes.Equal(got.Data, m.Packet.Data) ||
		len(got.Attachments) != len(m.Packet.Attachments) {
		t.Fatalf("decoded %+v, want %+v", got, m.Packet)
	}
}
