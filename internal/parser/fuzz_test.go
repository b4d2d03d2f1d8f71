package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

// recordSeparator splits a fuzz input into Engine.IO messages, as in an HTTP
// long-polling payload.
const recordSeparator = 0x1e

// splitMessages cuts stream at each record separator; bit i of binaryMask
// makes message i binary.
func splitMessages(stream []byte, binaryMask uint32) []message {
	var msgs []message
	for i, part := range bytes.Split(stream, []byte{recordSeparator}) {
		msgs = append(msgs, message{data: part, binary: i < 32 && binaryMask&(1<<i) != 0})
	}
	return msgs
}

// joinMessages is the inverse of splitMessages, for seeds.
func joinMessages(msgs []message) ([]byte, uint32) {
	var stream []byte
	var mask uint32
	for i, m := range msgs {
		if i > 0 {
			stream = append(stream, recordSeparator)
		}
		stream = append(stream, m.data...)
		if m.binary && i < 32 {
			mask |= 1 << i
		}
	}
	return stream, mask
}

func FuzzDecoder(f *testing.F) {
	seed := func(msgs []message) {
		stream, mask := joinMessages(msgs)
		f.Add(stream, mask)
	}
	ref := loadReferenceVectors(f)
	for _, v := range ref.Vectors {
		seed(referenceMessages(f, v.Messages))
	}
	for _, e := range ref.Encodings {
		seed(referenceMessages(f, e.Messages))
	}
	seed([]message{
		text(`0/chat,{"token":"abc"}`), text(`2/chat,7["join","room:1"]`),
		text(`52-/chat,8["publish",{"room":"r","data":[` + ph(0) + `,{"x":` + ph(1) + `}]}]`), binary(1, 2), binary(3),
		text(`3/chat,9[{"ok":true}]`), text(`1/chat,`),
	})
	f.Fuzz(func(t *testing.T, stream []byte, binaryMask uint32) {
		var d Decoder
		for _, m := range splitMessages(stream, binaryMask) {
			p, err := d.Decode(m.data, m.binary)
			if err != nil {
				if !errors.Is(err, ErrInvalidPacket) {
					t.Fatalf("Decode error %v does not wrap ErrInvalidPacket", err)
				}
				continue
			}
			if p != nil {
				checkDecoded(t, p)
			}
		}
		// The whole input as one text message.
		if p, err := new(Decoder).Decode(stream, false); err == nil && p != nil {
			checkDecoded(t, p)
		}
	})
}

// checkDecoded checks the invariants of a decoded packet: it is well formed,
// it survives re-encoding, and its arguments decode and re-encode.
func checkDecoded(t testing.TB, p *Packet) {
	t.Helper()
	if p.Type > BinaryAck || p.Namespace == "" || p.Namespace[0] != '/' || p.ID < NoID {
		t.Fatalf("malformed packet %+v", p)
	}
	if p.Data != nil && !json.Valid(p.Data) {
		t.Fatalf("Data %q is not valid JSON", p.Data)
	}
	if p.Type.IsBinary() != (len(p.Attachments) > 0) {
		t.Fatalf("%v with %d attachments", p.Type, len(p.Attachments))
	}

	var d Decoder
	again, err := decodeAll(t, &d, encodeMessages(p))
	if err != nil || len(again) != 1 {
		t.Fatalf("re-encoded %q: %d packets, error %v", AppendText(nil, p), len(again), err)
	}
	if diff := samePacket(again[0], p); diff != "" {
		t.Fatalf("re-encoded %q: %s", AppendText(nil, p), diff)
	}

	if p.Type != Event && p.Type != BinaryEvent && p.Type != Ack && p.Type != BinaryAck {
		return
	}
	args, err := UnmarshalArgs(p.Data, p.Attachments)
	if err != nil {
		t.Fatalf("UnmarshalArgs(%s) of a decoded packet: %v", p.Data, err)
	}
	event := ""
	isEvent := p.Type == Event || p.Type == BinaryEvent
	if isEvent {
		name, err := EventName(p.Data)
		if err != nil {
			t.Fatalf("EventName(%s) of a decoded event: %v", p.Data, err)
		}
		if len(args) == 0 || args[0] != name {
			t.Fatalf("EventName(%s) = %q, UnmarshalArgs gives %#v", p.Data, name, args)
		}
		event, args = name, args[1:]
	}
	checkArgsRoundTrip(t, event, args, !isEvent)
}

