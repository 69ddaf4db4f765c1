# hangoutd: make run (build and start on the defaults), make test (everything CI runs).
GO      ?= go
BIN     := bin/hangoutd
FUZZTIME ?= 30s
SHELL   := /bin/bash

.PHONY: all build run cluster test test-short vet fmt-check fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN) .

run: build
	./$(BIN)

# A local cluster to try: a nats-server built from the pinned module and
# three nodes joined through it (deploy/cluster-local.sh says where).
cluster: build
	$(GO) build -o bin/nats-server github.com/nats-io/nats-server/v2
	deploy/cluster-local.sh

# The whole suite: formatting, vet, race-checked unit and end-to-end tests
# (fuzz seed corpora included: plain `go test` runs them). testreport prints
# each package's result, the output of failed tests, and at the end which
# tests skipped and why (a missing Chromium or nginx skips theirs).
test: fmt-check vet
	@$(GO) build -o bin/testreport ./internal/testreport
	set -o pipefail; $(GO) test -json -race -shuffle=on -count=1 -timeout 20m ./... | bin/testreport

test-short: fmt-check vet
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Fuzz every target for FUZZTIME (seed corpora alone run in `make test`):
# a duration (30s) or a count of inputs (50000x, what CI uses: a count
# never meets Go 1.26's fuzzing deadline race).
# New inputs are minimized once, briefly: the default minute of minimizing
# would eat short runs.
FUZZPKGS := ./codec/ ./state/ ./cluster/
fuzz:
	@for p in $(FUZZPKGS); do \
		for t in $$($(GO) test -list 'Fuzz.*' $$p | grep ^Fuzz); do \
			echo "== $$p $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1x $$p || exit 1; \
		done; \
	done

# Microbenchmarks of the hot paths, then the standard load set against
# fresh server processes (results in bench/results/); its cluster steps
# run three nodes through a nats-server built from the pinned module.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./codec/ ./state/ ./loop/ ./cluster/
	$(GO) build -o bin/nats-server github.com/nats-io/nats-server/v2
	./$(BIN) bench standard -server-bin ./$(BIN) -out bench/results

clean:
	rm -rf bin
