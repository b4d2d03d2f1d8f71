package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The hand-written part of docs/BENCHMARKS.md lives between these markers;
// report keeps it byte for byte and regenerates everything else.
const (
	handBegin = "<!-- BEGIN HAND-WRITTEN: kept as is by scripts/bench.sh -->"
	handEnd   = "<!-- END HAND-WRITTEN -->"
)

const defaultHandSection = `## Micro-benchmarks

_Hand-written: the lead records ` + "`go test -bench`" + ` figures here; scripts/bench.sh keeps
everything between the markers and regenerates the rest of this file._
`

// reportConfig configures report.
type reportConfig struct {
	// Results is a file of result lines written by the measuring modes.
	Results string
	// Out is the markdown file to rewrite.
	Out string
	// Command is the command that produced the results.
	Command string
	// NodeVersion is shown in the machine line; empty runs `node --version`.
	NodeVersion string
	// Now is the date shown; zero means time.Now.
	Now time.Time
	// Machine overrides the machine description (tests); nil reads /proc.
	Machine *machineInfo
}

// reportRecord is a decoded result line.
type reportRecord struct {
	record
	Result json.RawMessage `json:"result"`

	fanout  *fanoutResult
	idle    *idleResult
	connect *connectResult
	durable *durableResult
}

// machineInfo describes where the benchmark ran.
type machineInfo struct {
	CPUs     int
	CPUModel string
	MemTotal string
	Kernel   string
	Go       string
	Node     string
	Redis    string
}

// writeReport renders cfg.Results into cfg.Out, keeping the hand-written
// section of an existing cfg.Out.
func writeReport(cfg reportConfig) error {
	if cfg.Results == "" || cfg.Out == "" {
		return fmt.Errorf("%w: report needs -results and -out", errUsage)
	}
	recs, err := readRecords(cfg.Results)
	if err != nil {
		return err
	}
	hand := defaultHandSection
	if old, err := os.ReadFile(cfg.Out); err == nil {
		if h, ok := handSection(string(old)); ok {
			hand = h
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	m := cfg.Machine
	if m == nil {
		m = readMachine(cfg.NodeVersion)
	}
	now := cfg.Now
	if now.IsZero() {
		now = time.Now()
	}
	doc := renderReport(recs, hand, *m, now, cfg.Command)
	tmp := cfg.Out + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, cfg.Out)
}

// readRecords decodes a file of result lines; blank lines are skipped.
func readRecords(name string) ([]*reportRecord, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var recs []*reportRecord
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		r := &reportRecord{}
		if err := json.Unmarshal(line, r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if len(r.Result) > 0 && string(r.Result) != "null" {
			var dst any
			switch r.Mode {
			case "fanout":
				r.fanout = &fanoutResult{}
				dst = r.fanout
			case "idle":
				r.idle = &idleResult{}
				dst = r.idle
			case "connect":
				r.connect = &connectResult{}
				dst = r.connect
			case "durable":
				r.durable = &durableResult{}
				dst = r.durable
			default:
				return nil, fmt.Errorf("%s:%d: unknown mode %q", name, n, r.Mode)
			}
			if err := json.Unmarshal(r.Result, dst); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, n, err)
			}
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// handSection returns the text between the markers, markers included.
func handSection(doc string) (string, bool) {
	i := strings.Index(doc, handBegin)
	if i < 0 {
		return "", false
	}
	j := strings.Index(doc[i:], handEnd)
	if j < 0 {
		return "", false
	}
	inner := doc[i+len(handBegin) : i+j]
	return strings.TrimPrefix(inner, "\n"), true
}

func readMachine(nodeVersion string) *machineInfo {
	m := &machineInfo{CPUs: runtime.NumCPU(), Go: runtime.Version(), Node: nodeVersion}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(v)
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if m.Node == "" {
		if out, err := exec.Command("node", "--version").Output(); err == nil {
			m.Node = strings.TrimSpace(string(out))
		}
	}
	if out, err := exec.Command("redis-server", "--version").Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if v, ok := strings.CutPrefix(f, "v="); ok {
				m.Redis = v
			}
		}
	}
	return m
}

