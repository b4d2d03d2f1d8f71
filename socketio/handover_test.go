package socketio

import (
	"encoding/json"
	"testing"
)

func TestDecodeHandoverState(t *testing.T) {
	st, err := decodeHandoverState([]byte(`{"sockets":[{"nsp":"/","pid":"p1","offset":"1-0~2-0","auth":{"token":"t"}}]}`))
	if err != nil || len(st.Sockets) != 1 || st.Sockets[0].PID != "p1" || st.Sockets[0].Offset != "1-0~2-0" || st.Sockets[0].Auth["token"] != "t" {
		t.Fatalf("decoded %+v, %v", st, err)
	}
	for _, bad := range []string{
		`{`,
		`{"sockets":[{"nsp":"/","pid":""}]}`,
		`{"sockets":[{"nsp":"","pid":"p"}]}`,
		`{"sockets":[{"nsp":"chat","pid":"p"}]}`,
		`{"sockets":[{"nsp":"/","pid":"` + string(make([]byte, 129)) + `"}]}`,
	} {
		if _, err := decodeHandoverState([]byte(bad)); err == nil {
			t.Errorf("decoded %q", bad)
		}
	}
}

func FuzzDecodeHandoverState(f *testing.F) {
	f.Add([]byte(`{"sockets":[{"nsp":"/","pid":"p1","offset":"1-0~2-0","auth":{"token":"t"}}]}`))
	f.Add([]byte(`{"sockets":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeHandoverState(b)
		if err != nil {
			return
		}
		if len(st.Sockets) > maxHandoverSockets {
			t.Fatalf("%d sockets decoded", len(st.Sockets))
		}
		for _, s := range st.Sockets {
			if s.PID == "" || len(s.PID) > 128 || s.Namespace == "" || s.Namespace[0] != '/' {
				t.Fatalf("socket %+v decoded", s)
			}
		}
		again, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeHandoverState(again); err != nil {
			t.Fatalf("re-encoded state refused: %v", err)
		}
	})
}
