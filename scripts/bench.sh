#!/usr/bin/env bash
# bench.sh — side-by-side benchmarks of Roomcast and its peers on this machine: socket.io 4.8
# (Node), the socket.io Go port (github.com/zishang520/socket.io) and Centrifugo.
#
# One run, the same load generator (loadtest/cmd/loadgen), loopback only:
#   (a) rc1   Roomcast, 1 node                       bin/gateway
#   (b) sio1  socket.io, 1 node                      node loadtest/peer/server.js
#   (c) rc2   Roomcast, 2 nodes + Redis              bin/gateway --redis ... (own redis-server)
#   (d) sio2  socket.io, 2 nodes + redis-adapter     REDIS_URL=... node loadtest/peer/server.js
#   (e) rcd   Roomcast durable, 1 node + Redis       bin/gateway --redis ... --api-token ... (own redis-server)
#   (f) gsio1 socket.io Go port, 1 node              bin/peer-go (built from loadtest/peer-go, its own module)
#   (g) cf1   Centrifugo v6.9.1, 1 node              bin/peers/centrifugo -c loadtest/centrifugo/config.json
#             (its own JSON protocol over websocket, publishes through its HTTP API:
#             loadgen -protocol centrifugo; built by `go install` on first use, then reused)
# Measures fan-out at saturation and at fixed delivery rates (a-d, f, g), idle RSS per
# connection and connects/s with a JWT (a, b, f, g), durable delivery through the HTTP
# API (e: stored and delivered user-messages/s with a loss check, replay of a
# backlog on reconnect, Redis bytes per queued message; socket.io has no
# counterpart), then rewrites docs/BENCHMARKS.md (keeping its hand-written
# section) through `loadgen report`.
#
# Needs bin/gateway (make build), node with the repo's node_modules (npm ci),
# redis-server; builds bin/loadgen itself, bin/peer-go for gsio1 (its first
# build downloads the port's module), and for cf1 bin/peers/centrifugo (go install
# github.com/centrifugal/centrifugo/v6@v6.9.1 through the Go module proxy; kept and
# reused while `go version -m` says it is v6.9.1). Every process it starts is killed
# on exit; each step is bounded and the run stops starting steps after BENCH_TIMEOUT.
#
# Environment (all optional):
#   ONLY="rc1 sio1 gsio1 cf1 rc2 sio2 rcd"   setups to run      SUBS=1000 PUBS=2 INFLIGHT=64
#   DURABLE_PUBS=8 DURABLE_BATCH=100 DURABLE_BACKLOG=10000   (rcd; SUBS users, DURATION)
#   RATES="50000 100000"       fixed deliveries/s     WARMUP=2s DURATION=10s
#   IDLE_CONNS=15000 CONNECT_DURATION=10s CONNECT_CONCURRENCY=64
#   BENCH_TIMEOUT=1500 (seconds)   BENCH_OUT=docs/BENCHMARKS.md   KEEP=1 keeps the work dir
#   PERF=1   perf-record the server during each saturation run (reports in the work dir)
#   QUIET_WAIT=0 QUIET_BUSY=15   on a shared machine, wait up to QUIET_WAIT s before each step
#            until other processes use less than QUIET_BUSY % of the CPUs
#   GATEWAY_BIN NODE REDIS_SERVER CENTRIFUGO_BIN   binaries to use
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bin/gateway}"
NODE="${NODE:-node}"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
LOADGEN="bin/loadgen" # relative: the script runs from the repository root, and commands are recorded as run
PEER="$ROOT/loadtest/peer/server.js"
BENCH_OUT="${BENCH_OUT:-$ROOT/docs/BENCHMARKS.md}"
ONLY="${ONLY:-rc1 sio1 gsio1 cf1 rc2 sio2 rcd}"
SUBS="${SUBS:-1000}"
PUBS="${PUBS:-2}"
INFLIGHT="${INFLIGHT:-64}"
RATES="${RATES:-50000 100000}"
WARMUP="${WARMUP:-2s}"
DURATION="${DURATION:-10s}"
IDLE_CONNS="${IDLE_CONNS:-15000}"
CONNECT_DURATION="${CONNECT_DURATION:-10s}"
CONNECT_CONCURRENCY="${CONNECT_CONCURRENCY:-64}"
DURABLE_PUBS="${DURABLE_PUBS:-8}"
DURABLE_BATCH="${DURABLE_BATCH:-100}"
DURABLE_BACKLOG="${DURABLE_BACKLOG:-10000}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-1500}"
SECRET="bench-secret"
API_TOKEN="bench-api-token"
CENTRIFUGO_VERSION="v6.9.1"
CENTRIFUGO_BIN="${CENTRIFUGO_BIN:-$ROOT/bin/peers/centrifugo}"
CENTRIFUGO_CONFIG="$ROOT/loadtest/centrifugo/config.json"

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

