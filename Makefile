# tollgate — build, run, test.
GO      ?= go
BIN     := bin/tollgate
PKGS    := ./...
E2E_DIR := e2e/ts

.PHONY: run build test lint bench deps e2e-deps clean demo deploy-check

## run: start the sandbox server (fixtures, embedded Redis, dev identity) on 127.0.0.1:7420
run:
	$(GO) run ./cmd/tollgate serve --sandbox

## build: build bin/tollgate, stamped with the version from git describe (tollgate version)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/tollgate-dev/tollgate/compose.Version=$(VERSION) -X main.commit=$(COMMIT)
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/tollgate

## test: the whole suite with the race detector, against a real redis-server it starts itself; the
## approvals page's browser test needs chromium (TOLLGATE_REQUIRE_CHROMIUM=1: missing is a failure, not a skip)
test: deps
	TOLLGATE_REQUIRE_CHROMIUM=1 $(GO) test -race -count=1 -timeout 8m $(PKGS)

## lint: gofmt and go vet, of the default (sandbox) build and of the production build (-tags nosandbox)
lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags nosandbox $(PKGS)

## bench: the guard against a guard-less baseline, one table from one run against a redis-server it starts
## itself (see BENCHMARKS.md), then the hot paths' Go benchmarks (benchstat-friendly). Not part of make test.
BENCHFLAGS ?=
bench:
	@command -v redis-server >/dev/null 2>&1 || $(MAKE) --no-print-directory deps
	$(GO) run ./bench/cmd/tollgate-bench $(BENCHFLAGS)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./auth ./sessions ./gates/spend

## deps: install what the tests need when missing (redis-server and chromium from Debian, the TypeScript
## SDK client, MCP Inspector)
deps: e2e-deps
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server (Debian package)"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq redis-server; fi; }
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium (Debian package) for the approvals page's browser test"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

e2e-deps:
	@if [ -f $(E2E_DIR)/package.json ] && { [ ! -d $(E2E_DIR)/node_modules/@modelcontextprotocol/sdk ] || \
		[ ! -d $(E2E_DIR)/node_modules/@modelcontextprotocol/inspector ]; }; then \
		echo "installing the TypeScript SDK client and MCP Inspector for the end-to-end tests"; \
		cd $(E2E_DIR) && npm ci --no-audit --no-fund --loglevel=error; fi

clean:
	rm -rf bin

## demo: a scripted agent runs the whole story against the sandbox on $(DEMO_ADDR) (starting one when
## nothing answers there) and ends with the session's audit tree and the Cloudflare account of each call.
## Each run registers a fresh domain as a fresh sandbox user (so it runs again and again against one
## sandbox) and stops before buying anything when plan_quote says the plan does not fit. DEMOFLAGS are
## passed to the demo (--user EMAIL, --no-elicit); DEMO_ADDR=127.0.0.1:7421 runs it on another port
## when 7420 is taken. A running sandbox tells the demo its Redis, or give it with TOLLGATE_REDIS_URL=redis://….
DEMOFLAGS ?=
DEMO_ADDR ?= 127.0.0.1:7420
demo: build
	@$(GO) build -o bin/tollgate-demo ./cmd/tollgate-demo
	@if bin/tollgate-demo --issuer http://$(DEMO_ADDR) --probe; then \
		echo "using the sandbox already answering on $(DEMO_ADDR)"; \
		bin/tollgate-demo --issuer http://$(DEMO_ADDR) --tollgate $(BIN) $(DEMOFLAGS); \
	else \
		log=$$(mktemp "$${TMPDIR:-/tmp}/tollgate-demo.XXXXXX"); \
		echo "starting the sandbox: $(BIN) serve --sandbox --addr $(DEMO_ADDR) (log: $$log)"; \
		$(BIN) serve --sandbox --addr $(DEMO_ADDR) >/dev/null 2>"$$log" & pid=$$!; \
		trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT; \
		trap 'exit 130' INT TERM; \
		bin/tollgate-demo --issuer http://$(DEMO_ADDR) --wait 60s || { cat "$$log"; exit 1; }; \
		redis=""; for i in $$(seq 1 50); do \
			redis=$$(sed -n 's/^ *redis  *\([^ ]*\).*/\1/p' "$$log" | head -n 1); \
			[ -n "$$redis" ] && break; sleep 0.1; done; \
		echo "sandbox up; embedded Redis at $${redis:-?}"; \
		bin/tollgate-demo --issuer http://$(DEMO_ADDR) --tollgate $(BIN) --redis-url "$$redis" $(DEMOFLAGS); \
	fi

