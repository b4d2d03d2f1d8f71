package gateway

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkPoll measures one long-polling cycle — a POST of an event with
// an ack id, then the GET that fetches the ack — sent to the session's own
// node (local) and to another node that forwards both requests to it
// (forwarded). cpu-µs/op is the process's user+system CPU per cycle (both
// nodes and the client run in this process: the difference between the
// two is what forwarding costs).
//
//	go test ./gateway -run '^$' -bench BenchmarkPoll -benchtime 3000x -count 3
func BenchmarkPoll(b *testing.B) {
	for _, tc := range []struct {
		name    string
		forward bool
	}{{"local", false}, {"forwarded", true}} {
		b.Run(tc.name, func(b *testing.B) {
			nodes := startForwardingCfg(b, 2, Config{EventRate: -1, IPEventRate: -1})
			p := newPollClient(b)
			p.handshake(nodes[0].base)
			via := nodes[0].base
			if tc.forward {
				via = nodes[1].base
			}
			p.do(http.MethodPost, via, "40", nil)
			p.do(http.MethodGet, via, "", nil)
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				if code, body := p.do(http.MethodPost, via, `421["bench"]`, nil); code != http.StatusOK || body != "ok" {
					b.Fatalf("POST: %d %q", code, body)
				}
				if code, body := p.do(http.MethodGet, via, "", nil); code != http.StatusOK || !strings.HasPrefix(body, "431") {
					b.Fatalf("GET: %d %q", code, body)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkPollThroughput runs 16 polling clients at once (b.RunParallel
// with parallelism 8 on 2 cores), each cycling as BenchmarkPoll does, all
// sessions on one node; "forwarded" sends every request through the other
// node. cycles/s is the owner's polling messages per second (one event in,
// one ack out per cycle).
//
//	go test ./gateway -run '^$' -bench BenchmarkPollThroughput -benchtime 20000x -count 3
func BenchmarkPollThroughput(b *testing.B) {
	for _, tc := range []struct {
		name    string
		forward bool
	}{{"local", false}, {"forwarded", true}} {
		b.Run(tc.name, func(b *testing.B) {
			nodes := startForwardingCfg(b, 2, Config{EventRate: -1, IPEventRate: -1})
			via := nodes[0].base
			if tc.forward {
				via = nodes[1].base
			}
			b.SetParallelism(8)
			b.ReportAllocs()
			cpu0 := cpuTime()
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				p := newPollClient(b)
				p.handshake(nodes[0].base)
				p.do(http.MethodPost, via, "40", nil)
				p.do(http.MethodGet, via, "", nil)
				for pb.Next() {
					if code, _ := p.do(http.MethodPost, via, `421["bench"]`, nil); code != http.StatusOK {
						b.Errorf("POST: %d", code)
						return
					}
					if code, _ := p.do(http.MethodGet, via, "", nil); code != http.StatusOK {
						b.Errorf("GET: %d", code)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cycles/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkUpgrade measures one polling-to-websocket upgrade of a connected
// socket, from the websocket's dial to the first ack on it: on the node
// that holds the session (local), and on another node, which takes the
// session over (handover: begin and take on the owner, the socket
// recovered from its stored session). cpu-µs/op is the process's CPU per
// upgrade (both nodes and the client run in this process; the handshake
// and CONNECT before each upgrade are outside the timer but not outside
// the CPU figure, which is the same in both).
//
//	go test ./gateway -run '^$' -bench BenchmarkUpgrade -benchtime 300x -count 3
func BenchmarkUpgrade(b *testing.B) {
	for _, tc := range []struct {
		name     string
		handover bool
	}{{"local", false}, {"handover", true}} {
		b.Run(tc.name, func(b *testing.B) {
			nodes := startForwardingCfg(b, 2, Config{EventRate: -1, IPEventRate: -1, ConnectRate: -1, HandshakeRate: -1})
			via := nodes[0].base
			if tc.handover {
				via = nodes[1].base
			}
			ctx := context.Background()
			var spent time.Duration
			cpu0 := cpuTime()
			b.ResetTimer()
			b.StopTimer()
			for range b.N {
				p := newPollClient(b)
				p.handshake(nodes[0].base)
				p.do(http.MethodPost, nodes[0].base, "40", nil)
				p.do(http.MethodGet, nodes[0].base, "", nil)
				b.StartTimer()
				t0 := time.Now()
				ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(via, "http")+"/socket.io/?EIO=4&transport=websocket&sid="+p.sid, nil)
				if err != nil {
					b.Fatal(err)
				}
				mustWrite := func(s string) {
					if err := ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
						b.Fatal(err)
					}
				}
				mustWrite("2probe")
				if _, m, err := ws.Read(ctx); err != nil || string(m) != "3probe" {
					b.Fatalf("probe: %q %v", m, err)
				}
				mustWrite("5")
				mustWrite(`421["join","r"]`)
				for {
					_, m, err := ws.Read(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if strings.HasPrefix(string(m), "431") {
						break
					}
				}
				spent += time.Since(t0)
				b.StopTimer()
				_ = ws.Close(websocket.StatusNormalClosure, "")
			}
			b.ReportMetric(float64(spent.Microseconds())/float64(b.N), "µs/upgrade")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
