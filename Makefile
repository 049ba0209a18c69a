# shardwatch developer targets. Everything this file installs lands under
# .cache/ (git-ignored) or the Go build/module caches; nothing global.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO ?= go
PKGS ?= ./...
# Flags for `make test`; e.g. make test GOTEST_FLAGS='-count=1 -run TestLease' PKGS=./pkg/checkpoint/...
GOTEST_FLAGS ?= -race -count=1
# Per test binary; the whole suite must stay well under 10 minutes on 2 cores.
TEST_TIMEOUT ?= 8m
# Flags for `make bench` (scripts/bench --help), e.g. BENCH_ARGS='--quick' or '--records 50000 --no-e2e'.
BENCH_ARGS ?=

# Pinned tool versions (run with `go run mod@version`, cached by the Go toolchain).
STATICCHECK_VERSION ?= v0.8.2
# v1.9.0 does not build from the module proxy here (its x/telemetry version is refused).
GOVULNCHECK_VERSION ?= v1.1.4
# Vulnerability database: the public one, or a local copy (file:///abs/path).
GOVULNDB ?= https://vuln.go.dev

LOCALSTACK := scripts/localstack
# Runs a command with the local stack's AWS_* variables exported.
WITH_STACK_ENV = eval "$$($(LOCALSTACK) env)" &&

.PHONY: eval-bots chaos image image-test flaky build test test-examples test-short stack-up stack-down stack-status stack-env lint vulncheck bench bench-cost demo clean

build: ## Build every binary into bin/
	$(GO) build -o bin/ ./cmd/...

test: stack-up browser-deps ## Start the local AWS stack if needed and run every test (unit + integration)
	$(WITH_STACK_ENV) $(GO) test $(GOTEST_FLAGS) -timeout $(TEST_TIMEOUT) $(PKGS)
	$(WITH_STACK_ENV) scripts/test-examples

test-examples: stack-up ## Build examples/ as its own module outside the repo; run its conformance test and its custom consumer's replay
	$(WITH_STACK_ENV) scripts/test-examples

browser-deps: ## Install Debian chromium + chromium-driver when missing (the dashboard's browser test)
	scripts/browser-deps >/dev/null || echo "browser-deps: chromium unavailable; the dashboard browser test will skip (and fail in CI)" >&2

# `make flaky`: run packages N times in a row, each a fresh `go test`
# process, stopping at the first failure; e.g. before every submission:
#   make flaky PKGS=./internal/chaos/... N=10 RUN=TestChaosCI
# Runs take the machine-wide heavy-run lock (HEAVY_LOCK), so repeated
# heavy runs of several checkouts on one machine do not overlap. Already
# holding it (flock ... make flaky)? Pass HEAVY_LOCK= or it waits forever.
N ?= 10
RUN ?=
HEAVY_LOCK ?= /tmp/shardwatch-heavy.lock
LOCKED = $(if $(HEAVY_LOCK),flock $(HEAVY_LOCK))
flaky: stack-up ## Repeat PKGS N times (fresh process each), stop at the first failure: make flaky PKGS=./internal/chaos/... N=10 [RUN=regexp]
	@mkdir -p .cache; $(WITH_STACK_ENV) for i in $$(seq 1 $(N)); do \
		start=$$(date +%s); \
		if ! $(LOCKED) $(GO) test $(GOTEST_FLAGS) -timeout $(TEST_TIMEOUT) $(if $(RUN),-run '$(RUN)') $(PKGS) >.cache/flaky-$$i.log 2>&1; then \
			tail -50 .cache/flaky-$$i.log; echo "flaky: run $$i of $(N) FAILED after $$(( $$(date +%s) - start ))s (log .cache/flaky-$$i.log)"; exit 1; fi; \
		echo "flaky: run $$i of $(N) passed in $$(( $$(date +%s) - start ))s"; \
	done; echo "flaky: $(N) of $(N) runs passed: $(PKGS)"

image-test: ## The slow image test: the real consumer binary's healthcheck inside the unpacked image (SHARDWATCH_IMAGE_FULL=1)
	SHARDWATCH_IMAGE_FULL=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run TestRealConsumerHealthcheckInImage ./internal/ociimage/

test-short: ## Unit tests only: no local stack, integration tests skipped
	SHARDWATCH_SKIP_INTEGRATION=1 $(GO) test -short -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

stack-up: ## Install (first use) and start kinesalite, DynamoDB Local and goaws
	$(LOCALSTACK) up

stack-down: ## Stop the stack this checkout started (others on this machine may use it)
	$(LOCALSTACK) down

stack-status: ## Show the stack's state; fails when a server is down
	$(LOCALSTACK) status

stack-env: ## Print export lines: eval "$$(make -s stack-env)"
	@$(LOCALSTACK) env

lint: ## gofmt (fails on diffs), go vet, staticcheck
	@files=$$(find . -name '*.go' -not -path './.cache/*' -not -path './bin/*' -not -path './node_modules/*'); \
	unformatted=$$(gofmt -l $$files); \
	if [[ -n $$unformatted ]]; then echo "gofmt -w needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)
	@db='$(GOVULNDB)'; reachable=0; \
	case $$db in \
	file://*) [[ -f $${db#file://}/index/db.json ]] && reachable=1 ;; \
	*) command -v curl >/dev/null && curl -sf --max-time 5 -o /dev/null "$$db/index/db.json" && reachable=1 ;; \
	esac; \
	if ((reachable)); then $(MAKE) --no-print-directory vulncheck; else \
	echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	echo "!!! lint: govulncheck SKIPPED: vulnerability DB $$db is not reachable."; \
	echo "!!! Run 'make vulncheck' where it is, or set GOVULNDB=file:///path/to/db."; \
	echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; fi

vulncheck: ## Known vulnerabilities in dependencies (govulncheck against GOVULNDB)
	$(GO) run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) -db '$(GOVULNDB)' $(PKGS)

eval-bots: ## Bot evaluation: User-Agent classifier on pinned npm corpora (.cache/uaeval), then botdetect's behaviour on the shared logs with an injected attack; prints recall/specificity/library share and misses
	scripts/uaeval install >/dev/null
	$(GO) test -count=1 -run 'Eval' -v ./pkg/useragent/
	$(GO) test -count=1 -run 'Eval' -v ./pkg/processors/botdetect/

# The long chaos run: 50 faults on a fixed seed unless told otherwise
# (SHARDWATCH_CHAOS_SEED=... make chaos); about 10 minutes. It takes the
# heavy-run lock too.
SHARDWATCH_CHAOS_SEED ?= 15
export SHARDWATCH_CHAOS_SEED
chaos: ## Chaos run on a private stack (50 faults): SHARDWATCH_CHAOS_SEED, _WORKERS, _SHARDS, _FAULTS (count or kinds), _RATE, _TOPIC (standard|fifo), _DIR
	$(LOCKED) $(GO) run ./internal/chaos/cmd/chaos

bench: ## Performance suite: Go benchmarks (benchstat), end to end vs the counting baseline on the local stack, profiles; report -> docs/performance.md
	scripts/bench $(BENCH_ARGS)

bench-cost: ## DynamoDB units per shard-second by table and $ per shard-month (example config, 8 shards), about 3 minutes
	scripts/bench --cost $(BENCH_ARGS)

demo: ## Local stack + resources + producer + two workers
	scripts/demo

clean: ## Remove build and test outputs (keeps .cache: the stack may be running from it)
	rm -rf bin/
	find . -path ./.cache -prune -o \( -name '*.test' -o -name '*.out' -o -name '*.prof' \) -type f -print -delete
