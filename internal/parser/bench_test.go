package parser

import (
	"encoding/json"
	"testing"
)

// A typical chat event: small object argument, namespace, ack id.
var benchEvent = &Packet{
	Type:      Event,
	Namespace: "/chat",
	ID:        42,
	Data:      json.RawMessage(`["message",{"room":"lobby","user":"alice","text":"hello, world","ts":1700000000000}]`),
}

func BenchmarkAppendText(b *testing.B) {
	b.ReportAllocs()
	dst := make([]byte, 0, 256)
	for b.Loop() {
		dst = AppendText(dst[:0], benchEvent)
	}
	b.SetBytes(int64(len(dst)))
}

func BenchmarkDecodeEvent(b *testing.B) {
	b.ReportAllocs()
	msg := AppendText(nil, benchEvent)
	b.SetBytes(int64(len(msg)))
	var d Decoder
	for b.Loop() {
		if _, err := d.Decode(msg, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEventName(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EventName(benchEvent.Data); err != nil {
			b.Fatal(err)
		}
	}
}

var benchArgs = []any{map[string]any{"room": "lobby", "user": "alice", "text": "hello, world", "ts": 1700000000000}}

func BenchmarkMarshalArgs(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := MarshalArgs("message", benchArgs, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalArgs(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalArgs(benchEvent.Data, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBinaryEvent is the whole path of a binary event: marshal,
// encode, decode header and attachments, unmarshal.
func BenchmarkBinaryEvent(b *testing.B) {
	b.ReportAllocs()
	img := make([]byte, 4096)
	args := []any{map[string]any{"name": "photo.png", "image": img, "thumb": img[:512]}}
	dst := make([]byte, 0, 256)
	var d Decoder
	b.SetBytes(int64(len(img) + 512))
	for b.Loop() {
		data, atts, typ, err := MarshalArgs("upload", args, false)
		if err != nil {
			b.Fatal(err)
		}
		p := Packet{Type: typ, Namespace: "/", ID: 7, Data: data, Attachments: atts}
		dst = AppendText(dst[:0], &p)
		if _, err := d.Decode(dst, false); err != nil {
			b.Fatal(err)
		}
		var got *Packet
		for _, a := range atts {
			if got, err = d.Decode(a, true); err != nil {
				b.Fatal(err)
			}
		}
		if got == nil {
			b.Fatal("binary event not completed")
		}
		if _, err := UnmarshalArgs(got.Data, got.Attachments); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBinaryEvent is the decode side alone: header with
// placeholder check, then two attachments.
func BenchmarkDecodeBinaryEvent(b *testing.B) {
	b.ReportAllocs()
	header := []byte(`52-/chat,7["upload",{"image":` + ph(0) + `,"name":"photo.png","thumb":` + ph(1) + `}]`)
	img := make([]byte, 4096)
	var d Decoder
	b.SetBytes(int64(len(header) + len(img) + 512))
	for b.Loop() {
		if _, err := d.Decode(header, false); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Decode(img, true); err != nil {
			b.Fatal(err)
		}
		if p, err := d.Decode(img[:512], true); err != nil || p == nil {
			b.Fatal(p, err)
		}
	}
}