// renderReport builds the whole document.
func renderReport(recs []*reportRecord, hand string, m machineInfo, now time.Time, command string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Benchmarks\n\n")
	w("Side-by-side figures of Roomcast and socket.io %s on Node, driven by the same load generator\n", "4.8")
	w("(`loadtest/cmd/loadgen`) on the same machine in one run. The generated part below is rewritten by\n")
	w("`scripts/bench.sh` (`make bench`); only the hand-written section between the markers is kept.\n\n")
	if hasServer(recs, "centrifugo") {
		w("Centrifugo is measured alongside on one node, speaking its own protocol (`loadgen -protocol centrifugo`).\n\n")
	}
	w("%s\n%s", handBegin, hand)
	if !strings.HasSuffix(hand, "\n") {
		w("\n")
	}
	w("%s\n\n", handEnd)

	w("## Side-by-side run\n\n")
	w("- Date: %s\n", now.UTC().Format("2006-01-02 15:04 MST"))
	w("- Machine: %d CPUs (`nproc`), %s, %s RAM, Linux %s\n", m.CPUs, orDash(m.CPUModel), orDash(m.MemTotal), orDash(m.Kernel))
	w("- Software: %s, Node %s, redis-server %s\n", orDash(m.Go), orDash(m.Node), orDash(m.Redis))
	if command != "" {
		w("- Produced by: `%s`\n", mdCode(command))
	}
	w("- Load generator and servers share the machine's CPUs (loopback only), so every figure is a\n")
	w("  lower bound for the server alone; every server is measured the same way.\n")
	if lo, hi, ok := loadRange(recs); ok {
		w("- 1-minute load average when the runs started: %.2f to %.2f (anything else running skews the figures)\n", lo, hi)
	}
	w("\n")

	renderTargets(&b, recs)
	renderPeers(&b, recs)
	renderFanout(&b, recs)
	renderIdle(&b, recs)
	renderConnect(&b, recs)
	renderDurable(&b, recs)
	renderSetups(&b, recs)
	return b.String()
}

// loadRange is the range of the records' start load averages.
func loadRange(recs []*reportRecord) (lo, hi float64, ok bool) {
	for _, r := range recs {
		if r.Load1 <= 0 {
			continue
		}
		if !ok || r.Load1 < lo {
			lo = r.Load1
		}
		if !ok || r.Load1 > hi {
			hi = r.Load1
		}
		ok = true
	}
	return lo, hi, ok
}

func find(recs []*reportRecord, server string, nodes int, pick func(*reportRecord) bool) *reportRecord {
	for _, r := range recs {
		if r.Server == server && (nodes == 0 || r.Nodes == nodes) && pick(r) {
			return r
		}
	}
	return nil
}

// hasServer reports whether any record is of the server kind.
func hasServer(recs []*reportRecord, server string) bool {
	return find(recs, server, 0, func(*reportRecord) bool { return true }) != nil
}

func isSaturation(r *reportRecord) bool { return r.fanout != nil && r.fanout.TargetRate == 0 }

