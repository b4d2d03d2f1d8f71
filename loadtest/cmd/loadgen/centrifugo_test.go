package main

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// Messages captured from Centrifugo v6.9.1 (bin/peers/centrifugo with
// loadtest/centrifugo/config.json) answering loadgen: the replies to
// connect, to subscribe, to a subscribe to a private channel, a publication,
// and the HTTP API's answers to a publish and to one without a channel.
var (
	cfRealConnect   = `{"id":1,"connect":{"client":"ac5d80cf-b2d2-49a0-b47a-4f69c40e047b","version":"0.0.0 OSS","expires":true,"ttl":3600,"ping":25,"pong":true}}`
	cfRealSubscribe = `{"id":2,"subscribe":{}}`
	cfRealError     = `{"id":3,"error":{"code":103,"message":"permission denied"}}`
	cfRealPush      = `{"push":{"channel":"bench","pub":{"data":{"t":1763942400123456789,"seq":7}}}}`
	cfRealAPIOK     = `{"result":{}}`
	cfRealAPIError  = `{"error":{"code":107,"message":"bad request"}}`
)

func TestParseCFPublication(t *testing.T) {
	t.Parallel()
	room := []byte(`"bench"`)
	tests := []struct {
		name string
		line string
		ok   bool
		want delivery
	}{
		{"real", cfRealPush, true, delivery{T: 1763942400123456789, Seq: 7}},
		{"members reordered", `{"push":{"pub":{"offset":3,"data":{"seq":7,"t":5}},"channel":"bench"}}`, true, delivery{T: 5, Seq: 7}},
		{"whitespace", `{ "push" : { "channel" : "bench" , "pub" : { "data" : { "t" : 5 , "seq" : 6 } } } }`, true, delivery{T: 5, Seq: 6}},
		{"other fields", `{"push":{"channel":"bench","pub":{"info":{"user":"u","data":{"t":1,"seq":1}},"data":{"x":"}","t":2,"seq":3},"tags":{"a":"b"}}}}`, true, delivery{T: 2, Seq: 3}},
		{"other channel", `{"push":{"channel":"bench2","pub":{"data":{"t":1,"seq":1}}}}`, false, delivery{}},
		{"no channel", `{"push":{"pub":{"data":{"t":1,"seq":1}}}}`, false, delivery{}},
		{"join push", `{"push":{"channel":"bench","join":{"info":{"user":"u"}}}}`, false, delivery{}},
		{"reply", cfRealSubscribe, false, delivery{}},
		{"ping", `{}`, false, delivery{}},
		{"missing seq", `{"push":{"channel":"bench","pub":{"data":{"t":1}}}}`, false, delivery{}},
		{"data not object", `{"push":{"channel":"bench","pub":{"data":[1]}}}`, false, delivery{}},
		{"truncated", `{"push":{"channel":"bench","pub":{"data":{"t":1,"seq":`, false, delivery{}},
		{"empty", ``, false, delivery{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseCFPublication([]byte(tt.line), room)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("parseCFPublication(%q) = %+v %v, want %+v %v", tt.line, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// A websocket message may carry several replies and pushes, one a line;
// every line is seen, in order, whatever its neighbours.
func TestCFMessageLines(t *testing.T) {
	t.Parallel()
	msg := []byte(cfRealPush + "\n{}\n" + strings.Replace(cfRealPush, `"seq":7`, `"seq":8`, 1) + "\r\n\n" + cfRealSubscribe)
	var seqs []int64
	var pings, others int
	for p := msg; len(p) > 0; {
		var line []byte
		line, p = cutLine(p)
		switch d, ok := parseCFPublication(line, []byte(`"bench"`)); {
		case ok:
			seqs = append(seqs, d.Seq)
		case bytes.Equal(line, cfPing):
			pings++
		default:
			others++
		}
	}
	if len(seqs) != 2 || seqs[0] != 7 || seqs[1] != 8 || pings != 1 || others != 2 { // the blank line and the reply
		t.Fatalf("seqs %v, pings %d, others %d", seqs, pings, others)
	}
}

func TestParseCFPublicationDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	p, room := []byte(cfRealPush), []byte(`"bench"`)
	if n := testing.AllocsPerRun(100, func() { parseCFPublication(p, room) }); n != 0 {
		t.Errorf("parseCFPublication allocates %.1f times", n)
	}
}

func TestCFCommands(t *testing.T) {
	t.Parallel()
	room := appendJSONString(nil, "bench")
	for _, tt := range []struct{ got, want string }{
		{string(appendCFConnect(nil, 1, "a.b.c")), `{"id":1,"connect":{"token":"a.b.c"}}`},
		{string(appendCFConnect(nil, 1, "")), `{"id":1,"connect":{}}`},
		{string(appendCFSubscribe(nil, 2, room)), `{"id":2,"subscribe":{"channel":"bench"}}`},
		{string(appendCFPublish(nil, room, 1763942400123456789, 99)), `{"channel":"bench","data":{"t":1763942400123456789,"seq":99}}`},
	} {
		if tt.got != tt.want {
			t.Errorf("got %s\nwant %s", tt.got, tt.want)
		}
	}
	// What Centrifugo pushes for a publish carries its data back unchanged.
	push := `{"push":{"channel":"bench","pub":{"data":{"t":1763942400123456789,"seq":99}}}}`
	if d, ok := parseCFPublication([]byte(push), room); !ok || d.T != 1763942400123456789 || d.Seq != 99 {
		t.Fatalf("round trip: %+v %v", d, ok)
	}
}

func TestParseCFReply(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		line    string
		id      uint32
		errCode uint32
	}{
		{cfRealConnect, 1, 0},
		{cfRealSubscribe, 2, 0},
		{cfRealError, 3, 103},
		{cfRealPush, 0, 0},
	} {
		r, err := parseCFReply([]byte(tt.line))
		if err != nil || r.ID != tt.id || (r.Error == nil) != (tt.errCode == 0) || (r.Error != nil && r.Error.Code != tt.errCode) {
			t.Errorf("parseCFReply(%s) = %+v, %v", tt.line, r, err)
		}
	}
	if _, err := parseCFReply([]byte(`{"id":`)); !errors.Is(err, errFrame) {
		t.Errorf("truncated reply: err = %v", err)
	}
}

func TestCFPublishOutcome(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status int
		body   string
		want   string
	}{
		{http.StatusOK, cfRealAPIOK, ""},
		{http.StatusOK, cfRealAPIError, "api 107: bad request"},
		{http.StatusUnauthorized, "", "http 401"},
		{http.StatusOK, "nope", "api: unreadable answer"},
		{http.StatusOK, "{}", "api: answer without result"},
	} {
		if got := cfPublishOutcome(tt.status, []byte(tt.body)); got != tt.want {
			t.Errorf("cfPublishOutcome(%d, %s) = %q, want %q", tt.status, tt.body, got, tt.want)
		}
	}
}

func TestCFURLs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		f        func(string) (string, error)
		in, want string
	}{
		{cfWSURL, "http://127.0.0.1:8000", "ws://127.0.0.1:8000/connection/websocket"},
		{cfWSURL, "https://h/prefix/", "wss://h/prefix/connection/websocket"},
		{cfAPIURL, "http://127.0.0.1:8000/", "http://127.0.0.1:8000/api/publish"},
		{cfAPIURL, "ws://h:1", "http://h:1/api/publish"},
	} {
		if got, err := tt.f(tt.in); err != nil || got != tt.want {
			t.Errorf("%q -> %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := cfWSURL("ftp://h"); !errors.Is(err, errUsage) {
		t.Errorf("ftp: err = %v", err)
	}
}

func TestProtocolFor(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]protocol{"": socketIO{}, "socketio": socketIO{}, "centrifugo": centrifugo{}} {
		if got, err := protocolFor(name); err != nil || got != want {
			t.Errorf("protocolFor(%q) = %T, %v", name, got, err)
		}
	}
	if _, err := protocolFor("mqtt"); !errors.Is(err, errUsage) {
		t.Errorf("unknown protocol: err = %v", err)
	}
}

// FuzzCFMessages feeds arbitrary messages through the line splitter and
// the publication parser: neither may panic, the lines must join back to
// the message, and a publication found must carry the room's channel.
func FuzzCFMessages(f *testing.F) {
	for _, s := range []string{cfRealConnect, cfRealSubscribe, cfRealPush, cfRealError, "{}", cfRealPush + "\n{}\n" + cfRealPush,
		`{"push":{"pub":{"data":{"seq":7,"t":5}},"channel":"bench"}}`, `{"push":{"channel":"bench","pub":{"data":{"t":1e3,"seq":"x"}}}}`} {
		f.Add([]byte(s))
	}
	room := []byte(`"bench"`)
	f.Fuzz(func(t *testing.T, msg []byte) {
		var lines [][]byte
		for p := msg; len(p) > 0; {
			var line []byte
			line, p = cutLine(p)
			lines = append(lines, line)
			if _, ok := parseCFPublication(line, room); ok && !bytes.Contains(line, room) {
				t.Fatalf("publication without the channel: %q", line)
			}
		}
		if n := bytes.Count(msg, []byte{'\n'}); len(lines) != n && len(lines) != n+1 {
			t.Fatalf("%d lines from %d newlines in %q", len(lines), n, msg)
		}
	})
}
