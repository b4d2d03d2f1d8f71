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

// A peer measured on one node (Centrifugo here) shows in the one-node
// table next to Roomcast and socket.io, under its label, and in the
// per-mode tables; it changes nothing in the targets table.
func TestReportOneNodePeers(t *testing.T) {
	t.Parallel()
	recs := sampleRecords()
	cf := func(mode string, res any) record {
		return record{Label: "Centrifugo v6.9.1, 1 node", Server: "centrifugo", Nodes: 1, Mode: mode, Command: "bin/loadgen " + mode + " -protocol centrifugo", Result: res}
	}
	recs = append(recs,
		record{Label: "sio connect", Server: "socketio", Nodes: 1, Mode: "connect", Command: "c",
			Result: &connectResult{Mode: "connect", Concurrency: 64, ConnectsPerS: 1500}},
		cf("idle", &idleResult{Mode: "idle", Connected: 15000, BytesPerConn: 11900}),
		cf("connect", &connectResult{Mode: "connect", Concurrency: 64, ConnectsPerS: 4200}),
		cf("fanout", &fanoutResult{Mode: "fanout", Subscribers: 1000, Publishers: 2, Inflight: 64, DeliveriesPerS: 300000,
			DeliveryRatio: 1, Latency: latencySummary{Count: 10, P99: 20}, CPU: &cpuUsage{ServerUSPerOp: 3.25}}),
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
		"### One node, every server",
		// Roomcast's records carry the label "<server> sat", "rc idle", "rc connect": one row per label.
		"| roomcast sat | – | – | 500,000/s | 2.00 | – | – |",
		"| rc idle | 6,144 B (15000 conns) | – | – | – | – | – |",
		"| Centrifugo v6.9.1, 1 node | 11,900 B (15000 conns) | 4,200/s | 300,000/s | 3.25 | – | 4.50 ms (ratio 0.9995) |",
		"| Centrifugo v6.9.1, 1 node | 100,000 deliveries/s (0 subs, 0 pubs) | 100,000 | 0.9995 |",
		"| Centrifugo v6.9.1, 1 node | 64 | 4,200 | 0 |",
		"| Centrifugo v6.9.1, 1 node | 15000 | 0 |",
		"Centrifugo has no OPEN packet",
		"Centrifugo's publishers hold no websocket",
		"| Connects with JWT | ≥ 10k/s | 3,000/s | 1,500/s | **no** |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("document lacks %q", want)
		}
	}
	i, j := strings.Index(doc, "### One node"), strings.Index(doc, "### Fan-out")
	if i < 0 || j < i {
		t.Fatalf("one-node table not between the targets and the fan-out table")
	}
	if table := doc[i:j]; strings.Contains(table, "roomcast 100k") || strings.Contains(table, "broken") { // both are 2-node records
		t.Errorf("2-node or failed records in the one-node table:\n%s", table)
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
