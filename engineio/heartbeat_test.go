package engineio

import (
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestHeartbeatPolling(t *testing.T) {
	// A long timeout so that a loaded machine cannot miss the pong.
	h := newHarness(t, Config{PingInterval: 30 * time.Millisecond, PingTimeout: 5 * time.Second})
	info, s := h.openPolling(t)
	for i := range 3 {
		if status, body := h.poll(t, info.SID); status != 200 || body != "2" {
			t.Fatalf("GET %d = %d %q, want ping", i, status, body)
		}
		if status, _ := h.post(t, info.SID, "3"); status != 200 {
			t.Fatalf("pong POST status %d", status)
		}
	}
	select {
	case ev := <-s.closed:
		t.Fatalf("session closed despite pongs: %q %v", ev.reason, ev.err)
	default:
	}
}

func TestHeartbeatWebSocket(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 30 * time.Millisecond, PingTimeout: 5 * time.Second})
	ws, _, s := h.openWebSocket(t)
	for i := range 3 {
		if typ, data := readWS(t, ws); typ != websocket.MessageText || string(data) != "2" {
			t.Fatalf("message %d = %v %q, want ping", i, typ, data)
		}
		writeWS(t, ws, "3")
	}
	select {
	case ev := <-s.closed:
		t.Fatalf("session closed despite pongs: %q %v", ev.reason, ev.err)
	default:
	}
}

func TestPingTimeout(t *testing.T) {
	cfg := Config{PingInterval: 20 * time.Millisecond, PingTimeout: 20 * time.Millisecond}
	t.Run("polling", func(t *testing.T) {
		h := newHarness(t, cfg)
		info, s := h.openPolling(t)
		if ev := s.waitClose(t); ev.reason != ReasonPingTimeout || ev.err != nil {
			t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
		}
		if status, _ := h.poll(t, info.SID); status != http.StatusBadRequest {
			t.Fatalf("GET after ping timeout: status %d, want 400", status)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		h := newHarness(t, cfg)
		ws, _, s := h.openWebSocket(t)
		if ev := s.waitClose(t); ev.reason != ReasonPingTimeout || ev.err != nil {
			t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
		}
		if err := readClose(t, ws); err == nil {
			t.Fatal("websocket not closed on ping timeout")
		}
	})
}

// TestHeartbeatClockHoldsOpenSessionsOnly: every open session is filed
// once on the server's heartbeat clock, and a closed one is gone from it
// (the clock keeps nothing of it, and stops when it holds nothing).
func TestHeartbeatClockHoldsOpenSessionsOnly(t *testing.T) {
	h := newHarness(t, Config{PingInterval: time.Hour, PingTimeout: time.Hour})
	var sessions []*session
	for range 20 {
		_, s := h.openPolling(t)
		sessions = append(sessions, s)
		_, _, ws := h.openWebSocket(t)
		sessions = append(sessions, ws)
	}
	filed := h.srv.hb.Len
	if n := filed(); n != len(sessions) {
		t.Fatalf("%d sessions filed, want %d", n, len(sessions))
	}
	for i, s := range sessions {
		s.c.closeWith(ReasonForcedClose, nil, modeAbort, nil)
		s.waitClose(t)
		if n := filed(); n != len(sessions)-i-1 {
			t.Fatalf("after %d closes: %d sessions filed", i+1, n)
		}
	}
}
