#!/usr/bin/env bash
# Starts or stops a Docker engine for the Docker-based tests (the compose
# test, the three-broker tests), on a machine where nothing starts one.
#
#   ./scripts/docker-engine.sh start   # install (Debian: docker.io, docker-compose,
#                                      # debootstrap, curl), start dockerd unless one answers
#   ./scripts/docker-engine.sh stop    # remove the tests' containers (by label) and
#                                      # stop the dockerd that start started, if any
#
# start exits non-zero, saying why, where no engine can be had (no apt-get, not
# root, dockerd fails to start): scripts/test.sh then runs without Docker.
# dockerd runs with --ip=127.0.0.1 (a port published without an address binds
# to loopback only) and --iptables=false (it leaves the host's firewall and
# connection tracking alone; builds use --network=host).
set -euo pipefail
cd "$(dirname "$0")/.."
state=${XDG_CACHE_HOME:-$HOME/.cache}/sluice/docker
mkdir -p "$state"
pidfile=$state/dockerd.pid

cleanup_containers() {
  # Containers of a failed run: testcontainers' (no reaper here) and the
  # compose test's projects (named sluicetest*).
  docker ps -aq --filter label=org.testcontainers=true | xargs -r docker rm -f >/dev/null || true
  docker ps -aq --filter label=dev.sluice.test=true | xargs -r docker rm -f >/dev/null || true
  for p in $(docker ps -a --format '{{.Label "com.docker.compose.project"}}' | grep '^sluicetest' | sort -u); do
    docker ps -aq --filter "label=com.docker.compose.project=$p" | xargs -r docker rm -f >/dev/null || true
    docker volume ls -q --filter "label=com.docker.compose.project=$p" | xargs -r docker volume rm >/dev/null || true
    docker network ls -q --filter "label=com.docker.compose.project=$p" | xargs -r docker network rm >/dev/null || true
  done
  docker network ls -q --filter label=dev.sluice.test=true | xargs -r docker network rm >/dev/null || true
}

start() {
  local pkgs=() sudo=()
  command -v dockerd >/dev/null || pkgs+=(docker.io)
  command -v docker-compose >/dev/null || pkgs+=(docker-compose)
  command -v debootstrap >/dev/null || pkgs+=(debootstrap)
  command -v curl >/dev/null || pkgs+=(curl) # the README's compose block calls it
  if [ ${#pkgs[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
      echo "docker-engine: missing ${pkgs[*]} and no apt-get here" >&2
      return 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
      sudo -n true 2>/dev/null || { echo "docker-engine: missing ${pkgs[*]}; installing needs root" >&2; return 1; }
      sudo=(sudo)
    fi
    echo "docker-engine: installing ${pkgs[*]}" >&2
    apt-cache show "${pkgs[@]}" >/dev/null 2>&1 ||
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-upgrade "${pkgs[@]}" >/dev/null
  fi
  # Debian has Compose v1 only: `docker compose ...` (v2's spelling, the
  # README's) calls it through a CLI plugin (which must describe itself).
  if ! docker compose version >/dev/null 2>&1; then
    local plugins=/usr/local/lib/docker/cli-plugins
    "${sudo[@]}" mkdir -p "$plugins"
    "${sudo[@]}" tee "$plugins/docker-compose" >/dev/null <<'PLUGIN'
#!/bin/sh
if [ "$1" = docker-cli-plugin-metadata ]; then
  echo '{"SchemaVersion":"0.1.0","Vendor":"sluice scripts/docker-engine.sh","Version":"1","ShortDescription":"Docker Compose v1 (Debian)"}'
  exit 0
fi
[ "$1" = compose ] && shift
exec /usr/bin/docker-compose "$@"
PLUGIN
    "${sudo[@]}" chmod +x "$plugins/docker-compose"
  fi
  if docker info >/dev/null 2>&1; then
    echo "docker-engine: an engine already answers; using it" >&2
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "docker-engine: no engine answers and starting dockerd needs root" >&2
    return 1
  fi
  dockerd --ip=127.0.0.1 --iptables=false >"$state/dockerd.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && { echo "docker-engine: dockerd started (pid $(cat "$pidfile"))" >&2; return 0; }
    kill -0 "$(cat "$pidfile")" 2>/dev/null || break
    sleep 0.5
  done
  echo "docker-engine: dockerd did not start; the end of $state/dockerd.log:" >&2
  tail -n 20 "$state/dockerd.log" >&2
  stop
  return 1
}

stop() {
  docker info >/dev/null 2>&1 && cleanup_containers
  [ -f "$pidfile" ] || return 0
  # An engine of our own: also the stopped containers a failed image build
  # leaves (the legacy builder keeps a failed step's container).
  docker container prune -f >/dev/null 2>&1 || true
  local pid
  pid=$(cat "$pidfile")
  rm -f "$pidfile"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 60); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -9 "$pid" 2>/dev/null || true
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
