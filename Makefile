# Shortcuts; each target is one command you can also run by hand.
.PHONY: test unit verify chaos sim bench run

# The whole test suite against a real Kafka broker it starts (what .ci/run runs).
test:
	./scripts/test.sh

# The packages whose tests need no Kafka broker, in seconds (the simulator
# at its -short budget).
UNIT = ./clock ./keyspace ./kv ./pagetoken ./pipeline ./router ./wal/... ./store \
	./snapshot ./partition/... ./client ./internal/kvmodel ./internal/retry \
	./internal/tlsfiles ./internal/kfakerepair ./internal/layers ./kafkasec
unit:
	go test -short -count=1 $(UNIT)

# Formatting, vet, staticcheck (from the module proxy, pinned) and the
# generated protobuf code up to date with proto/ (needs protoc: apt-get
# install protobuf-compiler).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
verify:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l: not formatted:"; echo "$$out"; exit 1; fi
	go vet ./...
	go run $(STATICCHECK) ./...
	go generate ./proto
	@git diff --exit-code --stat -- proto/ || { echo "proto/: the generated code is not what go generate ./proto makes from the .proto files; commit the regenerated code"; exit 1; }

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
