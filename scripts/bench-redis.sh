#!/usr/bin/env bash
# Compares one sluice node with Redis on this machine, the same clients
# against both (BENCHMARKS.md, "sluice and Redis"). Starts Debian's
# redis-server (no persistence: --save '' --appendonly no) and one sluice
# node (the embedded broker, or Kafka at $KAFKA_BROKERS) with its RESP port,
# writes the KEYS keys (default 100,000) of 100-byte values into both, then
# runs ROUNDS rounds (default 3), each alternating between the two:
#
#   redis-benchmark GET, SET, MGET (10 keys) and PING against Redis and
#   against sluice's RESP port (-c CLIENTS, default 32; -d 100; -r KEYS);
#   sluice bench -w get, -w upsert, -w get-many --batch 10 and -w ping
#   against sluice's gRPC port (-c CLIENTS, DURATION each, default 5s).
#
# and prints, per row, the median of the rounds (ops/s, and p99 ms for the
# redis-benchmark rows), and sluice ÷ Redis. Every run's own line goes to
# bench-results/redis-*.txt. Everything it started is stopped on exit.
#
#   ./scripts/bench-redis.sh
#   ROUNDS=5 CLIENTS=64 ./scripts/bench-redis.sh
#   KAFKA_BROKERS=127.0.0.1:19092 ./scripts/bench-redis.sh   # sluice on a real Kafka
#   RESP_CONSISTENCY=eventual ./scripts/bench-redis.sh  # the RESP rows read EVENTUAL (--resp-consistency)
#
# redis-benchmark's request counts are fixed per run; the defaults aim at a
# few seconds each on a 2-core machine (Redis ~100 k ops/s; sluice's single-key
# writes are Kafka transactions, ~5 k/s): REDIS_N, SLUICE_N, SLUICE_SET_N.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
RESP_CONSISTENCY=${RESP_CONSISTENCY:-linearizable}
CLIENTS=${CLIENTS:-32}
KEYS=${KEYS:-100000}
DURATION=${DURATION:-5s}
REDIS_N=${REDIS_N:-300000}
SLUICE_N=${SLUICE_N:-100000}
SLUICE_SET_N=${SLUICE_SET_N:-20000}
REDIS_PORT=${REDIS_PORT:-16390}
RESP_PORT=${RESP_PORT:-16379}
BASE_PORT=${BASE_PORT:-17500} # sluice's data, control, HTTP and embedded broker ports: BASE_PORT..+3

for c in redis-server redis-benchmark redis-cli; do
  command -v "$c" >/dev/null || { echo "bench-redis: $c is missing: run ./scripts/install.sh (Debian's redis-server and redis-tools)" >&2; exit 1; }
done
for p in "$REDIS_PORT" "$RESP_PORT" "$BASE_PORT" $((BASE_PORT + 1)) $((BASE_PORT + 2)) $((BASE_PORT + 3)); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "bench-redis: port $p is taken: set REDIS_PORT, RESP_PORT or BASE_PORT" >&2
    exit 1
  fi
done

out=bench-results
mkdir -p "$out"
go build -o "$out/sluice" ./cmd/sluice
if ! "$out/sluice" serve --help | grep -q -- --resp-addr; then
  echo "bench-redis: this sluice has no --resp-addr (the RESP endpoint)" >&2
  exit 1
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
brokers=()
[ -n "${KAFKA_BROKERS:-}" ] && brokers=(--brokers "$KAFKA_BROKERS")
"$out/sluice" serve "${brokers[@]}" --cluster "redis$(date +%s)" --data-dir "$work/sluice" \
  --data-addr "127.0.0.1:$BASE_PORT" --control-addr "127.0.0.1:$((BASE_PORT + 1))" \
  --http-addr "127.0.0.1:$((BASE_PORT + 2))" --embedded-kafka-addr "127.0.0.1:$((BASE_PORT + 3))" \
  --resp-addr "127.0.0.1:$RESP_PORT" --resp-consistency "$RESP_CONSISTENCY" --log-level warn >"$work/sluice.log" 2>&1 &
pids+=($!)
for i in $(seq 150); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && curl -sf "127.0.0.1:$((BASE_PORT + 2))/healthz" >/dev/null && break
  [ "$i" = 150 ] && { echo "bench-redis: Redis or sluice did not come up; their logs:" >&2; cat "$work/redis.log" "$work/sluice.log" >&2; exit 1; }
  sleep 0.2
done

# The keys: redis-benchmark's -r KEYS draws key:000000000000 … key:<KEYS-1>,
# twelve digits. Redis takes them through one pipe; sluice through gRPC
# batches of 100 (sluice bench, the prefix key:0000 and its eight digits:
# the same names), a second where single-key SETs take tens.
value=$(head -c 100 /dev/zero | tr '\0' x)
awk -v n="$KEYS" -v v="$value" 'BEGIN { for (i = 0; i < n; i++) printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$100\r\n%s\r\n", i, v }' |
  redis-cli -p "$REDIS_PORT" --pipe >/dev/null
