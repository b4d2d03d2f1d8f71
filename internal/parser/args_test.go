package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

type point struct {
	X    int    `json:"x"`
	Blob []byte `json:"blob"`
}

func TestMarshalArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		event    string
		args     []any
		ack      bool
		wantData string
		wantAtts [][]byte
		wantType Type
	}{
		{"event without args", "ping", nil, false, `["ping"]`, nil, Event},
		{"ack without args", "", nil, true, `[]`, nil, Ack},
		{"scalars", "e", []any{nil, true, false, "s", 1, int64(-2), int32(3), uint(4), uint64(5), uint32(6), 1.5, float32(0.25), json.Number("7e3")}, false,
			`["e",null,true,false,"s",1,-2,3,4,5,6,1.5,0.25,7e3]`, nil, Event},
		{"string escaping like JSON.stringify", "e", []any{"q\"b\\n\n\r\t\b\f\x00\x1f\x7f <>& é\u2028", "bad\xffutf8"}, false,
			`["e","q\"b\\n\n\r\t\b\f\u0000\u001f` + "\x7f <>& é\u2028" + `","bad\ufffdutf8"]`, nil, Event},
		{"event name escaped", "a\"b", nil, false, `["a\"b"]`, nil, Event},
		{"map keys sorted", "e", []any{map[string]any{"b": 1, "a": map[string]any{"d": nil, "c": "x"}}}, false,
			`["e",{"a":{"c":"x","d":null},"b":1}]`, nil, Event},
		{"raw message verbatim", "e", []any{json.RawMessage(`{"z":1, "a":[1,2]}`), json.RawMessage(nil)}, false,
			`["e",{"z":1, "a":[1,2]},null]`, nil, Event},
		{"top-level buffer", "baz", []any{[]byte{1, 2, 3, 4}}, false,
			`["baz",` + ph(0) + `]`, [][]byte{{1, 2, 3, 4}}, BinaryEvent},
		{"nested buffers in order", "a", []any{map[string]any{"b": []any{"c", []byte("x")}, "a": []byte("y")}, []byte("z")}, false,
			`["a",{"a":` + ph(0) + `,"b":["c",` + ph(1) + `]},` + ph(2) + `]`, [][]byte{[]byte("y"), []byte("x"), []byte("z")}, BinaryEvent},
		{"binary ack", "", []any{"a", []byte("xxx"), map[string]any{}}, true,
			`["a",` + ph(0) + `,{}]`, [][]byte{[]byte("xxx")}, BinaryAck},
		{"nil and empty buffers are attachments", "e", []any{[]byte(nil), []byte{}}, false,
			`["e",` + ph(0) + `,` + ph(1) + `]`, [][]byte{{}, {}}, BinaryEvent},
		{"other values through encoding/json", "e", []any{point{X: 1, Blob: []byte{1}}, []string{"<a>"}, map[string]int{"k": 1}}, false,
			`["e",{"x":1,"blob":"AQ=="},["<a>"],{"k":1}]`, nil, Event},
		{"ack with a name", "n", []any{1}, true, `["n",1]`, nil, Ack},
		{"floats like encoding/json", "f", []any{1e21, 1e-7, 1e20, 0.000001, -2.5e-8, math.Copysign(0, -1), float32(1e-7), float32(3.4e38)}, false,
			`["f",1e+21,1e-7,100000000000000000000,0.000001,-2.5e-8,-0,1e-7,3.4e+38]`, nil, Event},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data, atts, typ, err := MarshalArgs(tt.event, tt.args, tt.ack)
			if err != nil {
				t.Fatalf("MarshalArgs: %v", err)
			}
			if string(data) != tt.wantData {
				t.Errorf("data = %s\n want %s", data, tt.wantData)
			}
			if !json.Valid(data) {
				t.Errorf("data %s is not valid JSON", data)
			}
			if typ != tt.wantType {
				t.Errorf("type = %v, want %v", typ, tt.wantType)
			}
			if len(atts) != len(tt.wantAtts) {
				t.Fatalf("%d attachments, want %d", len(atts), len(tt.wantAtts))
			}
			for i := range atts {
				if !bytes.Equal(atts[i], tt.wantAtts[i]) || atts[i] == nil {
					t.Errorf("attachment %d = %#v, want %#v", i, atts[i], tt.wantAtts[i])
				}
			}
		})
	}
}

