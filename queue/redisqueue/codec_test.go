package redisqueue

import (
	"bytes"
	"testing"

	"github.com/roomcast/roomcast/queue/internal/core"
	"github.com/roomcast/roomcast/queue/internal/storetest"
)

// livePayloads are real payloads as the Append script publishes them
// (TestEncodeLiveMatchesScript checks encodeLive against the script).
func livePayloads() [][]byte {
	var out [][]byte
	for i, m := range storetest.Sample {
		m.ID = core.ID{Ms: 1700000000000 + uint64(i), Seq: uint64(i)}.String()
		out = append(out, encodeLive(m))
	}
	return append(out,
		[]byte(`15:1700000000000-02:/c4:chat14:["hi",{"a":1}]`),
		[]byte(`15:1700000000000-01:/4:file46:[{"_placeholder":true,"num":0},"x",{"k":null}]3:abc0:`),
	)
}

func TestDecodeLive(t *testing.T) {
	t.Parallel()
	for _, m := range storetest.Sample {
		m.ID = "1700000000000-7"
		got, err := decodeLive(string(encodeLive(m)))
		if err != nil || !storetest.SameMessage(got, m) {
			t.Fatalf("round trip of %+v = %+v, %v", m, got, err)
		}
	}
	bad := []string{
		"", "1", "15:1700000000000-0", "x:abc", "02:ab", "-1:a", "99:short",
		"4:1-011:/1:e2:[]",    // id with a leading zero in its seq: not an ID
		"3:abc1:/1:e2:[]",     // id not an ID
		"3:1-01:/1:e2:[]4:ab", // attachment frame runs past the end
		"3:1-01:/1:e2:[]xx",   // trailing garbage
		"3:1-01:/1:e",         // data frame missing
		"99999999999:",        // length too large
	}
	for _, b := range bad {
		if m, err := decodeLive(b); err == nil {
			t.Errorf("decodeLive(%q) = %+v, want an error", b, m)
		}
	}
}

// FuzzDecodeLive feeds live payloads, and every prefix of them (a payload
// cut in two), to the decoder: no panic, and whatever decodes re-encodes
// to exactly the input.
func FuzzDecodeLive(f *testing.F) {
	for _, p := range livePayloads() {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for cut := 0; cut <= len(b); cut += max(1, len(b)/16) {
			for _, chunk := range [][]byte{b[:cut], b[cut:]} {
				if m, err := decodeLive(string(chunk)); err == nil {
					if re := encodeLive(m); !bytes.Equal(re, chunk) {
						t.Fatalf("decodeLive(%q) re-encodes to %q", chunk, re)
					}
				}
			}
		}
		if m, err := decodeLive(string(b)); err == nil {
			if re := encodeLive(m); !bytes.Equal(re, b) {
				t.Fatalf("decodeLive(%q) re-encodes to %q", b, re)
			}
		}
	})
}

// FuzzDecodeEntry feeds stream entries (the fields XRANGE returns) to the
// decoder, whole and with the attachments field cut short.
func FuzzDecodeEntry(f *testing.F) {
	for i, m := range storetest.Sample {
		f.Add(core.ID{Ms: 1700000000000, Seq: uint64(i)}.String(), m.Namespace, m.Event, string(m.Data),
			string(encodeAttachments(m.Attachments)))
	}
	f.Add("1-0", "/", "e", `[1]`, "3:abc0:")
	f.Fuzz(func(t *testing.T, id, ns, ev, data, atts string) {
		for cut := 0; cut <= len(atts); cut += max(1, len(atts)/8) {
			fields := []any{fieldNamespace, ns, fieldEvent, ev, fieldData, data, fieldAttachments, atts[:cut]}
			m, err := decodeEntry(id, fields)
			if err != nil {
				continue
			}
			if m.ID != id || m.Namespace != ns || m.Event != ev || string(m.Data) != data {
				t.Fatalf("decodeEntry changed fields: %+v", m)
			}
			if re := encodeAttachments(m.Attachments); string(re) != atts[:cut] {
				t.Fatalf("attachments %q re-encode to %q", atts[:cut], re)
			}
		}
		if _, err := decodeEntry(id, []any{"n", ns, "e"}); err == nil {
			t.Fatal("odd field list accepted")
		}
	})
}
