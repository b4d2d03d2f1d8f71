#!/usr/bin/env bash
# idle-profile.sh — what an idle websocket costs the gateway, by part.
#
# Builds a profiling gateway (-tags pprof), holds CONNS idle connections
# with loadgen (one node, no Redis, JWT auth), and while they are held
# reads VmRSS, the Go runtime's memory classes and the heap profile.
# Prints per-connection figures for docs/BENCHMARKS.md.
#   CONNS=5000 SETTLE=15s GATEWAY_FLAGS="..."   OUT=dir (kept)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONNS="${CONNS:-5000}"
SETTLE="${SETTLE:-15s}"
OUT="${OUT:-$(mktemp -d -t roomcast-idle.XXXXXX)}"
mkdir -p "$OUT"
go build -tags pprof -o "$OUT/gateway" ./cmd/gateway
go build -o bin/loadgen ./loadtest/cmd/loadgen
port=$((20000 + RANDOM % 10000)); admin=$((port + 1)); pp=$((port + 2))
ulimit -n 20000 2>/dev/null || true
# shellcheck disable=SC2086
ROOMCAST_PPROF_ADDR="127.0.0.1:$pp" "$OUT/gateway" --addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin" \
	--jwt-secret idle-secret --log-level warn --ip-event-rate -1 --connect-rate -1 --handshake-rate -1 \
	--max-conns-per-ip -1 --max-conns-per-user -1 ${GATEWAY_FLAGS:-} >"$OUT/gateway.log" 2>&1 &
gw=$!
trap 'kill $gw 2>/dev/null; wait $gw 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$admin/healthz" >/dev/null && break; sleep 0.1; done
before=$(awk '/VmRSS/{print $2}' "/proc/$gw/status")
bin/loadgen idle -jwt-secret idle-secret -target "http://127.0.0.1:$port" -conns "$CONNS" -settle "$SETTLE" -pid "$gw" >"$OUT/idle.json" &
lg=$!
# Wait until every connection is up (idle websockets have no goroutine:
# count them in the engine's gauge), then let the setup garbage go.
for _ in $(seq 600); do
	n=$(curl -fs "http://127.0.0.1:$admin/metrics" | awk '$1 ~ /^roomcast_connections({.*})?$/ {s += $2} END {print int(s)}' || true)
	((${n:-0} >= CONNS)) && break
	sleep 0.2
done
sleep 3
curl -fs "http://127.0.0.1:$pp/debug/pprof/heap?gc=1" -o "$OUT/heap.pb.gz"
curl -fs "http://127.0.0.1:$pp/debug/pprof/goroutine?debug=1" -o "$OUT/goroutines.txt"
after=$(awk '/VmRSS/{print $2}' "/proc/$gw/status")
curl -fs "http://127.0.0.1:$admin/metrics" -o "$OUT/metrics.txt" || true
wait $lg || true
echo "idle-profile: $CONNS connections, work dir $OUT"
echo "  RSS per connection: $(((after - before) * 1024 / CONNS)) B (VmRSS $before -> $after kB)"
echo "  goroutines: $(awk 'NR == 1' "$OUT/goroutines.txt")"
grep -E "^go_memstats_(stack_inuse|heap_inuse|heap_alloc|sys)_bytes " "$OUT/metrics.txt" | while read -r k v; do
	awk -v k="$k" -v v="$v" -v n="$CONNS" 'BEGIN { printf "  %s: %.0f B per connection\n", k, v / n }'
done
go tool pprof -sample_index=inuse_space -top -nodecount=25 "$OUT/gateway" "$OUT/heap.pb.gz" 2>/dev/null | sed -n '1,32p'
