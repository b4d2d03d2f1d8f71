package parser

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	tests := []struct {
		name string
		msgs []message
		want []*Packet
	}{
		// socket.io-parser test/parser.js
		{"connection", []message{text(`0/woot,{"token":"123"}`)},
			[]*Packet{{Type: Connect, Namespace: "/woot", ID: NoID, Data: raw(`{"token":"123"}`)}}},
		{"disconnection", []message{text(`1/woot,`)},
			[]*Packet{{Type: Disconnect, Namespace: "/woot", ID: NoID}}},
		{"event", []message{text(`2["a",1,{}]`)},
			[]*Packet{{Type: Event, Namespace: "/", ID: NoID, Data: raw(`["a",1,{}]`)}}},
		{"event with ack", []message{text(`2/test,1["a",1,{}]`)},
			[]*Packet{{Type: Event, Namespace: "/test", ID: 1, Data: raw(`["a",1,{}]`)}}},
		{"ack", []message{text(`3123["a",1,{}]`)},
			[]*Packet{{Type: Ack, Namespace: "/", ID: 123, Data: raw(`["a",1,{}]`)}}},
		{"connect error string", []message{text(`4"Unauthorized"`)},
			[]*Packet{{Type: ConnectError, Namespace: "/", ID: NoID, Data: raw(`"Unauthorized"`)}}},
		{"connect error object", []message{text(`4{"message":"Unauthorized"}`)},
			[]*Packet{{Type: ConnectError, Namespace: "/", ID: NoID, Data: raw(`{"message":"Unauthorized"}`)}}},
		// socket.io-parser test/buffer.js and test/arraybuffer.js
		{"buffer", []message{text(`51-/cool,23["a",` + ph(0) + `]`), binaryStr("abc")},
			[]*Packet{{Type: BinaryEvent, Namespace: "/cool", ID: 23, Data: raw(`["a",` + ph(0) + `]`), Attachments: [][]byte{[]byte("abc")}}}},
		{"nested buffer", []message{text(`51-/cool,23["a",{"b":["c",` + ph(0) + `]}]`), binaryStr("abc")},
			[]*Packet{{Type: BinaryEvent, Namespace: "/cool", ID: 23, Data: raw(`["a",{"b":["c",` + ph(0) + `]}]`), Attachments: [][]byte{[]byte("abc")}}}},
		{"binary ack", []message{text(`61-/back,127["a",` + ph(0) + `,{}]`), binaryStr("xxx")},
			[]*Packet{{Type: BinaryAck, Namespace: "/back", ID: 127, Data: raw(`["a",` + ph(0) + `,{}]`), Attachments: [][]byte{[]byte("xxx")}}}},
		{"buffers deep in JSON", []message{text(`52-/deep,999["a",{"a":"hi","b":{"why":` + ph(0) + `},"c":{"a":"bye","b":{"a":` + ph(1) + `}}}]`), binary(0, 0, 0), binary(0, 0, 0, 0, 0, 0)},
			[]*Packet{{Type: BinaryEvent, Namespace: "/deep", ID: 999, Data: raw(`["a",{"a":"hi","b":{"why":` + ph(0) + `},"c":{"a":"bye","b":{"a":` + ph(1) + `}}}]`), Attachments: [][]byte{{0, 0, 0}, {0, 0, 0, 0, 0, 0}}}}},
		{"ack id 0", []message{text(`51-0["a",` + ph(0) + `]`), binary(0, 1, 2, 3, 4)},
			[]*Packet{{Type: BinaryEvent, Namespace: "/", ID: 0, Data: raw(`["a",` + ph(0) + `]`), Attachments: [][]byte{{0, 1, 2, 3, 4}}}}},
		// docs/socket.io-protocol/v5-test-suite
		{"connect without trailing comma", []message{text(`0/random`)},
			[]*Packet{{Type: Connect, Namespace: "/random", ID: NoID}}},
		{"two attachments", []message{text(`52-["message",` + ph(0) + `,` + ph(1) + `]`), binary(1, 2, 3), binary(4, 5, 6)},
			[]*Packet{{Type: BinaryEvent, Namespace: "/", ID: NoID, Data: raw(`["message",` + ph(0) + `,` + ph(1) + `]`), Attachments: [][]byte{{1, 2, 3}, {4, 5, 6}}}}},
		{"event with ack 456", []message{text(`2456["message-with-ack",1,"2",{"3":[false]}]`)},
			[]*Packet{{Type: Event, Namespace: "/", ID: 456, Data: raw(`["message-with-ack",1,"2",{"3":[false]}]`)}}},
		// edges
		{"connect with recovery", []message{text(`0{"token":"x","pid":"p","offset":"1-0"}`)},
			[]*Packet{{Type: Connect, Namespace: "/", ID: NoID, Data: raw(`{"token":"x","pid":"p","offset":"1-0"}`)}}},
		{"explicit main namespace", []message{text(`2/,["a"]`)},
			[]*Packet{{Type: Event, Namespace: "/", ID: NoID, Data: raw(`["a"]`)}}},
		{"leading zeros in id", []message{text(`2/admin,007["a"]`)},
			[]*Packet{{Type: Event, Namespace: "/admin", ID: 7, Data: raw(`["a"]`)}}},
		{"largest id", []message{text(`2` + strconv.FormatInt(1<<63-1, 10) + `["a"]`)},
			[]*Packet{{Type: Event, Namespace: "/", ID: 1<<63 - 1, Data: raw(`["a"]`)}}},
		{"trailing whitespace dropped", []message{text("2[ \"a\" , 1 ] \t\r\n")},
			[]*Packet{{Type: Event, Namespace: "/", ID: NoID, Data: raw(`[ "a" , 1 ]`)}}},
		{"reserved names are the server's business", []message{text(`2["connect"]`)},
			[]*Packet{{Type: Event, Namespace: "/", ID: NoID, Data: raw(`["connect"]`)}}},
		{"placeholder in a plain event is plain data", []message{text(`2["a",` + ph(3) + `]`)},
			[]*Packet{{Type: Event, Namespace: "/", ID: NoID, Data: raw(`["a",` + ph(3) + `]`)}}},
		{"ten attachments", []message{text(`510-["a",` + ph(9) + `]`), binary(0), binary(1), binary(2), binary(3), binary(4), binary(5), binary(6), binary(7), binary(8), binary(9)},
			[]*Packet{{Type: BinaryEvent, Namespace: "/", ID: NoID, Data: raw(`["a",` + ph(9) + `]`), Attachments: [][]byte{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}, {9}}}}},
		{"empty attachment", []message{text(`51-["a",` + ph(0) + `]`), binary()},
			[]*Packet{{Type: BinaryEvent, Namespace: "/", ID: NoID, Data: raw(`["a",` + ph(0) + `]`), Attachments: [][]byte{{}}}}},
		{"integral float placeholder index", []message{text(`52-["a",{"_placeholder":true,"num":1.0},{"_placeholder":true,"num":1e0}]`), binary(1), binary(2)},
			[]*Packet{{Type: BinaryEvent, Namespace: "/", ID: NoID, Data: raw(`["a",{"_placeholder":true,"num":1.0},{"_placeholder":true,"num":1e0}]`), Attachments: [][]byte{{1}, {2}}}}},
		{"escaped placeholder key, last duplicate wins", []message{text(`51-["a",{"\u005fplaceholder":true,"num":5,"num":0}]`), binary(1)},
			[]*Packet{{Type: BinaryEvent, Namespace: "/", ID: NoID, Data: raw(`["a",{"\u005fplaceholder":true,"num":5,"num":0}]`), Attachments: [][]byte{{1}}}}},
		{"non-placeholders are not checked", []message{text(`51-["a",{"_placeholder":false,"num":9},{"_placeholder":"true"},` + ph(0) + `]`), binary(1)},
			[]*Packet{{Type: BinaryEvent, Namespace: "/", ID: NoID, Data: raw(`["a",{"_placeholder":false,"num":9},{"_placeholder":"true"},` + ph(0) + `]`), Attachments: [][]byte{{1}}}}},
		{"sequence", []message{text(`2["a"]`), text(`61-/x,3[` + ph(0) + `]`), binary(7), text(`1/x,`)},
			[]*Packet{
				{Type: Event, Namespace: "/", ID: NoID, Data: raw(`["a"]`)},
				{Type: BinaryAck, Namespace: "/x", ID: 3, Data: raw(`[` + ph(0) + `]`), Attachments: [][]byte{{7}}},
				{Type: Disconnect, Namespace: "/x", ID: NoID},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var d Decoder
			got, err := decodeAll(t, &d, tt.msgs)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("decoded %d packets, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if diff := samePacket(got[i], tt.want[i]); diff != "" {
					t.Errorf("packet %d: %s", i, diff)
				}
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		msgs     []message
		tooMany  bool // the error also wraps ErrTooManyAttachments
		complete int  // packets completed before the error
	}{
		// socket.io-parser test/parser.js "throw an error upon parsing error"
		{"invalid JSON", []message{text(`442["some","data"`)}, false, 0},
		{"connect with string", []message{text(`0/admin,"invalid"`)}, false, 0},
		{"connect with array", []message{text(`0[]`)}, false, 0},
		{"disconnect with payload", []message{text(`1/admin,{}`)}, false, 0},
		{"event with unterminated string", []message{text(`2/admin,"invalid`)}, false, 0},
		{"event with object", []message{text(`2/admin,{}`)}, false, 0},
		{"event name object", []message{text(`2[{"toString":"foo"}]`)}, false, 0},
		{"event name bool", []message{text(`2[true,"foo"]`)}, false, 0},
		{"event name null", []message{text(`2[null,"bar"]`)}, false, 0},
		{"binary without count", []message{text(`5`)}, false, 0},
		{"binary count without dash", []message{text(`51`)}, false, 0},
		{"binary count not a number", []message{text(`5a-`)}, false, 0},
		{"binary count not an integer", []message{text(`51.23-`)}, false, 0},
		{"unknown type", []message{text(`999`)}, false, 0},
		// socket.io-parser "throws an error when receiving too many attachments" (limit 10 here)
		{"too many attachments", []message{text(`511-["hello"]`)}, true, 0},
		{"huge attachment count", []message{text(`599999999999999999999999-["hello"]`)}, true, 0},
		// socket.io-parser test/buffer.js
		{"placeholder num is a string", []message{text(`51-["hello",{"_placeholder":true,"num":"splice"}]`), binaryStr("world")}, false, 0},
		{"placeholder num out of bounds", []message{text(`51-["hello",` + ph(1) + `]`), binaryStr("world")}, false, 0},
		{"attachment without header", []message{binaryStr("world")}, false, 0},
		{"text while attachments pending", []message{text(`51-["hello",` + ph(0) + `]`), text(`2["hello"]`)}, false, 0},
		// docs/socket.io-protocol/v5-test-suite
		{"unknown packet type", []message{text(`abc`)}, false, 0},
		{"event payload not an array", []message{text(`2{}`)}, false, 0},
		{"invalid ack id", []message{text(`2abc["message-with-ack",1,"2",{"3":[false]}]`)}, false, 0},
		// stricter than socket.io-parser 4.2.7 (see Decoder.Decode)
		{"empty message", []message{text(``)}, false, 0},
		{"event without payload", []message{text(`2`)}, false, 0},
		{"event with namespace without payload", []message{text(`2/admin,`)}, false, 0},
		{"event with empty array", []message{text(`2[]`)}, false, 0},
		{"numeric event name", []message{text(`2[1,"a",{}]`)}, false, 0},
		{"ack without id", []message{text(`3[]`)}, false, 0},
		{"connect error without payload", []message{text(`4`)}, false, 0},
		{"id on connect", []message{text(`01{}`)}, false, 0},
		{"id on disconnect", []message{text(`1/admin,1`)}, false, 0},
		{"id overflow", []message{text(`29223372036854775808["a"]`)}, false, 0},
		{"whitespace before payload", []message{text(`2 ["a"]`)}, false, 0},
		{"whitespace between id and payload", []message{text(`3/x,1 []`)}, false, 0},
		{"fractional placeholder index", []message{text(`52-["a",{"_placeholder":true,"num":0.5}]`), binary(1), binary(2)}, false, 0},
		{"invalid UTF-8 namespace", []message{text("2/adm\xffin,[\"a\"]")}, false, 0},
		// more
		{"binary with zero attachments", []message{text(`50-["a"]`)}, false, 0},
		{"binary count without digits", []message{text(`5-["a"]`)}, false, 0},
		{"placeholder without num", []message{text(`51-["a",{"_placeholder":true}]`), binary(1)}, false, 0},
		{"negative placeholder index", []message{text(`51-["a",{"_placeholder":true,"num":-1}]`), binary(1)}, false, 0},
		{"placeholder index overflows float", []message{text(`51-["a",{"_placeholder":true,"num":1e400}]`), binary(1)}, false, 0},
		{"trailing garbage", []message{text(`2["a"]x`)}, false, 0},
		{"two JSON values", []message{text(`2["a"]["b"]`)}, false, 0},
		{"connect error array", []message{text(`4[]`)}, false, 0},
		{"ack with object", []message{text(`3/admin,1{}`)}, false, 0},
		{"type 7", []message{text(`7`)}, false, 0},
		{"extra attachment", []message{text(`51-["a",{"x":` + ph(0) + `}]`), binary(1), binary(2)}, false, 1},
		{"second header before attachments", []message{text(`51-["a",` + ph(0) + `]`), text(`51-["b",` + ph(0) + `]`)}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var d Decoder
			got, err := decodeAll(t, &d, tt.msgs)
			if err == nil {
				t.Fatalf("decoded %d packet(s) without error, want an error", len(got))
			}
			if !errors.Is(err, ErrInvalidPacket) {
				t.Errorf("error %v does not wrap ErrInvalidPacket", err)
			}
			if got := errors.Is(err, ErrTooManyAttachments); got != tt.tooMany {
				t.Errorf("errors.Is(%v, ErrTooManyAttachments) = %v, want %v", err, got, tt.tooMany)
			}
			if len(got) != tt.complete {
				t.Errorf("completed %d packet(s) before the error, want %d", len(got), tt.complete)
			}
			// After an error the Decoder is reset and usable.
			p, err := d.Decode([]byte(`2["after"]`), false)
			if err != nil || p == nil || string(p.Data) != `["after"]` {
				t.Errorf("Decode after the error = %+v, %v; want the packet", p, err)
			}
		})
	}
}

