# Shortcuts; each target is one command you can also run by hand.
.PHONY: test chaos bench run

# The whole test suite against a real Kafka broker it starts (what .ci/run runs).
test:
	./scripts/test.sh

# A linearizability campaign under faults: runs of CHAOS_RUN each for CHAOS in
# all, then a summary line (runs, operations checked, faults, violations).
CHAOS ?= 10m
CHAOS_RUN ?= 60s
chaos:
	go run ./internal/kafkalocal/cmd/kafkalocal -- env SLUICE_CHAOS=$(CHAOS) SLUICE_CHAOS_RUN=$(CHAOS_RUN) \
		go test -count=1 -v -timeout 0 -run 'TestLinearizableUnderFaults' ./integration

# The sluice bench figures of BENCHMARKS.md.
bench:
	./scripts/benchmarks.sh

# One node with its embedded Kafka.
run:
	go run ./cmd/sluice serve
