package engineio

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestSendAtomicAndEmpty(t *testing.T) {
	h := newHarness(t, Config{})
	info, s := h.openPolling(t)
	if err := s.c.Send(); err != nil {
		t.Fatalf("Send() = %v", err)
	}
	if err := s.c.Send(TextFrame("a"), TextFrame("b"), BinaryFrame([]byte("c"))); err != nil {
		t.Fatal(err)
	}
	if status, body := h.poll(t, info.SID); status != 200 || body != "4a\x1e4b\x1ebYw==" {
		t.Fatalf("GET = %d %q", status, body)
	}
}

func TestSlowConsumerPolling(t *testing.T) {
	h := newHarness(t, Config{MaxQueueBytes: 100})
	info, s := h.openPolling(t)
	big := TextFrame(strings.Repeat("x", 59)) // 60 bytes
	if err := s.c.Send(big); err != nil {
		t.Fatalf("first Send: %v", err)
	}
	if err := s.c.Send(big); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("Send over the cap = %v, want ErrSlowConsumer", err)
	}
	ev := s.waitClose(t)
	if ev.reason != ReasonSlowConsumer || !errors.Is(ev.err, ErrSlowConsumer) {
		t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
	}
	if err := s.c.Send(TextFrame("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after close = %v, want ErrClosed", err)
	}
	if status, _ := h.poll(t, info.SID); status != http.StatusBadRequest {
		t.Fatalf("GET after slow-consumer close: status %d", status)
	}
}

// TestSlowConsumerWebSocket: a client that stops reading fills the socket,
// then the queue, and is disconnected; the publisher never blocks.
func TestSlowConsumerWebSocket(t *testing.T) {
	h := newHarness(t, Config{MaxQueueBytes: 64 << 10})
	ws, _, s := h.openWebSocket(t)
	frame := TextFrame(strings.Repeat("x", 1023))
	deadline := time.Now().Add(testTimeout)
	var err error
	for err == nil {
		if time.Now().After(deadline) {
			t.Fatal("the queue never filled up")
		}
		start := time.Now()
		err = s.c.Send(frame)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Send blocked for %v", d)
		}
	}
	if !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("Send = %v, want ErrSlowConsumer", err)
	}
	if ev := s.waitClose(t); ev.reason != ReasonSlowConsumer {
		t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
	}
	_ = ws.CloseNow()
}

func TestCloseFlushesPolling(t *testing.T) {
	h := newHarness(t, Config{})
	t.Run("pending GET", func(t *testing.T) {
		info, s := h.openPolling(t)
		pending := h.pollAsync(info.SID)
		s.waitPending(t)
		if err := s.c.Send(TextFrame("a")); err != nil {
			t.Fatal(err)
		}
		if r := <-pending; r.body != "4a" {
			t.Fatalf("GET = %q", r.body)
		}
		if err := s.c.Send(TextFrame("b"), TextFrame("c")); err != nil {
			t.Fatal(err)
		}
		s.c.Close()
		if status, body := h.poll(t, info.SID); status != 200 || body != "4b\x1e4c\x1e1" {
			t.Fatalf("GET after Close = %d %q, want the queue and a close packet", status, body)
		}
		if ev := s.waitClose(t); ev.reason != ReasonForcedClose || ev.err != nil {
			t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
		}
		if status, _ := h.poll(t, info.SID); status != http.StatusBadRequest {
			t.Fatalf("GET after close: status %d", status)
		}
	})
	t.Run("nothing queued, nobody polling", func(t *testing.T) {
		_, s := h.openPolling(t)
		start := time.Now()
		s.c.Close()
		s.c.Close() // idempotent
		if ev := s.waitClose(t); ev.reason != ReasonForcedClose {
			t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
		}
		// Nothing to deliver: no waiting for a GET (which would take
		// closeFlushTimeout).
		if d := time.Since(start); d >= closeFlushTimeout {
			t.Fatalf("closing an idle polling session took %v", d)
		}
	})
	t.Run("client never polls", func(t *testing.T) {
		_, s := h.openPolling(t)
		_ = s.c.Send(TextFrame("lost"))
		start := time.Now()
		s.c.Close()
		s.waitClose(t)
		if d := time.Since(start); d > 5*closeFlushTimeout {
			t.Fatalf("Close took %v, want about %v", d, closeFlushTimeout)
		}
	})
}

func TestCloseFlushesWebSocket(t *testing.T) {
	h := newHarness(t, Config{})
	ws, _, s := h.openWebSocket(t)
	for _, m := range []string{"a", "b", "c"} {
		if err := s.c.Send(TextFrame(m)); err != nil {
			t.Fatal(err)
		}
	}
	s.c.Close()
	if err := s.c.Send(TextFrame("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
	for _, m := range []string{"4a", "4b", "4c"} {
		if _, data := readWSSkipPings(t, ws); string(data) != m {
			t.Fatalf("got %q, want %q", data, m)
		}
	}
	if err := readClose(t, ws); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("close: %v, want normal closure", err)
	}
	if ev := s.waitClose(t); ev.reason != ReasonForcedClose {
		t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
	}
}

// TestCloseFromHandler: Close and Send called from inside OnMessage and
// OnClose must not deadlock.
func TestCloseFromHandler(t *testing.T) {
	h := newHarnessHooks(t, Config{}, hooks{onMessage: func(s *session, data []byte, binary bool) {
		_ = s.c.Send(TextFrame("bye"))
		s.c.Close()
		s.msgs <- message{string(data), binary}
	}})
	ws, _, s := h.openWebSocket(t)
	writeWS(t, ws, "4close me")
	s.waitMessage(t)
	if _, data := readWSSkipPings(t, ws); string(data) != "4bye" {
		t.Fatalf("got %q", data)
	}
	if err := readClose(t, ws); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("close: %v, want normal closure", err)
	}
	if ev := s.waitClose(t); ev.reason != ReasonForcedClose {
		t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
	}
}