func TestDecoderMaxAttachments(t *testing.T) {
	t.Parallel()
	header := `53-["hello",` + ph(0) + `,` + ph(1) + `,` + ph(2) + `]`
	tests := []struct {
		max     int
		wantErr bool
	}{
		{max: 2, wantErr: true}, // socket.io-parser's maxAttachments test
		{max: 3, wantErr: false},
		{max: 0, wantErr: false}, // default 10
		{max: -1, wantErr: false},
	}
	for _, tt := range tests {
		d := Decoder{MaxAttachments: tt.max}
		_, err := d.Decode([]byte(header), false)
		if tt.wantErr != (err != nil) {
			t.Errorf("MaxAttachments %d: Decode error = %v, want error %v", tt.max, err, tt.wantErr)
		}
		if tt.wantErr && !errors.Is(err, ErrTooManyAttachments) {
			t.Errorf("MaxAttachments %d: error %v does not wrap ErrTooManyAttachments", tt.max, err)
		}
	}
	var d Decoder
	if _, err := d.Decode([]byte(`511-["a"]`), false); !errors.Is(err, ErrTooManyAttachments) {
		t.Errorf("default limit: Decode(511-) error = %v, want ErrTooManyAttachments", err)
	}
}

func TestDecoderReset(t *testing.T) {
	t.Parallel()
	// socket.io-parser "should resume decoding after calling destroy()"
	var d Decoder
	if p, err := d.Decode([]byte(`51-["hello",`+ph(0)+`]`), false); p != nil || err != nil {
		t.Fatalf("Decode(header) = %v, %v; want nil, nil", p, err)
	}
	d.Reset()
	p, err := d.Decode([]byte(`2["hello"]`), false)
	if err != nil || p == nil || string(p.Data) != `["hello"]` {
		t.Fatalf("Decode after Reset = %+v, %v", p, err)
	}
	// The dropped packet's attachments are no longer expected.
	if _, err := d.Decode([]byte{1}, true); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("attachment after Reset: error = %v, want ErrInvalidPacket", err)
	}
}

