#!/usr/bin/env bash
# Benchmarks every storage mode with `sluice bench` against one node, the
# figures of BENCHMARKS.md's "Storage modes" section: for each mode a fresh
# node, a 20 s warm-up that writes the 100,000 keys the reads use, then RUNS
# (default 3) runs of DURATION (default 10s) of batched upserts, single-key
# upserts and gets, rounds alternating between the modes; then the fsync
# ceiling of the data directory's disk. The kafka modes use KAFKA_BROKERS
# (a local Apache Kafka is started when unset); disk and none need no broker
# (the node's embedded one holds only the registry).
#
#   MODES="kafka disk" RUNS=5 ./scripts/bench-modes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${KAFKA_BROKERS:-}" ]; then
  exec go run ./internal/kafkalocal/cmd/kafkalocal -- "$0" "$@"
fi
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
MODES=${MODES:-"kafka disk none kafka-cached disk-cached"}
out=bench-results/modes
mkdir -p "$out"
go build -o "$out/sluice" ./cmd/sluice
work=$(mktemp -d)
node=
cleanup() { [ -n "$node" ] && kill "$node" 2>/dev/null && wait "$node" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cluster="bench$(date +%s)"
flags() {
  case $1 in
    kafka) echo "--brokers $KAFKA_BROKERS --cluster $cluster-k" ;;
    kafka-cached) echo "--brokers $KAFKA_BROKERS --cluster $cluster-kc --store cached --cache-dir $work/$1-cache" ;;
    disk) echo "--wal disk --embedded-kafka-addr 127.0.0.1:0" ;;
    disk-cached) echo "--wal disk --store cached --cache-dir $work/$1-cache --embedded-kafka-addr 127.0.0.1:0" ;;
    none) echo "--wal none --snapshot-url file://$work/$1-bucket --embedded-kafka-addr 127.0.0.1:0" ;;
  esac
}
start() {
  mkdir -p "$work/$1-data" "$work/$1-bucket"
  # shellcheck disable=SC2046
  "$out/sluice" serve $(flags "$1") --data-dir "$work/$1-data" \
    --data-addr 127.0.0.1:17400 --control-addr 127.0.0.1:17401 --http-addr 127.0.0.1:17402 --log-level warn &
  node=$!
  for _ in $(seq 300); do curl -sf 127.0.0.1:17402/healthz >/dev/null && return; sleep 0.2; done
  echo "node of mode $1 did not serve" >&2; exit 1
}
stop() { kill "$node"; wait "$node" 2>/dev/null || true; node=; }
bench() { "$out/sluice" bench --addr 127.0.0.1:17400 "$@"; }
# appends: the group commits (appends to the write-ahead log) so far, all partitions.
appends() { curl -s 127.0.0.1:17402/metrics | awk '/^sluice_changelog_append_seconds_count/ {n += $2} END {print n+0}'; }
for mode in $MODES; do
  start "$mode"
  bench -w upsert-batch --keys 100000 -d 20s >/dev/null 2>&1
  stop
done
for r in $(seq "$RUNS"); do
  for mode in $MODES; do
    start "$mode" # the same data directory: the 100,000 keys are there
    for w in upsert-batch upsert get; do
      a=$(appends); t0=$(date +%s.%N)
      bench -w "$w" -d "$DURATION" --json "$out/$mode-$w-$r.json" 2>/dev/null | sed -n 2,3p | tr '\n' ' ' | sed "s/^/$mode $w run $r: /"
      echo " group commits/s $(echo "($(appends) - $a) / ($(date +%s.%N) - $t0)" | bc)"
    done
    stop
  done
done
go run ./bench/fsync -dir "$work" -writers 1,4 -d 5s
