package engineio

import (
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func (s *session) waitUpgrade(t testing.TB) string {
	t.Helper()
	select {
	case tr := <-s.upgrades:
		return tr
	case <-time.After(testTimeout):
		t.Fatal("OnUpgrade not called")
		return ""
	}
}

func TestUpgrade(t *testing.T) {
	h := newHarness(t, Config{})
	info, s := h.openPolling(t)

	// The client's pending GET is released with a noop once the probe is
	// answered.
	pending := h.pollAsync(info.SID)
	s.waitPending(t)
	ws := h.dial(t, "EIO=4&transport=websocket&sid="+info.SID)
	writeWS(t, ws, "2probe")
	if typ, data := readWS(t, ws); typ != websocket.MessageText || string(data) != "3probe" {
		t.Fatalf("probe answer %v %q", typ, data)
	}
	if r := <-pending; r.err != nil || r.status != 200 || r.body != "6" {
		t.Fatalf("pending GET = %d %q %v, want noop", r.status, r.body, r.err)
	}
	if s.c.Transport() != "polling" {
		t.Fatal("transport switched before the upgrade packet")
	}

	// What is sent while the client pauses is delivered over the websocket.
	if err := s.c.Send(TextFrame("during"), BinaryFrame([]byte{7})); err != nil {
		t.Fatal(err)
	}
	writeWS(t, ws, "5")
	if tr := s.waitUpgrade(t); tr != "websocket" {
		t.Fatalf("OnUpgrade(%q)", tr)
	}
	if s.c.Transport() != "websocket" {
		t.Fatalf("Transport() = %q after upgrade", s.c.Transport())
	}
	if typ, data := readWSSkipPings(t, ws); typ != websocket.MessageText || string(data) != "4during" {
		t.Fatalf("first message after upgrade %v %q", typ, data)
	}
	if typ, data := readWSSkipPings(t, ws); typ != websocket.MessageBinary || string(data) != "\x07" {
		t.Fatalf("second message after upgrade %v %q", typ, data)
	}
	writeWS(t, ws, "4after")
	if m := s.waitMessage(t); m.data != "after" {
		t.Fatalf("delivered %+v", m)
	}
	if _, data := readWSSkipPings(t, ws); string(data) != "4after" {
		t.Fatalf("echo %q", data)
	}

	// The polling transport is gone, and so is any further websocket.
	if status, _ := h.poll(t, info.SID); status != http.StatusBadRequest {
		t.Fatalf("GET after upgrade status %d, want 400", status)
	}
	if status, _ := h.post(t, info.SID, "4x"); status != http.StatusBadRequest {
		t.Fatalf("POST after upgrade status %d, want 400", status)
	}
	ws2 := h.dial(t, "EIO=4&transport=websocket&sid="+info.SID)
	if err := readClose(t, ws2); err == nil {
		t.Fatal("second websocket for the session was not closed")
	}
	writeWS(t, ws, "4still")
	if m := s.waitMessage(t); m.data != "still" {
		t.Fatalf("delivered %+v after a refused second websocket", m)
	}
}

func TestUpgradeGETAfterProbe(t *testing.T) {
	h := newHarness(t, Config{})
	info, s := h.openPolling(t)
	ws := h.dial(t, "EIO=4&transport=websocket&sid="+info.SID)
	writeWS(t, ws, "2probe")
	readWS(t, ws)
	if status, body := h.poll(t, info.SID); status != 200 || body != "6" {
		t.Fatalf("GET after probe = %d %q, want noop", status, body)
	}
	writeWS(t, ws, "5")
	s.waitUpgrade(t)
}

func TestUpgradeAbandoned(t *testing.T) {
	tests := []struct {
		name string
		act  func(t *testing.T, ws *websocket.Conn)
	}{
		{"no upgrade packet", func(t *testing.T, ws *websocket.Conn) {
			writeWS(t, ws, "2probe")
			readWS(t, ws)
		}},
		{"no probe", func(t *testing.T, ws *websocket.Conn) {}},
		{"wrong first packet", func(t *testing.T, ws *websocket.Conn) { writeWS(t, ws, "4hello") }},
		{"wrong second packet", func(t *testing.T, ws *websocket.Conn) {
			writeWS(t, ws, "2probe")
			readWS(t, ws)
			writeWS(t, ws, "4hello")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{UpgradeTimeout: 500 * time.Millisecond})
			info, s := h.openPolling(t)
			ws := h.dial(t, "EIO=4&transport=websocket&sid="+info.SID)
			tt.act(t, ws)
			if err := readClose(t, ws); err == nil {
				t.Fatal("abandoned probe websocket was not closed")
			}
			// The session goes on polling...
			if status, _ := h.post(t, info.SID, "4polling"); status != 200 {
				t.Fatalf("POST after abandoned upgrade: status %d", status)
			}
			if m := s.waitMessage(t); m.data != "polling" {
				t.Fatalf("delivered %+v", m)
			}
			if status, body := h.pollSkipPings(t, info.SID); status != 200 || body != "4polling" {
				t.Fatalf("GET = %d %q", status, body)
			}
			// ...and can still upgrade.
			ws = h.dial(t, "EIO=4&transport=websocket&sid="+info.SID)
			writeWS(t, ws, "2probe")
			readWS(t, ws)
			writeWS(t, ws, "5")
			s.waitUpgrade(t)
		})
	}
}

func TestUpgradeSessionClosedDuringProbe(t *testing.T) {
	h := newHarness(t, Config{})
	info, s := h.openPolling(t)
	ws := h.dial(t, "EIO=4&transport=websocket&sid="+info.SID)
	writeWS(t, ws, "2probe")
	readWS(t, ws)
	s.c.Close()
	if err := readClose(t, ws); err == nil {
		t.Fatal("probe websocket survived the session")
	}
	if ev := s.waitClose(t); ev.reason != ReasonForcedClose {
		t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
	}
}
