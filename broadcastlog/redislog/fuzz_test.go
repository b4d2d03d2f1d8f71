package redislog

import (
	"encoding/json"
	"testing"

	"github.com/redis/go-redis/v9"
)

// FuzzDecodeEntry feeds the stream entry decoder what Redis could hold: any
// room lists, data and attachments. It must not panic, and what it accepts
// must be deliverable: data a JSON array, room lists decoded from valid
// JSON (a list it cannot read must not become "the whole namespace").
func FuzzDecodeEntry(f *testing.F) {
	f.Add(`["room:1"]`, `[]`, `["m",1]`, "", true)
	f.Add(`["a","b"]`, `["sid1"]`, `["m",{"_placeholder":true,"num":0}]`, "\x00\x01", true)
	f.Add(`{"not":"a list"}`, ``, `["m"]`, "", false)
	f.Add(`["r"`, `[]`, `["m"]`, "", true)
	f.Add(`[]`, `[]`, `{"m":1}`, "", false)
	f.Add(`[1,2]`, `[]`, `["m"]`, "", true)
	f.Fuzz(func(t *testing.T, rooms, except, data, att string, withExcept bool) {
		values := map[string]any{"r": rooms, "d": data}
		if withExcept {
			values["x"] = except
		}
		if att != "" {
			values["a0"] = att
		}
		e, ok := decodeEntry(redis.XMessage{ID: "1-1", Values: values})
		if !ok {
			return
		}
		if !json.Valid(e.Data) || e.Data[0] != '[' {
			t.Fatalf("accepted data %q", e.Data)
		}
		var probe []string
		if json.Unmarshal([]byte(rooms), &probe) != nil {
			t.Fatalf("accepted an unreadable room list %q as %v", rooms, e.Rooms)
		}
		if !withExcept {
			t.Fatalf("accepted an entry without its except list")
		}
		if att != "" && (len(e.Attachments) != 1 || string(e.Attachments[0]) != att) {
			t.Fatalf("attachments %q", e.Attachments)
		}
	})
}
