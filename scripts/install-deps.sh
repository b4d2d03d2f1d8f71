#!/usr/bin/env bash
# install-deps.sh — install the external tools Roomcast's tests need, only when missing.
#
# Idempotent: a second run finds everything present and changes nothing.
#
#   Debian packages (apt):   redis-server, haproxy, chromium, prometheus (promtool)
#   Go tools (go install):   staticcheck, k6  -> $(go env GOBIN) or $(go env GOPATH)/bin
#
# Environment:
#   STATICCHECK_VERSION  staticcheck module version (default below; builds with Go 1.26)
#   K6_VERSION           k6 module version (default below)
#   SKIP_APT=1           do not touch Debian packages (e.g. no root, tools provided otherwise)
#   SKIP_GO_TOOLS=1      do not go install staticcheck / k6
set -euo pipefail

STATICCHECK_VERSION="${STATICCHECK_VERSION:-v0.8.2}"
K6_VERSION="${K6_VERSION:-v1.8.1}"

log() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- apt packages
# "command package" pairs: the command proves the package is installed.
APT_CHECKS=(
	"redis-server redis-server"
	"haproxy haproxy"
	"chromium chromium"
	"promtool prometheus"
)

install_apt() {
	local missing=() pair cmd pkg
	for pair in "${APT_CHECKS[@]}"; do
		cmd="${pair%% *}"
		pkg="${pair##* }"
		if command -v "$cmd" >/dev/null 2>&1; then
			log "ok: $cmd ($(command -v "$cmd"))"
		else
			log "missing: $cmd (package $pkg)"
			missing+=("$pkg")
		fi
	done
	if ((${#missing[@]} == 0)); then
		return 0
	fi

	local sudo=()
	if [[ "$(id -u)" != 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${missing[*]}"
		sudo=(sudo)
	fi
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${missing[*]}"

	log "running: apt-get update"
	"${sudo[@]}" apt-get update
	log "running: apt-get install -y --no-install-recommends ${missing[*]}"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${missing[@]}"

	for pair in "${APT_CHECKS[@]}"; do
		cmd="${pair%% *}"
		command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after apt-get install"
	done
}

# ---------------------------------------------------------------- go tools
gobin() {
	local bin
	bin="$(go env GOBIN)"
	if [[ -z "$bin" ]]; then
		bin="$(go env GOPATH)/bin"
	fi
	printf '%s\n' "$bin"
}

# go_tool NAME MODULE@VERSION: go install MODULE@VERSION unless NAME is already
# on PATH or in the Go bin directory.
go_tool() {
	local name="$1" pkg="$2" bin start
	bin="$(gobin)"
	if command -v "$name" >/dev/null 2>&1; then
		log "ok: $name ($(command -v "$name"))"
		return 0
	fi
	if [[ -x "$bin/$name" ]]; then
		log "ok: $name ($bin/$name; add $bin to PATH to call it by name)"
		return 0
	fi
	log "missing: $name; running: go install $pkg"
	start=$SECONDS
	go install "$pkg"
	log "installed $name into $bin in $((SECONDS - start))s"
}

install_go_tools() {
	command -v go >/dev/null 2>&1 || die "go not found on PATH"
	go_tool staticcheck "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
	go_tool k6 "go.k6.io/k6@${K6_VERSION}"
	case ":$PATH:" in
	*":$(gobin):"*) ;;
	*) log "note: $(gobin) is not on PATH; add it to call staticcheck and k6 by name" ;;
	esac
}

main() {
	if [[ "${SKIP_APT:-0}" == 1 ]]; then
		log "SKIP_APT=1: not checking Debian packages"
	else
		install_apt
	fi
	if [[ "${SKIP_GO_TOOLS:-0}" == 1 ]]; then
		log "SKIP_GO_TOOLS=1: not checking staticcheck / k6"
	else
		install_go_tools
	fi
	log "done"
}

main "$@"
