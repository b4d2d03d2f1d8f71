#!/usr/bin/env bash
# capacity.sh — the shape of scaling out on this machine: gateway nodes on a
# 3-master Redis Cluster, 1 then 2 then 4 of them, under the same fan-out load.
#
# Starts three cluster-enabled redis-servers (own ports, no persistence) and
# joins them, then for each node count in NODES starts that many bin/gateway
# processes on the Cluster (--adapter sharded by default, per-IP limits off as
# scripts/bench.sh has them) and drives them with `loadgen fanout -rooms`:
# SUBS subscribers spread over ROOMS rooms (every room with members on every
# node), PUBS publishers rotating over the rooms, at saturation and at each of
# RATES; then the same with the next of ADAPTERS (the classic adapter, for
# contrast: its PUBLISH goes to every master over the Cluster bus). Per step it records deliveries/s, the gateways' CPU per delivery, each
# Redis shard's CPU (from /proc/<pid>/stat over the measurement window, through
# loadgen -pids) and the Redis commands each shard ran (INFO commandstats),
# and prints a markdown report (to OUT, else stdout).
#
# Needs bin/gateway (make build), redis-server and redis-cli (7.0 or later),
# jq; builds bin/loadgen itself. Every process it starts is killed on exit; the
# run stops starting steps after CAPACITY_TIMEOUT seconds.
#
# With the first adapter's 1-node setup it also measures what connections
# cost the Cluster: `loadgen connect` (Redis CPU per connect and disconnect)
# and `loadgen idle` (Redis memory per held connection: sessions, presence,
# live subscriptions), CONN_IDLE connections.
#
# Environment (all optional):
#   NODES="1 2 4"  ADAPTERS="sharded classic"  SUBS=1200 ROOMS=12 PUBS=4
#   INFLIGHT=64  RATES="20000"  WARMUP=2s DURATION=8s  CONN_IDLE=3000 (0 = no connection steps)
#   CAPACITY_TIMEOUT=480 (seconds)  OUT=file  KEEP=1 keeps the work dir
#   GATEWAY_BIN REDIS_SERVER REDIS_CLI   binaries to use
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bin/gateway}"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
REDIS_CLI="${REDIS_CLI:-redis-cli}"
LOADGEN="bin/loadgen"
NODES="${NODES:-1 2 4}"
ADAPTERS="${ADAPTERS:-sharded classic}"
ADAPTER=""
SUBS="${SUBS:-1200}"
ROOMS="${ROOMS:-12}"
PUBS="${PUBS:-4}"
INFLIGHT="${INFLIGHT:-64}"
RATES="${RATES:-20000}"
WARMUP="${WARMUP:-2s}"
DURATION="${DURATION:-8s}"
CAPACITY_TIMEOUT="${CAPACITY_TIMEOUT:-540}"
CONN_IDLE="${CONN_IDLE:-3000}"
OUT="${OUT:-}"
SECRET="capacity-secret"
PREFIX="capacity"

