package engineio

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestPollingSendReceive(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []message
		echo string
	}{
		{"one text", "4hello", []message{{"hello", false}}, "4hello"},
		{"several text", "4test1\x1e4test2\x1e4test3",
			[]message{{"test1", false}, {"test2", false}, {"test3", false}}, "4test1\x1e4test2\x1e4test3"},
		{"text and binary", "4hello\x1ebAQIDBA==",
			[]message{{"hello", false}, {"\x01\x02\x03\x04", true}}, "4hello\x1ebAQIDBA=="},
		{"utf-8", "4héllo ✓", []message{{"héllo ✓", false}}, "4héllo ✓"},
		{"empty message", "4", []message{{"", false}}, "4"},
		{"ignored packets", "6\x1e5\x1e0\x1e4x", []message{{"x", false}}, "4x"},
	}
	h := newHarness(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, s := h.openPolling(t)
			status, body := h.post(t, info.SID, tt.body)
			if status != http.StatusOK || body != "ok" {
				t.Fatalf("POST = %d %q", status, body)
			}
			for _, want := range tt.want {
				if got := s.waitMessage(t); got != want {
					t.Fatalf("delivered %+v, want %+v", got, want)
				}
			}
			if status, body := h.pollSkipPings(t, info.SID); status != http.StatusOK || body != tt.echo {
				t.Fatalf("GET = %d %q, want %q", status, body, tt.echo)
			}
		})
	}
}

func TestPollingResponseHeaders(t *testing.T) {
	h := newHarness(t, Config{})
	info, _ := h.openPolling(t)
	resp, err := h.client.Post(h.url+"?EIO=4&transport=polling&sid="+info.SID, "text/plain;charset=UTF-8", strings.NewReader("4a"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html" {
		t.Fatalf("POST: %d %v", resp.StatusCode, resp.Header)
	}
	resp, err = h.client.Get(h.url + "?EIO=4&transport=polling&sid=" + info.SID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
		t.Fatalf("GET Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("GET Cache-Control %q", cc)
	}
}

// TestPollingLongPoll: a GET with nothing queued waits until the server
// sends, and then returns everything queued by then in one payload.
func TestPollingLongPoll(t *testing.T) {
	h := newHarness(t, Config{})
	info, s := h.openPolling(t)
	res := h.pollAsync(info.SID)
	s.waitPending(t)
	if err := s.c.Send(TextFrame("a"), BinaryFrame([]byte("b"))); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || r.status != 200 || r.body != "4a\x1ebYg==" {
		t.Fatalf("GET = %d %q %v", r.status, r.body, r.err)
	}
}

func TestPollingDuplicateGET(t *testing.T) {
	h := newHarness(t, Config{})
	info, s := h.openPolling(t)
	first := h.pollAsync(info.SID)
	s.waitPending(t)
	if status, _ := h.poll(t, info.SID); status != http.StatusBadRequest {
		t.Fatalf("second GET status %d, want 400", status)
	}
	if r := <-first; r.err != nil || r.status != 200 || r.body != "1" {
		t.Fatalf("first GET = %d %q %v, want the close packet", r.status, r.body, r.err)
	}
	ev := s.waitClose(t)
	if ev.reason != ReasonTransportError || !errors.Is(ev.err, ErrPollOverlap) {
		t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
	}
	if status, _ := h.poll(t, info.SID); status != http.StatusBadRequest {
		t.Fatalf("GET after close status %d, want 400", status)
	}
	if err := s.c.Send(TextFrame("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after close = %v, want ErrClosed", err)
	}
}

func TestPollingAbortedGET(t *testing.T) {
	h := newHarness(t, Config{})
	info, s := h.openPolling(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", h.url+"?EIO=4&transport=polling&sid="+info.SID, nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := h.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	s.waitPending(t)
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("aborted GET succeeded")
	}
	ev := s.waitClose(t)
	if ev.reason != ReasonTransportError || !errors.Is(ev.err, ErrPollAborted) {
		t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
	}
	if status, _ := h.poll(t, info.SID); status != http.StatusBadRequest {
		t.Fatalf("GET after close status %d, want 400", status)
	}
}

func TestPollingClientClose(t *testing.T) {
	t.Run("pending GET gets a noop", func(t *testing.T) {
		h := newHarness(t, Config{})
		info, s := h.openPolling(t)
		got := h.pollAsync(info.SID)
		s.waitPending(t)
		if status, body := h.post(t, info.SID, "1"); status != 200 || body != "ok" {
			t.Fatalf("POST close = %d %q", status, body)
		}
		if r := <-got; r.body != "6" {
			t.Fatalf("pending GET got %d %q %v, want noop", r.status, r.body, r.err)
		}
		if ev := s.waitClose(t); ev.reason != ReasonTransportClose || ev.err != nil {
			t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
		}
		if status, _ := h.poll(t, info.SID); status != 400 {
			t.Fatalf("GET after close status %d, want 400", status)
		}
	})
	t.Run("GET racing behind the POST gets a noop", func(t *testing.T) {
		h := newHarness(t, Config{})
		info, s := h.openPolling(t)
		if status, _ := h.post(t, info.SID, "1"); status != 200 {
			t.Fatalf("POST close status %d", status)
		}
		if status, body := h.poll(t, info.SID); status != 200 || body != "6" {
			t.Fatalf("GET = %d %q, want noop", status, body)
		}
		if status, _ := h.poll(t, info.SID); status != 400 {
			t.Fatalf("second GET status %d, want 400", status)
		}
		if ev := s.waitClose(t); ev.reason != ReasonTransportClose {
			t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
		}
	})
}

func TestPollingBadPosts(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		reason      Reason
		err         error
	}{
		{"parse error", "text/plain", "abc", 400, ReasonParseError, ErrParse},
		{"empty body", "text/plain", "", 400, ReasonParseError, ErrParse},
		{"binary content type", "application/octet-stream", "4x", 400, ReasonTransportError, ErrBinaryPost},
		{"client ping", "text/plain", "2", 200, ReasonTransportError, ErrHeartbeatDirection},
		{"over max payload", "text/plain", "4" + strings.Repeat("x", 100), 413, ReasonTransportError, ErrPayloadTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{MaxPayload: 100})
			info, s := h.openPolling(t)
			status, _ := h.do(t, "POST", "EIO=4&transport=polling&sid="+info.SID, tt.body,
				http.Header{"Content-Type": {tt.contentType}})
			if status != tt.status {
				t.Fatalf("POST status %d, want %d", status, tt.status)
			}
			ev := s.waitClose(t)
			if ev.reason != tt.reason || !errors.Is(ev.err, tt.err) {
				t.Fatalf("OnClose(%q, %v), want (%q, %v)", ev.reason, ev.err, tt.reason, tt.err)
			}
			if status, _ := h.poll(t, info.SID); status != 400 {
				t.Fatalf("GET after close status %d, want 400", status)
			}
		})
	}
}

