package engineio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

// realPackets are packets as the official clients send them.
var realPackets = []string{
	"2", "3", "1", "5", "6", "2probe", "3probe",
	"4hello",
	"40",
	`40{"token":"abc"}`,
	`42["chat message","hello"]`,
	`42/admin,1["ping",{"at":1700000000}]`,
	`451-["upload",{"_placeholder":true,"num":0}]`,
	"bAQIDBA==",
	"b",
	`0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`,
	"abc", "", "b!!", "\x1e",
}

func FuzzDecodePacket(f *testing.F) {
	for _, p := range realPackets {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		p, err := decodePacket(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("decodePacket modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("error %v does not wrap ErrParse", err)
			}
			return
		}
		// Re-encoding the packet gives back an equivalent packet.
		var enc []byte
		if p.binary {
			enc = append([]byte{binaryPrefix}, base64.StdEncoding.EncodeToString(p.data)...)
		} else {
			enc = append([]byte{p.typ}, p.data...)
			if !bytes.Equal(enc, in) {
				t.Fatalf("text packet %q re-encodes to %q", in, enc)
			}
		}
		p2, err := decodePacket(enc)
		if err != nil || p2.typ != p.typ || p2.binary != p.binary || !bytes.Equal(p2.data, p.data) {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", in, p2, err, p)
		}
	})
}

func FuzzDecodePayload(f *testing.F) {
	for i, p := range realPackets {
		f.Add([]byte(p), uint8(i))
	}
	f.Add([]byte("4hello\x1ebAQIDBA=="), uint8(3))
	f.Add([]byte("4test1\x1e4test2\x1e4test3"), uint8(5))
	f.Add([]byte("3\x1e42[\"a\"]\x1e1"), uint8(1))
	f.Add([]byte("451-[\"up\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID"), uint8(17))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		whole, wholeErr := decodePayload(in)

		// The same payload fed in chunks of varying sizes decodes the same.
		var (
			d      payloadDecoder
			split  []packet
			splErr error
		)
		collect := func(p packet) error {
			split = append(split, p)
			return nil
		}
		size := int(step%16) + 1
		for rest := in; len(rest) > 0 && splErr == nil; {
			n := min(size, len(rest))
			chunk := bytes.Clone(rest[:n]) // the decoder must not keep it
			splErr = d.write(chunk, collect)
			clear(chunk)
			rest = rest[n:]
			size = size%7 + 1
		}
		if splErr == nil {
			splErr = d.finish(collect)
		}
		if (wholeErr == nil) != (splErr == nil) {
			t.Fatalf("whole err %v, split err %v", wholeErr, splErr)
		}
		if wholeErr != nil && !errors.Is(wholeErr, ErrParse) {
			t.Fatalf("error %v does not wrap ErrParse", wholeErr)
		}
		if len(whole) != len(split) {
			t.Fatalf("whole %d packets, split %d", len(whole), len(split))
		}
		for i := range whole {
			a, b := whole[i], split[i]
			if a.typ != b.typ || a.binary != b.binary || !bytes.Equal(a.data, b.data) {
				t.Fatalf("packet %d: whole %+v, split %+v", i, a, b)
			}
		}
		if wholeErr != nil {
			return
		}
		// A valid payload of messages re-encodes to one that decodes the same.
		var frames []Frame
		for _, p := range whole {
			switch {
			case p.typ != typeMessage:
				frames = append(frames, Frame{Data: append([]byte{p.typ}, p.data...)})
			case p.binary:
				frames = append(frames, BinaryFrame(p.data))
			default:
				frames = append(frames, Frame{Data: append([]byte{typeMessage}, p.data...)})
			}
		}
		again, err := decodePayload(appendPayload(nil, frames))
		if err != nil {
			t.Fatalf("re-encoded payload does not decode: %v", err)
		}
		if len(again) != len(whole) {
			t.Fatalf("re-encoded payload has %d packets, want %d", len(again), len(whole))
		}
		for i := range whole {
			a, b := whole[i], again[i]
			if a.typ != b.typ || a.binary != b.binary || !bytes.Equal(a.data, b.data) {
				t.Fatalf("packet %d: decoded %+v, after re-encoding %+v", i, a, b)
			}
		}
	})
}
