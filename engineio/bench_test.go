package engineio

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/coder/websocket"
)

func benchFrames() []Frame {
	frames := make([]Frame, 0, 17)
	for range 16 {
		frames = append(frames, TextFrame(`2["chat message",{"from":"alice","text":"hello world"}]`))
	}
	return append(frames, BinaryFrame(bytes.Repeat([]byte{0xab}, 256)))
}

func BenchmarkEncodePayload(b *testing.B) {
	frames := benchFrames()
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst = appendPayload(dst[:0], frames)
	}
	b.SetBytes(int64(len(dst)))
}

func BenchmarkDecodePayload(b *testing.B) {
	payload := appendPayload(nil, benchFrames())
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodePayload(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConnSend measures Send on a connection whose queue is drained
// every 64 frames, as the writer does: it must not allocate.
func BenchmarkConnSend(b *testing.B) {
	srv, err := New(Config{OnConnection: func(*Conn) {}})
	if err != nil {
		b.Fatal(err)
	}
	c := newConn(srv, httptest.NewRequest("GET", "/engine.io/?EIO=4&transport=websocket", nil), kindWebSocket)
	f := TextFrame(`2["chat message","hello"]`)
	drain := func() {
		c.mu.Lock()
		frames := c.takeLocked()
		c.mu.Unlock()
		c.recycle(frames)
	}
	// As if the writer ran: Send queues and wakes it.
	c.writing, c.wake = true, make(chan struct{}, 1)
	for range 2 { // warm both queue arrays up
		for range 64 {
			_ = c.Send(f)
		}
		drain()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := c.Send(f); err != nil {
			b.Fatal(err)
		}
		if i++; i%64 == 0 {
			drain()
		}
	}
}

func TestSendDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("alloc measurement")
	}
	res := testing.Benchmark(BenchmarkConnSend)
	if a := res.AllocsPerOp(); a != 0 {
		t.Fatalf("Send: %d allocs/op, want 0", a)
	}
}

// BenchmarkWebSocketDelivery measures Send through the writer goroutine to a
// real websocket client on loopback (client read costs included).
func BenchmarkWebSocketDelivery(b *testing.B) {
	h := newHarness(b, Config{MaxQueueBytes: 64 << 20})
	ws, _, s := h.openWebSocket(b)
	f := TextFrame(`2["chat message","hello"]`)
	ctx := context.Background()
	buf := make([]byte, 256)
	pong := []byte{typePong}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.c.Send(f); err != nil {
			b.Fatal(err)
		}
		for {
			_, r, err := ws.Reader(ctx)
			if err != nil {
				b.Fatal(err)
			}
			n, err := readFull(r, buf)
			if err != nil {
				b.Fatal(err)
			}
			if n == 1 && buf[0] == typePing {
				_ = ws.Write(ctx, websocket.MessageText, pong)
				continue
			}
			break
		}
	}
}

// readFull reads r to EOF into buf without allocating.
func readFull(r io.Reader, buf []byte) (int, error) {
	n := 0
	for {
		if n == len(buf) {
			return n, io.ErrShortBuffer
		}
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
