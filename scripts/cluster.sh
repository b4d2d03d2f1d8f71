#!/usr/bin/env bash
# cluster.sh — the deploy/docker-compose.yml topology from local binaries, without Docker
# (what `make cluster` runs):
#
#   redis-server   127.0.0.1:6390, AOF on (appendfsync everysec), data in .cluster/redis
#   3 gateways     bin/gateway on 127.0.0.1:8081..8083, admin (metrics, readyz) on 9091..9093,
#                  --redis, --demo, --jwt-secret $JWT_SECRET, --api-token $API_TOKEN and
#                  --trusted-proxies $CLUSTER_HOST (HAProxy, whose X-Forwarded-For names the
#                  client), as production runs: clients need a JWT (no --allow-anonymous)
#   haproxy        deploy/haproxy.cfg on 127.0.0.1:8080, stats page on 8404: round-robin, no
#                  stickiness (each gateway forwards polling requests to their session's node,
#                  at its --cluster-url, http://127.0.0.1:808N by default)
#   prometheus     (if installed) on 127.0.0.1:9099, scraping the three admin ports, with
#                  deploy/alerts.yml loaded
#
# Usage:
#   scripts/cluster.sh [run]   start everything, print the URLs, stay in the foreground;
#                              Ctrl-C / SIGTERM stops everything (a process that dies
#                              on its own also stops the cluster, with its log's tail)
#   scripts/cluster.sh start   start everything in the background and return
#   scripts/cluster.sh stop    stop what `start` started (pid files in .cluster/pids)
#   scripts/cluster.sh status  show what runs
#   scripts/cluster.sh token [USER]
#                              print a JWT for USER (default: dev) signed with $JWT_SECRET,
#                              valid 24 h, that may join, publish and message anything:
#                              paste it into the demo page's token field (needs openssl)
#
# It installs nothing (scripts/install-deps.sh does) and builds nothing (`make
# cluster` builds bin/gateway first). Logs go to .cluster/logs/.
#
# Environment (all optional):
#   CLUSTER_DIR      state directory                      (default: <repo>/.cluster)
#   GATEWAY_BIN      gateway binary                       (default: <repo>/bin/gateway)
#   CLUSTER_HOST     address every process binds          (default: 127.0.0.1)
#   REDIS_PORT       Redis port                           (default: 6390)
#   GATEWAY_PORTS    the three gateways' client ports     (default: "8081 8082 8083")
#   ADMIN_PORTS      the three gateways' admin ports      (default: "9091 9092 9093")
#   LB_PORT          HAProxy port                         (default: 8080)
#   STATS_PORT       HAProxy stats port                   (default: 8404)
#   PROMETHEUS_PORT  Prometheus port                      (default: 9099)
#   PROMETHEUS       auto (run it when installed) or off  (default: auto)
#   JWT_SECRET       gateways' --jwt-secret               (default: dev-secret; a dev default,
#                    as in deploy/docker-compose.yml: set your own outside a laptop)
#   API_TOKEN        gateways' --api-token                (default: dev-token)
#   GATEWAY_ARGS     extra gateway flags, e.g. "--adapter sharded --log-level debug"
#   START_TIMEOUT    seconds to wait for each process to be ready (default: 30)
#   HAPROXY_CFG      HAProxy configuration                (default: <repo>/deploy/haproxy.cfg)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${CLUSTER_DIR:-$ROOT/.cluster}"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/bin/gateway}"
HOST="${CLUSTER_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6390}"
read -r -a GATEWAY_PORT_LIST <<<"${GATEWAY_PORTS:-8081 8082 8083}"
read -r -a ADMIN_PORT_LIST <<<"${ADMIN_PORTS:-9091 9092 9093}"
LB_PORT="${LB_PORT:-8080}"
STATS_PORT="${STATS_PORT:-8404}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9099}"
PROMETHEUS="${PROMETHEUS:-auto}"
JWT_SECRET="${JWT_SECRET:-dev-secret}"
API_TOKEN="${API_TOKEN:-dev-token}"
read -r -a EXTRA_GATEWAY_ARGS <<<"${GATEWAY_ARGS:-}"
START_TIMEOUT="${START_TIMEOUT:-30}"
HAPROXY_CFG="${HAPROXY_CFG:-$ROOT/deploy/haproxy.cfg}"
ALERTS="$ROOT/deploy/alerts.yml"
NODES=3