func TestDecodeCopiesInput(t *testing.T) {
	t.Parallel()
	var d Decoder
	header := []byte(`51-/chat,4["ev",` + ph(0) + `]`)
	att := []byte{1, 2, 3}
	if _, err := d.Decode(header, false); err != nil {
		t.Fatal(err)
	}
	p, err := d.Decode(att, true)
	if err != nil || p == nil {
		t.Fatalf("Decode(attachment) = %v, %v", p, err)
	}
	for i := range header {
		header[i] = 'x'
	}
	att[0] = 9
	want := &Packet{Type: BinaryEvent, Namespace: "/chat", ID: 4, Data: json.RawMessage(`["ev",` + ph(0) + `]`), Attachments: [][]byte{{1, 2, 3}}}
	if diff := samePacket(p, want); diff != "" {
		t.Errorf("packet changed with the caller's buffers: %s", diff)
	}
}

// TestRoundTrip checks Decode(AppendText(p) + attachments) == p for random
// valid packets.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	var d Decoder
	for i := range 5000 {
		p := randomPacket(r)
		got, err := decodeAll(t, &d, encodeMessages(p))
		if err != nil {
			t.Fatalf("#%d: decoding %q: %v", i, AppendText(nil, p), err)
		}
		if len(got) != 1 {
			t.Fatalf("#%d: %q decoded to %d packets", i, AppendText(nil, p), len(got))
		}
		if diff := samePacket(got[0], p); diff != "" {
			t.Fatalf("#%d: %q: %s", i, AppendText(nil, p), diff)
		}
	}
}

