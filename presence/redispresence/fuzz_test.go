package redispresence

import (
	"testing"

	"github.com/roomcast/roomcast/presence"
)

// FuzzDecodeEntry feeds outbox entries (as the scripts write them, and
// anything else) to the decoder and the event builder, and checks that a
// namespace and a name survive tag/untag.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(`{"t":"join","u":"u1","s":"sid","g":"1795485349246000001","m":2,"n":"n1","ms":1795485349246,"i":"{\"name\":\"Uno\"}"}`, "/", "room:1")
	f.Add(`{"t":"disconnect","u":"u1","n":"n1","ms":1795485349246,"r":"node lost"}`, "/chat", "")
	f.Add(`{"t":"vacated","u":"","s":"x","g":"","m":0,"n":"n","ms":0}`, "", "3:abc")
	f.Add(`[]`, "/", "}{")
	f.Add(`-1:x`, "/", "")
	f.Fuzz(func(t *testing.T, raw, nsp, name string) {
		if e, err := decodeEntry(raw); err == nil {
			ev := e.event(nsp, name, "sid")
			if ev.ID == "" || ev.Type != e.T {
				t.Fatalf("event %+v from %q", ev, raw)
			}
			if ev.ID != e.event(nsp, name, "sid").ID {
				t.Fatal("ids are not deterministic")
			}
			_ = presence.EventID(ev.Type, nsp, name, ev.User, e.G)
		}
		n, r, ok := untag(tag(nsp, name))
		if !ok || n != nsp || r != name {
			t.Fatalf("untag(tag(%q, %q)) = %q, %q, %v", nsp, name, n, r, ok)
		}
		_, _, _ = untag(raw)
	})
}