## deploy-check: the deployment files parse and keep their invariants (non-root, read-only root, probes,
## no inline secrets, flags that exist); with a usable docker daemon, also builds the image's stages.
deploy-check:
	$(GO) test -count=1 -run 'TestDeployFiles' ./cmd/tollgate/
	@if docker info >/dev/null 2>&1; then docker build -t tollgate:check .; \
	else echo "docker is not usable here: the image was not built (only the files were checked)"; fi

## fuzz: every Go fuzz target (each func FuzzX in a _test.go file) for FUZZTIME each. An input that fails
## lands in the package's testdata/fuzz (commit it); the rest stays in the Go build cache. Not part of
## make test (that runs the seed corpora).
FUZZTIME ?= 30s
.PHONY: fuzz
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		d=$$(dirname $$f); for n in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz $$d $$n ($(FUZZTIME))"; $(GO) test -run '^$$' -fuzz "^$$n$$" -fuzztime $(FUZZTIME) ./$$d; done; done

## chaos: the chaos suite (e2e/chaos): a real six-node Redis Cluster (3 masters, 3 replicas) on loopback,
## two tollgate replicas, 200 paid calls from 4 principals (cap 400.00 each) while a master is paused (SIGSTOP 2 s), a master
## is killed (its replica promoted), a tollgate replica is killed mid-call and everything is restarted; it
## prints one table of invariants and fails if any does not hold (about 40 s; CI runs it). chaos-short is the same with 120 calls from 3
## principals, for a quick look. Plain make test skips both (TOLLGATE_CHAOS unset).
.PHONY: chaos chaos-short
chaos:
	@command -v redis-server >/dev/null 2>&1 || $(MAKE) --no-print-directory deps
	TOLLGATE_CHAOS=full $(GO) test -v -count=1 -timeout 15m -run '^(TestChaos|TestDurability)$$' ./e2e/chaos/
chaos-short:
	@command -v redis-server >/dev/null 2>&1 || $(MAKE) --no-print-directory deps
	TOLLGATE_CHAOS=short $(GO) test -v -count=1 -timeout 8m -run '^(TestChaos|TestDurability)$$' ./e2e/chaos/

## soak: SOAK_DURATION (default 10m) of mixed traffic at SOAK_RATE calls/s (default 20; every 50th a paid
## domain_register) against one replica on an AOF redis-server; prints RSS, goroutines, Redis memory and
## p99 at the start and the end (see BENCHMARKS.md, "Soak"). Not in make test or CI.
SOAK_DURATION ?= 10m
SOAK_RATE     ?= 20
.PHONY: soak
soak:
	@command -v redis-server >/dev/null 2>&1 || $(MAKE) --no-print-directory deps
	TOLLGATE_SOAK=1 SOAK_DURATION=$(SOAK_DURATION) SOAK_RATE=$(SOAK_RATE) $(GO) test -v -count=1 -timeout 0 -run '^TestSoak$$' ./e2e/chaos/

## fuzz-short: every fuzz target for 20,000 executions (make fuzz FUZZTIME=20000x), in CI; the total (about 5 min) is dominated
## by building each package's fuzz binary. A count, not a duration: Go 1.26's fuzz coordinator can fail a target with a bare
## "context deadline exceeded" when a -fuzztime duration ends while a worker is busy (go.dev/issue/75804, fixed in Go 1.27),
## and a count sets no deadline. A duration for make fuzz can still hit it: a real finding always writes testdata/fuzz.
.PHONY: fuzz-short
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=20000x
