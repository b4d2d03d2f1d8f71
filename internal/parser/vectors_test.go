package parser

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// referenceVectors is testdata/socketio_parser_vectors.json, produced by
// testdata/gen_vectors.mjs from the socket.io-parser npm package.
type referenceVectors struct {
	Generator string `json:"generator"`
	Vectors   []struct {
		Messages []json.RawMessage `json:"messages"` // "text" or {"bin":"hex"}
		Packets  []struct {
			Type int      `json:"type"`
			Nsp  string   `json:"nsp"`
			ID   *float64 `json:"id"` // JS numbers; the vectors' ids fit

			Data any `json:"data"`
		} `json:"packets"`
		Error *string `json:"error"`
	} `json:"vectors"`
	Encodings []struct {
		Packet struct {
			Type int      `json:"type"`
			Nsp  string   `json:"nsp"`
			ID   *float64 `json:"id"`
			Data any      `json:"data"` // binaries as {"$bin":"hex"}
		} `json:"packet"`
		Messages []json.RawMessage `json:"messages"`
	} `json:"encodings"`
}

func loadReferenceVectors(tb testing.TB) *referenceVectors {
	tb.Helper()
	raw, err := os.ReadFile("testdata/socketio_parser_vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var ref referenceVectors
	if err := json.Unmarshal(raw, &ref); err != nil {
		tb.Fatal(err)
	}
	if len(ref.Vectors) < 100 || len(ref.Encodings) < 20 {
		tb.Fatalf("only %d decoding and %d encoding vectors in the file", len(ref.Vectors), len(ref.Encodings))
	}
	return &ref
}

// referenceMessages converts the generator's messages: a JSON string is a
// text message, {"bin":"hex"} a binary one.
func referenceMessages(tb testing.TB, raw []json.RawMessage) []message {
	tb.Helper()
	var msgs []message
	for _, m := range raw {
		var s string
		if json.Unmarshal(m, &s) == nil {
			msgs = append(msgs, text(s))
			continue
		}
		var b struct{ Bin string }
		if err := json.Unmarshal(m, &b); err != nil {
			tb.Fatalf("bad message %s: %v", m, err)
		}
		data, err := hex.DecodeString(b.Bin)
		if err != nil {
			tb.Fatal(err)
		}
		msgs = append(msgs, message{data: data, binary: true})
	}
	return msgs
}

// divergences lists the vectors this package decodes differently from
// socket.io-parser 4.2.7 on purpose (see Decoder.Decode), with the outcome
// expected here: true when this package accepts what the reference refuses.
var divergences = map[string]bool{
	``:                          false, // the reference reads an empty message as CONNECT
	`2`:                         false, // EVENT needs a payload
	`2/admin`:                   false,
	`2/admin,`:                  false,
	`3[]`:                       false, // ACK needs an id
	`4`:                         false, // CONNECT_ERROR needs a payload
	`2[1,"a",{}]`:               false, // event names are strings
	`2 ["a"]`:                   false, // the reference reads the space as ack id 0
	`2/admin, ["a"]`:            false,
	`3/x,1 []`:                  false,
	"2/x,\t1[\"a\"]":            false,
	`01`:                        false, // ack ids only on EVENT and ACK
	`01{}`:                      false,
	`1/admin,1`:                 false,
	`29999999999999999999["a"]`: false, // ack id beyond int64
	`52-["a",{"_placeholder":true,"num":0.5}]`: false, // the reference yields undefined
	`2["connect"]`:          true, // reserved names are refused by the server
	`2["disconnect","123"]`: true,
	`2["\u0063onnect"]`:     true,
}

func TestReferenceVectors(t *testing.T) {
	t.Parallel()
	ref := loadReferenceVectors(t)
	seen := map[string]bool{}
	for _, v := range ref.Vectors {
		msgs := referenceMessages(t, v.Messages)
		first := string(msgs[0].data)
		name := strings.ToValidUTF8(first, "?")
		if len(msgs) > 1 {
			name += " +" + string(rune('0'+len(msgs)-1))
		}

		refOK := v.Error == nil
		wantOK := refOK
		accept, diverges := divergences[first]
		if diverges {
			seen[first] = true
			if accept == refOK {
				t.Errorf("%s: listed as a divergence but the reference also says ok=%v", name, refOK)
			}
			wantOK = accept
		}

		var d Decoder
		got, err := decodeAll(t, &d, msgs)
		if wantOK != (err == nil) {
			t.Errorf("%s: Decode error = %v, want ok=%v (reference: %v)", name, err, wantOK, deref(v.Error))
			continue
		}
		if diverges {
			continue
		}
		if len(got) != len(v.Packets) {
			t.Errorf("%s: %d packet(s), reference %d", name, len(got), len(v.Packets))
			continue
		}
		for i, rp := range v.Packets {
			p := got[i]
			typ := p.Type
			// The reference turns binary packets back into EVENT/ACK once
			// their attachments are in place.
			if typ == BinaryEvent || typ == BinaryAck {
				typ -= BinaryEvent - Event
			}
			id := NoID
			if rp.ID != nil {
				id = int64(*rp.ID)
			}
			if int(typ) != rp.Type || p.Namespace != rp.Nsp || p.ID != id {
				t.Errorf("%s: packet %d = {%v %q %d}, reference {%d %q %d}", name, i, p.Type, p.Namespace, p.ID, rp.Type, rp.Nsp, id)
			}
			if gotData, refData := normalizedData(t, p), roundTripJSON(t, rp.Data); !reflect.DeepEqual(gotData, refData) {
				t.Errorf("%s: packet %d data = %#v, reference %#v", name, i, gotData, refData)
			}
		}
	}
	for in := range divergences {
		if !seen[in] {
			t.Errorf("divergence %q has no vector", in)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "ok"
	}
	return *s
}

// normalizedData renders p's payload as the generator does: attachments
// resolved into {"$bin": hex}, then decoded as plain JSON.
func normalizedData(tb testing.TB, p *Packet) any {
	tb.Helper()
	if p.Data == nil {
		return nil
	}
	if p.Type != Event && p.Type != BinaryEvent && p.Type != Ack && p.Type != BinaryAck {
		return roundTripJSON(tb, p.Data)
	}
	args, err := UnmarshalArgs(p.Data, p.Attachments)
	if err != nil {
		tb.Fatalf("UnmarshalArgs(%s): %v", p.Data, err)
	}
	var conv func(any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case []byte:
			return map[string]any{"$bin": hex.EncodeToString(x)}
		case []any:
			for i := range x {
				x[i] = conv(x[i])
			}
		case map[string]any:
			for k := range x {
				x[k] = conv(x[k])
			}
		}
		return v
	}
	return roundTripJSON(tb, conv(args))
}

// roundTripJSON returns v as encoding/json decodes it into any (numbers as
// float64), so values from either side compare with reflect.DeepEqual.
func roundTripJSON(tb testing.TB, v any) any {
	tb.Helper()
	if v == nil {
		return nil
	}
	b, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			tb.Fatal(err)
		}
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		tb.Fatalf("unmarshal %s: %v", b, err)
	}
	return out
}