func TestMarshalArgsErrors(t *testing.T) {
	t.Parallel()
	cyclicSlice := []any{nil}
	cyclicSlice[0] = cyclicSlice
	cyclicMap := map[string]any{}
	cyclicMap["self"] = cyclicMap
	tests := []struct {
		name        string
		args        []any
		unsupported bool // wraps ErrUnsupportedValue (else an encoding/json error)
	}{
		// socket.io-parser "throws an error when encoding circular objects"
		{"cyclic slice", []any{cyclicSlice}, true},
		{"cyclic map", []any{cyclicMap}, true},
		{"NaN", []any{math.NaN()}, true},
		{"infinity", []any{map[string]any{"x": math.Inf(1)}}, true},
		{"invalid raw message", []any{json.RawMessage(`{"a":`)}, true},
		{"channel", []any{make(chan int)}, false},
		{"bad json.Number", []any{json.Number("1x")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data, atts, _, err := MarshalArgs("e", tt.args, false)
			if err == nil {
				t.Fatalf("MarshalArgs = %s, %d attachments, want an error", data, len(atts))
			}
			if got := errors.Is(err, ErrUnsupportedValue); got != tt.unsupported {
				t.Errorf("errors.Is(%v, ErrUnsupportedValue) = %v, want %v", err, got, tt.unsupported)
			}
		})
	}
}

func TestMarshalArgsDoesNotModifyInput(t *testing.T) {
	t.Parallel()
	// socket.io-parser "should not modify the input packet"
	args := []any{[]byte{1, 2, 3}, map[string]any{"b": []byte{4, 5, 6}}}
	if _, _, _, err := MarshalArgs("a", args, false); err != nil {
		t.Fatal(err)
	}
	want := []any{[]byte{1, 2, 3}, map[string]any{"b": []byte{4, 5, 6}}}
	if !reflect.DeepEqual(args, want) {
		t.Errorf("args after MarshalArgs = %#v, want %#v", args, want)
	}
}

// TestMarshalArgsMatchesEncodingJSON checks the hand-written string and
// number encoders against encoding/json: both must decode to the same value.
func TestMarshalArgsMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		var v any
		switch r.IntN(4) {
		case 0:
			v = math.Float64frombits(r.Uint64())
		case 1:
			v = r.NormFloat64() * math.Pow(10, float64(r.IntN(60)-30))
		case 2:
			v = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20)))
		default:
			b := make([]byte, r.IntN(12))
			for i := range b {
				b[i] = byte(r.UintN(256))
			}
			v = string(b)
		}
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			continue
		}
		data, _, _, err := MarshalArgs("", []any{v}, true)
		if err != nil {
			t.Fatalf("MarshalArgs(%#v): %v", v, err)
		}
		want, err := json.Marshal([]any{v})
		if err != nil {
			t.Fatal(err)
		}
		if _, isString := v.(string); !isString && string(data) != string(want) {
			// Numbers are written exactly as encoding/json writes them.
			t.Fatalf("MarshalArgs(%#v) = %s, encoding/json %s", v, data, want)
		}
		var got, exp []any
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("MarshalArgs(%#v) = %s: %v", v, data, err)
		}
		if err := json.Unmarshal(want, &exp); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, exp) {
			t.Fatalf("MarshalArgs(%#v) = %s decodes to %#v, encoding/json %s to %#v", v, data, got, want, exp)
		}
	}
}

func TestUnmarshalArgs(t *testing.T) {
	t.Parallel()
	a, b := []byte("abc"), []byte{0xff}
	tests := []struct {
		name string
		data string
		atts [][]byte
		want []any
	}{
		{"empty", `[]`, nil, []any{}},
		{"scalars", `["e",null,true,1,-1.5e3,"s"]`, nil, []any{"e", nil, true, json.Number("1"), json.Number("-1.5e3"), "s"}},
		{"nested", ` ["e",{"a":[1,{"b":null}]}] `, nil, []any{"e", map[string]any{"a": []any{json.Number("1"), map[string]any{"b": nil}}}}},
		{"placeholder", `["e",` + ph(0) + `]`, [][]byte{a}, []any{"e", a}},
		{"nested placeholders", `["e",{"x":[` + ph(1) + `]},` + ph(0) + `]`, [][]byte{a, b}, []any{"e", map[string]any{"x": []any{b}}, a}},
		{"placeholder reused", `[` + ph(0) + `,` + ph(0) + `]`, [][]byte{a}, []any{a, a}},
		{"integral float index", `[{"_placeholder":true,"num":1.0}]`, [][]byte{a, b}, []any{b}},
		{"not placeholders", `[{"_placeholder":false,"num":7},{"_placeholder":"true"}]`, [][]byte{a},
			[]any{map[string]any{"_placeholder": false, "num": json.Number("7")}, map[string]any{"_placeholder": "true"}}},
		{"without attachments placeholders stay objects", `["e",` + ph(0) + `]`, nil,
			[]any{"e", map[string]any{"_placeholder": true, "num": json.Number("0")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := UnmarshalArgs(json.RawMessage(tt.data), tt.atts)
			if err != nil {
				t.Fatalf("UnmarshalArgs: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("UnmarshalArgs = %#v\n want %#v", got, tt.want)
			}
		})
	}
}

func TestUnmarshalArgsErrors(t *testing.T) {
	t.Parallel()
	one := [][]byte{{1}}
	tests := []struct {
		name string
		data string
		atts [][]byte
	}{
		{"nil", ``, nil},
		{"object", `{}`, nil},
		{"string", `"a"`, nil},
		{"null", `null`, nil},
		{"invalid", `["a"`, nil},
		{"trailing data", `["a"] x`, nil},
		{"two values", `["a"]["b"]`, nil},
		{"num out of range", `[` + ph(1) + `]`, one},
		{"num negative", `[{"_placeholder":true,"num":-1}]`, one},
		{"num fractional", `[{"_placeholder":true,"num":0.5}]`, [][]byte{{1}, {2}}},
		{"num string", `[{"_placeholder":true,"num":"0"}]`, one},
		{"num missing", `[{"_placeholder":true}]`, one},
		{"nested bad placeholder", `["e",{"a":[` + ph(3) + `]}]`, one},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := UnmarshalArgs(json.RawMessage(tt.data), tt.atts)
			if !errors.Is(err, ErrInvalidPacket) {
				t.Errorf("UnmarshalArgs = %#v, %v; want an error wrapping ErrInvalidPacket", got, err)
			}
		})
	}
}

