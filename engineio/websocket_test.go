package engineio

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

func TestWebSocketSendReceive(t *testing.T) {
	h := newHarness(t, Config{})
	ws, _, s := h.openWebSocket(t)

	writeWS(t, ws, "4hello")
	if m := s.waitMessage(t); m != (message{"hello", false}) {
		t.Fatalf("delivered %+v", m)
	}
	if typ, data := readWSSkipPings(t, ws); typ != websocket.MessageText || string(data) != "4hello" {
		t.Fatalf("echo %v %q", typ, data)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	if m := s.waitMessage(t); m != (message{"\x01\x02\x03\x04", true}) {
		t.Fatalf("delivered %+v", m)
	}
	if typ, data := readWSSkipPings(t, ws); typ != websocket.MessageBinary || string(data) != "\x01\x02\x03\x04" {
		t.Fatalf("binary echo %v %q, want raw bytes", typ, data)
	}

	// A base64 binary packet in a text message is a binary message too.
	writeWS(t, ws, "bAQI=")
	if m := s.waitMessage(t); m != (message{"\x01\x02", true}) {
		t.Fatalf("delivered %+v", m)
	}
	readWSSkipPings(t, ws)
}

func TestWebSocketOrder(t *testing.T) {
	const n = 500
	h := newHarness(t, Config{})
	ws, _, s := h.openWebSocket(t)
	for i := range n {
		if err := s.c.Send(TextFrame(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if _, data := readWSSkipPings(t, ws); string(data) != "4"+fmt.Sprint(i) {
			t.Fatalf("message %d is %q", i, data)
		}
	}
	for i := range n {
		writeWS(t, ws, "4"+fmt.Sprint(i))
	}
	for i := range n {
		if m := s.waitMessage(t); m.data != fmt.Sprint(i) {
			t.Fatalf("delivered message %d is %q", i, m.data)
		}
	}
}

func TestWebSocketClose(t *testing.T) {
	tests := []struct {
		name   string
		act    func(t *testing.T, ws *websocket.Conn)
		reason Reason
		err    error
		status websocket.StatusCode // close status the client sees; -1 for none
	}{
		{
			name:   "client close packet",
			act:    func(t *testing.T, ws *websocket.Conn) { writeWS(t, ws, "1") },
			reason: ReasonTransportClose,
			status: websocket.StatusNormalClosure,
		},
		{
			name:   "invalid packet",
			act:    func(t *testing.T, ws *websocket.Conn) { writeWS(t, ws, "abc") },
			reason: ReasonParseError,
			err:    ErrParse,
			status: websocket.StatusNormalClosure,
		},
		{
			name:   "empty text message",
			act:    func(t *testing.T, ws *websocket.Conn) { writeWS(t, ws, "") },
			reason: ReasonParseError,
			err:    ErrParse,
			status: websocket.StatusNormalClosure,
		},
		{
			name:   "client ping",
			act:    func(t *testing.T, ws *websocket.Conn) { writeWS(t, ws, "2") },
			reason: ReasonTransportError,
			err:    ErrHeartbeatDirection,
			status: -1,
		},
		{
			name:   "message over MaxPayload",
			act:    func(t *testing.T, ws *websocket.Conn) { writeWS(t, ws, "4"+strings.Repeat("x", 100)) },
			reason: ReasonTransportError,
			err:    ErrPayloadTooLarge,
			status: websocket.StatusMessageTooBig,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{MaxPayload: 100})
			ws, _, s := h.openWebSocket(t)
			tt.act(t, ws)
			err := readClose(t, ws)
			if tt.status >= 0 && websocket.CloseStatus(err) != tt.status {
				t.Errorf("client read error %v, want close status %v", err, tt.status)
			}
			ev := s.waitClose(t)
			if ev.reason != tt.reason || (tt.err != nil && !errors.Is(ev.err, tt.err)) {
				t.Fatalf("OnClose(%q, %v), want (%q, %v)", ev.reason, ev.err, tt.reason, tt.err)
			}
			if h.srv.Count() != 0 {
				t.Fatalf("Count() = %d after close", h.srv.Count())
			}
		})
	}
}

func TestWebSocketMaxPayloadExact(t *testing.T) {
	h := newHarness(t, Config{MaxPayload: 100})
	ws, _, s := h.openWebSocket(t)
	writeWS(t, ws, "4"+strings.Repeat("x", 99))
	if m := s.waitMessage(t); len(m.data) != 99 {
		t.Fatalf("delivered %d bytes", len(m.data))
	}
}

func TestWebSocketClientGoesAway(t *testing.T) {
	h := newHarness(t, Config{})
	ws, _, s := h.openWebSocket(t)
	if err := ws.Close(websocket.StatusGoingAway, "bye"); err != nil {
		t.Fatalf("client close: %v", err)
	}
	if ev := s.waitClose(t); ev.reason != ReasonTransportClose || ev.err != nil {
		t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
	}

	ws, _, s = h.openWebSocket(t)
	_ = ws.CloseNow() // no close frame
	if ev := s.waitClose(t); ev.reason != ReasonTransportClose {
		t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
	}
}