// checkArgsRoundTrip checks that args marshal and unmarshal back to
// themselves.
func checkArgsRoundTrip(t testing.TB, event string, args []any, ack bool) {
	t.Helper()
	data, atts, _, err := MarshalArgs(event, args, ack)
	if err != nil {
		t.Fatalf("MarshalArgs of decoded arguments %#v: %v", args, err)
	}
	got, err := UnmarshalArgs(data, atts)
	if err != nil {
		t.Fatalf("UnmarshalArgs(%s): %v", data, err)
	}
	want := args
	if event != "" {
		want = append([]any{event}, args...)
	}
	if len(want) == 0 {
		want = []any{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("arguments %#v\n came back as %#v\n via %s", want, got, data)
	}
}

func FuzzArgs(f *testing.F) {
	f.Add([]byte(`["message",1,"2",{"3":[true]}]`), uint8(0))
	f.Add([]byte(`["a",`+ph(0)+`,{"b":[`+ph(1)+`]}]`), uint8(2))
	f.Add([]byte(`["a",{"\u005fplaceholder":true,"num":1e0}]`), uint8(2))
	f.Add([]byte(`[{"_placeholder":true,"num":"0"}]`), uint8(1))
	f.Add([]byte(`["caf\u00e9 \"x\"", null, -1.5e300]`), uint8(0))
	f.Add([]byte(`[1,"a"]`), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		atts := make([][]byte, n%12)
		for i := range atts {
			atts[i] = []byte{byte(i)}
		}
		name, nameErr := EventName(data)
		if nameErr != nil && !errors.Is(nameErr, ErrInvalidPacket) {
			t.Fatalf("EventName error %v does not wrap ErrInvalidPacket", nameErr)
		}
		checked := len(atts) > 0 && json.Valid(data) && checkPlaceholders(trimRightSpace(data), len(atts)) == nil
		args, err := UnmarshalArgs(data, atts)
		if err != nil {
			if !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("UnmarshalArgs error %v does not wrap ErrInvalidPacket", err)
			}
			if checked && bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("[")) {
				t.Fatalf("Decode's placeholder check accepts %s with %d attachments, UnmarshalArgs refuses: %v", data, len(atts), err)
			}
			return
		}
		if s, ok := firstString(args); ok {
			if nameErr != nil || name != s {
				t.Fatalf("EventName(%s) = %q, %v; UnmarshalArgs gives %q", data, name, nameErr, s)
			}
		} else if nameErr == nil {
			t.Fatalf("EventName(%s) = %q, but the first argument is %#v", data, name, args)
		}
		checkArgsRoundTrip(t, "", args, true)
	})
}

func firstString(args []any) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	s, ok := args[0].(string)
	return s, ok
}

// FuzzEventData: whatever the stored arguments, EventData either refuses
// them or returns a JSON array whose first element is the event and whose
// other elements are the arguments.
func FuzzEventData(f *testing.F) {
	f.Add("ev", []byte(`[]`))
	f.Add("ev", []byte(`[1,"a",{"b":[null]}]`))
	f.Add("é\x00", []byte(` [ {"_placeholder":true,"num":0} ] `))
	f.Add("ev", []byte(`[1,]`))
	f.Fuzz(func(t *testing.T, event string, args []byte) {
		data, err := EventData(event, args)
		if err != nil {
			if !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("error %v does not wrap ErrInvalidPacket", err)
			}
			return
		}
		var got []json.RawMessage
		if err := json.Unmarshal(data, &got); err != nil || len(got) == 0 {
			t.Fatalf("EventData(%q, %q) = %q: not a non-empty array (%v)", event, args, data, err)
		}
		var name string
		if err := json.Unmarshal(got[0], &name); err != nil || (utf8.ValidString(event) && name != event) {
			t.Fatalf("first element %s (%v), want %q", got[0], err, event)
		}
		var want []json.RawMessage
		if err := json.Unmarshal(args, &want); err != nil {
			t.Fatalf("EventData accepted %q, which is not a JSON array: %v", args, err)
		}
		if len(got)-1 != len(want) {
			t.Fatalf("%d arguments out, %d in", len(got)-1, len(want))
		}
	})
}
