package main

import (
	"fmt"
	"slices"
	"strings"
)

// renderPeers compares Roomcast on one node with every peer measured in the
// run, one column per peer server kind (socket.io on Node, the socket.io Go
// port, ...), so the table answers "ahead of every peer". It is rendered only
// when a peer other than socket.io on Node is present: a run of Roomcast and
// socket.io alone is covered by the targets table, and old result files
// render as before.
func renderPeers(b *strings.Builder, recs []*reportRecord) {
	peers := peerKinds(recs)
	if !slices.ContainsFunc(peers, func(k string) bool { return k != "socketio" }) {
		return
	}
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("### Against every peer (1 node)\n\n")
	w("Figures from the tables below. In parentheses, how far Roomcast is ahead: the peer's figure ÷\n")
	w("Roomcast's for costs (CPU, latency, memory), Roomcast's ÷ the peer's for rates; below 1 the peer is ahead.\n\n")
	w("| Figure | Roomcast |")
	for _, k := range peers {
		w(" %s |", mdCell(peerName(recs, k)))
	}
	w("\n|---|---:|%s\n", strings.Repeat("---:|", len(peers)))

	// row renders one figure: value extracts it from a record of a server
	// kind (ok false when not measured), higher tells whether more is better.
	row := func(name string, pick func(*reportRecord) bool, value func(*reportRecord) (float64, bool), format func(float64) string, higher bool) {
		get := func(server string) (v float64, ok bool, mark string) {
			r := find(recs, server, 1, pick)
			if r == nil {
				return 0, false, ""
			}
			if r.fanout != nil && r.fanout.DeliveryRatio < 0.999 {
				mark = " ⚠"
			}
			v, ok = value(r)
			return v, ok, mark
		}
		rc, rcOK, rcMark := get("roomcast")
		w("| %s | %s%s |", name, cellOrDash(rc, rcOK, format), rcMark)
		for _, k := range peers {
			v, ok, mark := get(k)
			cell := cellOrDash(v, ok, format)
			if ok && rcOK && v > 0 && rc > 0 {
				ratio := v / rc
				if higher {
					ratio = rc / v
				}
				cell += fmt.Sprintf(" (%.2f×)", ratio)
			}
			w(" %s%s |", cell, mark)
		}
		w("\n")
	}
	perS := func(v float64) string { return group(v) + "/s" }
	us := func(v float64) string { return fmt.Sprintf("%.2f µs", v) }
	ms := func(v float64) string { return fmt.Sprintf("%.2f ms", v) }
	bytes := func(v float64) string { return group(v) + " B" }
	fanoutCPU := func(r *reportRecord) (float64, bool) {
		return cpuValue(r.fanout.CPU)
	}

	row("Fan-out saturation, deliveries/s", isSaturation,
		func(r *reportRecord) (float64, bool) { return r.fanout.DeliveriesPerS, true }, perS, true)
	row("Server CPU per delivery at saturation", isSaturation, fanoutCPU, us, false)
	for _, rate := range fixedRates(recs) {
		at := func(r *reportRecord) bool { return r.fanout != nil && r.fanout.TargetRate == rate }
		row(fmt.Sprintf("p99 latency at %s deliveries/s", group(rate)), at,
			func(r *reportRecord) (float64, bool) { return r.fanout.Latency.P99, r.fanout.Latency.Count > 0 }, ms, false)
		row(fmt.Sprintf("Server CPU per delivery at %s deliveries/s", group(rate)), at, fanoutCPU, us, false)
	}
	row("Idle websocket, RSS each", func(r *reportRecord) bool { return r.idle != nil },
		func(r *reportRecord) (float64, bool) { return float64(r.idle.BytesPerConn), r.idle.BytesPerConn > 0 }, bytes, false)
	conn := func(r *reportRecord) bool { return r.connect != nil }
	row("Connects/s with JWT", conn,
		func(r *reportRecord) (float64, bool) { return r.connect.ConnectsPerS, r.connect.Connects > 0 }, perS, true)
	row("Server CPU per connect", conn, func(r *reportRecord) (float64, bool) { return cpuValue(r.connect.CPU) }, us, false)
	w("\n⚠: the run's delivery ratio was below 0.999 (the server fell behind the load; see the fan-out table).\n\n")
}

// peerKinds lists the server kinds other than Roomcast in the order they
// first appear.
func peerKinds(recs []*reportRecord) []string {
	var kinds []string
	for _, r := range recs {
		if r.Server != "" && r.Server != "roomcast" && !slices.Contains(kinds, r.Server) {
			kinds = append(kinds, r.Server)
		}
	}
	return kinds
}

// peerName is a peer's column title: the label of its first 1-node record
// without the node count ("socket.io 4.8, 1 node" -> "socket.io 4.8").
func peerName(recs []*reportRecord, kind string) string {
	for _, r := range recs {
		if r.Server == kind && r.Nodes == 1 && r.Label != "" {
			return strings.TrimSuffix(r.Label, ", 1 node")
		}
	}
	return kind
}

// fixedRates lists the fixed delivery rates of the 1-node fan-out runs, in
// the order they first appear.
func fixedRates(recs []*reportRecord) []float64 {
	var rates []float64
	for _, r := range recs {
		if r.Nodes == 1 && r.fanout != nil && r.fanout.TargetRate > 0 && !slices.Contains(rates, r.fanout.TargetRate) {
			rates = append(rates, r.fanout.TargetRate)
		}
	}
	return rates
}

func cpuValue(u *cpuUsage) (float64, bool) {
	if u == nil || u.ServerUSPerOp <= 0 {
		return 0, false
	}
	return u.ServerUSPerOp, true
}

func cellOrDash(v float64, ok bool, format func(float64) string) string {
	if !ok {
		return "–"
	}
	return format(v)
}