[[ -x "$GATEWAY_BIN" ]] || die "$GATEWAY_BIN not found: run 'make build' first"
command -v "$NODE" >/dev/null || die "node not found"
[[ -d "$ROOT/node_modules/socket.io" ]] || die "node_modules/socket.io missing: run 'npm ci'"
command -v "$REDIS_SERVER" >/dev/null || die "redis-server not found: run scripts/install-deps.sh"
command -v curl >/dev/null || die "curl not found"

WORK="$(mktemp -d -t roomcast-bench.XXXXXX)"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
PIDS=()

stop_all() {
	if ((${#PIDS[@]})); then
		stop_pids "${PIDS[@]}"
	fi
	PIDS=()
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_all
	if [[ "${KEEP:-0}" == 1 || $rc != 0 ]]; then
		log "work dir kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ulimit -n 20000 2>/dev/null || true
(($(ulimit -n) >= IDLE_CONNS + 100)) || log "warning: ulimit -n is $(ulimit -n), below $IDLE_CONNS connections"

SETUP_CMDS=""   # how the current setup's servers were started (for the report)
LAST_PID=""     # pid of the most recently started server
NODE_URLS=()    # base URLs of the current setup's nodes
SERVER_PIDS=()  # the current setup's server processes (nodes and Redis), for CPU accounting

start_redis() {
	local port
	free_port port
	"$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
		--daemonize no --logfile "$WORK/redis-$port.log" &
	PIDS+=($!)
	SERVER_PIDS+=($!)
	wait_until 10 redis-cli -p "$port" ping || die "redis-server on $port did not start"
	SETUP_CMDS+="redis-server --port $port --save '' --appendonly no; "
	REDIS_URL="redis://127.0.0.1:$port"
}

# start_gateway NAME [EXTRA FLAGS...]
start_gateway() {
	local name="$1" port admin
	shift
	free_port port
	free_port admin
	local args=(--addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin" --jwt-secret "$SECRET"
		--event-rate 1000000 --log-level warn --node-id "$name" "$@")
	# Every load client comes from 127.0.0.1: the per-IP limits and caps
	# (issue 10) are off, as is the per-user cap (loadgen reuses user ids).
	local lim
	for lim in ip-event-rate connect-rate handshake-rate max-conns-per-ip max-conns-per-user; do
		if gateway_has "$lim"; then args+=("--$lim" -1); fi
	done
	"$GATEWAY_BIN" "${args[@]}" >"$WORK/$name.log" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
	SERVER_PIDS+=("$LAST_PID")
	if ! wait_until 15 curl -fsS --max-time 1 "http://127.0.0.1:$admin/healthz"; then
		tail -n 20 "$WORK/$name.log" >&2 || true
		die "gateway $name did not become healthy"
	fi
	SETUP_CMDS+="bin/gateway $(printf '%q ' "${args[@]}")"
	SETUP_CMDS="${SETUP_CMDS% }; "
	NODE_URLS+=("http://127.0.0.1:$port")
}

# start_peer NAME [REDIS_URL]
start_peer() {
	local name="$1" redis="${2:-}" port
	free_port port
	PORT="$port" JWT_SECRET="$SECRET" REDIS_URL="$redis" "$NODE" "$PEER" >"$WORK/$name.log" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
	SERVER_PIDS+=("$LAST_PID")
	if ! wait_until 15 grep -q '^listening ' "$WORK/$name.log"; then
		tail -n 20 "$WORK/$name.log" >&2 || true
		die "socket.io peer $name did not start"
	fi
	SETUP_CMDS+="PORT=$port JWT_SECRET=$SECRET${redis:+ REDIS_URL=$redis} node loadtest/peer/server.js; "
	NODE_URLS+=("http://127.0.0.1:$port")
}

# The socket.io Go port peer (setup gsio1): its own module, built on first use.
PEER_GO_DIR="$ROOT/loadtest/peer-go"
PEER_GO_BIN="$ROOT/bin/peer-go"
PEER_GO_VERSION="$(awk '$1 == "github.com/zishang520/socket.io/servers/socket/v3" { print $2 }' "$PEER_GO_DIR/go.mod")"
PEER_GO_BUILT=0

# start_gopeer NAME: loadtest/peer-go on a free port (single node: no Redis).
start_gopeer() {
	local name="$1" port
	if ((!PEER_GO_BUILT)); then
		log "building bin/peer-go (socket.io Go port $PEER_GO_VERSION)"
		(cd "$PEER_GO_DIR" && go build -o "$PEER_GO_BIN" .) || die "go build in loadtest/peer-go failed"
		PEER_GO_BUILT=1
	fi
	free_port port
	PORT="$port" JWT_SECRET="$SECRET" "$PEER_GO_BIN" >"$WORK/$name.log" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
	SERVER_PIDS+=("$LAST_PID")
	if ! wait_until 15 grep -q '^listening ' "$WORK/$name.log"; then
		tail -n 20 "$WORK/$name.log" >&2 || true
		die "socket.io Go port peer $name did not start"
	fi
	SETUP_CMDS+="(cd loadtest/peer-go && go build -o ../../bin/peer-go .); PORT=$port JWT_SECRET=$SECRET bin/peer-go; "
	NODE_URLS+=("http://127.0.0.1:$port")
}

# ensure_centrifugo: builds $CENTRIFUGO_BIN with go install unless it is
# already there and of $CENTRIFUGO_VERSION (the module version go records in
# the binary; `centrifugo version` says 0.0.0 for a go install build).
ensure_centrifugo() {
	local have
	have="$(go version -m "$CENTRIFUGO_BIN" 2>/dev/null | awk '$1 == "mod" { print $3 }')" || true
	[[ "$have" == "$CENTRIFUGO_VERSION" ]] && return 0
	[[ "$(basename "$CENTRIFUGO_BIN")" == centrifugo ]] ||
		die "CENTRIFUGO_BIN=$CENTRIFUGO_BIN is not Centrifugo $CENTRIFUGO_VERSION (and go install names its binary centrifugo)"
	log "building Centrifugo $CENTRIFUGO_VERSION into $(dirname "$CENTRIFUGO_BIN") (go install; takes minutes once)"
	mkdir -p "$(dirname "$CENTRIFUGO_BIN")"
	GOBIN="$(dirname "$CENTRIFUGO_BIN")" go install "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION" ||
		die "go install of Centrifugo $CENTRIFUGO_VERSION failed"
}

# start_centrifugo NAME: one Centrifugo node, memory engine. The JWT secret
# and the HTTP API key come from the environment (Centrifugo maps
# CENTRIFUGO_<SECTION>_<KEY> onto its config), the rest from the repo's config.
start_centrifugo() {
	local name="$1" port
	free_port port
	CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY="$SECRET" CENTRIFUGO_HTTP_API_KEY="$API_TOKEN" \
		"$CENTRIFUGO_BIN" -c "$CENTRIFUGO_CONFIG" --http_server.address 127.0.0.1 --http_server.port "$port" \
		>"$WORK/$name.log" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
	SERVER_PIDS+=("$LAST_PID")
	if ! wait_until 15 curl -fsS --max-time 1 "http://127.0.0.1:$port/health"; then
		tail -n 20 "$WORK/$name.log" >&2 || true
		die "Centrifugo $name did not become healthy"
	fi
	SETUP_CMDS+="CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY=$SECRET CENTRIFUGO_HTTP_API_KEY=$API_TOKEN ${CENTRIFUGO_BIN#"$ROOT"/} -c ${CENTRIFUGO_CONFIG#"$ROOT"/} --http_server.address 127.0.0.1 --http_server.port $port; "
	NODE_URLS+=("http://127.0.0.1:$port")
}

# gateway_has FLAG: bin/gateway --help lists --FLAG.
# Not grep -q: its early exit kills the writer (SIGPIPE) and, with pipefail,
# fails the pipeline, so a flag present in a long help text read as absent.
gateway_has() { "$GATEWAY_BIN" --help 2>&1 | grep -E "^[[:space:]]+--?$1([[:space:]]|\$)" >/dev/null; }

# redis_flags: sets REDIS_FLAGS to the gateway flags of the Redis setups.
redis_flags() {
	REDIS_FLAGS=(--redis "$REDIS_URL")
	if gateway_has redis-prefix; then REDIS_FLAGS+=(--redis-prefix bench); fi
	if gateway_has adapter; then REDIS_FLAGS+=(--adapter classic); fi
	if gateway_has origins; then REDIS_FLAGS+=(--origins '*'); fi # required with --redis; loadgen sends no Origin
}

# up SETUP NAME: start the servers of a setup (rc1, sio1, gsio1, cf1, rc2, sio2, rcd).
up() {
	SETUP_CMDS=""
	NODE_URLS=()
	SERVER_PIDS=()
	case "$1" in
	rc1) start_gateway rc-1 ;;
	sio1) start_peer sio-1 ;;
	gsio1) start_gopeer gsio-1 ;;
	cf1) start_centrifugo cf-1 ;;
	rc2)
		start_redis
		redis_flags
		start_gateway rc-a "${REDIS_FLAGS[@]}"
		start_gateway rc-b "${REDIS_FLAGS[@]}"
		;;
	rcd)
		# One node of the rc2 setup, with the HTTP API on.
		start_redis
		redis_flags
		# The backlog goes to one user: the per-queue quotas (issue 10)
		# are raised above it, as the throughput is what is measured.
		local quota=()
		if gateway_has queue-max-bytes; then quota+=(--queue-max-bytes 1073741824); fi
		if gateway_has queue-maxlen; then quota+=(--queue-maxlen 10000000); fi
		start_gateway rc-d "${REDIS_FLAGS[@]}" --api-token "$API_TOKEN" "${quota[@]}"
		;;
	sio2)
		start_redis
		start_peer sio-a "$REDIS_URL"
		start_peer sio-b "$REDIS_URL"
		;;
	esac
	SETUP_CMDS="${SETUP_CMDS%; }"
}

