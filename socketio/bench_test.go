package socketio

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/queue"
)

// pollingSession is an in-process long-polling client: no sockets, no file
// descriptors, so a benchmark can hold 10k connections.
type pollingSession struct {
	srv *Server
	sid string
}

func (p *pollingSession) do(tb testing.TB, method, body string) string {
	tb.Helper()
	url := "/socket.io/?EIO=4&transport=polling"
	if p.sid != "" {
		url += "&sid=" + p.sid
	}
	req := httptest.NewRequest(method, url, strings.NewReader(body))
	rec := httptest.NewRecorder()
	p.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		tb.Fatalf("%s %s: %d %s", method, url, rec.Code, rec.Body.String())
	}
	return rec.Body.String()
}

func openPolling(tb testing.TB, srv *Server) *pollingSession {
	tb.Helper()
	p := &pollingSession{srv: srv}
	open := p.do(tb, http.MethodGet, "")
	var hs struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(open[1:]), &hs); err != nil {
		tb.Fatalf("OPEN %q: %v", open, err)
	}
	p.sid = hs.SID
	p.do(tb, http.MethodPost, "40")
	if got := p.do(tb, http.MethodGet, ""); !strings.HasPrefix(got, "40{") {
		tb.Fatalf("CONNECT reply %q", got)
	}
	return p
}

// BenchmarkBroadcast measures the local broadcast path: one emit to a room of
// n sockets — encode once, walk the room, append the shared frames to every
// connection's send queue. One op is one broadcast; "allocs/delivery" divides
// the op's allocations by the n deliveries (target: 0). Transport writes are
// outside this path (the queues are drained with the timer stopped).
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			srv, err := New(Config{Engine: engineio.Config{
				PingInterval:  time.Hour,
				PingTimeout:   time.Hour,
				MaxQueueBytes: 1 << 30,
			}})
			if err != nil {
				b.Fatal(err)
			}
			srv.Sockets().OnConnection(func(s *Socket) { _ = s.Join("room") })
			sessions := make([]*pollingSession, n)
			for i := range sessions {
				sessions[i] = openPolling(b, srv)
			}
			defer srv.Shutdown(b.Context())
			nsp := srv.Sockets()
			op := nsp.To("room")
			payload := map[string]any{"text": "hello, room", "seq": 1}
			drain := func() {
				for _, p := range sessions {
					p.do(b, http.MethodGet, "")
				}
			}
			const drainEvery = 32
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := op.Emit("message", payload); err != nil {
					b.Fatal(err)
				}
				if i%drainEvery == drainEvery-1 {
					b.StopTimer()
					drain()
					b.StartTimer()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkDeliver isolates the per-recipient step: handing an already
// encoded message to n sockets through the adapter (the fan-out without the
// per-broadcast encode). allocs/op here is per broadcast of n deliveries.
// BenchmarkDeliver measures the local fan-out of one encoded message; with
// recovery=on every delivery also carries the socket's offset (a frame Tail).
func BenchmarkDeliver(b *testing.B) {
	for _, recovery := range []bool{false, true} {
		for _, n := range []int{1, 100, 10_000} {
			b.Run(fmt.Sprintf("recovery=%v/subscribers=%d", recovery, n), func(b *testing.B) {
				benchDeliver(b, n, recovery)
			})
		}
	}
}

func benchDeliver(b *testing.B, n int, recovery bool) {
	{
		{
			cfg := Config{Engine: engineio.Config{
				PingInterval: time.Hour, PingTimeout: time.Hour, MaxQueueBytes: 1 << 30,
			}}
			if recovery {
				st, err := queue.NewMemory(queue.MemoryConfig{})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				cfg.Recovery = &Recovery{Store: st}
			}
			srv, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			srv.Sockets().OnConnection(func(s *Socket) { _ = s.Join("room") })
			sessions := make([]*pollingSession, n)
			for i := range sessions {
				sessions[i] = openPolling(b, srv)
			}
			defer srv.Shutdown(b.Context())
			mem := srv.Sockets().Adapter().(*adapter.Memory)
			m, err := adapter.NewMessage("/", "message", []any{"hello"})
			if err != nil {
				b.Fatal(err)
			}
			opts := adapter.Options{Rooms: []string{"room"}}
			const drainEvery = 32
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if got := mem.DeliverLocal(m, opts, false); got != n {
					b.Fatalf("delivered to %d, want %d", got, n)
				}
				if i%drainEvery == drainEvery-1 {
					b.StopTimer()
					for _, p := range sessions {
						p.do(b, http.MethodGet, "")
					}
					b.StartTimer()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		}
	}
}
