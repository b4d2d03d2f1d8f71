# lib.sh — shell helpers shared by scripts/bench.sh and scripts/capacity.sh
# (sourced; expects `die` to be defined by the caller).

# stop_pids PID...: TERM, then KILL after 5s; waits for each.
stop_pids() {
	local p i
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "$@"; do
		for i in $(seq 1 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}

# free_port VAR: sets VAR to a loopback TCP port nobody listens on, below the
# ephemeral range, and not handed out before in this run (a global, not a
# subshell, so two ports picked before either is bound never collide).
USED_PORTS=" "
free_port() {
	local p i
	for i in $(seq 1 500); do
		p=$((20000 + RANDOM % 12000))
		[[ "$USED_PORTS" == *" $p "* ]] && continue
		if [[ -z "$(ss -Htln "( sport = :$p )" 2>/dev/null)" ]]; then
			USED_PORTS+="$p "
			printf -v "$1" '%s' "$p"
			return 0
		fi
	done
	die "no free port found"
}

# wait_until SECONDS CMD...: retry CMD every 0.1s.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}