label_of() {
	case "$1" in
	rc1) echo "Roomcast, 1 node" ;;
	sio1) echo "socket.io 4.8, 1 node" ;;
	gsio1) echo "socket.io Go port (zishang520 $PEER_GO_VERSION), 1 node" ;;
	cf1) echo "Centrifugo $CENTRIFUGO_VERSION, 1 node" ;;
	rc2) echo "Roomcast, 2 nodes + Redis" ;;
	sio2) echo "socket.io 4.8, 2 nodes + redis-adapter" ;;
	rcd) echo "Roomcast durable, 1 node + Redis" ;;
	esac
}
server_of() {
	case "$1" in
	rc*) echo roomcast ;;
	gsio*) echo gosocketio ;;
	cf*) echo centrifugo ;;
	*) echo socketio ;;
	esac
}
nodes_of() { [[ "$1" == *2 ]] && echo 2 || echo 1; }

# fail_record SETUP MODE MESSAGE: a result line for a step that could not run.
fail_record() {
	local cmd="scripts/bench.sh (setup $1)"
	printf '{"label":%s,"server":"%s","nodes":%s,"command":%s,"at":"%s","mode":"%s","error":%s}\n' \
		"$(json_str "$(label_of "$1")")" "$(server_of "$1")" "$(nodes_of "$1")" "$(json_str "$cmd")" \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$2" "$(json_str "$3")" >>"$RESULTS"
}
json_str() { "$NODE" -e 'process.stdout.write(JSON.stringify(process.argv[1]))' "$1"; }