log() { printf 'capacity: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

[[ -x "$GATEWAY_BIN" ]] || die "$GATEWAY_BIN not found: run 'make build' first"
command -v "$REDIS_SERVER" >/dev/null || die "redis-server not found: run scripts/install-deps.sh"
command -v "$REDIS_CLI" >/dev/null || die "redis-cli not found"
command -v jq >/dev/null || die "jq not found"
command -v curl >/dev/null || die "curl not found"

WORK="$(mktemp -d -t roomcast-capacity.XXXXXX)"
REDIS_PIDS=()   # the Cluster's masters, for the whole run
REDIS_PORTS=()
GW_PIDS=()      # the current step's gateways
GW_URLS=()
BG_PIDS=()      # a step's samplers and background loadgen, while they run

stop_gateways() {
	if ((${#GW_PIDS[@]})); then stop_pids "${GW_PIDS[@]}"; fi
	GW_PIDS=()
	GW_URLS=()
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if ((${#BG_PIDS[@]})); then stop_pids "${BG_PIDS[@]}"; fi
	stop_gateways
	if ((${#REDIS_PIDS[@]})); then stop_pids "${REDIS_PIDS[@]}"; fi
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

rcli() { local port="$1"; shift; "$REDIS_CLI" -h 127.0.0.1 -p "$port" "$@"; }

cluster_ok() {
	local info
	info="$(rcli "$1" cluster info)"
	[[ "$info" == *cluster_state:ok* && "$info" == *cluster_slots_ok:16384* && "$info" == *cluster_known_nodes:3* ]]
}

start_cluster() {
	local i port bus dir
	for i in 0 1 2; do
		free_port port
		free_port bus
		dir="$WORK/redis-$i"
		mkdir -p "$dir"
		"$REDIS_SERVER" --port "$port" --cluster-port "$bus" --bind 127.0.0.1 --protected-mode no \
			--dir "$dir" --logfile "$dir/redis.log" --daemonize no --save '' --appendonly no \
			--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 &
		REDIS_PIDS+=($!)
		REDIS_PORTS+=("$port")
		wait_until 10 rcli "$port" ping || die "redis-server on $port did not start"
	done
	local addrs=()
	for port in "${REDIS_PORTS[@]}"; do addrs+=("127.0.0.1:$port"); done
	"$REDIS_CLI" --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$WORK/cluster-create.log" 2>&1 ||
		die "redis-cli --cluster create failed: $(tail -n 5 "$WORK/cluster-create.log")"
	for port in "${REDIS_PORTS[@]}"; do
		wait_until 30 cluster_ok "$port" || die "cluster not ok on $port"
	done
	SEEDS="$(IFS=,; echo "${addrs[*]}")"
}

# shard_of KEY: the index (0-2) of the master holding KEY's slot.
shard_of() {
	local slot i port
	slot="$(rcli "${REDIS_PORTS[0]}" cluster keyslot "$1")"
	for i in 0 1 2; do
		port="${REDIS_PORTS[$i]}"
		# this master's own line of CLUSTER NODES ends with its slot ranges
		if rcli "$port" cluster nodes | awk -v s="$slot" '/myself/ {
			for (f = 9; f <= NF; f++) { n = split($f, r, "-"); lo = r[1]; hi = (n > 1 ? r[2] : r[1]);
				if (s >= lo && s <= hi) found = 1 }
		} END { exit !found }'; then
			echo "$i"
			return
		fi
	done
	echo "?"
}

# gateway_has FLAG: bin/gateway --help lists --FLAG (no grep -q: see bench.sh).
gateway_has() { "$GATEWAY_BIN" --help 2>&1 | grep -E "^[[:space:]]+--?$1([[:space:]]|\$)" >/dev/null; }

SETUP_CMDS=""
start_gateway() {
	local name="$1" port admin lim
	free_port port
	free_port admin
	local args=(--addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin" --jwt-secret "$SECRET"
		--redis "$SEEDS" --adapter "$ADAPTER" --redis-prefix "$PREFIX" --origins '*'
		--event-rate 1000000 --log-level warn --node-id "$name")
	# Every load client comes from 127.0.0.1: the per-IP limits and the
	# per-user cap are off, as in scripts/bench.sh.
	for lim in ip-event-rate connect-rate handshake-rate max-conns-per-ip max-conns-per-user; do
		if gateway_has "$lim"; then args+=("--$lim" -1); fi
	done
	"$GATEWAY_BIN" "${args[@]}" >"$WORK/$name.log" 2>&1 &
	GW_PIDS+=($!)
	if ! wait_until 15 curl -fsS --max-time 1 "http://127.0.0.1:$admin/readyz"; then
		tail -n 20 "$WORK/$name.log" >&2 || true
		die "gateway $name did not become ready"
	fi
	GW_URLS+=("http://127.0.0.1:$port")
	SETUP_CMDS+="bin/gateway $(printf '%q ' "${args[@]}")"
	SETUP_CMDS="${SETUP_CMDS% }; "
}

# commandstats PORT: "cmd calls usec" lines of INFO commandstats.
commandstats() {
	rcli "$1" info commandstats | tr -d '\r' |
		sed -nE 's/^cmdstat_([^:]+):calls=([0-9]+),usec=([0-9]+),.*/\1 \2 \3/p'
}

# sample_stats FILE SHARD: every 0.5s, append "time shard cmd calls usec"
# lines of the shard's INFO commandstats to FILE (runs until killed).
sample_stats() {
	local ts
	while :; do
		ts="$(date +%s.%N)"
		commandstats "${REDIS_PORTS[$2]}" | sed "s/^/$ts $2 /" >>"$1.$2"
		sleep 0.5
	done
}

# window_stats FILE SHARD FROM TO PUBLISHES_PER_S: from the samples of SHARD
# nearest inside [FROM, TO], the four commands that used the most Redis CPU,
# per publish: "cmd calls/publish µs/publish".
window_stats() {
	awk -v sh="$2" -v from="$3" -v to="$4" -v pps="$5" '
		$2 != sh { next }
		$1 >= from && (t1 == "" || $1 == t1) { if (t1 == "") t1 = $1; c1[$3] = $4; u1[$3] = $5 }
		$1 <= to { if ($1 != t2) { t2 = $1; delete c2; delete u2 } c2[$3] = $4; u2[$3] = $5 }
		END {
			span = t2 - t1
			if (t1 == "" || span <= 0 || pps <= 0) exit
			# info: the sampler itself
			for (k in c2) if (k != "info" && c2[k] > c1[k]) printf "%s %.2f %.1f\n", k, (c2[k] - c1[k]) / span / pps, (u2[k] - u1[k]) / span / pps
		}' "$1" | sort -k3,3nr | head -n 4 |
		awk '{ printf "%s%s %s/pub %s µs/pub", (NR > 1 ? ", " : ""), $1, $2, $3 }'
}

# redis_cpu: the three shards' CPU times so far, in clock ticks.
redis_cpu() {
	local p
	for p in "${REDIS_PIDS[@]}"; do
		awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat"
	done
}

# idle_baseline SECONDS: sets IDLE_PCT to the shards' CPU, in % of a core
# each ("a / b / c"), and IDLE_SUM_CORES to their sum in cores, over SECONDS
# with the gateways up and no load.
idle_baseline() {
	local before after i
	mapfile -t before < <(redis_cpu)
	sleep "$1"
	mapfile -t after < <(redis_cpu)
	IDLE_PCT=""
	local sum=0
	for i in 0 1 2; do
		local d=$((after[i] - before[i]))
		sum=$((sum + d))
		IDLE_PCT+="${IDLE_PCT:+ / }$(awk -v t="$d" -v s="$1" 'BEGIN { printf "%.1f%%", t / s }')"
	done
	IDLE_SUM_CORES="$(awk -v t="$sum" -v s="$1" 'BEGIN { printf "%.4f", t / 100 / s }')"
}

time_left() { ((SECONDS < CAPACITY_TIMEOUT)); }

IDLE_SUM_CORES=0
: >"$WORK/idle.md"
: >"$WORK/setup.md"
ROWS="$WORK/rows.md"
CMDS="$WORK/commands.md"
STATS="$WORK/stats.md"
: >"$ROWS"
: >"$CMDS"
: >"$STATS"
BASE_DPS=""

# step NODES LOAD-LABEL LOADGEN-ARGS...: one loadgen run against the current gateways.
step() {
	local n="$1" load="$2"
	shift 2
	if ! time_left; then
		log "skipping $n nodes, $load: CAPACITY_TIMEOUT (${CAPACITY_TIMEOUT}s) reached"
		printf '| %s | %s | %s | skipped: CAPACITY_TIMEOUT reached |||||||||\n' "$ADAPTER" "$n" "$load" >>"$ROWS"
		return 0
	fi
	local targets pids i
	targets="$(IFS=,; echo "${GW_URLS[*]}")"
	pids="$(IFS=,; echo "${GW_PIDS[*]},${REDIS_PIDS[*]}")"
	local args=(fanout -jwt-secret "$SECRET" -targets "$targets" -subs "$SUBS" -rooms "$ROOMS" -pubs "$PUBS"
		-warmup "$WARMUP" -duration "$DURATION" -pids "$pids" "$@")
	log "$n node(s), $load: $LOADGEN ${args[*]}"
	local samplers=() t0 rc=0
	for i in 0 1 2; do
		: >"$WORK/samples.$i"
		sample_stats "$WORK/samples" "$i" &
		samplers+=($!)
	done
	BG_PIDS=("${samplers[@]}")
	t0="$(date +%s.%N)"
	timeout --kill-after=10 180 "$LOADGEN" "${args[@]}" >"$WORK/last.json" 2>"$WORK/last.err" || rc=$?
	stop_pids "${samplers[@]}"
	BG_PIDS=()
	printf '| %s | %s | %s | `%s %s` |\n' "$ADAPTER" "$n" "$load" "$LOADGEN" "${args[*]}" >>"$CMDS"
	if ((rc != 0)) || ! jq -e '.result.cpu.server_cpu_s_per_pid' "$WORK/last.json" >/dev/null 2>&1; then
		log "  failed (status $rc): $(tail -n 3 "$WORK/last.err" | tr '\n' ' ')"
		printf '| %s | %s | %s | failed: %s |||||||||\n' "$ADAPTER" "$n" "$load" "$(jq -r '.error // empty' "$WORK/last.json" 2>/dev/null | head -c 200)" >>"$ROWS"
		return 0
	fi
	# Per-process CPU seconds, gateways first, then the three shards.
	local row
	row="$(jq -r --arg adapter "$ADAPTER" --argjson n "$n" --arg load "$load" --arg base "$BASE_DPS" --argjson idle "$IDLE_SUM_CORES" '
		.result as $r | $r.cpu.server_cpu_s_per_pid as $c | $r.duration_s as $d |
		($c[0:$n] | add) as $gw | ($c[$n:] ) as $rs | ($rs | add) as $rt | ($rt - $idle * $d) as $ra |
		$r.deliveries_per_s as $dps | ($dps * $d) as $dl |
		def f1: (. * 10 | round) / 10;
		def f2: (. * 100 | round) / 100;
		def f3: (. * 1000 | round) / 1000;
		def pct: (. / $d * 100 | f1 | tostring) + "%";
		def commas: tostring | [scan("\\d+?(?=(?:\\d{3})+$)|\\d+$")] | join(",");
		[ $adapter, ($n | tostring), $load, ($dps | round | commas),
		  (if ($load | startswith("saturation")) | not then "-"
		   elif $base == "" then "1.00×" else (($dps / ($base | tonumber)) | f2 | tostring) + "×" end),
		  ($r.delivery_ratio | tostring), ($r.latency.p99_ms | f1 | tostring),
		  (($r.publishes_per_s) | round | commas),
		  (if $dl > 0 then ($gw * 1e6 / $dl | f2 | tostring) else "-" end),
		  ($gw / $d | f2 | tostring),
		  ($rs | map(pct) | join(" / ")),
		  (if $dl > 0 then ($ra * 1e6 / $dl | f3 | tostring) else "-" end),
		  (if $r.publishes_per_s > 0 then ($rt * 1e6 / ($r.publishes_per_s * $d) | round | tostring)
		     + " (" + ($ra * 1e6 / ($r.publishes_per_s * $d) | round | tostring) + ")" else "-" end),
		  ($r.cpu.loadgen_cpu_s / $d | f2 | tostring)
		] | "| " + join(" | ") + " |"' "$WORK/last.json")"
	printf '%s\n' "$row" >>"$ROWS"
	log "  $row"
	if [[ -z "$BASE_DPS" && "$load" == saturation* ]]; then
		BASE_DPS="$(jq -r '.result.deliveries_per_s' "$WORK/last.json")"
	fi
	# The measurement window, on this clock: loadgen's start, its setup, the warm-up.
	local from to pps cs=()
	read -r from to pps < <(jq -r --argjson t0 "$t0" '.result | [$t0 + .setup_s + .warmup_s, $t0 + .setup_s + .warmup_s + .duration_s, .publishes_per_s] | @tsv' "$WORK/last.json")
	for i in 0 1 2; do cs+=("$(window_stats "$WORK/samples.$i" "$i" "$from" "$to" "$pps")"); done
	printf '| %s | %s | %s | %s | %s | %s |\n' "$ADAPTER" "$n" "$load" "${cs[0]:--}" "${cs[1]:--}" "${cs[2]:--}" >>"$STATS"
}

# used_memory: the three shards' used_memory, summed, in bytes.
used_memory() {
	local port sum=0 v
	for port in "${REDIS_PORTS[@]}"; do
		v="$(rcli "$port" info memory | tr -d '\r' | sed -n 's/^used_memory://p')"
		sum=$((sum + v))
	done
	echo "$sum"
}

# conn_steps: what connections cost the Cluster, against the current (one)
# gateway: connects and disconnects with a JWT for 10s, then CONN_IDLE idle
# connections held while the shards' memory is sampled.
CONN_ROWS="$WORK/conn.md"
: >"$CONN_ROWS"
: >"$WORK/conn-cmds.md"
conn_steps() {
	local gw="${GW_PIDS[0]}" pids
	pids="$(IFS=,; echo "${GW_PIDS[0]},${REDIS_PIDS[*]}")"
	local args=(connect -jwt-secret "$SECRET" -target "${GW_URLS[0]}" -duration 10s -concurrency 32 -pids "$pids")
	log "connections: $LOADGEN ${args[*]}"
	local i ok=0
	for i in 0 1 2; do commandstats "${REDIS_PORTS[$i]}" >"$WORK/conn-before.$i"; done
	timeout --kill-after=10 120 "$LOADGEN" "${args[@]}" >"$WORK/conn.json" 2>"$WORK/conn.err" || ok=$?
	for i in 0 1 2; do commandstats "${REDIS_PORTS[$i]}" >"$WORK/conn-after.$i"; done
	if ((ok == 0)); then
		jq -r --arg cmd "$LOADGEN ${args[*]}" '.result as $r | $r.cpu.server_cpu_s_per_pid as $c | ($r.connects) as $k |
			"| connect + disconnect with a JWT, 32 at a time, 10 s | \($r.connects_per_s | round)/s, \($r.failed) failed | gateway \($c[0] * 1e6 / $k | round) µs; Redis \($c[1:] | map(. * 1e6 / $k | round | tostring) | join(" / ")) µs (shards 0 / 1 / 2) per connect | `\($cmd)` |"' \
			"$WORK/conn.json" >>"$CONN_ROWS"
		# What Redis ran per connect (and its disconnect), by shard.
		local k
		k="$(jq -r '.result.connects' "$WORK/conn.json")"
		for i in 0 1 2; do
			printf '| shard %s: %s |\n' "$i" "$(awk -v k="$k" 'NR == FNR { c[$1] = $2; u[$1] = $3; next }
				$1 != "info" && $2 > c[$1] { printf "%s %.2f %.1f\n", $1, ($2 - c[$1]) / k, ($3 - u[$1]) / k }' \
				"$WORK/conn-before.$i" "$WORK/conn-after.$i" | sort -k3,3nr | head -n 6 |
				awk '{ printf "%s%s %s/connect %s µs/connect", (NR > 1 ? ", " : ""), $1, $2, $3 }')" >>"$WORK/conn-cmds.md"
		done
	else
		printf '| connect | failed: %s | | |\n' "$(tail -n 1 "$WORK/conn.err")" >>"$CONN_ROWS"
	fi
	# Sessions of the connects above live for the recovery window: the
	# baseline is taken after them, and the peak while the idle ones are held.
	local base peak=0 m idle
	base="$(used_memory)"
	args=(idle -jwt-secret "$SECRET" -target "${GW_URLS[0]}" -conns "$CONN_IDLE" -settle 5s -pid "$gw")
	log "connections: $LOADGEN ${args[*]}"
	timeout --kill-after=10 120 "$LOADGEN" "${args[@]}" >"$WORK/idle.json" 2>"$WORK/idle.err" &
	idle=$!
	BG_PIDS=("$idle")
	while kill -0 "$idle" 2>/dev/null; do
		m="$(used_memory)"
		((m > peak)) && peak=$m
		sleep 0.5
	done
	local idle_rc=0
	wait "$idle" || idle_rc=$?
	BG_PIDS=()
	if ((idle_rc == 0)); then
		jq -r --argjson base "$base" --argjson peak "$peak" --arg cmd "$LOADGEN ${args[*]}" '.result as $r |
			"| \($r.connected) idle connections held | \($r.connects_per_s | round) connects/s while opening | Redis used_memory +\(($peak - $base) / $r.connected | round) B (all shards, peak while held) per connection | `\($cmd)` |"' \
			"$WORK/idle.json" >>"$CONN_ROWS"
	else
		printf '| idle | failed: %s | | |\n' "$(tail -n 1 "$WORK/idle.err")" >>"$CONN_ROWS"
	fi
}

load1="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)"
STARTED="$(date -u '+%Y-%m-%d %H:%M UTC')"
log "building bin/loadgen"
go build -o "$LOADGEN" ./loadtest/cmd/loadgen
ulimit -n 20000 2>/dev/null || true
log "work dir $WORK; starting a 3-master Redis Cluster"
start_cluster
log "cluster: $SEEDS"

# Where the keys and channels of the load live.
LOG_SHARD="$(shard_of "$PREFIX:log:{/}")"
ROOM_SHARDS=(0 0 0)
for ((r = 0; r < ROOMS; r++)); do
	room="bench-$r"
	((ROOMS > 1)) || room="bench"
	s="$(shard_of "$PREFIX#/#$room#")"
	[[ "$s" == "?" ]] || ROOM_SHARDS[s]=$((ROOM_SHARDS[s] + 1))
done

for ADAPTER in $ADAPTERS; do
	BASE_DPS=""
	for n in $NODES; do
		if ! time_left; then
			log "skipping $ADAPTER, $n nodes: CAPACITY_TIMEOUT reached"
			continue
		fi
		for port in "${REDIS_PORTS[@]}"; do rcli "$port" flushall >/dev/null; done
		SETUP_CMDS=""
		for ((i = 1; i <= n; i++)); do start_gateway "gw-$ADAPTER-$n-$i"; done
		printf '| %s | %s | %s |\n' "$ADAPTER" "$n" "${SETUP_CMDS%; }" >>"$WORK/setup.md"
		idle_baseline 3
		printf '| %s | %s | %s |\n' "$ADAPTER" "$n" "$IDLE_PCT" >>"$WORK/idle.md"
		log "$ADAPTER, $n node(s) up; Redis CPU idle: $IDLE_PCT"
		step "$n" "saturation ($INFLIGHT in flight)" -inflight "$INFLIGHT"
		for rate in $RATES; do
			step "$n" "$rate deliveries/s" -rate "$rate"
		done
		if ((n == 1 && CONN_IDLE > 0)) && [[ "$ADAPTER" == "${ADAPTERS%% *}" ]] && time_left; then
			conn_steps
		fi
		stop_gateways
	done
done

report() {
	cat <<EOF
### Scale-out run: $NODES gateway node(s) on a 3-master Redis Cluster (\`--adapter\` $ADAPTERS)

- Started: $STARTED; machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); $("$REDIS_SERVER" --version | grep -oE 'v=[0-9.]+' | sed 's/v=/redis-server /'); 1-minute load average before the run: $load1
- Produced by: \`scripts/capacity.sh\` (NODES='$NODES' ADAPTERS='$ADAPTERS' SUBS=$SUBS ROOMS=$ROOMS PUBS=$PUBS INFLIGHT=$INFLIGHT RATES='$RATES' WARMUP=$WARMUP DURATION=$DURATION), ${SECONDS}s
- Load: $SUBS subscribers in $ROOMS rooms ($((SUBS / ROOMS)) each, members on every node), $PUBS publishers rotating over the rooms. Room channels per shard (0 / 1 / 2): ${ROOM_SHARDS[0]} / ${ROOM_SHARDS[1]} / ${ROOM_SHARDS[2]}; the namespace's broadcast log \`$PREFIX:log:{/}\` is on shard $LOG_SHARD.
- Everything (load generator, gateways, the three redis-servers) shares the same $(nproc) CPUs over loopback.

| adapter | nodes | load | deliveries/s | vs 1 node | ratio | p99 ms | publishes/s | gateway CPU µs/delivery | gateway CPU (cores) | Redis CPU shard 0 / 1 / 2 (% of a core) | Redis CPU µs/delivery above idle | Redis CPU µs/publish (above idle) | loadgen CPU (cores) |
|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|
$(cat "$ROWS")

CPU figures are over loadgen's measurement window, from /proc/<pid>/stat (\`loadgen -pids\`, per process).
"Idle" is the three shards' CPU over 3 s with the gateways up and no client (node registry, cluster bus, serverCron),
subtracted in the "above idle" columns:

| adapter | nodes | Redis CPU idle, shard 0 / 1 / 2 (% of a core) |
|---|---:|---|
$(cat "$WORK/idle.md")

Redis commands by shard over the measurement window (\`INFO commandstats\` sampled every 0.5 s, the samples
nearest inside the window; the four that used the most Redis CPU, per publish; commands a script runs are counted
on their own too, inside the script's time: \`xadd\` is part of \`evalsha\`; the sampler's own \`info\` calls are left out here
but are in the /proc figures above; the times are Redis's own clock around each call, so they include any time the
process was preempted on a busy machine):

| adapter | nodes | load | shard 0 | shard 1 | shard 2 |
|---|---:|---|---|---|---|
$(cat "$STATS")

What connections cost the Cluster (the ${ADAPTERS%% *} adapter, 1 node, after its fan-out steps; CPU from /proc over the run,
memory from the shards' \`used_memory\`):

| load | rate | per connection | command |
|---|---|---|---|
$(cat "$CONN_ROWS")

Redis commands per connect and its disconnect during the connect step (\`INFO commandstats\` before and after; the six that used the most Redis time):

| by shard |
|---|
$(cat "$WORK/conn-cmds.md")

<details><summary>Commands</summary>

| adapter | nodes | load | loadgen |
|---|---:|---|---|
$(cat "$CMDS")

| adapter | nodes | gateways (the Cluster: three \`redis-server --cluster-enabled yes --save '' --appendonly no\` joined by \`redis-cli --cluster create --cluster-replicas 0\`) |
|---|---:|---|
$(cat "$WORK/setup.md")

</details>
EOF
}

if [[ -n "$OUT" ]]; then
	report >"$OUT"
	log "wrote $OUT in ${SECONDS}s"
else
	report
fi
