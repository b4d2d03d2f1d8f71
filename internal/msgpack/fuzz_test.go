package msgpack

import (
	"math"
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary bytes to Decode, seeded with notepack.io's own
// encodings and the messages @socket.io/redis-adapter publishes. A value
// that decodes must encode again to the same value, and no proper prefix of
// it may decode (MessagePack values are self-delimiting, so a decoder that
// accepts a prefix mis-frames): the message split in two chunks at every
// point must fail on the first chunk.
func FuzzDecode(f *testing.F) {
	vf := loadVectors(f)
	for _, v := range vf.Values {
		f.Add(mustHex(f, v.Hex))
	}
	for _, m := range vf.Messages {
		f.Add(mustHex(f, m.Hex))
	}
	f.Add([]byte{0xc1})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data)
		if err != nil {
			return
		}
		for i := range len(data) {
			if i > 64 && i < len(data)-64 && i%17 != 0 {
				continue // long inputs: sample the middle
			}
			if _, err := Decode(data[:i]); err == nil {
				t.Fatalf("prefix of %d/%d bytes decoded", i, len(data))
			}
		}
		enc, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(Decode(%x)): %v", data, err)
		}
		back, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Marshal(v)) of %x: %v", enc, err)
		}
		if !sameValue(v, back) {
			t.Fatalf("round trip of %x: %#v became %#v", data, v, back)
		}
	})
}

// sameValue compares decoded values, numbers by value (an integral float64
// is re-encoded as an integer) and times to the millisecond (the precision
// notepack.io keeps).
func sameValue(a, b any) bool {
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && (fa == fb || math.IsNaN(fa) && math.IsNaN(fb))
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool, string:
		return a == b
	case []byte:
		y, ok := b.([]byte)
		return ok && string(x) == string(y)
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.UnixMilli() == y.UnixMilli()
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}
