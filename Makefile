# Sluice — run `make` for the list of targets.
GO        ?= go
BIN       := bin/sluice
PKGS      := ./...
TEST_FLAGS ?= -race -count=1 -timeout 20m

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show the targets and what they do
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/sluice
	$(GO) build -o $(BIN) ./cmd/sluice

.PHONY: run
run: build ## Start a playground: Kafka on 127.0.0.1:9092, data under ./data
	./$(BIN) playground --data-dir ./data --kafka-addr 127.0.0.1:9092 --http-addr 127.0.0.1:8080

.PHONY: test
test: ## Run the whole test suite (vet, race detector, real clients)
	$(GO) vet $(PKGS)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) test $(TEST_FLAGS) $(PKGS)

.PHONY: test-short
test-short: ## Quick test pass without the race detector
	$(GO) test -short -count=1 $(PKGS)

.PHONY: bench
bench: ## Go benchmarks of the hot paths and the in-process produce path (-benchmem)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./codec/ ./meta/ ./cache/ ./pipeline/ ./server/
	$(GO) test -run '^$$' -bench 'ProduceLoopback' -benchmem -benchtime 5s -count 1 ./agent/

.PHONY: bench-latency
bench-latency: ## Produce acks=all latency at light load through an in-process agent (~90s)
	$(GO) test -run '^$$' -bench 'ProduceLatency' -benchtime 1x -count 1 ./agent/

.PHONY: fuzz
fuzz: ## Fuzz the decoders for 30s each
	$(GO) test -run '^$$' -fuzz '^FuzzOpenSegment$$' -fuzztime 30s ./codec/
	$(GO) test -run '^$$' -fuzz '^FuzzValidateBatch$$' -fuzztime 30s ./codec/
	$(GO) test -run '^$$' -fuzz '^FuzzParseRequest$$' -fuzztime 30s ./server/

.PHONY: lint
lint: ## go vet and staticcheck
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

.PHONY: clean
clean: ## Remove build output (not ./data)
	rm -rf bin
