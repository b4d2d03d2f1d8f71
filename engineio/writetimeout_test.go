package engineio

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// stallFrames queues up to n MiB to c, far more than the loopback's kernel
// buffers hold, and returns when the session refuses more (it closed).
func stallFrames(c *Conn, n int) {
	big := TextFrame(strings.Repeat("x", 1<<20))
	for range n {
		if c.Send(big) != nil {
			return
		}
	}
}

// A peer that stops reading is dropped as a slow consumer once one write
// has waited WriteTimeout, even with the heartbeat far away.
func TestWriteTimeoutWebSocket(t *testing.T) {
	const wt = 300 * time.Millisecond
	h := newHarness(t, Config{WriteTimeout: wt, PingInterval: time.Minute, PingTimeout: time.Minute, MaxQueueBytes: 128 << 20})
	_, _, s := h.openWebSocket(t) // the client never reads again
	start := time.Now()
	stallFrames(s.c, 96)
	ev := s.waitClose(t)
	if ev.reason != ReasonSlowConsumer || !errors.Is(ev.err, ErrSlowConsumer) {
		t.Fatalf("OnClose(%q, %v), want slow consumer", ev.reason, ev.err)
	}
	t.Logf("stalled websocket dropped after %v (WriteTimeout %v)", time.Since(start).Round(time.Millisecond), wt)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stalled websocket lived %v with WriteTimeout %v", d, wt)
	}
}

// The heartbeat never waits behind a blocked write: with no write deadline
// to speak of, a stalled peer still misses its pong and is dropped.
func TestPingTimeoutDuringBlockedWrite(t *testing.T) {
	h := newHarness(t, Config{WriteTimeout: time.Minute, PingInterval: 100 * time.Millisecond, PingTimeout: 200 * time.Millisecond, MaxQueueBytes: 128 << 20})
	_, _, s := h.openWebSocket(t)
	start := time.Now()
	stallFrames(s.c, 96)
	ev := s.waitClose(t)
	if ev.reason != ReasonPingTimeout {
		t.Fatalf("OnClose(%q, %v), want ping timeout", ev.reason, ev.err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stalled websocket lived %v past a 300ms heartbeat", d)
	}
}

// A polling client that stops reading its GET response is dropped as a
// slow consumer after WriteTimeout.
func TestWriteTimeoutPolling(t *testing.T) {
	const wt = 300 * time.Millisecond
	h := newHarness(t, Config{WriteTimeout: wt, PingInterval: time.Minute, PingTimeout: time.Minute, MaxQueueBytes: 128 << 20})
	info, s := h.openPolling(t)
	// 16 MiB: several times what loopback's socket buffers take (a
	// payload this size is built before it is written, which under -race
	// on a loaded machine took seconds at 64 MiB).
	stallFrames(s.c, 16)
	nc, err := net.Dial("tcp", h.hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Send the GET, then never read the response.
	fmt.Fprintf(nc, "GET /engine.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n\r\n", info.SID)
	start := time.Now()
	ev := s.waitClose(t)
	if ev.reason != ReasonSlowConsumer || !errors.Is(ev.err, ErrSlowConsumer) {
		t.Fatalf("OnClose(%q, %v), want slow consumer", ev.reason, ev.err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stalled poll lived %v with WriteTimeout %v", d, wt)
	}
}