func renderTargets(b *strings.Builder, recs []*reportRecord) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("### Against the targets (SPEC §7)\n\n")
	w("| Target | Goal | Roomcast | socket.io | Met |\n|---|---|---:|---:|:---:|\n")
	for _, nodes := range []int{1, 2} {
		rc := find(recs, "roomcast", nodes, isSaturation)
		si := find(recs, "socketio", nodes, isSaturation)
		var rcv, siv float64
		if rc != nil {
			rcv = rc.fanout.DeliveriesPerS
		}
		if si != nil {
			siv = si.fanout.DeliveriesPerS
		}
		met := "n/a"
		if rcv > 0 && siv > 0 {
			met = fmt.Sprintf("%s (%.2f×)", yesNo(rcv >= 4*siv), rcv/siv)
		}
		w("| Fan-out saturation, %d node%s | ≥ 4× socket.io | %s | %s | %s |\n", nodes, plural(nodes), num(rcv, "/s"), num(siv, "/s"), met)
	}
	at100k := func(r *reportRecord) bool { return r.fanout != nil && r.fanout.TargetRate == 100000 }
	rc, si := find(recs, "roomcast", 2, at100k), find(recs, "socketio", 2, at100k)
	met := "n/a"
	if rc != nil && rc.fanout.Latency.Count > 0 {
		met = yesNo(rc.fanout.Latency.P99 <= 10 && rc.fanout.DeliveryRatio >= 0.999)
	}
	w("| p99 latency at 100k deliveries/s, 2 nodes | ≤ 10 ms | %s | %s | %s |\n", p99(rc), p99(si), met)
	idle := func(r *reportRecord) bool { return r.idle != nil }
	rc, si = find(recs, "roomcast", 0, idle), find(recs, "socketio", 0, idle)
	met = "n/a"
	if rc != nil && rc.idle.BytesPerConn > 0 {
		met = yesNo(rc.idle.BytesPerConn <= 8192 && rc.idle.Connected >= 15000)
	}
	w("| Idle WebSocket memory at 15k connections | ≤ 8 KB RSS each | %s | %s | %s |\n", perConn(rc), perConn(si), met)
	conn := func(r *reportRecord) bool { return r.connect != nil }
	rc, si = find(recs, "roomcast", 0, conn), find(recs, "socketio", 0, conn)
	met = "n/a"
	var rcc, sic float64
	if rc != nil {
		rcc = rc.connect.ConnectsPerS
		met = yesNo(rcc >= 10000 && rc.connect.Failed == 0)
	}
	if si != nil {
		sic = si.connect.ConnectsPerS
	}
	w("| Connects with JWT | ≥ 10k/s | %s | %s | %s |\n", num(rcc, "/s"), num(sic, "/s"), met)
	dur := func(r *reportRecord) bool { return r.durable != nil }
	rc = find(recs, "roomcast", 0, dur)
	met = "n/a"
	var rcd float64
	if rc != nil {
		rcd = rc.durable.StoredPerSPerNode
		met = yesNo(rcd >= 50000 && rc.durable.Lost == 0)
	}
	w("| Durable user messages per node | ≥ 50k/s | %s | – (no durable queue) | %s |\n", num(rcd, "/s"), met)
	// Server CPU per delivery at saturation: context for the rows above,
	// and much less disturbed by other work on the machine than rates.
	for _, nodes := range []int{1, 2} {
		rc, si := find(recs, "roomcast", nodes, isSaturation), find(recs, "socketio", nodes, isSaturation)
		var rcu, siu float64
		if rc != nil && rc.fanout.CPU != nil {
			rcu = rc.fanout.CPU.ServerUSPerOp
		}
		if si != nil && si.fanout.CPU != nil {
			siu = si.fanout.CPU.ServerUSPerOp
		}
		if rcu == 0 && siu == 0 {
			continue
		}
		ratio := "–"
		if rcu > 0 && siu > 0 {
			ratio = fmt.Sprintf("socket.io ÷ Roomcast = %.2f", siu/rcu)
		}
		w("| _Context:_ server CPU per delivery at saturation, %d node%s | – | %s | %s | %s |\n", nodes, plural(nodes), usOrDash(rcu), usOrDash(siu), ratio)
	}
	w("\n")
}

func usOrDash(v float64) string {
	if v <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f µs", v)
}

// cpuPerOp formats server CPU per operation, "–" when not measured.
func cpuPerOp(u *cpuUsage) string {
	if u == nil || u.ServerUSPerOp <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", u.ServerUSPerOp)
}

func p99(r *reportRecord) string {
	if r == nil || r.fanout == nil || r.fanout.Latency.Count == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f ms (ratio %.4f)", r.fanout.Latency.P99, r.fanout.DeliveryRatio)
}

func perConn(r *reportRecord) string {
	if r == nil || r.idle == nil || r.idle.BytesPerConn == 0 {
		return "–"
	}
	return fmt.Sprintf("%s B (%d conns)", group(float64(r.idle.BytesPerConn)), r.idle.Connected)
}

