#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what is missing
# (scripts/install.sh: Java and Maven to fetch and run Apache Kafka, kcat),
# starts a single-node Apache Kafka broker from Maven Central jars (cached
# under ~/.cache/sluice) unless KAFKA_BROKERS names one, runs every test with
# the race detector, and stops the broker.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
exec go run ./internal/kafkalocal/cmd/kafkalocal -- go test -race -count=1 -timeout 20m "$@" ./...