func TestPollingMaxPayload(t *testing.T) {
	h := newHarness(t, Config{MaxPayload: 100})
	info, s := h.openPolling(t)
	body := "4" + strings.Repeat("x", 99) // exactly 100 bytes
	if status, _ := h.post(t, info.SID, body); status != 200 {
		t.Fatalf("POST of MaxPayload bytes: status %d", status)
	}
	if m := s.waitMessage(t); len(m.data) != 99 {
		t.Fatalf("delivered %d bytes", len(m.data))
	}

	// A body of unknown length is cut at the limit too.
	info, s = h.openPolling(t)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("4"))
		for range 20 {
			if _, err := pw.Write([]byte(strings.Repeat("y", 10))); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", h.url+"?EIO=4&transport=polling&sid="+info.SID, pr)
	req.ContentLength = -1
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pr.CloseWithError(errors.New("done"))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked POST over the limit: status %d, want 413", resp.StatusCode)
	}
	if ev := s.waitClose(t); !errors.Is(ev.err, ErrPayloadTooLarge) {
		t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
	}
}

func TestPollingOverlappingPOST(t *testing.T) {
	h := newHarness(t, Config{})
	info, s := h.openPolling(t)
	pr, pw := io.Pipe()
	firstDone := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", h.url+"?EIO=4&transport=polling&sid="+info.SID, pr)
		resp, err := h.client.Do(req)
		if err != nil {
			firstDone <- 0
			return
		}
		resp.Body.Close()
		firstDone <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte("4par")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "POST to be in progress", func() bool {
		s.c.mu.Lock()
		defer s.c.mu.Unlock()
		return s.c.postActive
	})
	if status, _ := h.post(t, info.SID, "4second"); status != 400 {
		t.Fatalf("overlapping POST status %d, want 400", status)
	}
	ev := s.waitClose(t)
	if ev.reason != ReasonTransportError || !errors.Is(ev.err, ErrPollOverlap) {
		t.Fatalf("OnClose(%q, %v)", ev.reason, ev.err)
	}
	pw.Close()
	<-firstDone
	select {
	case m := <-s.msgs:
		t.Fatalf("message %+v delivered after the session closed", m)
	default:
	}
}

// waitFor polls cond until it holds or testTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