time_left() { ((SECONDS < BENCH_TIMEOUT)); }

# cpu_busy prints the percentage of CPU time used by anything over the next second.
cpu_busy() {
	local a b
	read -r -a a < <(head -n 1 /proc/stat)
	sleep 1
	read -r -a b < <(head -n 1 /proc/stat)
	local idle=$((b[4] + b[5] - a[4] - a[5])) total=0 i
	for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
	((total > 0)) && echo $((100 * (total - idle) / total)) || echo 0
}

# wait_quiet: on a shared machine, wait (at most QUIET_WAIT seconds per step,
# default 0 = never) until other work uses less than QUIET_BUSY percent of
# the CPUs (default 15) before a measurement starts.
wait_quiet() {
	local waited=0 busy
	((${QUIET_WAIT:-0} > 0)) || return 0
	while busy="$(cpu_busy)"; ((busy >= ${QUIET_BUSY:-15})); do
		if ((waited >= QUIET_WAIT)) || ! time_left; then
			log "  machine still ${busy}% busy after ${waited}s; measuring anyway"
			return 0
		fi
		waited=$((waited + 1))
	done
	((waited == 0)) || log "  waited ${waited}s for the machine to quiet down (${busy}% busy)"
}

# lg SETUP MODE ARGS...: run loadgen with the setup's metadata; never fails the script.
lg() {
	local setup="$1" mode="$2"
	shift 2
	if ! time_left; then
		log "skipping $setup $mode: BENCH_TIMEOUT (${BENCH_TIMEOUT}s) reached"
		fail_record "$setup" "$mode" "skipped: BENCH_TIMEOUT reached"
		return 0
	fi
	# Centrifugo setups speak its protocol; its fan-out publishes through the HTTP API.
	if [[ "$setup" == cf* ]]; then
		set -- -protocol centrifugo "$@"
		if [[ "$mode" == fanout ]]; then set -- -api-key "$API_TOKEN" "$@"; fi
	fi
	wait_quiet
	log "$setup: loadgen $mode $*"
	local rc=0
	timeout --kill-after=10 300 "$LOADGEN" "$mode" -jwt-secret "$SECRET" \
		-label "$(label_of "$setup")" -server "$(server_of "$setup")" -nodes "$(nodes_of "$setup")" \
		-setup "$SETUP_CMDS" -out "$RESULTS" "$@" >"$WORK/last.json" 2>"$WORK/last.err" || rc=$?
	if ((rc != 0)); then
		log "  failed (status $rc): $(tail -n 3 "$WORK/last.err" | tr '\n' ' ')"
		# loadgen writes its own record with the error; add one if it died before that.
		grep -q . "$WORK/last.json" || fail_record "$setup" "$mode" "loadgen exited with status $rc: $(tail -n 1 "$WORK/last.err")"
	else
		log "  $(summarize "$WORK/last.json")"
	fi
}

