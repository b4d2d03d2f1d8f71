package msgpack

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// vectorFile is testdata/vectors.json, written by testdata/gen_vectors.mjs
// with notepack.io.
type vectorFile struct {
	Notepack string `json:"notepack"`
	Values   []struct {
		Name      string          `json:"name"`
		Hex       string          `json:"hex"`
		Value     json.RawMessage `json:"value"`
		Canonical bool            `json:"canonical"`
	} `json:"values"`
	Messages []struct {
		Name string `json:"name"`
		Kind string `json:"kind"`
		Hex  string `json:"hex"`
	} `json:"messages"`
}

func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Values) == 0 || len(f.Messages) == 0 {
		t.Fatal("no vectors")
	}
	return f
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expected turns the tagged JSON of gen_vectors.mjs into the Go value Decode
// must return.
func expected(t testing.TB, raw json.RawMessage) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return untag(t, v)
}

func untag(t testing.TB, v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, err := x.Float64()
		if err != nil {
			t.Fatalf("number %s: %v", x, err)
		}
		return f
	case []any:
		for i := range x {
			x[i] = untag(t, x[i])
		}
	case map[string]any:
		if h, ok := x["$bin"].(string); ok && len(x) == 1 {
			return mustHex(t, h)
		}
		if d, ok := x["$date"].(string); ok && len(x) == 1 {
			tm, err := time.Parse(time.RFC3339Nano, d)
			if err != nil {
				t.Fatal(err)
			}
			return tm.UTC()
		}
		for k := range x {
			x[k] = untag(t, x[k])
		}
	}
	return v
}

func TestNotepackVectors(t *testing.T) {
	f := loadVectors(t)
	for _, v := range f.Values {
		t.Run(v.Name, func(t *testing.T) {
			data := mustHex(t, v.Hex)
			got, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := expected(t, v.Value)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Decode = %#v, want %#v", got, want)
			}
			if !v.Canonical {
				return
			}
			enc, err := Marshal(got)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(enc, data) {
				t.Fatalf("Marshal = %x, notepack.io wrote %x", enc, data)
			}
		})
	}
}

func TestNotepackMessagesDecode(t *testing.T) {
	f := loadVectors(t)
	for _, m := range f.Messages {
		data := mustHex(t, m.Hex)
		if data[0] == '{' {
			continue // JSON
		}
		v, err := Decode(data)
		if err != nil {
			t.Errorf("%s: %v", m.Name, err)
			continue
		}
		// Re-encoding gives the same value back (not the same bytes: key order).
		enc, err := Marshal(v)
		if err != nil {
			t.Fatalf("%s: Marshal: %v", m.Name, err)
		}
		back, err := Decode(enc)
		if err != nil || !reflect.DeepEqual(back, v) {
			t.Errorf("%s: round trip = %#v, %v; want %#v", m.Name, back, err, v)
		}
	}
}

func TestLargeForms(t *testing.T) {
	tests := []struct {
		name   string
		v      any
		header string
	}{
		{"str16", strings.Repeat("e", 65535), "daffff"},
		{"str32", strings.Repeat("f", 65536), "db00010000"},
		{"bin32", bytes.Repeat([]byte{9}, 65536), "c600010000"},
		{"array16", make([]any, 65535), "dcffff"},
		{"array32", make([]any, 65536), "dd00010000"},
		{"map16", bigMap(65535), "deffff"},
		{"map32", bigMap(65536), "df00010000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if h := hex.EncodeToString(enc[:len(tt.header)/2]); h != tt.header {
				t.Fatalf("header %s, want %s", h, tt.header)
			}
			got, err := Decode(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.v) {
				t.Fatal("round trip changed the value")
			}
		})
	}
}

func bigMap(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[strings.Repeat("k", 1+i%3)+string(rune('a'+i%26))+itoa(i)] = nil
	}
	return m
}

func itoa(i int) string { return string(AppendInt(nil, int64(i))) }