func renderFanout(b *strings.Builder, recs []*reportRecord) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("### Fan-out (1 room, subscribers spread over the nodes, publishers not in the room)\n\n")
	w("Deliveries/s counts frames received by subscribers during the measurement window; the ratio is\n")
	w("deliveries of the window's publishes over publishes × subscribers (1 = nothing lost); latency is\n")
	w("publish-to-receive on one clock. At saturation a closed loop keeps a bounded number of publishes in\n")
	w("flight, so latency there is queueing at full load, not the latency at a given rate. A ratio below 1\n")
	w("with latencies in seconds means the server fell behind the offered rate and had not delivered the\n")
	w("backlog when the drain bound (3 s) ended; server-side disconnects are flagged separately.\n")
	if hasServer(recs, "centrifugo") {
		w("Centrifugo's publishers hold no websocket: they post to its HTTP API (`POST /api/publish`), one\n")
		w("request in flight per worker, a new worker whenever none is idle; as with socket.io, no publisher\n")
		w("is a subscriber.\n")
	}
	w("\n")
	w("| Setup | Load | Deliveries/s | Ratio | p50 ms | p90 ms | p99 ms | max ms | Publishes/s | Server CPU µs/delivery | Command |\n")
	w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range recs {
		if r.Mode != "fanout" {
			continue
		}
		if r.fanout == nil {
			w("| %s | – | failed: %s | | | | | | | | `%s` |\n", mdCell(r.Label), mdCell(r.Error), mdCode(r.Command))
			continue
		}
		f := r.fanout
		load := fmt.Sprintf("saturation (%d subs, %d pubs, %d in flight)", f.Subscribers, f.Publishers, f.Inflight)
		if f.TargetRate > 0 {
			load = fmt.Sprintf("%s deliveries/s (%d subs, %d pubs)", group(f.TargetRate), f.Subscribers, f.Publishers)
		}
		note := ""
		if r.Error != "" {
			note = " ⚠ " + mdCell(r.Error)
		}
		if f.Disconnects > 0 {
			note += fmt.Sprintf(" ⚠ %d disconnects", f.Disconnects)
		}
		w("| %s | %s | %s%s | %.4f | %.2f | %.2f | %.2f | %.2f | %s | %s | `%s` |\n",
			mdCell(r.Label), load, group(f.DeliveriesPerS), note, f.DeliveryRatio,
			f.Latency.P50, f.Latency.P90, f.Latency.P99, f.Latency.Max, group(f.PublishesPerS),
			cpuPerOp(f.CPU), mdCode(r.Command))
	}
	w("\n")
}

func renderIdle(b *strings.Builder, recs []*reportRecord) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("### Idle connections (server VmRSS before and after opening them)\n\n")
	w("| Setup | Connected | Failed | RSS before | RSS after | Bytes per connection | Connects/s while opening | Command |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range recs {
		if r.Mode != "idle" {
			continue
		}
		if r.idle == nil {
			w("| %s | failed: %s | | | | | | `%s` |\n", mdCell(r.Label), mdCell(r.Error), mdCode(r.Command))
			continue
		}
		i := r.idle
		w("| %s | %d | %d | %s KB | %s KB | %s | %s | `%s` |\n", mdCell(r.Label), i.Connected, i.Failed,
			group(float64(i.RSSBeforeKB)), group(float64(i.RSSAfterKB)), group(float64(i.BytesPerConn)),
			group(i.ConnectsPerS), mdCode(r.Command))
	}
	w("\n")
}

func renderConnect(b *strings.Builder, recs []*reportRecord) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("### Connects with JWT (websocket + OPEN + CONNECT with token + CONNECT reply, then close)\n\n")
	if hasServer(recs, "centrifugo") {
		w("Centrifugo has no OPEN packet: websocket, then its connect command with the token and the reply.\n\n")
	}
	w("| Setup | Concurrency | Connects/s | Failed | p50 ms | p99 ms | Server CPU µs/connect | Command |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range recs {
		if r.Mode != "connect" {
			continue
		}
		if r.connect == nil {
			w("| %s | failed: %s | | | | | | `%s` |\n", mdCell(r.Label), mdCell(r.Error), mdCode(r.Command))
			continue
		}
		c := r.connect
		w("| %s | %d | %s | %d | %.2f | %.2f | %s | `%s` |\n", mdCell(r.Label), c.Concurrency, group(c.ConnectsPerS),
			c.Failed, c.Latency.P50, c.Latency.P99, cpuPerOp(c.CPU), mdCode(r.Command))
	}
	w("\n")
}