summarize() {
	jq -r '.result | if .mode == "fanout" then "\(.deliveries_per_s) deliveries/s, ratio \(.delivery_ratio), p50 \(.latency.p50_ms) ms, p99 \(.latency.p99_ms) ms, server CPU \(.cpu.server_cpu_us_per_op // "-") µs/delivery"
		elif .mode == "idle" then "\(.connected) connected, \(.bytes_per_conn) bytes/conn"
		elif .mode == "durable" then "\(.stored_per_s) stored user-msgs/s (\(.stored_per_s_per_node)/node), \(.deliveries_per_s) deliveries/s, lost \(.lost) of \(.stored), store p99 \(.store_latency.p99_ms) ms, delivery p99 \(.delivery_latency.p99_ms) ms, replay \(.replay.replayed // "-") in \(.replay.replay_ms // "-") ms, \(.memory.bytes_per_message // "-") Redis B/msg"
		else "\(.connects_per_s) connects/s, \(.failed) failed, p99 \(.latency.p99_ms) ms, server CPU \(.cpu.server_cpu_us_per_op // "-") µs/connect" end' "$1" 2>/dev/null || head -c 300 "$1"
}

perf_record() { # perf_record NAME PID: sample the server during the measurement window
	local name="$1" pid="$2"
	command -v perf >/dev/null || return 0
	(
		sleep "${WARMUP%s}"
		perf record -F 499 -g -p "$pid" -o "$WORK/perf-$name.data" -- sleep "${DURATION%s}" >/dev/null 2>&1 || true
		perf report -i "$WORK/perf-$name.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
			grep -E '^ +[0-9.]+%' | sed -E 's/[[:space:]]+$//' | cut -c1-150 | head -40 >"$WORK/perf-$name.txt" || true
	) &
	PERF_JOB=$!
}