func TestShutdown(t *testing.T) {
	h := newHarness(t, Config{})
	pollInfo, pollSess := h.openPolling(t)
	pending := h.pollAsync(pollInfo.SID)
	pollSess.waitPending(t)
	_, idleSess := h.openPolling(t)
	ws, _, wsSess := h.openWebSocket(t)
	if err := wsSess.c.Send(TextFrame("last words")); err != nil {
		t.Fatal(err)
	}
	// The websocket client keeps reading, so it answers the close frame.
	type wsRead struct {
		data string
		err  error
	}
	wsReads := make(chan wsRead, 16)
	go func() {
		for {
			_, data, err := ws.Read(context.Background())
			wsReads <- wsRead{string(data), err}
			if err != nil {
				return
			}
		}
	}()
	if h.srv.Count() != 3 {
		t.Fatalf("Count() = %d, want 3", h.srv.Count())
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	start := time.Now()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Shutdown of responsive clients took %v", d)
	}

	if r := <-pending; r.body != "1" {
		t.Fatalf("pending GET = %d %q %v, want the close packet", r.status, r.body, r.err)
	}
	if r := <-wsReads; r.data != "4last words" {
		t.Fatalf("websocket got %q %v before close", r.data, r.err)
	}
	if r := <-wsReads; websocket.CloseStatus(r.err) != websocket.StatusGoingAway {
		t.Fatalf("websocket close: %q %v, want going away", r.data, r.err)
	}
	for _, s := range []*session{pollSess, idleSess, wsSess} {
		if ev := s.waitClose(t); ev.reason != ReasonServerShutdown {
			t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
		}
	}
	if h.srv.Count() != 0 {
		t.Fatalf("Count() = %d after Shutdown", h.srv.Count())
	}

	// New sessions are refused with 503.
	status, body := h.do(t, "GET", "EIO=4&transport=polling", "", nil)
	var got struct {
		Code ErrorCode `json:"code"`
	}
	if status != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &got) != nil || got.Code != CodeShuttingDown {
		t.Fatalf("handshake after Shutdown = %d %q", status, body)
	}
	_, resp, err := websocket.Dial(ctx, h.wsURL("EIO=4&transport=websocket"), &websocket.DialOptions{HTTPClient: h.client})
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("websocket handshake after Shutdown: %v, %v", err, resp)
	}
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// TestShutdownBoundedByContext: a client that reads nothing cannot hold
// Shutdown past its context.
func TestShutdownBoundedByContext(t *testing.T) {
	h := newHarness(t, Config{MaxQueueBytes: 64 << 20})
	ws, _, s := h.openWebSocket(t)
	frame := TextFrame(strings.Repeat("x", 64<<10-1))
	for range 512 { // 32 MiB: more than loopback socket buffers hold
		if err := s.c.Send(frame); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := h.srv.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Shutdown took %v with a 200ms context", d)
	}
	if ev := s.waitClose(t); ev.reason != ReasonServerShutdown {
		t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
	}
	_ = ws.CloseNow()
}

// TestWaitBelow: a producer waiting for the queue to drain is released when
// the transport takes it, and by a close or its context otherwise.
func TestWaitBelow(t *testing.T) {
	h := newHarness(t, Config{})
	info, s := h.openPolling(t)
	if err := s.c.WaitBelow(context.Background(), 1<<10); err != nil {
		t.Fatalf("WaitBelow on a short queue = %v", err)
	}
	if err := s.c.Send(TextFrame(strings.Repeat("x", 2<<10))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.c.WaitBelow(ctx, 1<<10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitBelow on a full queue nobody takes = %v, want DeadlineExceeded", err)
	}
	released := make(chan error, 1)
	go func() { released <- s.c.WaitBelow(context.Background(), 1<<10) }()
	if status, _ := h.poll(t, info.SID); status != http.StatusOK {
		t.Fatalf("GET: status %d", status)
	}
	select {
	case err := <-released:
		if err != nil {
			t.Fatalf("WaitBelow after the GET took the queue = %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("WaitBelow not released by the GET")
	}
	if err := s.c.Send(TextFrame(strings.Repeat("x", 2<<10))); err != nil {
		t.Fatal(err)
	}
	go func() { released <- s.c.WaitBelow(context.Background(), 1<<10) }()
	s.c.CloseReason(ReasonForcedClose)
	select {
	case err := <-released:
		if err != nil && !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitBelow across a close = %v, want nil or ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("WaitBelow not released by the close")
	}
}
