package gateway

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/roomcast/roomcast/hook"
	"github.com/roomcast/roomcast/internal/sitest"
)

// BenchmarkHookEvent measures a client event's round trip (event out, ack
// back) over a websocket through one node, answered by a local backend (the
// hook SDK's Handler) or, for the baseline, by the gateway itself (an
// unknown_event error ack). The difference of the two is the hook's
// overhead per event; p50/p99 are reported as metrics.
//
//	go test -run X -bench HookEvent -benchtime 5000x ./gateway
func BenchmarkHookEvent(b *testing.B) {
	url := backend(b, &hook.Handler{OnEvent: func(_ context.Context, req *hook.EventRequest) (*hook.EventResponse, error) {
		return &hook.EventResponse{Ack: req.Args}, nil
	}})
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"baseline", Config{EventRate: -1, IPEventRate: -1}},
		{"webhook", Config{Webhook: url, HookSecret: hookSecret, EventRate: -1, IPEventRate: -1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			n := start(b, c.cfg)
			cl := sitest.Dial(b, n.wsURL)
			cl.Connect("/", authPayload(token(b, map[string]any{"sub": "bench"})))
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				cl.Send(fmt.Sprintf(`42%d["msg",{"text":"hello"}]`, i))
				cl.Read()
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkHookThroughput is events per second through the webhook on one
// node: 32 sockets, each keeping one event in flight.
//
//	go test -run X -bench HookThroughput -benchtime 20000x ./gateway
func BenchmarkHookThroughput(b *testing.B) {
	url := backend(b, &hook.Handler{OnEvent: func(_ context.Context, req *hook.EventRequest) (*hook.EventResponse, error) {
		return &hook.EventResponse{Ack: req.Args}, nil
	}})
	n := start(b, Config{Webhook: url, HookSecret: hookSecret, EventRate: -1, IPEventRate: -1, ConnectRate: -1})
	const sockets = 32
	clients := make([]*sitest.Client, sockets)
	for i := range clients {
		clients[i] = sitest.Dial(b, n.wsURL)
		clients[i].Connect("/", authPayload(token(b, map[string]any{"sub": fmt.Sprintf("u%d", i)})))
	}
	per := b.N/sockets + 1
	b.ResetTimer()
	t0 := time.Now()
	done := make(chan struct{}, sockets)
	for _, cl := range clients {
		go func() {
			for i := range per {
				cl.Send(fmt.Sprintf(`42%d["msg",{"text":"hello"}]`, i))
				cl.Read()
			}
			done <- struct{}{}
		}()
	}
	for range sockets {
		<-done
	}
	b.StopTimer()
	b.ReportMetric(float64(per*sockets)/time.Since(t0).Seconds(), "events/s")
}
