package queue_test

import (
	"encoding/json"
	"testing"

	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/queue/internal/core"
)

// FuzzParseOffset: an accepted offset is canonical (prints back as given)
// and orders consistently with CompareOffsets.
func FuzzParseOffset(f *testing.F) {
	for _, s := range []string{"0-0", "1700000000000-0", "1700000000000-18446744073709551615", "01-0", "1-", "-", "9007199254740991-1"} {
		f.Add(s, "1700000000000-1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		x, err := core.ParseID(a)
		if err != nil {
			return
		}
		if x.String() != a {
			t.Fatalf("ParseID(%q) prints as %q", a, x.String())
		}
		if c, err := queue.CompareOffsets(a, a); err != nil || c != 0 {
			t.Fatalf("CompareOffsets(a, a) = %d, %v", c, err)
		}
		if y, err := core.ParseID(b); err == nil {
			c1, _ := queue.CompareOffsets(a, b)
			c2, _ := queue.CompareOffsets(b, a)
			if c1 != -c2 || (c1 == 0) != (x == y) {
				t.Fatalf("CompareOffsets(%q, %q) = %d, reverse %d", a, b, c1, c2)
			}
			if x.Less(x.Next()) != true && x.Ms < core.MaxMillis {
				t.Fatalf("next(%v) is not greater", x)
			}
		}
	})
}

func TestSessionJSON(t *testing.T) {
	t.Parallel()
	s := queue.Session{PID: "p", SID: "s", User: "u", Namespace: "/", Rooms: []string{"r"}, Data: json.RawMessage(`{"a":1}`), Offset: "1-0"}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"pid":"p","sid":"s","user":"u","nsp":"/","rooms":["r"],"data":{"a":1},"offset":"1-0"}`
	if string(b) != want {
		t.Fatalf("session JSON %s, want %s", b, want)
	}
}