sb() { "$out/sluice" bench --addr "127.0.0.1:$BASE_PORT" --key-prefix key:0000 --keys "$KEYS" -c "$CLIENTS" "$@"; }
sb -w upsert-batch --dist sequential --ops $(((KEYS + 99) / 100)) >/dev/null 2>&1
have=$(redis-cli -p "$REDIS_PORT" dbsize)
got=$(redis-cli -p "$RESP_PORT" get "key:$(printf %012d $((KEYS - 1)))" | wc -c)
if [ "$have" != "$KEYS" ] || [ "$got" -lt 100 ]; then
  echo "bench-redis: the fill failed: Redis holds $have keys, sluice's last key has $got bytes" >&2
  exit 1
fi

# rb PORT N ARGS...: one redis-benchmark run; prints "rps p99".
rb() {
  local port=$1 n=$2
  shift 2
  redis-benchmark -p "$port" -c "$CLIENTS" -d 100 -r "$KEYS" -n "$n" --csv -q "$@" 2>/dev/null |
    awk -F'"' 'NR == 2 { print $4, $14 }'
}
mget=(MGET)
for i in $(seq 10); do mget+=("key:__rand_int__"); done
mget100=(MGET)
for i in $(seq 100); do mget100+=("key:__rand_int__"); done
results="$out/redis-$(date +%Y%m%d-%H%M%S).txt"
# Each row: a name, what runs against Redis, what against sluice.
run_round() {
  local r=$1 line
  record() { echo "$1 round $r: $2" | tee -a "$results"; }
  record "GET redis" "$(rb "$REDIS_PORT" "$REDIS_N" -t get)"
  record "GET resp" "$(rb "$RESP_PORT" "$SLUICE_N" -t get)"
  record "SET redis" "$(rb "$REDIS_PORT" "$REDIS_N" -t set)"
  record "SET resp" "$(rb "$RESP_PORT" "$SLUICE_SET_N" -t set)"
  record "MGET10 redis" "$(rb "$REDIS_PORT" "$REDIS_N" "${mget[@]}")"
  record "MGET10 resp" "$(rb "$RESP_PORT" "$SLUICE_N" "${mget[@]}")"
  record "MGET100 redis" "$(rb "$REDIS_PORT" $((REDIS_N / 10)) "${mget100[@]}")"
  record "MGET100 resp" "$(rb "$RESP_PORT" $((SLUICE_N / 5)) "${mget100[@]}")"
  record "PING redis" "$(rb "$REDIS_PORT" "$REDIS_N" -t ping_mbulk)"
  record "PING resp" "$(rb "$RESP_PORT" "$SLUICE_N" -t ping_mbulk)"
  # sluice bench: "throughput  N ops/s" or "N calls/s = M keys/s"; p99 from its latency line.
  for w in "GET grpc|-w get" "GET-EV grpc|-w get-eventual" "SET grpc|-w upsert" "MGET10 grpc|-w get-many --batch 10" \
    "MGET100 grpc|-w get-many --batch 100" "MGET100-EV grpc|-w get-many-eventual --batch 100" "PING grpc|-w ping"; do
    line=$(sb ${w#*|} -d "$DURATION" 2>/dev/null | awk '/^throughput/ { rps = $2 } /p99 / { for (i = 1; i <= NF; i++) if ($i == "p99") p99 = $(i + 1) } END { print rps, p99 }')
    record "${w%%|*}" "$line"
  done
}
for r in $(seq "$ROUNDS"); do run_round "$r"; done

echo
echo "medians of $ROUNDS rounds, $CLIENTS clients, $KEYS keys of 100 bytes, RESP reads $RESP_CONSISTENCY ($results):"
awk '
  function median(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { key = $1 " " $2; rps[key] = rps[key] " " $5; p99[key] = p99[key] " " $6 }
  END {
    printf "%-10s %14s %14s %14s %12s %12s   %s\n", "", "redis ops/s", "resp ops/s", "grpc ops/s", "resp/redis", "grpc/redis", "p99 ms redis / resp / grpc"
    n = split("GET GET-EV SET MGET10 MGET100 MGET100-EV PING", rows, " ")
    for (i = 1; i <= n; i++) {
      row = rows[i]; base = row; sub(/-EV$/, "", base) # an EVENTUAL row against the same Redis runs
      red = median(rps[base " redis"]); re = median(rps[row " resp"]); gr = median(rps[row " grpc"])
      if (rps[row " resp"] == "") # no RESP run for this row
        printf "%-10s %14.0f %14s %14.0f %12s %11.2fx   %s / - / %s\n", row, red, "-", gr, "-", (red ? gr / red : 0), median(p99[base " redis"]), median(p99[row " grpc"])
      else
        printf "%-10s %14.0f %14.0f %14.0f %11.2fx %11.2fx   %s / %s / %s\n", row, red, re, gr, (red ? re / red : 0), (red ? gr / red : 0),
          median(p99[base " redis"]), median(p99[row " resp"]), median(p99[row " grpc"])
    }
  }' "$results"
echo "(MGET10, MGET100: calls/s of 10 or 100 keys each; grpc is GetMany. gRPC GET and GetMany are LINEARIZABLE, RESP reads $RESP_CONSISTENCY (--resp-consistency); -EV rows are gRPC's EVENTUAL against the same Redis runs. SET: Redis keeps it in memory; sluice commits each to its Kafka changelog first.)"
