package engineio

import (
	"bytes"
	"context"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// engineReaders counts the goroutines in a websocket session's read loop.
func engineReaders(t *testing.T) int {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 2); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(g, "engineio.(*Conn).reader(") {
			n++
		}
	}
	return n
}

// pingAnswerer answers the server's pings on ws and passes every other
// message on, until ws fails.
func pingAnswerer(ws *websocket.Conn) <-chan string {
	out := make(chan string, 16)
	go func() {
		defer close(out)
		ctx := context.Background()
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if string(data) == "2" {
				if ws.Write(ctx, websocket.MessageText, []byte("3")) != nil {
					return
				}
				continue
			}
			out <- string(data)
		}
	}()
	return out
}

func recvText(t *testing.T, in <-chan string) string {
	t.Helper()
	select {
	case m, ok := <-in:
		if !ok {
			t.Fatal("websocket closed")
		}
		return m
	case <-time.After(testTimeout):
		t.Fatal("no message")
		return ""
	}
}

// Idle websockets keep no read goroutine: between messages, and between
// heartbeats, their reads wait in the read poller; bytes wake them, a
// client's close ends them, and Shutdown ends the rest.
func TestIdleWebSocketsParkTheirReads(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no read poller on " + runtime.GOOS)
	}
	const n = 40
	h := newHarness(t, Config{PingInterval: 30 * time.Millisecond, PingTimeout: 5 * time.Second})
	type client struct {
		ws *websocket.Conn
		in <-chan string
		s  *session
	}
	clients := make([]client, n)
	for i := range clients {
		ws, _, s := h.openWebSocket(t)
		in := pingAnswerer(ws)
		writeWS(t, ws, "4hello")
		if m := s.waitMessage(t); m.data != "hello" {
			t.Fatalf("delivered %+v", m)
		}
		if got := recvText(t, in); got != "4hello" {
			t.Fatalf("echo %q", got)
		}
		clients[i] = client{ws, in, s}
	}

	// Several heartbeats later (each pong wakes a read, which parks
	// again), next to none of the sessions has a goroutine in its read.
	time.Sleep(10 * 30 * time.Millisecond)
	deadline := time.Now().Add(testTimeout)
	for {
		r := engineReaders(t)
		if r <= n/10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d idle websockets have a read goroutine", r, n)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Parked reads wake up for the next message, in order.
	for i, c := range clients {
		writeWS(t, c.ws, "4a")
		writeWS(t, c.ws, "4b")
		if a, b := recvText(t, c.in), recvText(t, c.in); a != "4a" || b != "4b" {
			t.Fatalf("client %d: echoes %q %q", i, a, b)
		}
	}
	for _, c := range clients {
		c.s.waitMessage(t)
		c.s.waitMessage(t)
		if c.s.closes.Load() != 0 {
			t.Fatal("a session closed while idle")
		}
	}

	// A client that goes away ends its parked read and its session.
	for _, c := range clients[:n/2] {
		_ = c.ws.CloseNow()
	}
	for _, c := range clients[:n/2] {
		if ev := c.s.waitClose(t); ev.reason != ReasonTransportClose {
			t.Fatalf("closed with %v, want %v", ev.reason, ReasonTransportClose)
		}
	}
	// The rest are ended by Shutdown (the harness's cleanup fails if it
	// does not return: a parked read's count was not given back).
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range clients[n/2:] {
		c.s.waitClose(t)
	}
}
