# Sluice — run `make` for the list of targets.
GO        ?= go
BIN       := bin/sluice
# ./e2e first: go test starts packages in the order named (at most two
# at once on two cores), and e2e is the longest by far (about 8 of the
# suite's minutes, much of it waiting), so starting it first lets the
# other packages fill the second core beside it instead of after it.
PKGS      := ./e2e ./...
TEST_FLAGS ?= -race -count=1 -timeout 20m
# The control plane's packages whose suites run on both stores (make test,
# test-postgres): SLUICE_META_STORE=postgres switches meta/controller's
# suite to PostgreSQL; meta/kv's tests use PostgreSQL in either mode.
META_STORE_PKGS := ./meta/controller ./meta/kv ./meta/groups

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show the targets and what they do
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The version and commit `sluice version` prints (issue 16, cli): the
# nearest tag or the commit, "-dirty" for uncommitted changes. Go's own
# build info has the commit too, but not where VCS stamping is off
# (-buildvcs=false) or .git is a worktree's file.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build
build: ## Build bin/sluice
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/sluice

.PHONY: run
run: build ## Start a playground: Kafka on 127.0.0.1:9092, data under ./data
	./$(BIN) playground --data-dir ./data --kafka-addr 127.0.0.1:9092 --http-addr 127.0.0.1:8080

.PHONY: test
test: ## Run the whole test suite (vet, race detector, real clients; meta on both stores)
	$(GO) vet $(PKGS)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) test $(TEST_FLAGS) $(PKGS)
	SLUICE_META_STORE=postgres $(GO) test $(TEST_FLAGS) $(META_STORE_PKGS)

.PHONY: test-postgres
test-postgres: ## Run the meta suite on PostgreSQL (SLUICE_TEST_POSTGRES, or a server of its own)
	SLUICE_META_STORE=postgres $(GO) test $(TEST_FLAGS) $(META_STORE_PKGS)

.PHONY: test-short
test-short: ## Quick test pass without the race detector
	$(GO) test -short -count=1 $(PKGS)

.PHONY: bench
bench: ## Go benchmarks of the hot paths and the in-process produce path (-benchmem)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./codec/ ./meta/controller/ ./cache/ ./pipeline/ ./server/
	$(GO) test -run '^$$' -bench CompactLayoutPut -benchmem -count 1 ./jobs/
	$(GO) test -run '^$$' -bench 'ProduceLoopback|FetchLoopback' -benchmem -benchtime 5s -count 1 ./agent/

.PHONY: bench-latency
bench-latency: ## Produce acks=all latency at light load through an in-process agent (~90s)
	$(GO) test -run '^$$' -bench 'ProduceLatency' -benchtime 1x -count 1 ./agent/

.PHONY: bench-meta
bench-meta: ## Meta after 30, 8 and 1 days of load (64 partitions, 4 segments/s, 7-day retention) on both stores: open, heap, store size, takeover (~15 min)
	$(GO) test -count=1 -timeout 90m -run '^TestMetaMonth$$' -v ./meta/controller/ -meta.month

.PHONY: fuzz
fuzz: ## Fuzz the decoders for 30s each
	$(GO) test -run '^$$' -fuzz '^FuzzOpenSegment$$' -fuzztime 30s ./codec/
	$(GO) test -run '^$$' -fuzz '^FuzzValidateBatch$$' -fuzztime 30s ./codec/
	$(GO) test -run '^$$' -fuzz '^FuzzValidateRecords$$' -fuzztime 30s ./codec/
	$(GO) test -run '^$$' -fuzz '^FuzzParseRequest$$' -fuzztime 30s ./server/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 30s ./meta/rpc/
	$(GO) test -run '^$$' -fuzz '^FuzzReopen$$' -fuzztime 30s ./meta/controller/
	$(GO) test -run '^$$' -fuzz '^FuzzRecordFormat$$' -fuzztime 30s ./ctl/

.PHONY: test-reopen
test-reopen: ## Long reopen property run of meta on both stores (5,000 steps each)
	$(GO) test -count=1 -timeout 60m -run '^TestReopenProperty$$' ./meta/controller/ -reopen.steps 5000
	SLUICE_META_STORE=postgres $(GO) test -count=1 -timeout 60m -run '^TestReopenProperty$$' ./meta/controller/ -reopen.steps 5000