func TestDecodeForms(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want any
	}{
		{"float32", "ca3fc00000", 1.5},
		{"uint64 above int64", "cfffffffffffffffff", uint64(math.MaxUint64)},
		{"int64 min", "d38000000000000000", int64(math.MinInt64)},
		{"str8 short", "d90161", "a"},
		{"str16 short", "da000161", "a"},
		{"bin16 short", "c50001ff", []byte{0xff}},
		{"ext8 type 0 is binary", "c70200abcd", []byte{0xab, 0xcd}},
		{"ext16 type 0 is binary", "c8000100ee", []byte{0xee}},
		{"fixext1 type 0 is undefined", "d40000", nil},
		{"fixext1 other type", "d40507", []any{int64(5), []byte{7}}},
		{"fixext2", "d5fe0102", []any{int64(-2), []byte{1, 2}}},
		{"ext8 other type", "c70205aabb", []any{int64(5), []byte{0xaa, 0xbb}}},
		{"timestamp32", "d6ff00000001", time.Unix(1, 0).UTC()},
		{"legacy date", "d700000000000000007b", time.UnixMilli(123).UTC()},
		{"int keys", "82010a02c0", map[string]any{"1": int64(10), "2": nil}},
		{"nil and bool keys", "82c001c302", map[string]any{"null": int64(1), "true": int64(2)}},
		{"float key", "81cb3ff800000000000001", map[string]any{"1.5": int64(1)}},
		{"duplicate keys: last wins", "82a16101a16102", map[string]any{"a": int64(2)}},
		{"negative fixint", "e0", int64(-32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(mustHex(t, tt.hex))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	deep := strings.Repeat("91", MaxDepth+1) + "c0"
	tests := []struct {
		name string
		hex  string
		want error
	}{
		{"empty", "", ErrTruncated},
		{"never used byte", "c1", ErrInvalid},
		{"trailing", "c0c0", ErrTrailingBytes},
		{"short str", "a3616263"[:6], ErrTruncated},
		{"short uint16", "cd01", ErrTruncated},
		{"short float", "cb3ff8", ErrTruncated},
		{"huge array count", "ddffffffff", ErrTruncated},
		{"huge map count", "dfffffffff", ErrTruncated},
		{"huge bin length", "c6ffffffff00", ErrTruncated},
		{"array missing elements", "93c0c0", ErrTruncated},
		{"map missing value", "81a161", ErrTruncated},
		{"ext without type", "c701", ErrTruncated},
		{"too deep", deep, ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(mustHex(t, tt.hex))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEncodeNumbers(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{1.0, "01"},
		{math.Copysign(0, -1), "00"},
		{float32(2), "02"},
		{1.5, "cb3ff8000000000000"},
		{math.Inf(1), "cb7ff0000000000000"},
		{float64(1 << 63), "cf8000000000000000"},
		{1e300, "cb7e37e43c8800759c"},
		{json.Number("300"), "cd012c"},
		{json.Number("-1"), "ff"},
		{json.Number("1.5"), "cb3ff8000000000000"},
		{json.Number("1e3"), "cd03e8"},
		{json.Number("18446744073709551615"), "cfffffffffffffffff"},
		{uint8(200), "ccc8"},
		{int16(-200), "d1ff38"},
		{map[string]string{"b": "2", "a": "1"}, "82a161a131a162a132"},
		{[]string{"x"}, "91a178"},
		{[]byte(nil), "c400"},
	}
	for _, tt := range tests {
		got, err := Marshal(tt.v)
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", tt.v, err)
		}
		if h := hex.EncodeToString(got); h != tt.want {
			t.Errorf("Marshal(%#v) = %s, want %s", tt.v, h, tt.want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	var deep any = nil
	for range MaxDepth + 2 {
		deep = []any{deep}
	}
	for _, v := range []any{struct{}{}, json.Number("x"), []any{make(chan int)}, deep} {
		if _, err := Marshal(v); err == nil {
			t.Errorf("Marshal(%T) succeeded", v)
		}
	}
}

func TestTimeRoundTrip(t *testing.T) {
	for _, tm := range []time.Time{
		time.UnixMilli(0).UTC(),
		time.UnixMilli(1704164645678).UTC(),
		time.UnixMilli(-1500).UTC(),
		time.UnixMilli(1 << 45).UTC(),
	} {
		enc, err := Marshal(tm)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("%v: %v (%x)", tm, err, enc)
		}
		if !got.(time.Time).Equal(tm) {
			t.Errorf("%v: decoded %v (%x)", tm, got, enc)
		}
	}
}

func TestFormatNumber(t *testing.T) {
	tests := map[float64]string{
		0: "0", 1: "1", -2.5: "-2.5", 1e21: "1e+21", 1e-7: "1e-7", 0.000001: "0.000001",
		123456789012: "123456789012", math.NaN(): "NaN", math.Inf(-1): "-Infinity",
	}
	for f, want := range tests {
		if got := FormatNumber(f); got != want {
			t.Errorf("FormatNumber(%v) = %q, want %q", f, got, want)
		}
	}
}
