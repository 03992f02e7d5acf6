#!/usr/bin/env bash
# Reproduces the sluice bench figures of BENCHMARKS.md: starts a local Apache
# Kafka broker (unless KAFKA_BROKERS is set) and one sluice node against it,
# runs every workload RUNS times (default 3) for DURATION (default 10s) each
# (upsert-batch also paced at 100,000 keys/s, and over 1,000,000 keys, more
# than the version caches hold; ping is the gRPC ceiling in the same setup),
# and prints one line per run; results land in bench-results/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${KAFKA_BROKERS:-}" ]; then
  exec go run ./internal/kafkalocal/cmd/kafkalocal -- "$0" "$@"
fi
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
out=bench-results
mkdir -p "$out"
go build -o "$out/sluice" ./cmd/sluice
data=$(mktemp -d)
cluster="bench$(date +%s)"
"$out/sluice" serve --brokers "$KAFKA_BROKERS" --cluster "$cluster" --data-dir "$data" \
  --data-addr 127.0.0.1:17400 --control-addr 127.0.0.1:17401 --http-addr 127.0.0.1:17402 --log-level warn &
node=$!
trap 'kill $node; wait $node 2>/dev/null; rm -rf "$data"' EXIT
for i in $(seq 100); do curl -sf 127.0.0.1:17402/healthz >/dev/null && break; sleep 0.2; done
bench() { "$out/sluice" bench --addr 127.0.0.1:17400 "$@"; }
# Warm up (and fill the 100,000 keys the reads use).
bench -w upsert-batch --keys 100000 -d 20s >/dev/null 2>&1
# Each line: a name, then the bench arguments.
while read -r name args; do
  for r in $(seq "$RUNS"); do
    bench $args -d "$DURATION" --json "$out/$name-$r.json" 2>/dev/null | sed -n 2,3p | tr '\n' ' ' | sed "s/^/$name run $r: /"; echo
  done
done <<'EOF'
upsert-batch -w upsert-batch
upsert-batch-paced-100k -w upsert-batch --rate 1000
upsert -w upsert
get -w get
get-session -w get-session
get-eventual -w get-eventual
get-many -w get-many
get-many-eventual -w get-many-eventual
scan -w scan
ping -w ping
mix-90-10 -w mix-90-10
mix-50-50 -w mix-50-50
upsert-batch-1M-keys -w upsert-batch --keys 1000000
EOF
for r in $(seq "$RUNS"); do
  bench -w ingest --brokers "$KAFKA_BROKERS" --cluster "$cluster" -d "$DURATION" --json "$out/ingest-$r.json" 2>/dev/null | sed -n 2,3p | tr '\n' ' ' | sed "s/^/ingest run $r: /"; echo
done