// TestReferenceEncodings checks MarshalArgs and AppendText against the
// reference Encoder, byte for byte.
func TestReferenceEncodings(t *testing.T) {
	t.Parallel()
	ref := loadReferenceVectors(t)
	var binaries func(any) any
	binaries = func(v any) any {
		switch x := v.(type) {
		case []any:
			for i := range x {
				x[i] = binaries(x[i])
			}
		case map[string]any:
			if h, ok := x["$bin"].(string); ok && len(x) == 1 {
				b, err := hex.DecodeString(h)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			for k := range x {
				x[k] = binaries(x[k])
			}
		}
		return v
	}
	for _, e := range ref.Encodings {
		want := referenceMessages(t, e.Messages)
		p := &Packet{Type: Type(e.Packet.Type), Namespace: e.Packet.Nsp, ID: NoID}
		if e.Packet.ID != nil {
			p.ID = int64(*e.Packet.ID)
		}
		data := binaries(e.Packet.Data)
		switch p.Type {
		case Event, Ack:
			args := data.([]any)
			event := ""
			if p.Type == Event {
				event, args = args[0].(string), args[1:]
			}
			var err error
			p.Data, p.Attachments, p.Type, err = MarshalArgs(event, args, p.Type == Ack)
			if err != nil {
				t.Fatalf("MarshalArgs(%v): %v", data, err)
			}
		default:
			if data != nil {
				p.Data = mustJSON(data)
			}
		}
		got := encodeMessages(p)
		name := string(want[0].data)
		if len(got) != len(want) {
			t.Errorf("%s: %d messages, reference %d", name, len(got), len(want))
			continue
		}
		for i := range got {
			if got[i].binary != want[i].binary || !bytes.Equal(got[i].data, want[i].data) {
				t.Errorf("%s: message %d = %q (binary %v), reference %q (binary %v)", name, i, got[i].data, got[i].binary, want[i].data, want[i].binary)
			}
		}
	}
}
