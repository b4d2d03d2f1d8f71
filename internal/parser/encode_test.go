package parser

import (
	"encoding/json"
	"testing"
)

func TestAppendText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    Packet
		want string
	}{
		// docs/socket.io-protocol/v5-current.md, "Packet encoding"
		{"connect main", Packet{Type: Connect, Namespace: "/", ID: NoID}, "0"},
		{"connect custom with sid", Packet{Type: Connect, Namespace: "/admin", ID: NoID, Data: json.RawMessage(`{"sid":"oSO0OpakMV_3jnilAAAA"}`)}, `0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}`},
		{"connect error", Packet{Type: ConnectError, Namespace: "/", ID: NoID, Data: json.RawMessage(`{"message":"Not authorized"}`)}, `4{"message":"Not authorized"}`},
		{"event main", Packet{Type: Event, Namespace: "/", ID: NoID, Data: json.RawMessage(`["foo"]`)}, `2["foo"]`},
		{"event custom", Packet{Type: Event, Namespace: "/admin", ID: NoID, Data: json.RawMessage(`["bar"]`)}, `2/admin,["bar"]`},
		{"binary event", Packet{Type: BinaryEvent, Namespace: "/", ID: NoID, Data: json.RawMessage(`["baz",` + ph(0) + `]`), Attachments: [][]byte{{1, 2, 3, 4}}}, `51-["baz",` + ph(0) + `]`},
		{"binary event two attachments", Packet{Type: BinaryEvent, Namespace: "/admin", ID: NoID, Data: json.RawMessage(`["baz",` + ph(0) + `,` + ph(1) + `]`), Attachments: [][]byte{{1, 2}, {3, 4}}}, `52-/admin,["baz",` + ph(0) + `,` + ph(1) + `]`},
		{"event with ack id", Packet{Type: Event, Namespace: "/", ID: 12, Data: json.RawMessage(`["foo"]`)}, `212["foo"]`},
		{"ack custom", Packet{Type: Ack, Namespace: "/admin", ID: 13, Data: json.RawMessage(`["bar"]`)}, `3/admin,13["bar"]`},
		{"binary ack", Packet{Type: BinaryAck, Namespace: "/", ID: 15, Data: json.RawMessage(`["bar",` + ph(0) + `]`), Attachments: [][]byte{{1, 2, 3, 4}}}, `61-15["bar",` + ph(0) + `]`},
		{"disconnect main", Packet{Type: Disconnect, Namespace: "/", ID: NoID}, "1"},
		{"disconnect custom", Packet{Type: Disconnect, Namespace: "/admin", ID: NoID}, "1/admin,"},
		// sample session
		{"binary ack custom", Packet{Type: BinaryAck, Namespace: "/admin", ID: 1, Data: json.RawMessage(`[` + ph(0) + `]`), Attachments: [][]byte{{0}}}, `61-/admin,1[` + ph(0) + `]`},
		// socket.io-parser test cases
		{"connect with auth", Packet{Type: Connect, Namespace: "/woot", ID: NoID, Data: json.RawMessage(`{"token":"123"}`)}, `0/woot,{"token":"123"}`},
		{"connect error string", Packet{Type: ConnectError, Namespace: "/", ID: NoID, Data: json.RawMessage(`"Unauthorized"`)}, `4"Unauthorized"`},
		{"ack", Packet{Type: Ack, Namespace: "/", ID: 123, Data: json.RawMessage(`["a",1,{}]`)}, `3123["a",1,{}]`},
		// edges
		{"ack id 0 is written", Packet{Type: Event, Namespace: "/", ID: 0, Data: json.RawMessage(`["a"]`)}, `20["a"]`},
		{"empty namespace means main", Packet{Type: Event, ID: NoID, Data: json.RawMessage(`["a"]`)}, `2["a"]`},
		{"negative id is omitted", Packet{Type: Event, Namespace: "/", ID: -7, Data: json.RawMessage(`["a"]`)}, `2["a"]`},
		{"ten attachments", Packet{Type: BinaryEvent, Namespace: "/", ID: NoID, Data: json.RawMessage(`["a"]`), Attachments: make([][]byte, 10)}, `510-["a"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(AppendText(nil, &tt.p)); got != tt.want {
				t.Errorf("AppendText = %s, want %s", got, tt.want)
			}
			// Appending keeps what dst holds, such as the Engine.IO prefix.
			if got := string(AppendText([]byte("4"), &tt.p)); got != "4"+tt.want {
				t.Errorf("AppendText after prefix = %s, want 4%s", got, tt.want)
			}
		})
	}
}

func TestAppendTextDoesNotAllocate(t *testing.T) {
	p := &Packet{Type: BinaryEvent, Namespace: "/chat", ID: 12, Data: json.RawMessage(`["ev",{"a":1},` + ph(0) + `]`), Attachments: [][]byte{{1}}}
	dst := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		dst = AppendText(dst[:0], p)
	})
	if allocs != 0 {
		t.Errorf("AppendText with a reused buffer made %v allocations, want 0", allocs)
	}
	if want := `51-/chat,12["ev",{"a":1},` + ph(0) + `]`; string(dst) != want {
		t.Errorf("AppendText = %s, want %s", dst, want)
	}
}

func TestTypeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		t      Type
		want   string
		binary bool
	}{
		{Connect, "CONNECT", false},
		{Disconnect, "DISCONNECT", false},
		{Event, "EVENT", false},
		{Ack, "ACK", false},
		{ConnectError, "CONNECT_ERROR", false},
		{BinaryEvent, "BINARY_EVENT", true},
		{BinaryAck, "BINARY_ACK", true},
		{Type(9), "Type(9)", false},
	}
	for _, tt := range tests {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("Type(%d).String() = %q, want %q", byte(tt.t), got, tt.want)
		}
		if got := tt.t.IsBinary(); got != tt.binary {
			t.Errorf("%v.IsBinary() = %v, want %v", tt.t, got, tt.binary)
		}
	}
	// The numeric values are the wire values.
	for i, typ := range []Type{Connect, Disconnect, Event, Ack, ConnectError, BinaryEvent, BinaryAck} {
		if int(typ) != i {
			t.Errorf("%v = %d, want %d", typ, typ, i)
		}
	}
}

func TestAppendFrames(t *testing.T) {
	p := &Packet{Type: BinaryEvent, Namespace: "/chat", ID: NoID, Data: []byte(`["ev",{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1, 2}}}
	frames := AppendFrames(nil, p)
	if len(frames) != 2 {
		t.Fatalf("%d frames, want 2", len(frames))
	}
	if got, want := string(frames[0].Data), `451-/chat,["ev",{"_placeholder":true,"num":0}]`; got != want || frames[0].Binary {
		t.Fatalf("text frame %q (binary %v), want %q", got, frames[0].Binary, want)
	}
	if !frames[1].Binary || string(frames[1].Data) != "\x01\x02" {
		t.Fatalf("attachment frame %+v", frames[1])
	}
	if !Reserved("connect") || Reserved("chat") {
		t.Fatal("Reserved does not know socket.io's names")
	}
}
