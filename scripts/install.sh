#!/usr/bin/env bash
# Installs what sluice's tests and tools need on a fresh Debian machine, and
# nothing that is already there. Idempotent: run it every time (scripts/test.sh
# does), so a broken install step fails CI instead of the next new user.
#
#   ./scripts/install.sh            # Go check, then Java and Maven (to fetch and run Kafka), kcat, redis-cli and redis-server
#   ./scripts/install.sh --go       # only the Go check (what running the service needs)
#
# Go itself is not installed here: a missing go, or one older than go.mod asks
# for, is a one-line message saying what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
if ! command -v go >/dev/null; then
  echo "sluice needs Go $want or newer: install it from https://go.dev/dl/ and put it on PATH" >&2
  exit 1
fi
have=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" != "$want" ]; then
  echo "sluice needs Go $want or newer, this machine has $have: install a newer Go from https://go.dev/dl/" >&2
  exit 1
fi

[ "${1:-}" = "--go" ] && exit 0

# Debian package per command: java and mvn fetch and run Apache Kafka; kcat
# produces to Kafka the way a collector would; redis-cli and redis-benchmark
# (redis-tools) drive the RESP port (--resp-addr), and redis-server is what
# scripts/bench-redis.sh measures it against.
pkgs=(default-jre-headless maven kcat redis-tools redis-tools redis-server)
cmds=(java mvn kcat redis-cli redis-benchmark redis-server)
missing=()
for i in "${!cmds[@]}"; do
  command -v "${cmds[$i]}" >/dev/null || missing+=("${pkgs[$i]}")
done

if ! command -v apt-get >/dev/null; then
  [ ${#missing[@]} -eq 0 ] && exit 0
  echo "missing ${missing[*]} and no apt-get here: install them with your package manager" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! sudo -n true 2>/dev/null; then
    # Not root and no password-less sudo: ask only if something is missing.
    [ ${#missing[@]} -eq 0 ] && exit 0
  fi
  sudo=(sudo)
fi
# The same install step runs every time (a no-op for what is installed), so a
# broken step shows on every run, not only on a fresh machine. The package
# lists may be empty on a fresh image: fetch them only then.
[ ${#missing[@]} -gt 0 ] && echo "installing ${missing[*]}" >&2
if ! apt-cache show "${pkgs[@]}" >/dev/null 2>&1; then
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
fi
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-upgrade "${pkgs[@]}" >/dev/null
