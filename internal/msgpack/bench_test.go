package msgpack

import "testing"

var benchValue = []any{
	"0123456789abcdef",
	map[string]any{"type": int64(2), "nsp": "/", "data": []any{"chat", map[string]any{"user": "alice", "text": "hello, world", "n": int64(42)}, []byte{1, 2, 3}}},
	map[string]any{"rooms": []any{"room"}, "except": []any{}, "flags": map[string]any{}},
}

func BenchmarkMarshal(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = Append(buf[:0], benchValue); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	data, err := Marshal(benchValue)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
