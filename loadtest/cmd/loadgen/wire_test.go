package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// Frames captured from bin/gateway and from loadtest/peer (socket.io 4.8)
// answering the same client (see the comment on each).
var (
	// Both servers.
	realOpen = `0{"sid":"IjIeHjWo9fYdsG2EV0Jz","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`
	realConn = `40{"sid":"zqpU7WuDixphk6Se5kmA"}`
	realOK   = `430[{"ok":true}]`
	realErr  = `438[{"error":{"code":"forbidden","message":"not allowed to publish to \"user:x\""}}]`
	// The gateway re-encodes data with sorted keys and keeps the integer.
	realDeliveryGateway = `42["m",{"seq":7,"t":1763942400123456789},{"room":"bench","user":"bob"}]`
	// socket.io keeps key order; JavaScript rounds t to a double.
	realDeliverySocketIO = `42["m",{"t":1763942400123456800,"seq":7},{"room":"bench","user":"bob"}]`
	realRefusedGateway   = `44{"message":"auth: malformed token: bad base64url encoding"}`
	realRefusedSocketIO  = `44{"message":"auth: malformed token header"}`
)

func TestParseOpen(t *testing.T) {
	t.Parallel()
	o, err := parseOpen([]byte(realOpen))
	if err != nil {
		t.Fatal(err)
	}
	if o.SID != "IjIeHjWo9fYdsG2EV0Jz" || o.PingInterval != 25000 || o.PingTimeout != 20000 || o.MaxPayload != 1000000 {
		t.Fatalf("parseOpen = %+v", o)
	}
	for _, bad := range []string{"", "0", "0{", `0{"sid":""}`, `40{"sid":"x"}`, "2", `0[]`} {
		if _, err := parseOpen([]byte(bad)); !errors.Is(err, errFrame) {
			t.Errorf("parseOpen(%q) err = %v, want errFrame", bad, err)
		}
	}
}

func TestAppendConnect(t *testing.T) {
	t.Parallel()
	tests := []struct{ token, want string }{
		{"", "40"},
		{"a.b.c", `40{"token":"a.b.c"}`},
		{`we"ird`, `40{"token":"we\"ird"}`},
	}
	for _, tt := range tests {
		if got := string(appendConnect(nil, tt.token)); got != tt.want {
			t.Errorf("appendConnect(%q) = %s, want %s", tt.token, got, tt.want)
		}
	}
}

func TestParseConnectReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		frame string
		kind  connectReply
		msg   string
	}{
		{realConn, replyOK, ""},
		{"40", replyOK, ""},
		{realRefusedGateway, replyRefused, "auth: malformed token: bad base64url encoding"},
		{realRefusedSocketIO, replyRefused, "auth: malformed token header"},
		{`44not json`, replyRefused, "not json"},
		{`40/chat,{"sid":"x"}`, replyOther, ""},
		{`44/chat,{"message":"x"}`, replyOther, ""},
		{"2", replyOther, ""},
		{realOpen, replyOther, ""},
		{"", replyOther, ""},
		{"4", replyOther, ""},
	}
	for _, tt := range tests {
		kind, msg := parseConnectReply([]byte(tt.frame))
		if kind != tt.kind || msg != tt.msg {
			t.Errorf("parseConnectReply(%q) = %v %q, want %v %q", tt.frame, kind, msg, tt.kind, tt.msg)
		}
	}
}

