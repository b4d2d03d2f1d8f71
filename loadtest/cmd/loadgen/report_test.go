package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeResults writes result lines built from typed results.
func writeResults(t testing.TB, recs ...record) string {
	t.Helper()
	var b strings.Builder
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteString("\n\n") // blank lines are skipped
	}
	name := filepath.Join(t.TempDir(), "results.jsonl")
	if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func sampleRecords() []record {
	sat := func(server string, nodes int, dps float64) record {
		return record{Label: server + " sat", Server: server, Nodes: nodes, Mode: "fanout", Command: "bin/loadgen fanout -x a|b", Load1: float64(nodes),
			Setup: server + " started", Result: &fanoutResult{Mode: "fanout", Subscribers: 1000, Publishers: 2, Inflight: 16,
				DeliveriesPerS: dps, DeliveryRatio: 1, Latency: latencySummary{Count: 10, P50: 1, P99: 2, Max: 3},
				CPU: &cpuUsage{ServerS: 10, ServerUSPerOp: 1e6 / dps * float64(nodes)}}}
	}
	at100k := func(server string, p99 float64) record {
		return record{Label: server + " 100k", Server: server, Nodes: 2, Mode: "fanout", Command: "c",
			Result: &fanoutResult{Mode: "fanout", TargetRate: 100000, DeliveriesPerS: 100000, DeliveryRatio: 1,
				Latency: latencySummary{Count: 10, P99: p99}}}
	}
	return []record{
		sat("roomcast", 1, 500000), sat("socketio", 1, 100000),
		sat("roomcast", 2, 600000), sat("socketio", 2, 200000),
		at100k("roomcast", 8.5), at100k("socketio", 250),
		{Label: "rc idle", Server: "roomcast", Nodes: 1, Mode: "idle", Command: "i",
			Result: &idleResult{Mode: "idle", Connected: 15000, RSSBeforeKB: 10000, RSSAfterKB: 100000, BytesPerConn: 6144}},
		{Label: "sio idle", Server: "socketio", Nodes: 1, Mode: "idle", Command: "i",
			Result: &idleResult{Mode: "idle", Connected: 15000, BytesPerConn: 15000}},
		{Label: "rc connect", Server: "roomcast", Nodes: 1, Mode: "connect", Command: "c",
			Result: &connectResult{Mode: "connect", Concurrency: 64, ConnectsPerS: 3000}},
		{Label: "broken", Server: "roomcast", Nodes: 2, Mode: "fanout", Command: "scripts/bench.sh (setup rc2)",
			Error: "not run: gateway has no --redis flag"},
	}
}

