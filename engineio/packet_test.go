package engineio

import (
	"bytes"
	"errors"
	"testing"
)

func TestTextFrame(t *testing.T) {
	f := TextFrame(`0{"sid":"x"}`)
	if f.Binary || string(f.Data) != `40{"sid":"x"}` {
		t.Fatalf("TextFrame = %+v, want text 40{...}", f)
	}
	if got := TextFrame(""); string(got.Data) != "4" {
		t.Fatalf("TextFrame(\"\") = %q, want \"4\"", got.Data)
	}
	data := []byte{1, 2}
	if b := BinaryFrame(data); !b.Binary || &b.Data[0] != &data[0] {
		t.Fatalf("BinaryFrame does not carry data as is: %+v", b)
	}
}

func TestDecodePacket(t *testing.T) {
	tests := []struct {
		in      string
		typ     byte
		binary  bool
		data    string
		wantErr bool
	}{
		{in: "4hello", typ: typeMessage, data: "hello"},
		{in: "4", typ: typeMessage, data: ""},
		{in: "42[\"chat\",\"é\"]", typ: typeMessage, data: "2[\"chat\",\"é\"]"},
		{in: "bAQIDBA==", typ: typeMessage, binary: true, data: "\x01\x02\x03\x04"},
		{in: "b", typ: typeMessage, binary: true, data: ""},
		{in: "2", typ: typePing},
		{in: "2probe", typ: typePing, data: "probe"},
		{in: "3", typ: typePong},
		{in: "1", typ: typeClose},
		{in: "5", typ: typeUpgrade},
		{in: "6", typ: typeNoop},
		{in: "0", typ: typeOpen},
		{in: "", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "7", wantErr: true},
		{in: "b!!!!", wantErr: true},
		{in: "bAQID=", wantErr: true},
	}
	for _, tt := range tests {
		p, err := decodePacket([]byte(tt.in))
		if tt.wantErr {
			if !errors.Is(err, ErrParse) {
				t.Errorf("decodePacket(%q) error = %v, want ErrParse", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("decodePacket(%q): %v", tt.in, err)
			continue
		}
		if p.typ != tt.typ || p.binary != tt.binary || string(p.data) != tt.data {
			t.Errorf("decodePacket(%q) = {%c %v %q}, want {%c %v %q}", tt.in, p.typ, p.binary, p.data, tt.typ, tt.binary, tt.data)
		}
	}
}

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string // "t:data" text or "b:data" binary or the type char alone
		wantErr bool
	}{
		{name: "one", in: "4hello", want: []string{"t:hello"}},
		{name: "several", in: "4test1\x1e4test2\x1e4test3", want: []string{"t:test1", "t:test2", "t:test3"}},
		{name: "text and binary", in: "4hello\x1ebAQIDBA==", want: []string{"t:hello", "b:\x01\x02\x03\x04"}},
		{name: "pong and message", in: "3\x1e4x", want: []string{"3", "t:x"}},
		{name: "close", in: "1", want: []string{"1"}},
		{name: "empty body", in: "", wantErr: true},
		{name: "empty element", in: "4a\x1e\x1e4b", want: []string{"t:a"}, wantErr: true},
		{name: "trailing separator", in: "4a\x1e", want: []string{"t:a"}, wantErr: true},
		{name: "garbage", in: "abc", wantErr: true},
		{name: "bad after good", in: "4a\x1ezz\x1e4b", want: []string{"t:a"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkts, err := decodePayload([]byte(tt.in))
			if tt.wantErr != (err != nil) {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrParse) {
				t.Fatalf("err = %v, want ErrParse", err)
			}
			got := describe(pkts)
			if len(got) != len(tt.want) {
				t.Fatalf("packets = %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("packets = %q, want %q", got, tt.want)
				}
			}
		})
	}
}

func describe(pkts []packet) []string {
	out := make([]string, 0, len(pkts))
	for _, p := range pkts {
		switch {
		case p.typ == typeMessage && p.binary:
			out = append(out, "b:"+string(p.data))
		case p.typ == typeMessage:
			out = append(out, "t:"+string(p.data))
		default:
			out = append(out, string(p.typ))
		}
	}
	return out
}

// TestPayloadDecoderOwnsData checks that emitted messages do not alias the
// chunks fed in, which the POST reader reuses.
func TestPayloadDecoderOwnsData(t *testing.T) {
	chunk := []byte("4abc\x1e4de")
	var got [][]byte
	var d payloadDecoder
	collect := func(p packet) error { got = append(got, p.data); return nil }
	if err := d.write(chunk, collect); err != nil {
		t.Fatal(err)
	}
	if err := d.finish(collect); err != nil {
		t.Fatal(err)
	}
	for i := range chunk {
		chunk[i] = 'X'
	}
	if len(got) != 2 || string(got[0]) != "abc" || string(got[1]) != "de" {
		t.Fatalf("decoded data changed with the input buffer: %q", got)
	}
}

func TestAppendPayload(t *testing.T) {
	tests := []struct {
		name   string
		frames []Frame
		want   string
	}{
		{"none", nil, ""},
		{"one text", []Frame{TextFrame("hello")}, "4hello"},
		{"text and binary", []Frame{TextFrame("hello"), BinaryFrame([]byte{1, 2, 3, 4})}, "4hello\x1ebAQIDBA=="},
		{"control", []Frame{framePing, frameNoop, frameClose}, "2\x1e6\x1e1"},
		{"empty binary", []Frame{BinaryFrame(nil)}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendPayload([]byte("prefix"), tt.frames)
			if string(got) != "prefix"+tt.want {
				t.Fatalf("appendPayload = %q, want %q", got, "prefix"+tt.want)
			}
		})
	}
}

// TestPayloadRoundTrip: what the server encodes, its decoder (and so the
// client's, which is the same format) reads back.
func TestPayloadRoundTrip(t *testing.T) {
	frames := []Frame{
		TextFrame("2[\"a\",1]"),
		BinaryFrame([]byte{0, 0x1e, 0xff}),
		TextFrame(""),
		BinaryFrame(bytes.Repeat([]byte{7}, 1000)),
	}
	pkts, err := decodePayload(appendPayload(nil, frames))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) != len(frames) {
		t.Fatalf("%d packets, want %d", len(pkts), len(frames))
	}
	for i, f := range frames {
		want := f.Data
		if !f.Binary {
			want = f.Data[1:]
		}
		if pkts[i].binary != f.Binary || !bytes.Equal(pkts[i].data, want) {
			t.Errorf("packet %d = %+v, want %+v", i, pkts[i], f)
		}
	}
}
