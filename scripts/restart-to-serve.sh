#!/usr/bin/env bash
# Restart-to-serve of a node on its own disk: starts `sluice serve`, waits
# until /healthz answers ok (every partition serves), kills it with SIGKILL,
# and starts it again on the same data directory, N times (default 20); prints
# each time and the median and max. The first start (a new data directory) is
# not counted.
#
#   scripts/restart-to-serve.sh                       # embedded broker
#   scripts/restart-to-serve.sh 20 --brokers 127.0.0.1:29092 --cluster rts-$RANDOM
#
# SLUICE_BIN picks the binary (default: built from this tree).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
shift || true
bin=${SLUICE_BIN:-}
work=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$work"' EXIT
if [ -z "$bin" ]; then
	go build -o "$work/sluice" ./cmd/sluice
	bin=$work/sluice
fi
port=$((20000 + RANDOM % 10000))
args=(serve --data-dir "$work/data" --data-addr "127.0.0.1:$port" --control-addr "127.0.0.1:$((port + 1))"
	--http-addr "127.0.0.1:$((port + 2))" --embedded-kafka-addr "127.0.0.1:$((port + 3))" --log-format json "$@")
pid=
times=()
for i in $(seq 0 "$n"); do
	start=$(date +%s%N)
	"$bin" "${args[@]}" >>"$work/node.log" 2>&1 &
	pid=$!
	until curl -sf "http://127.0.0.1:$((port + 2))/healthz" >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "sluice exited; log: $work/node.log" >&2
			tail -20 "$work/node.log" >&2
			exit 1
		fi
		sleep 0.02
	done
	ms=$((($(date +%s%N) - start) / 1000000))
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	if [ "$i" -gt 0 ]; then
		times+=("$ms")
		echo "restart $i: ${ms} ms"
	fi
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "restart to serving over ${#sorted[@]} restarts: median ${sorted[$((${#sorted[@]} / 2))]} ms, max ${sorted[-1]} ms"