func TestEventName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data    string
		want    string
		wantErr bool
	}{
		{`["message",1]`, "message", false},
		{` [ "a b" ]`, "a b", false},
		{`["café 日本"]`, "café 日本", false},
		{`["a\"b\\c\u00e9"]`, "a\"b\\cé", false},
		{`["\u0063onnect"]`, "connect", false},
		{`[""]`, "", false},
		{"[\"bad\xffutf8\"]", "bad\ufffdutf8", false},
		{`[1,"a"]`, "", true},
		{`[]`, "", true},
		{`{}`, "", true},
		{``, "", true},
		{`["unterminated`, "", true},
		{`["bad \x escape"]`, "", true},
	}
	for _, tt := range tests {
		got, err := EventName(json.RawMessage(tt.data))
		if tt.wantErr {
			if !errors.Is(err, ErrInvalidPacket) {
				t.Errorf("EventName(%s) = %q, %v; want an error wrapping ErrInvalidPacket", tt.data, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("EventName(%s) = %q, %v; want %q", tt.data, got, err, tt.want)
		}
	}
}

// TestArgsRoundTrip checks UnmarshalArgs(MarshalArgs(args)) == args for
// random values, and that EventName agrees.
func TestArgsRoundTrip(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 5000 {
		event := randomString(r) // valid UTF-8, so it survives the trip unchanged
		if event == "" {
			event = "e"
		}
		args := []any{}
		for range r.IntN(5) {
			args = append(args, randomValue(r, 3, r.IntN(2) == 0))
		}
		data, atts, typ, err := MarshalArgs(event, args, false)
		if err != nil {
			t.Fatalf("#%d: MarshalArgs: %v", i, err)
		}
		if (typ == BinaryEvent) != (len(atts) > 0) {
			t.Fatalf("#%d: type %v with %d attachments", i, typ, len(atts))
		}
		name, err := EventName(data)
		if err != nil || name != event {
			t.Fatalf("#%d: EventName(%s) = %q, %v; want %q", i, data, name, err, event)
		}
		got, err := UnmarshalArgs(data, atts)
		if err != nil {
			t.Fatalf("#%d: UnmarshalArgs(%s): %v", i, data, err)
		}
		want := append([]any{event}, args...)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("#%d: round trip of %#v\n gave %#v\n via %s", i, want, got, data)
		}
	}
}

func TestEventData(t *testing.T) {
	for _, tc := range []struct{ event, args, want string }{
		{"ev", `[]`, `["ev"]`},
		{"ev", ` [ ] `, `["ev"]`},
		{"ev", `[1,{"a":"b"}]`, `["ev",1,{"a":"b"}]`},
		{"é\"", `["x"]`, `["é\"","x"]`},
	} {
		got, err := EventData(tc.event, json.RawMessage(tc.args))
		if err != nil || string(got) != tc.want {
			t.Errorf("EventData(%q, %s) = %s, %v; want %s", tc.event, tc.args, got, err, tc.want)
		}
	}
	for _, bad := range []string{``, `{}`, `[1,`, `1]`, `[1,]`, `[}`} {
		if _, err := EventData("ev", json.RawMessage(bad)); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("EventData(%q): err = %v, want ErrInvalidPacket", bad, err)
		}
	}
}