func renderDurable(b *strings.Builder, recs []*reportRecord) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	has := false
	for _, r := range recs {
		has = has || r.Mode == "durable"
	}
	if !has {
		return
	}
	w("### Durable delivery (per-user queues through `POST /api/v1/emit`)\n\n")
	w("Publishers post emits to batches of users in a closed loop (one emit in flight each); every user has one\n")
	w("connected socket. Stored counts the user-messages whose entry ID the API returned, per second of\n")
	w("publishing, and per node the emits went to; deliveries/s counts the events the sockets received meanwhile.\n")
	w("Lost compares, user by user after a drain, the IDs stored with the IDs received (each event carries its\n")
	w("ID as its last argument). Store latency is the API round trip; delivery latency runs from the time in\n")
	w("the event's arguments (taken before the emit was posted) to the socket's read. Replay: a backlog appended\n")
	w("to a fresh user after a marker message, then a new connection with `auth.offset` = the marker, timed from\n")
	w("its CONNECT to the CONNECT reply, which comes after exactly the backlog, in order. Redis bytes per message\n")
	w("is the growth of the replay user's stream (`MEMORY USAGE`, every element) over the backlog; runs before\n")
	w("2026-11-29 14:00 measured the whole dataset's growth, which other keys' writes and expiries skewed.\n\n")
	w("| Setup | Load | Stored user-msgs/s | Per node | Deliveries/s | Lost | Store p50 / p99 ms | Delivery p50 / p99 ms | Replay | Replay msgs/s | Redis B/msg | Server CPU µs/msg | Note | Command |\n")
	w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, r := range recs {
		if r.Mode != "durable" {
			continue
		}
		if r.durable == nil {
			w("| %s | – | failed: %s | | | | | | | | | | %s | `%s` |\n", mdCell(r.Label), mdCell(r.Error), mdCell(r.Note), mdCode(r.Command))
			continue
		}
		d := r.durable
		load := fmt.Sprintf("%d users, %d pubs × %d users/emit", d.Subscribers, d.Publishers, d.Batch)
		note := mdCell(r.Note)
		if r.Error != "" {
			note += " ⚠ " + mdCell(r.Error)
		}
		if d.Disconnects > 0 {
			note += fmt.Sprintf(" ⚠ %d disconnects", d.Disconnects)
		}
		replay, replayRate := "–", "–"
		if rp := d.Replay; rp != nil && rp.ReplayMS > 0 {
			replay = fmt.Sprintf("%s msgs in %.1f ms", group(float64(rp.Replayed)), rp.ReplayMS)
			if !rp.InOrder {
				replay += " ⚠"
			}
			replayRate = group(rp.ReplayPerS)
		}
		mem := "–"
		if d.Memory != nil && d.Memory.UsedAfter > 0 {
			mem = fmt.Sprintf("%.0f", d.Memory.BytesPerMessage)
		}
		w("| %s | %s | %s | %s | %s | %s of %s | %.2f / %.2f | %.2f / %.2f | %s | %s | %s | %s | %s | `%s` |\n",
			mdCell(r.Label), load, group(d.StoredPerS), group(d.StoredPerSPerNode), group(d.DeliveriesPerS),
			group(float64(d.Lost)), group(float64(d.Stored)),
			d.StoreLatency.P50, d.StoreLatency.P99, d.DeliveryLatency.P50, d.DeliveryLatency.P99,
			replay, replayRate, mem, cpuPerOp(d.CPU), strings.TrimSpace(note), mdCode(r.Command))
	}
	w("\n")
}

func renderSetups(b *strings.Builder, recs []*reportRecord) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	seen := map[string]bool{}
	var rows [][2]string
	for _, r := range recs {
		if r.Setup == "" || seen[r.Label+"\x00"+r.Setup] {
			continue
		}
		seen[r.Label+"\x00"+r.Setup] = true
		rows = append(rows, [2]string{r.Label, r.Setup})
	}
	if len(rows) == 0 {
		return
	}
	w("### How each setup was started\n\n| Setup | Server command(s) |\n|---|---|\n")
	for _, row := range rows {
		w("| %s | `%s` |\n", mdCell(row[0]), mdCode(row[1]))
	}
	w("\n")
}

// mdCell makes text safe inside a table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// mdCode makes text safe inside a code span in a table cell.
func mdCode(s string) string { return strings.ReplaceAll(mdCell(s), "`", "'") }

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func num(v float64, unit string) string {
	if v == 0 {
		return "–"
	}
	return group(v) + unit
}

// group formats a number with thousands separators, no decimals.
func group(v float64) string {
	neg := v < 0
	if neg {
		v = -v
	}
	s := strconv.FormatFloat(v, 'f', 0, 64)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