# COMPARE_QUICK=1 runs every load for a second, once: it checks the
# harness (as TestQuick does in CI) and writes neither BENCHMARKS.md nor
# bench/results/.
COMPARE_OUT := $(if $(COMPARE_QUICK),--out "" --results "",--out BENCHMARKS.md --results bench/results)

.PHONY: compare
compare: build ## Sluice vs franz-go's kfake (durable, in memory), alternating (~14 min; COMPARE_QUICK=1: ~1 min); writes BENCHMARKS.md and bench/results/
	$(GO) build -o bin/kfake ./bench/kfake
	$(GO) run ./bench/compare --sluice $(BIN) --kfake bin/kfake $(COMPARE_OUT)

.PHONY: bench-compaction
bench-compaction: build ## compaction's figures (object sizes by age, write amplification, catch-up GETs per GiB, produce with and without compaction): about 20 minutes
	BIN=./$(BIN) bench/scripts/compaction.sh

.PHONY: loadtest
loadtest: build ## 2-minute soak with faults on a cluster of its own; fails on any loss, duplicate, gap or reordering
	./$(BIN) loadtest --duration 2m

.PHONY: loadtest-txn
loadtest-txn: build ## 5-minute soak of transactional producers with faults; fails unless read_committed shows every committed transaction once and no aborted one
	./$(BIN) loadtest --transactions --duration 5m --producers 8 --rate 800 --fault-every 20s

.PHONY: loadtest-lifecycle
loadtest-lifecycle: build ## 10-minute soak with 60s retention and jobs every 10s; fails unless bucket and index plateau and no orphan is left
	./$(BIN) loadtest --duration 10m --retention 60s --compaction 10s

.PHONY: lint
lint: ## go vet and staticcheck
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

# Code generation. The plugins are pinned and installed into ./bin so that
# every machine generates the same code; protoc itself comes from the
# system (apt-get install protobuf-compiler). CI does not generate: it
# builds the committed meta/metapb/*.pb.go.
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0

.PHONY: generate
generate: ## Regenerate meta/metapb from meta.proto (needs protoc)
	GOBIN=$(CURDIR)/bin $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(CURDIR)/bin $(GO) install $(PROTOC_GEN_GO_GRPC)
	protoc --plugin=protoc-gen-go=$(CURDIR)/bin/protoc-gen-go \
	  --plugin=protoc-gen-go-grpc=$(CURDIR)/bin/protoc-gen-go-grpc \
	  --proto_path=meta/metapb \
	  --go_out=meta/metapb --go_opt=paths=source_relative \
	  --go-grpc_out=meta/metapb --go-grpc_opt=paths=source_relative \
	  meta/metapb/meta.proto

.PHONY: clean
clean: ## Remove build output (not ./data)
	rm -rf bin

# Deploy (issue 16): the container image, the Helm chart, the Grafana
# dashboards. deploy/ is a Go module of its own (sluice.dev/deploy) so
# that go-containerregistry, Helm and the Kubernetes API types pin their
# versions there without entering the server's go.mod; `go test ./...`
# at the root does not see it, so `deploy-test` (run by .ci/run) does.
# VERSION and LDFLAGS are build's (above).

.PHONY: image
image: ## Container image without a Docker daemon: bin/image (OCI layout), bin/sluice-image.tar (docker load)
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o bin/linux/sluice ./cmd/sluice
	cd deploy && $(GO) run ./image --binary ../bin/linux/sluice --version $(VERSION) \
	  --oci-layout ../bin/image --tarball ../bin/sluice-image.tar --tag sluice:$(VERSION)

.PHONY: chart-check
chart-check: ## Lint and render the Helm chart (Helm's packages, pinned in deploy/go.mod) and validate every manifest against the Kubernetes API types, offline
	cd deploy && $(GO) test -count=1 -run '^TestChart' ./helm

.PHONY: deploy-test
deploy-test: ## deploy/'s vet, staticcheck and tests: the image (built, inspected, run), chart-check, the Grafana dashboards against live /metrics
	cd deploy && $(GO) vet ./...
	cd deploy && $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	@unformatted=$$(gofmt -l deploy); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	cd deploy && $(GO) test -count=1 -timeout 15m ./...