fanout_runs() {
	local setup="$1" targets
	targets="$(IFS=,; echo "${NODE_URLS[*]}")"
	local pids
	pids="$(IFS=,; echo "${SERVER_PIDS[*]}")"
	local common=(-targets "$targets" -subs "$SUBS" -pubs "$PUBS" -warmup "$WARMUP" -duration "$DURATION" -pids "$pids")
	PERF_JOB=""
	if [[ "${PERF:-0}" == 1 ]]; then perf_record "$setup" "$LAST_PID"; fi
	lg "$setup" fanout "${common[@]}" -inflight "$INFLIGHT"
	if [[ -n "$PERF_JOB" ]]; then wait "$PERF_JOB" 2>/dev/null || true; fi
	local r
	for r in $RATES; do
		lg "$setup" fanout "${common[@]}" -rate "$r"
	done
}

run_setup() {
	local setup="$1"
	case "$setup" in
	rc1 | sio1 | gsio1 | cf1)
		# Idle memory on a fresh process, so earlier runs' heap does not hide growth.
		up "$setup"
		lg "$setup" idle -target "${NODE_URLS[0]}" -conns "$IDLE_CONNS" -pid "$LAST_PID"
		stop_all
		up "$setup"
		lg "$setup" connect -target "${NODE_URLS[0]}" -duration "$CONNECT_DURATION" -concurrency "$CONNECT_CONCURRENCY" -pids "$LAST_PID"
		fanout_runs "$setup"
		stop_all
		;;
	rc2)
		if ! gateway_has redis; then
			log "rc2: $GATEWAY_BIN has no --redis flag yet; recording the setup as not run"
			fail_record rc2 fanout "not run: $(basename "$GATEWAY_BIN") has no --redis flag"
			return 0
		fi
		up rc2
		fanout_runs rc2
		stop_all
		;;
	sio2)
		up sio2
		fanout_runs sio2
		stop_all
		;;
	rcd)
		if ! gateway_has redis || ! gateway_has api-token; then
			log "rcd: $GATEWAY_BIN has no --redis or --api-token flag; recording the setup as not run"
			fail_record rcd durable "not run: $(basename "$GATEWAY_BIN") has no --redis or --api-token flag"
			return 0
		fi
		up rcd
		local pids
		pids="$(IFS=,; echo "${SERVER_PIDS[*]}")"
		lg rcd durable -targets "${NODE_URLS[0]}" -api-token "$API_TOKEN" -subs "$SUBS" -pubs "$DURABLE_PUBS" \
			-batch "$DURABLE_BATCH" -duration "$DURATION" -backlog "$DURABLE_BACKLOG" -redis-url "$REDIS_URL" -pids "$pids" \
			-note "no socket.io counterpart: the socket.io peer has no durable per-user queue"
		stop_all
		;;
	*) die "unknown setup $setup (want rc1 sio1 gsio1 cf1 rc2 sio2 rcd)" ;;
	esac
}

load1="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)"
if awk -v l="$load1" 'BEGIN { exit !(l > 1.0) }'; then
	log "warning: 1-minute load average is $load1 before starting: other work on this machine skews the figures"
fi
log "building bin/loadgen"
go build -o "$LOADGEN" ./loadtest/cmd/loadgen
if [[ " $ONLY " == *" cf1 "* ]]; then ensure_centrifugo; fi
log "work dir $WORK; setups: $ONLY"
for s in $ONLY; do
	run_setup "$s"
done

mkdir -p "$(dirname "$BENCH_OUT")"
"$LOADGEN" report -results "$RESULTS" -out "$BENCH_OUT" \
	-command "scripts/bench.sh (ONLY='$ONLY' SUBS=$SUBS PUBS=$PUBS INFLIGHT=$INFLIGHT RATES='$RATES' WARMUP=$WARMUP DURATION=$DURATION IDLE_CONNS=$IDLE_CONNS DURABLE_PUBS=$DURABLE_PUBS DURABLE_BATCH=$DURABLE_BATCH DURABLE_BACKLOG=$DURABLE_BACKLOG)" \
	-node-version "$("$NODE" --version)"
log "wrote $BENCH_OUT in ${SECONDS}s"
if [[ "${PERF:-0}" == 1 ]]; then
	for f in "$WORK"/perf-*.txt; do
		[[ -e "$f" ]] || continue
		log "profile $(basename "$f"):"
		head -n 25 "$f" >&2
	done
	KEEP=1
fi