// randomPacket returns a valid packet; Data is built with MarshalArgs from
// random values so binary packets get consistent placeholders.
func randomPacket(r *rand.Rand) *Packet {
	p := &Packet{Type: Type(r.IntN(7)), Namespace: "/", ID: NoID}
	if r.IntN(2) == 0 {
		p.Namespace = randomNamespace(r)
	}
	switch p.Type {
	case Connect:
		if r.IntN(2) == 0 {
			p.Data = mustJSON(map[string]any{"token": randomString(r), "n": r.IntN(100)})
		}
	case ConnectError:
		if r.IntN(2) == 0 {
			p.Data = mustJSON(randomString(r))
		} else {
			p.Data = mustJSON(map[string]any{"message": randomString(r)})
		}
	case Event, BinaryEvent, Ack, BinaryAck:
		binary := p.Type.IsBinary()
		ack := p.Type == Ack || p.Type == BinaryAck
		var args []any
		for range r.IntN(4) {
			args = append(args, randomValue(r, 3, binary))
		}
		if binary {
			args = append(args, randomBytes(r)) // at least one attachment
		}
		event := ""
		if !ack {
			event = randomString(r)
			if event == "" {
				event = "e"
			}
		}
		data, atts, typ, err := MarshalArgs(event, args, ack)
		if err != nil {
			panic(err)
		}
		p.Type, p.Data, p.Attachments = typ, data, atts
		if ack || r.IntN(2) == 0 {
			p.ID = r.Int64N(1 << 62)
			if r.IntN(4) == 0 {
				p.ID = int64(r.IntN(3))
			}
		}
	}
	return p
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func randomNamespace(r *rand.Rand) string {
	const chars = "abcXYZ019/-_?=&é "
	var b strings.Builder
	b.WriteByte('/')
	for range r.IntN(12) {
		rs := []rune(chars)
		b.WriteRune(rs[r.IntN(len(rs))])
	}
	return b.String()
}

func randomString(r *rand.Rand) string {
	pieces := []string{"a", "Z", "0", " ", `"`, `\`, "\n", "\t", "\x00", "\x1f", "é", "日本", "😀", "\u2028", "<", "&", "/", "_placeholder", "num"}
	var b strings.Builder
	for range r.IntN(6) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func randomBytes(r *rand.Rand) []byte {
	b := make([]byte, r.IntN(8))
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

// randomValue returns a value of the kinds UnmarshalArgs produces (numbers
// as json.Number), with []byte only when binary is true.
func randomValue(r *rand.Rand, depth int, binary bool) any {
	kinds := 6
	if depth > 0 {
		kinds = 8
	}
	switch k := r.IntN(kinds); {
	case k == 0:
		return nil
	case k == 1:
		return r.IntN(2) == 0
	case k == 2:
		return randomString(r)
	case k == 3:
		return json.Number(strconv.Itoa(r.IntN(2000) - 1000))
	case k == 4:
		return json.Number(strconv.FormatFloat(r.NormFloat64()*1e6, 'g', -1, 64))
	case k == 5:
		if binary {
			return randomBytes(r)
		}
		return randomString(r)
	case k == 6:
		a := []any{}
		for range r.IntN(4) {
			a = append(a, randomValue(r, depth-1, binary))
		}
		return a
	default:
		m := map[string]any{}
		for range r.IntN(4) {
			m[randomString(r)] = randomValue(r, depth-1, binary)
		}
		return m
	}
}