func TestParseAck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		frame string
		ok    bool // recognised
		want  ack
	}{
		{realOK, true, ack{ID: 0, OK: true}},
		{`4312345[{"ok":true,"extra":1}]`, true, ack{ID: 12345, OK: true}},
		{realErr, true, ack{ID: 8, Code: "forbidden"}},
		{`439[{"error":{"code":"rate_limited","message":"slow down"}}]`, true, ack{ID: 9, Code: "rate_limited"}},
		{`431["something else"]`, true, ack{ID: 1, Code: "unrecognised"}},
		{`431[]`, true, ack{ID: 1, Code: "unrecognised"}},
		{`43[{"ok":true}]`, false, ack{}},            // no id
		{`43/chat,1[{"ok":true}]`, false, ack{}},     // another namespace
		{`4399999999999999999999[{}]`, false, ack{}}, // id overflows
		{realDeliveryGateway, false, ack{}},
		{"43", false, ack{}},
	}
	for _, tt := range tests {
		got, ok := parseAck([]byte(tt.frame))
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseAck(%q) = %+v %v, want %+v %v", tt.frame, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseDelivery(t *testing.T) {
	t.Parallel()
	ev := []byte(`"m"`)
	tests := []struct {
		name  string
		frame string
		ok    bool
		want  delivery
	}{
		{"gateway", realDeliveryGateway, true, delivery{T: 1763942400123456789, Seq: 7}},
		{"socket.io", realDeliverySocketIO, true, delivery{T: 1763942400123456800, Seq: 7}},
		{"ack id", `4212["m",{"t":5,"seq":6}]`, true, delivery{T: 5, Seq: 6}},
		{"whitespace", `42[ "m" , { "t" : 5 , "seq" : 6 } ]`, true, delivery{T: 5, Seq: 6}},
		{"other fields first", `42["m",{"from":"a,\"}b","nested":{"t":1,"seq":2,"x":[1,{"y":"]"}]},"arr":[[]],"n":null,"b":true,"seq":3,"t":4}]`, true, delivery{T: 4, Seq: 3}},
		{"float t", `42["m",{"t":1.7639424001234568e+18,"seq":1}]`, true, delivery{T: 1763942400123456768, Seq: 1}},
		{"negative", `42["m",{"t":-5,"seq":0}]`, true, delivery{T: -5, Seq: 0}},
		{"escaped key", `42["m",{"t\"":9,"t":1,"seq":2}]`, true, delivery{T: 1, Seq: 2}},
		{"missing seq", `42["m",{"t":1}]`, false, delivery{}},
		{"missing t", `42["m",{"seq":1}]`, false, delivery{}},
		{"t not a number", `42["m",{"t":"1","seq":1}]`, false, delivery{}},
		{"other event", `42["mm",{"t":1,"seq":1}]`, false, delivery{}},
		{"data not object", `42["m",[1,2]]`, false, delivery{}},
		{"namespace", `42/chat,["m",{"t":1,"seq":1}]`, false, delivery{}},
		{"truncated", `42["m",{"t":1,"seq":1`, false, delivery{}},
		{"truncated string", `42["m",{"a":"xx`, false, delivery{}},
		{"t overflows", `42["m",{"t":99999999999999999999,"seq":1}]`, false, delivery{}},
		{"ack frame", realOK, false, delivery{}},
		{"ping", "2", false, delivery{}},
		{"empty", "", false, delivery{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseDelivery([]byte(tt.frame), ev)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("parseDelivery(%q) = %+v %v, want %+v %v", tt.frame, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestPublishRoundTrip(t *testing.T) {
	t.Parallel()
	room, ev := appendJSONString(nil, "bench"), appendJSONString(nil, "m")
	b := appendPublish(nil, 42, room, ev, 1763942400123456789, 99)
	want := `4242["publish",{"room":"bench","event":"m","data":{"t":1763942400123456789,"seq":99}}]`
	if string(b) != want {
		t.Fatalf("appendPublish = %s\nwant %s", b, want)
	}
	// What the gateway delivers for it carries the same data back.
	delivered := `42["m",{"t":1763942400123456789,"seq":99},{"room":"bench","user":"u"}]`
	d, ok := parseDelivery([]byte(delivered), ev)
	if !ok || d.T != 1763942400123456789 || d.Seq != 99 {
		t.Fatalf("parseDelivery = %+v %v", d, ok)
	}
	if got := string(appendJoin(nil, 1, room)); got != `421["join","bench"]` {
		t.Fatalf("appendJoin = %s", got)
	}
}

func TestReadMessage(t *testing.T) {
	t.Parallel()
	msg := strings.Repeat(realDeliveryGateway, 40) // > the initial buffer
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(msg) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(msg)) },
		"half":     func() io.Reader { return iotest.HalfReader(strings.NewReader(msg)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(strings.NewReader(msg)) },
	}
	for name, mk := range readers {
		got, err := readMessage(mk(), make([]byte, 0, 16), 1<<20)
		if err != nil || string(got) != msg {
			t.Errorf("%s: readMessage = %d bytes, %v", name, len(got), err)
		}
	}
	if _, err := readMessage(strings.NewReader(msg), nil, 100); !errors.Is(err, errTooLarge) {
		t.Errorf("over the limit: err = %v, want errTooLarge", err)
	}
	if _, err := readMessage(iotest.ErrReader(io.ErrUnexpectedEOF), nil, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reader error: err = %v", err)
	}
}

func TestReadMessageReusesBuffer(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	buf := make([]byte, 0, 4096)
	msg := []byte(realDeliveryGateway)
	r := bytes.NewReader(msg)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(msg)
		buf, _ = readMessage(r, buf, 1<<20)
	})
	if allocs != 0 {
		t.Errorf("readMessage allocates %.1f times per message with a big enough buffer", allocs)
	}
}

func TestParseDeliveryDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	ev := []byte(`"m"`)
	for _, f := range []string{realDeliveryGateway, realDeliverySocketIO} {
		p := []byte(f)
		if n := testing.AllocsPerRun(100, func() { parseDelivery(p, ev) }); n != 0 {
			t.Errorf("parseDelivery(%q) allocates %.1f times", f, n)
		}
	}
}

func TestWSURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:8080", "ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket"},
		{"http://127.0.0.1:8080/", "ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket"},
		{"https://h/prefix", "wss://h/prefix/socket.io/?EIO=4&transport=websocket"},
		{"ws://h:1/socket.io/", "ws://h:1/socket.io/?EIO=4&transport=websocket"},
	}
	for _, tt := range tests {
		got, err := wsURL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("wsURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"ftp://h", "127.0.0.1:8080", "http://", "::"} {
		if _, err := wsURL(bad); !errors.Is(err, errUsage) {
			t.Errorf("wsURL(%q) err = %v, want errUsage", bad, err)
		}
	}
}

func TestSourceRange(t *testing.T) {
	t.Parallel()
	ips, err := sourceRange("http://127.0.0.1:8080", 3)
	if err != nil || len(ips) != 3 || ips[0].String() != "127.0.0.2" || ips[2].String() != "127.0.0.4" {
		t.Fatalf("sourceRange = %v, %v", ips, err)
	}
	if ips, _ := sourceRange("http://10.0.0.1:8080", 3); ips != nil {
		t.Errorf("non-loopback target got sources %v", ips)
	}
	if ips, _ := sourceRange("http://localhost:8080", 3); ips != nil {
		t.Errorf("host name target got sources %v", ips)
	}
	if _, err := sourceRange("http://127.0.0.1:1", 251); !errors.Is(err, errUsage) {
		t.Errorf("251 sources: err = %v", err)
	}
}

func TestParseVmRSS(t *testing.T) {
	t.Parallel()
	status := "Name:\tgateway\nVmPeak:\t  2150456 kB\nVmRSS:\t   75424 kB\nThreads:\t10\n"
	if v, err := parseVmRSS([]byte(status)); err != nil || v != 75424 {
		t.Fatalf("parseVmRSS = %d, %v", v, err)
	}
	for _, bad := range []string{"", "VmRSS: x kB\n", "VmRSS: 12 MB\n", "Name: x\n"} {
		if _, err := parseVmRSS([]byte(bad)); !errors.Is(err, errProc) {
			t.Errorf("parseVmRSS(%q) err = %v, want errProc", bad, err)
		}
	}
}

func TestShellJoin(t *testing.T) {
	t.Parallel()
	got := shellJoin([]string{"bin/loadgen", "fanout", "-label", "Roomcast, 1 node", "-x", "it's", ""})
	want := `bin/loadgen fanout -label 'Roomcast, 1 node' -x 'it'\''s' ''`
	if got != want {
		t.Fatalf("shellJoin = %s\nwant %s", got, want)
	}
}

func TestStripMeta(t *testing.T) {
	t.Parallel()
	in := []string{"bin/loadgen", "fanout", "-label", "x y", "--server=roomcast", "-subs", "10", "-out", "f", "-nodes=2", "-setup", "s", "-rate", "5"}
	got := shellJoin(stripMeta(in))
	if want := "bin/loadgen fanout -subs 10 -rate 5"; got != want {
		t.Fatalf("stripMeta = %s, want %s", got, want)
	}
}
