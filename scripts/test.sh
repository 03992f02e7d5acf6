#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what is missing
# (scripts/install.sh: Java and Maven to fetch and run Apache Kafka, kcat,
# redis-tools and redis-server),
# starts a single-node Apache Kafka broker from Maven Central jars (cached
# under ~/.cache/sluice) unless KAFKA_BROKERS names one, runs every test with
# the race detector (after gofmt, go vet and staticcheck), and stops the
# broker. Kafka's single broker stays the default for every test; only the
# Docker-based tests use containers.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
# Static checks first: they take seconds and fail fast.
unformatted=$(gofmt -l $(find . -name '*.go' ! -name '*.pb.go' ! -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
go tool staticcheck ./...
# The Docker-based tests (integration/compose) need an engine and locally
# built images: scripts/docker-engine.sh starts one (installing Debian's
# docker.io) and stops it at the end, removing the tests' containers.
# SLUICE_DOCKER=off runs the suite without Docker (those tests skip, saying
# why); where no engine can be started, they skip too.
if [ "${SLUICE_DOCKER:-}" != off ] && ./scripts/docker-engine.sh start; then
  trap './scripts/docker-engine.sh stop' EXIT
  ./scripts/docker-images.sh
  export SLUICE_DOCKER=1
else
  echo "test.sh: no Docker engine: the Docker-based tests skip" >&2
  export SLUICE_DOCKER=off
fi
go run ./internal/kafkalocal/cmd/kafkalocal -- go test -race -count=1 -timeout 45m "$@" ./...
