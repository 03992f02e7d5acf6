#!/usr/bin/env bash
# A/B of sluice binaries, alternating, on this machine (BENCHMARKS.md, "sluice
# and Redis", the writes table). Each round runs every binary in turn: a
# fresh node (embedded broker) and data directory, 100,000 keys written
# first, then each workload for DURATION (default 5s, sluice bench -c 32).
# Prints, per binary and workload, the rate (keys/s for batches) and the
# node's CPU a key (µs, from /proc/PID/stat), then the medians and each
# binary's ratio to the first.
#
#   git worktree add /tmp/old <rev> && (cd /tmp/old && go build -o /tmp/sluice-old ./cmd/sluice)
#   go build -o /tmp/sluice-new ./cmd/sluice
#   ./scripts/bench-ab.sh 5 "old=/tmp/sluice-old new=/tmp/sluice-new" upsert-batch upsert get get-many
#
# A "binary" may be a script that adds flags to `serve` (e.g. --read-cache 0).
set -u
[ $# -ge 3 ] || { echo "usage: $0 ROUNDS \"label=binary ...\" workload..." >&2; exit 2; }
rounds=$1 bins=$2
shift 2
DURATION=${DURATION:-5s}
BASE_PORT=${BASE_PORT:-28400}
out=$(mktemp /tmp/bench-ab-XXXXXX.txt)
hz=$(getconf CLK_TCK)
run() { # binary label workloads...
  local bin=$1 label=$2
  shift 2
  local dir
  dir=$(mktemp -d)
  "$bin" serve --cluster "ab$label" --data-dir "$dir" --data-addr "127.0.0.1:$BASE_PORT" --control-addr "127.0.0.1:$((BASE_PORT + 1))" \
    --http-addr "127.0.0.1:$((BASE_PORT + 2))" --embedded-kafka-addr "127.0.0.1:$((BASE_PORT + 3))" --log-level warn >"$dir.log" 2>&1 &
  local pid=$!
  for _ in $(seq 120); do curl -sf "127.0.0.1:$((BASE_PORT + 2))/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
  "$bin" bench --addr "127.0.0.1:$BASE_PORT" -w upsert-batch --dist sequential --keys 100000 --ops 1000 >/dev/null 2>&1
  for w in "$@"; do
    local t0 t1
    t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    "$bin" bench --addr "127.0.0.1:$BASE_PORT" -w "$w" -d "$DURATION" --json "$dir/r.json" >/dev/null 2>&1
    t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    python3 - "$dir/r.json" "$label" "$w" "$t0" "$t1" "$hz" <<'PY' || echo "$label $w ERR"
import json, sys
d = json.load(open(sys.argv[1])); label, w = sys.argv[2], sys.argv[3]
per = 100 if "batch" in w or "many" in w else 1
keys = d["ops_per_sec"] * per
cpu = (float(sys.argv[5]) - float(sys.argv[4])) / float(sys.argv[6])
print(label, w, round(keys), round(cpu * 1e6 / (d["ops"] * per), 2))
PY
  done
  kill "$pid"
  wait "$pid" 2>/dev/null
  rm -rf "$dir" "$dir.log"
}
for _ in $(seq "$rounds"); do
  for lb in $bins; do run "${lb#*=}" "${lb%%=*}" "$@"; done
done | tee "$out"
echo "medians of $rounds rounds ($out): keys/s, node CPU µs a key"
python3 - "$out" <<'PY'
import collections, statistics, sys
rate, cpu, labels, works = collections.defaultdict(list), collections.defaultdict(list), [], []
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) != 4:
        continue
    l, w = p[0], p[1]
    rate[(l, w)].append(float(p[2])); cpu[(l, w)].append(float(p[3]))
    labels += [l] if l not in labels else []
    works += [w] if w not in works else []
base = labels[0]
print("%-18s" % "workload" + "".join("%22s" % l for l in labels) + "".join("%12s" % (l + "/" + base) for l in labels[1:]))
for w in works:
    m = {l: (statistics.median(rate[(l, w)]), statistics.median(cpu[(l, w)])) for l in labels if rate[(l, w)]}
    print("%-18s" % w + "".join("%14.0f %6.2fus" % m[l] for l in labels if l in m) +
          "".join("%12.2f" % (m[l][0] / m[base][0]) for l in labels[1:] if l in m and base in m))
PY
