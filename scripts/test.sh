#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what is missing (Java and
# Maven to fetch and run Apache Kafka, kcat), starts a single-node Apache Kafka
# broker from Maven Central jars (cached under ~/.cache/sluice) unless
# KAFKA_BROKERS names one, runs every test with the race detector, and stops
# the broker.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v java >/dev/null || need+=(default-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v kcat >/dev/null || need+=(kcat)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q >&2
  $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2
fi

exec go run ./internal/kafkalocal/cmd/kafkalocal -- go test -race -count=1 -timeout 20m "$@" ./...
