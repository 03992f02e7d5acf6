#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what is missing
# (scripts/install.sh: Java and Maven to fetch and run Apache Kafka, kcat),
# starts a single-node Apache Kafka broker from Maven Central jars (cached
# under ~/.cache/sluice) unless KAFKA_BROKERS names one, runs every test with
# the race detector (after gofmt, go vet and staticcheck), and stops the
# broker.
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
exec go run ./internal/kafkalocal/cmd/kafkalocal -- go test -race -count=1 -timeout 45m "$@" ./...