PIDS="$DIR/pids"
LOGS="$DIR/logs"

log() { printf 'cluster: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# ------------------------------------------------------------------ helpers

# port_busy PORT: something accepts TCP connections on HOST:PORT.
port_busy() { ({ exec 3<>"/dev/tcp/$HOST/$1"; } 2>/dev/null); }

# http_status PORT PATH: prints the HTTP status of GET http://HOST:PORT/PATH (0 if none).
http_status() (
	{ exec 3<>"/dev/tcp/$HOST/$1"; } 2>/dev/null || {
		echo 0
		exit 0
	}
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$HOST" >&3
	line=""
	IFS= read -r -t 5 line <&3 || true
	exec 3>&-
	read -r _ code _ <<<"$line"
	echo "${code:-0}"
)

# http_body PORT PATH: prints the body of GET http://HOST:PORT/PATH.
http_body() (
	{ exec 3<>"/dev/tcp/$HOST/$1"; } 2>/dev/null || exit 0
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$HOST" >&3
	body=0
	while IFS= read -r -t 5 line <&3; do
		line="${line%$'\r'}"
		if ((body)); then
			printf '%s\n' "$line"
		elif [[ -z "$line" ]]; then
			body=1
		fi
	done
)

# redis_ping: Redis on REDIS_PORT answers PING.
redis_ping() (
	{ exec 3<>"/dev/tcp/$HOST/$REDIS_PORT"; } 2>/dev/null || exit 1
	printf 'PING\r\n' >&3
	line=""
	IFS= read -r -t 2 line <&3 || true
	[[ "$line" == "+PONG"* ]]
)

# proc_stat PID: prints "STATE STARTTIME" (fields 3 and 22 of /proc/PID/stat),
# or nothing where /proc is not available or PID is gone.
proc_stat() {
	local stat rest f
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
	rest="${stat##*) }"
	read -r -a f <<<"$rest"
	printf '%s %s' "${f[0]:-}" "${f[19]:-}"
}

# owned NAME: the pid in pids/NAME.pid is alive (not a zombie waiting for its
# new parent to reap it) and is still the process we started (same start time
# as recorded in pids/NAME.start), so a recycled pid is never signalled.
owned() {
	local name="$1" pid want st
	[[ -s "$PIDS/$name.pid" ]] || return 1
	pid="$(<"$PIDS/$name.pid")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	[[ -d /proc/$pid ]] || return 0
	st="$(proc_stat "$pid")"
	[[ -n "$st" && "${st%% *}" != Z ]] || return 1
	[[ -s "$PIDS/$name.start" ]] || return 0
	want="$(<"$PIDS/$name.start")"
	[[ "${st#* }" == "$want" ]]
}

pid_of() { cat "$PIDS/$1.pid"; }

# launch NAME CMD [ARGS...]: runs CMD in its own session (so a terminal's
# Ctrl-C reaches only this script, which then stops everything in order), with
# output in logs/NAME.log, and records its pid.
launch() {
	local name="$1" i st
	shift
	rm -f "$PIDS/$name.pid" "$PIDS/$name.start"
	local header
	header="==== $(date '+%F %T') $*"
	# The inner shell writes its own pid, then becomes CMD (same pid), whether
	# or not setsid had to fork. It writes the header line through the same
	# file description as CMD, so the offset is past it even if CMD clears
	# O_APPEND (HAProxy does, making its descriptors non-blocking).
	# shellcheck disable=SC2016 # $$, $1 and $@ belong to the inner shell
	setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && printf "%s\n" "$1" && shift && exec "$@"' \
		"$PIDS/$name.pid" "$header" "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
	for ((i = 0; i < 100; i++)); do
		if [[ -s "$PIDS/$name.pid" ]]; then
			st="$(proc_stat "$(<"$PIDS/$name.pid")")"
			printf '%s' "${st#* }" >"$PIDS/$name.start"
			return 0
		fi
		sleep 0.05
	done
	die "$name did not start (see $LOGS/$name.log)"
}

# wait_until NAME DESCRIPTION CMD...: polls CMD until it succeeds, while NAME is
# alive, for START_TIMEOUT seconds.
wait_until() {
	local name="$1" what="$2" deadline=$((SECONDS + START_TIMEOUT))
	shift 2
	until "$@"; do
		if ! owned "$name"; then
			log "$name exited; last lines of $LOGS/$name.log:"
			tail -n 20 "$LOGS/$name.log" >&2 || true
			die "$name failed to start"
		fi
		((SECONDS < deadline)) || die "$name: $what not reached within ${START_TIMEOUT}s (see $LOGS/$name.log)"
		sleep 0.1
	done
}

# stop_one NAME TIMEOUT: SIGTERM, wait up to TIMEOUT seconds, then SIGKILL.
stop_one() {
	local name="$1" timeout="$2" pid deadline
	if ! owned "$name"; then
		rm -f "$PIDS/$name.pid" "$PIDS/$name.start"
		return 0
	fi
	pid="$(pid_of "$name")"
	log "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$((SECONDS + timeout))
	while owned "$name" && ((SECONDS < deadline)); do
		sleep 0.1
	done
	if owned "$name"; then
		log "$name did not exit within ${timeout}s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$PIDS/$name.pid" "$PIDS/$name.start"
}

NAMES=(haproxy prometheus gateway-1 gateway-2 gateway-3 redis)

running() {
	local name
	for name in "${NAMES[@]}"; do
		owned "$name" && return 0
	done
	return 1
}

# ------------------------------------------------------------------ start / stop

check_prerequisites() {
	((${#GATEWAY_PORT_LIST[@]} == NODES)) || die "GATEWAY_PORTS needs $NODES ports (haproxy.cfg has $NODES servers)"
	((${#ADMIN_PORT_LIST[@]} == NODES)) || die "ADMIN_PORTS needs $NODES ports"
	command -v setsid >/dev/null 2>&1 || die "setsid not found (util-linux)"
	command -v redis-server >/dev/null 2>&1 || die "redis-server not found: run scripts/install-deps.sh"
	command -v haproxy >/dev/null 2>&1 || die "haproxy not found: run scripts/install-deps.sh"
	[[ -x "$GATEWAY_BIN" ]] || die "$GATEWAY_BIN not found: run 'make build'"
	local help
	help="$("$GATEWAY_BIN" --help 2>&1 || true)"
	[[ "$help" == *" -redis "* ]] || die "$GATEWAY_BIN has no --redis flag: rebuild it ('make build')"
	case "$PROMETHEUS" in
	auto) command -v prometheus >/dev/null 2>&1 || PROMETHEUS=off ;;
	off) ;;
	*) die "PROMETHEUS must be auto or off" ;;
	esac
	local port
	local ports=("$REDIS_PORT" "${GATEWAY_PORT_LIST[@]}" "${ADMIN_PORT_LIST[@]}" "$LB_PORT" "$STATS_PORT")
	[[ "$PROMETHEUS" == off ]] || ports+=("$PROMETHEUS_PORT")
	for port in "${ports[@]}"; do
		[[ "$port" =~ ^[0-9]+$ ]] || die "bad port $port"
		if port_busy "$port"; then
			die "port $port on $HOST is in use (set the *_PORT variables, see the top of $0)"
		fi
	done
}

start_redis() {
	mkdir -p "$DIR/redis"
	launch redis redis-server --bind "$HOST" --port "$REDIS_PORT" --dir "$DIR/redis" \
		--appendonly yes --appendfsync everysec --daemonize no --logfile ""
	wait_until redis "PING" redis_ping
}

gateway_ready() { [[ "$(http_status "$1" /readyz)" == 200 ]]; }

start_gateways() {
	local i
	for ((i = 0; i < NODES; i++)); do
		launch "gateway-$((i + 1))" "$GATEWAY_BIN" \
			--addr "$HOST:${GATEWAY_PORT_LIST[i]}" --admin-addr "$HOST:${ADMIN_PORT_LIST[i]}" \
			--redis "redis://$HOST:$REDIS_PORT" --node-id "node-$((i + 1))" \
			--demo --jwt-secret "$JWT_SECRET" --api-token "$API_TOKEN" \
			--trusted-proxies "$HOST" --origins '*' "${EXTRA_GATEWAY_ARGS[@]}"
	done
	for ((i = 0; i < NODES; i++)); do
		wait_until "gateway-$((i + 1))" "/readyz 200" gateway_ready "${ADMIN_PORT_LIST[i]}"
	done
}

# haproxy_servers_up: every server of the `gateways` backend passed its health check.
haproxy_servers_up() {
	local up
	up="$(http_body "$STATS_PORT" '/;csv' | awk -F, '$1 == "gateways" && $2 ~ /^gateway-/ && $18 == "UP"' | wc -l)"
	((up == NODES))
}

start_haproxy() {
	local i envs=(LB_BIND="$HOST:$LB_PORT" LB_STATS_BIND="$HOST:$STATS_PORT")
	for ((i = 0; i < NODES; i++)); do
		envs+=("LB_GATEWAY_$((i + 1))=$HOST:${GATEWAY_PORT_LIST[i]}" "LB_GATEWAY_$((i + 1))_ADMIN=${ADMIN_PORT_LIST[i]}")
	done
	launch haproxy env "${envs[@]}" haproxy -db -f "$HAPROXY_CFG"
	wait_until haproxy "all $NODES gateways UP in the stats page" haproxy_servers_up
}

prometheus_ready() { [[ "$(http_status "$PROMETHEUS_PORT" /-/ready)" == 200 ]]; }

start_prometheus() {
	[[ "$PROMETHEUS" != off ]] || return 0
	mkdir -p "$DIR/prometheus"
	local i cfg="$DIR/prometheus.yml"
	{
		echo "# Generated by scripts/cluster.sh: deploy/prometheus.yml for loopback ports."
		echo "global: {scrape_interval: 5s, evaluation_interval: 5s}"
		echo "rule_files: ['$ALERTS']"
		echo "scrape_configs:"
		echo "  - job_name: roomcast"
		echo "    static_configs:"
		for ((i = 0; i < NODES; i++)); do
			echo "      - {targets: ['$HOST:${ADMIN_PORT_LIST[i]}'], labels: {node: node-$((i + 1))}}"
		done
		echo "  - job_name: haproxy"
		echo "    static_configs: [{targets: ['$HOST:$STATS_PORT']}]"
		echo "  - job_name: prometheus"
		echo "    static_configs: [{targets: ['$HOST:$PROMETHEUS_PORT']}]"
	} >"$cfg"
	launch prometheus prometheus --config.file="$cfg" --storage.tsdb.path="$DIR/prometheus/data" \
		--web.listen-address="$HOST:$PROMETHEUS_PORT" --storage.tsdb.retention.time=2d
	wait_until prometheus "/-/ready 200" prometheus_ready
}

# refuse_if_running: a second start must neither disturb nor stop the first
# cluster, so this runs before any exit trap is set.
refuse_if_running() {
	if running; then
		die "a cluster from $DIR is already running: '$0 stop' first"
	fi
}

start_all() {
	check_prerequisites
	mkdir -p "$PIDS" "$LOGS"
	start_redis
	start_gateways
	start_haproxy
	start_prometheus
}

# stop_all: the load balancer first, then Prometheus, then the gateways (each
# drains within its --drain-timeout, 10 s), Redis last (it flushes its AOF).
stop_all() {
	[[ -d "$PIDS" ]] || return 0
	stop_one haproxy 10
	stop_one prometheus 10
	# SIGTERM every gateway first, so they drain in parallel.
	local i
	log "stopping the gateways (each drains its clients first)"
	for ((i = 1; i <= NODES; i++)); do
		if owned "gateway-$i"; then
			kill -TERM "$(pid_of "gateway-$i")" 2>/dev/null || true
		fi
	done
	for ((i = 1; i <= NODES; i++)); do
		stop_one "gateway-$i" 20
	done
	stop_one redis 10
}

print_urls() {
	local i
	cat <<EOF
Roomcast cluster (state and logs in $DIR):
  chat demo        http://$HOST:$LB_PORT/                 (through HAProxy)
  clients          ws://$HOST:$LB_PORT/socket.io/?EIO=4&transport=websocket
  HTTP API         curl -H 'Authorization: Bearer $API_TOKEN' http://$HOST:$LB_PORT/api/v1/nodes
  HAProxy stats    http://$HOST:$STATS_PORT/
EOF
	for ((i = 0; i < NODES; i++)); do
		printf '  gateway node-%d   http://%s:%s/   metrics http://%s:%s/metrics   readyz http://%s:%s/readyz\n' \
			$((i + 1)) "$HOST" "${GATEWAY_PORT_LIST[i]}" "$HOST" "${ADMIN_PORT_LIST[i]}" "$HOST" "${ADMIN_PORT_LIST[i]}"
	done
	printf '  redis            redis://%s:%s   (AOF in %s/redis)\n' "$HOST" "$REDIS_PORT" "$DIR"
	if [[ "$PROMETHEUS" != off ]]; then
		printf '  prometheus       http://%s:%s/   (alerts: http://%s:%s/alerts)\n' "$HOST" "$PROMETHEUS_PORT" "$HOST" "$PROMETHEUS_PORT"
	else
		printf '  prometheus       not running (not installed, or PROMETHEUS=off)\n'
	fi
	printf '  JWT secret       %s   (clients need a token; no anonymous connections)\n' "$JWT_SECRET"
	if command -v openssl >/dev/null 2>&1; then
		printf '  dev token        %s\n' "$(dev_token dev)"
		printf '                   (for the demo page; another user: %s token NAME)\n' "$0"
	fi
	printf '  load test        make loadtest   (k6 against http://%s:%s)\n' "$HOST" "$LB_PORT"
}

status() {
	local name
	for name in "${NAMES[@]}"; do
		if owned "$name"; then
			printf '%-12s running (pid %s)\n' "$name" "$(pid_of "$name")"
		else
			printf '%-12s stopped\n' "$name"
		fi
	done
}

# b64url: stdin in base64url without padding (JWT encoding).
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# dev_token USER: an HS256 JWT for USER signed with JWT_SECRET, valid 24 h,
# allowed to join, publish and message anything.
dev_token() {
	local user="$1" header payload sig
	[[ "$user" =~ ^[A-Za-z0-9_.@-]{1,64}$ ]] || die "token: user names are 1-64 of A-Z a-z 0-9 _ . @ -"
	command -v openssl >/dev/null 2>&1 || die "token: openssl not found"
	header="$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)"
	payload="$(printf '{"sub":"%s","name":"%s","join":["*"],"publish":["*"],"dm":["*"],"exp":%d}' \
		"$user" "$user" $(($(date +%s) + 86400)) | b64url)"
	sig="$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$JWT_SECRET" -binary | b64url)"
	printf '%s.%s.%s\n' "$header" "$payload" "$sig"
}

# ------------------------------------------------------------------ commands

STARTED=0
STOPPING=0

# A failed start leaves nothing behind.
stop_unless_started() { ((STARTED)) || stop_all; }

cmd_start() {
	refuse_if_running
	trap stop_unless_started EXIT
	start_all
	STARTED=1
	print_urls
	log "running in the background; stop with: $0 stop"
}

cmd_run() {
	refuse_if_running
	trap 'stop_all' EXIT
	trap 'STOPPING=1' INT TERM
	start_all
	print_urls
	log "running; Ctrl-C stops everything"
	local name
	while ((!STOPPING)); do
		for name in "${NAMES[@]}"; do
			[[ "$name" == prometheus && "$PROMETHEUS" == off ]] && continue
			if ! owned "$name"; then
				log "$name exited; last lines of $LOGS/$name.log:"
				tail -n 20 "$LOGS/$name.log" >&2 || true
				exit 1
			fi
		done
		sleep 1 &
		wait $! || true
	done
	log "stopping"
}

case "${1:-run}" in
run) cmd_run ;;
start) cmd_start ;;
stop) stop_all ;;
status) status ;;
token) dev_token "${2:-dev}" ;;
-h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
*) die "usage: $0 [run|start|stop|status|token [USER]]" ;;
esac
