#!/usr/bin/env bash
# fuzz.sh FUZZTIME PKG:TARGET...: runs each fuzz target for FUZZTIME.
#
# Go's fuzzing engine sometimes ends a run with "context deadline exceeded"
# when -fuzztime expires while a worker is busy (typically minimizing a new
# input on a loaded machine). That is the engine's timeout, not a failure of
# the target: no failing input is written. Such a run is retried once; any
# other failure (a crasher, with its input written to testdata/fuzz) fails.
set -euo pipefail
GO="${GO:-go}"
fuzztime="$1"
shift
for t in "$@"; do
	pkg="${t%%:*}" name="${t##*:}"
	echo "fuzz $pkg $name ($fuzztime)"
	for attempt in 1 2; do
		log="$(mktemp)"
		if "$GO" test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
			cat "$log"
			rm -f "$log"
			break
		fi
		cat "$log"
		if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
			echo "fuzz: $name: the engine timed out (no failing input); running it again"
			rm -f "$log"
			continue
		fi
		rm -f "$log"
		exit 1
	done
done