func TestReportKeepsHandWrittenSection(t *testing.T) {
	t.Parallel()
	results := writeResults(t, sampleRecords()...)
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	hand := "## Micro-benchmarks\n\n| BenchmarkX | 12 ns/op | 0 allocs/op |\n\nnotes `kept` | as is\n"
	old := "# old title\n\nold generated text\n\n" + handBegin + "\n" + hand + handEnd + "\n\nold tables\n"
	if err := os.WriteFile(out, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := reportConfig{Results: results, Out: out, Command: "scripts/bench.sh", Now: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC),
		Machine: &machineInfo{CPUs: 2, CPUModel: "Test CPU", MemTotal: "1.0 GiB", Go: "go1.26", Node: "v20"}}
	for range 2 { // rewriting twice changes nothing
		if err := writeReport(cfg); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if !strings.Contains(doc, handBegin+"\n"+hand+handEnd) {
		t.Fatalf("hand-written section not kept:\n%s", doc)
	}
	if strings.Contains(doc, "Centrifugo") {
		t.Errorf("Centrifugo notes in a report without a Centrifugo record")
	}
	if strings.Contains(doc, "old generated text") || strings.Contains(doc, "old tables") || strings.Count(doc, handBegin) != 1 {
		t.Fatalf("old generated text kept or section duplicated:\n%s", doc)
	}
	for _, want := range []string{
		"2026-01-02 03:04 UTC", "2 CPUs", "load average when the runs started: 1.00 to 2.00", "Test CPU", "go1.26, Node v20",
		"| Fan-out saturation, 1 node | ≥ 4× socket.io | 500,000/s | 100,000/s | yes (5.00×) |",
		"| Fan-out saturation, 2 nodes | ≥ 4× socket.io | 600,000/s | 200,000/s | **no** (3.00×) |",
		"| p99 latency at 100k deliveries/s, 2 nodes | ≤ 10 ms | 8.50 ms (ratio 1.0000) | 250.00 ms (ratio 1.0000) | yes |",
		"| Idle WebSocket memory at 15k connections | ≤ 8 KB RSS each | 6,144 B (15000 conns) | 15,000 B (15000 conns) | yes |",
		"| Connects with JWT | ≥ 10k/s | 3,000/s | – | **no** |",
		"| _Context:_ server CPU per delivery at saturation, 1 node | – | 2.00 µs | 10.00 µs | socket.io ÷ Roomcast = 5.00 |",
		"| 100,000 | 1.0000 | 1.00 | 0.00 | 2.00 | 3.00 | 0 | 10.00 | `bin/loadgen",
		"`bin/loadgen fanout -x a\\|b`", // a pipe cannot end the cell
		"| broken | – | failed: not run: gateway has no --redis flag |",
		"| roomcast sat | `roomcast started` |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("document lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(doc)
	}
}

// Centrifugo measured on one node gets its own column in the table against
// every peer, under its label, its rows in the per-mode tables, and notes
// on how its protocol is driven; it changes nothing in the targets table.
func TestReportCentrifugo(t *testing.T) {
	t.Parallel()
	recs := sampleRecords()
	cf := func(mode string, res any) record {
		return record{Label: "Centrifugo v6.9.1, 1 node", Server: "centrifugo", Nodes: 1, Mode: mode, Command: "bin/loadgen " + mode + " -protocol centrifugo", Result: res}
	}
	recs = append(recs,
		cf("idle", &idleResult{Mode: "idle", Connected: 15000, BytesPerConn: 11900}),
		cf("connect", &connectResult{Mode: "connect", Concurrency: 64, Connects: 10, ConnectsPerS: 4200}),
		cf("fanout", &fanoutResult{Mode: "fanout", Subscribers: 1000, Publishers: 2, Inflight: 64, DeliveriesPerS: 300000,
			DeliveryRatio: 1, Latency: latencySummary{Count: 10, P99: 20}, CPU: &cpuUsage{ServerUSPerOp: 3.5}}),
		cf("fanout", &fanoutResult{Mode: "fanout", TargetRate: 100000, DeliveriesPerS: 100000, DeliveryRatio: 0.9995,
			Latency: latencySummary{Count: 10, P99: 4.5}}),
	)
	results := writeResults(t, recs...)
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := writeReport(reportConfig{Results: results, Out: out, Machine: &machineInfo{}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{
		"Centrifugo is measured alongside on one node",
		"| Figure | Roomcast | socketio sat | Centrifugo v6.9.1 |",
		"| Fan-out saturation, deliveries/s | 500,000/s | 100,000/s (5.00×) | 300,000/s (1.67×) |",
		"| Server CPU per delivery at saturation | 2.00 µs | 10.00 µs (5.00×) | 3.50 µs (1.75×) |",
		"| p99 latency at 100,000 deliveries/s | – | – | 4.50 ms |",
		"| Idle websocket, RSS each | 6,144 B | 15,000 B (2.44×) | 11,900 B (1.94×) |",
		"| Centrifugo v6.9.1, 1 node | 100,000 deliveries/s (0 subs, 0 pubs) | 100,000 | 0.9995 |",
		"| Centrifugo v6.9.1, 1 node | 64 | 4,200 | 0 |",
		"| Centrifugo v6.9.1, 1 node | 15000 | 0 |",
		"Centrifugo has no OPEN packet",
		"Centrifugo's publishers hold no websocket",
		// The targets compare Roomcast with socket.io on Node only.
		"| Fan-out saturation, 1 node | ≥ 4× socket.io | 500,000/s | 100,000/s | yes (5.00×) |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("document lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(doc)
	}
}

func TestReportNewFileGetsDefaultSection(t *testing.T) {
	t.Parallel()
	results := writeResults(t, sampleRecords()[:1]...)
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := writeReport(reportConfig{Results: results, Out: out, Machine: &machineInfo{}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	h, ok := handSection(string(b))
	if !ok || h != defaultHandSection {
		t.Fatalf("hand section = %q, %v", h, ok)
	}
}

func TestReportRejectsBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	for _, content := range []string{"not json\n", `{"mode":"weird","result":{}}` + "\n", `{"mode":"fanout","result":[1]}` + "\n"} {
		if err := os.WriteFile(bad, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := writeReport(reportConfig{Results: bad, Out: filepath.Join(dir, "x.md"), Machine: &machineInfo{}}); err == nil {
			t.Errorf("%q accepted", content)
		}
	}
	if err := writeReport(reportConfig{Results: filepath.Join(dir, "missing"), Out: filepath.Join(dir, "x.md")}); err == nil {
		t.Error("missing results accepted")
	}
}

func TestGroup(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.6: "1,234,568", -4200: "-4,200"} {
		if got := group(in); got != want {
			t.Errorf("group(%v) = %s, want %s", in, got, want)
		}
	}
}

// A run with a peer besides socket.io on Node gets a table with one column
// per peer and Roomcast's lead over each; a run without one renders as before.
func TestReportAgainstEveryPeer(t *testing.T) {
	t.Parallel()
	render := func(recs ...record) string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
		if err := writeReport(reportConfig{Results: writeResults(t, recs...), Out: out, Machine: &machineInfo{}}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if doc := render(sampleRecords()...); strings.Contains(doc, "Against every peer") {
		t.Fatalf("peer table without a second peer:\n%s", doc)
	}

	fan := func(label, server string, rate, dps, p99, ratio, us float64) record {
		return record{Label: label, Server: server, Nodes: 1, Mode: "fanout", Command: "f",
			Result: &fanoutResult{Mode: "fanout", TargetRate: rate, DeliveriesPerS: dps, DeliveryRatio: ratio,
				Latency: latencySummary{Count: 10, P99: p99}, CPU: &cpuUsage{ServerUSPerOp: us}}}
	}
	idle := func(label, server string, bytes int64) record {
		return record{Label: label, Server: server, Nodes: 1, Mode: "idle", Command: "i",
			Result: &idleResult{Mode: "idle", Connected: 5000, BytesPerConn: bytes}}
	}
	conn := func(label, server string, perS, us float64) record {
		return record{Label: label, Server: server, Nodes: 1, Mode: "connect", Command: "c",
			Result: &connectResult{Mode: "connect", Connects: 100, ConnectsPerS: perS, CPU: &cpuUsage{ServerUSPerOp: us}}}
	}
	const rc, sio, gsio = "Roomcast, 1 node", "socket.io 4.8, 1 node", "socket.io Go port (zishang520 v3.0.6), 1 node"
	doc := render(
		idle(rc, "roomcast", 24000), conn(rc, "roomcast", 5000, 200),
		fan(rc, "roomcast", 0, 1000000, 50, 1, 1), fan(rc, "roomcast", 50000, 50000, 10, 1, 10),
		idle(sio, "socketio", 16000), conn(sio, "socketio", 2500, 400),
		fan(sio, "socketio", 0, 100000, 500, 1, 9), fan(sio, "socketio", 50000, 50000, 40, 1, 12),
		idle(gsio, "gosocketio", 48000), conn(gsio, "gosocketio", 1000, 0),
		fan(gsio, "gosocketio", 0, 20000, 3000, 0.9, 40), fan(gsio, "gosocketio", 50000, 15000, 5000, 0.2, 38),
		// two nodes are not compared here
		record{Label: "Roomcast, 2 nodes + Redis", Server: "roomcast", Nodes: 2, Mode: "fanout", Command: "f",
			Result: &fanoutResult{Mode: "fanout", DeliveriesPerS: 7, DeliveryRatio: 1}},
	)
	for _, want := range []string{
		"| Figure | Roomcast | socket.io 4.8 | socket.io Go port (zishang520 v3.0.6) |\n|---|---:|---:|---:|\n",
		"| Server CPU per delivery at saturation | 1.00 µs | 9.00 µs (9.00×) | 40.00 µs (40.00×) ⚠ |",
		"| Fan-out saturation, deliveries/s | 1,000,000/s | 100,000/s (10.00×) | 20,000/s (50.00×) ⚠ |",
		"| p99 latency at 50,000 deliveries/s | 10.00 ms | 40.00 ms (4.00×) | 5000.00 ms (500.00×) ⚠ |", // ratio 0.2
		"| Server CPU per delivery at 50,000 deliveries/s | 10.00 µs | 12.00 µs (1.20×) | 38.00 µs (3.80×) ⚠ |",
		"| Idle websocket, RSS each | 24,000 B | 16,000 B (0.67×) | 48,000 B (2.00×) |",
		"| Connects/s with JWT | 5,000/s | 2,500/s (2.00×) | 1,000/s (5.00×) |",
		"| Server CPU per connect | 200.00 µs | 400.00 µs (2.00×) | – |",
		"| socket.io Go port (zishang520 v3.0.6), 1 node | saturation (0 subs, 0 pubs, 0 in flight) | 20,000 |", // fan-out table row
		"| socket.io Go port (zishang520 v3.0.6), 1 node | 5000 | 0 |",                                          // idle table row
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("document lacks %q", want)
		}
	}
	if strings.Contains(doc, "| Fan-out saturation, deliveries/s | 7/s") {
		t.Error("a 2-node run compared as 1 node")
	}
	// The Go port's figures stay out of the socket.io column of the targets.
	if !strings.Contains(doc, "| Fan-out saturation, 1 node | ≥ 4× socket.io | 1,000,000/s | 100,000/s | yes (10.00×) |") {
		t.Error("targets table changed")
	}
	if t.Failed() {
		t.Log(doc)
	}
}
