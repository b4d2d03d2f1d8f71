#!/usr/bin/env bash
# k6-smoke.sh — a short k6 run of loadtest/socketio.js against a fresh bin/gateway.
#
# Builds nothing: it needs bin/gateway (make build) and k6 (scripts/install-deps.sh).
# Starts the gateway on free loopback ports with a random JWT secret, runs the
# script for DURATION with a few VUs, and exits with k6's status (non-zero
# when a threshold fails). The gateway is killed on every exit path.
#
# Environment (all optional):
#   GATEWAY_BIN  gateway binary            (default: bin/gateway)
#   K6           k6 binary                 (default: k6 on PATH, else $(go env GOPATH)/bin/k6)
#   VUS=6 DURATION=5s ROOMS=2 RATE=10 P99_MS=250   passed to the script
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bin/gateway}"
log() { printf 'k6-smoke: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

if [[ -z "${K6:-}" ]]; then
	if command -v k6 >/dev/null 2>&1; then
		K6="$(command -v k6)"
	else
		K6="$(go env GOPATH 2>/dev/null)/bin/k6"
	fi
fi
[[ -x "$GATEWAY_BIN" ]] || die "$GATEWAY_BIN not found: run 'make build' first"
[[ -x "$K6" ]] || die "k6 not found ($K6): run scripts/install-deps.sh"

# free_port prints a loopback TCP port nobody listens on, below the
# ephemeral range so outgoing connections do not take it meanwhile.
free_port() {
	local p i
	for i in $(seq 1 200); do
		p=$((20000 + RANDOM % 12000))
		if [[ -z "$(ss -Htln "( sport = :$p )" 2>/dev/null)" ]]; then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

PORT="$(free_port)"
ADMIN="$(free_port)"
while [[ "$ADMIN" == "$PORT" ]]; do ADMIN="$(free_port)"; done
SECRET="smoke-$RANDOM$RANDOM$RANDOM"
LOGFILE="$(mktemp -t k6-smoke-gateway.XXXXXX.log)"

GW_PID=""
cleanup() {
	local rc=$?
	if [[ -n "$GW_PID" ]] && kill -0 "$GW_PID" 2>/dev/null; then
		kill -TERM "$GW_PID" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$GW_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$GW_PID" 2>/dev/null || true
		wait "$GW_PID" 2>/dev/null || true
	fi
	if ((rc != 0)) && [[ -s "$LOGFILE" ]]; then
		log "gateway log (last 20 lines):"
		tail -n 20 "$LOGFILE" >&2 || true
	fi
	rm -f "$LOGFILE"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every VU connects from 127.0.0.1: the per-IP limits and caps are off.
"$GATEWAY_BIN" --addr "127.0.0.1:$PORT" --admin-addr "127.0.0.1:$ADMIN" \
	--jwt-secret "$SECRET" --log-level warn \
	--ip-event-rate -1 --connect-rate -1 --handshake-rate -1 --max-conns-per-ip -1 >"$LOGFILE" 2>&1 &
GW_PID=$!

ready=0
for _ in $(seq 1 100); do
	kill -0 "$GW_PID" 2>/dev/null || die "gateway exited at startup"
	if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$ADMIN/healthz" 2>/dev/null; then
		ready=1
		break
	fi
	sleep 0.1
done
((ready)) || die "gateway not healthy after 10s"
log "gateway pid $GW_PID on 127.0.0.1:$PORT (admin $ADMIN)"

rc=0
TARGET="http://127.0.0.1:$PORT" JWT_SECRET="$SECRET" \
	VUS="${VUS:-6}" DURATION="${DURATION:-5s}" ROOMS="${ROOMS:-2}" RATE="${RATE:-10}" \
	P99_MS="${P99_MS:-250}" \
	timeout --kill-after=5 90 "$K6" run --quiet --no-usage-report "$ROOT/loadtest/socketio.js" || rc=$?
if ((rc != 0)); then
	log "k6 failed with status $rc (99 = a threshold failed)"
fi
exit "$rc"
