# Shortcuts; each target is one command you can also run by hand.
.PHONY: test chaos sim bench run

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

# The partition simulator for SIM in all: seeds one after another, then a
# summary line (seeds, operations checked, faults injected, violations). A
# failing seed prints itself; SLUICE_SEED=<seed> replays it exactly.
SIM ?= 10m
sim:
	SLUICE_SIM=$(SIM) go test -count=1 -v -timeout 0 -run 'TestSimulation' ./partition

# The sluice bench figures of BENCHMARKS.md.
bench:
	./scripts/benchmarks.sh

# One node with its embedded Kafka.
run:
	go run ./cmd/sluice serve
