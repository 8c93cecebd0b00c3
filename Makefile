# slipstream — `make help` lists the targets.
GO       ?= go
BIN      ?= bin
FUZZTIME ?= 20s
# Minimizing a new input may take the whole FUZZTIME of a target with large seeds.
FUZZMINIMIZETIME ?= 5s
BENCH    ?= .
BENCHTIME ?= 1x

.PHONY: help build run test test-short sim bench bench-render bench-e2e fuzz check plugins plugins-go plugin-c clean
.PHONY: dist version plugin-as plugin-rust

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/slipagent
	@echo "go build $(BIN)/slipagent: the first build compiles nats-server, wazero and pebble (a few minutes); packages are listed as they compile"
	$(GO) build -v -o $(BIN)/slipagent ./cmd/slipagent

# The optional example plugins: `make run`, `make plugins` and `make dist` leave one out,
# saying so, when its toolchain is missing (clang cannot link a wasm32-wasi
# reactor: no clang, lld, wasi-libc or the wasm32 builtins; no node or npm;
# no rustc with a WASI standard library).
# A toolchain that is there and fails the build fails the target.
HAVE_WASI_CLANG := printf 'int main(void) { return 0; }' | clang --target=wasm32-wasi -mexec-model=reactor -x c -o /dev/null - >/dev/null 2>&1
HAVE_NODE       := command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1
NO_WASI_CLANG   := "(no clang for wasm32-wasi: the C example plugin is left out)"
NO_NODE         := "(no node or npm: the AssemblyScript example plugin is left out)"
NO_RUST_WASI    := "(no Rust toolchain for WASI: the Rust example plugin is left out)"
# FIND_RUST_WASI prints "RUSTC CARGO TARGET" for a rustc that has a WASI
# preview1 standard library ($$RUSTC, the rustc on PATH, then Debian's
# /usr/bin/rustc, which rustup's on PATH may hide), as the tests'
# plugintest.FindRust picks it, or fails.
FIND_RUST_WASI  := for rc in "$$RUSTC" "$$(command -v rustc)" /usr/bin/rustc; do \
	  sr=$$("$$rc" --print sysroot 2>/dev/null) || continue; \
	  for t in wasm32-wasip1 wasm32-wasi; do \
	    [ -d "$$sr/lib/rustlib/$$t/lib" ] || continue; \
	    c=$$(dirname "$$rc")/cargo; [ -x "$$c" ] || c=$$(command -v cargo) || continue; \
	    echo "$$rc $$c $$t"; exit 0; \
	  done; \
	done; exit 1
HAVE_RUST_WASI  := ($(FIND_RUST_WASI)) >/dev/null 2>&1

run: build plugins-go ## run the agent on an embedded NATS server with the example plugins (output in ./dev-out)
	@if $(HAVE_WASI_CLANG); then $(MAKE) --no-print-directory plugin-c; else echo $(NO_WASI_CLANG); fi
	$(BIN)/slipagent dev

test: ## every test with the race detector, then 10,000 seeds of the simulation (what CI runs)
	$(GO) test -race -timeout 25m ./...
	$(GO) test -count=1 -timeout 10m -run '^TestSimulation$$' ./agent -sim.seeds=10000

SEEDS ?= 10000
SEED  ?=
sim: ## the deterministic simulation: SEEDS=N seeds (default 10000), or SEED=N to replay one with its trace
	$(GO) test -count=1 -timeout 0 -run '^TestSimulation$$' ./agent -sim.seeds=$(SEEDS) $(if $(SEED),-sim.seed=$(SEED) -v)

RUNS   ?= 10
ROUNDS ?= 30
.PHONY: chaos
chaos: ## real agent and nats-server processes through seeded faults: RUNS runs (default 10) of ROUNDS faults (default 30), or SEED=N to replay one
	$(GO) test -count=$(if $(SEED),1,$(RUNS)) -timeout 0 -v -run '^TestChaos$$' ./cmd/slipagent -chaos.rounds=$(ROUNDS) $(if $(SEED),-chaos.seed=$(SEED))

test-short: ## quick tests without the race detector
	$(GO) test -short ./...

bench: ## benchmarks, printed as a table of ours vs baseline
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -timeout 60m ./... | tee $(BIN)/bench.txt | $(GO) run ./internal/benchtab

bench-render: ## first render of 100k and 1M keys with the files example (1M: ~4 GiB of disk, minutes)
	@mkdir -p $(BIN)
	SLIPSTREAM_BENCH_BIG=1 $(GO) test -run '^$$' -bench 'FilesRender' -benchtime 1x -timeout 60m ./plugins/examples/files | tee $(BIN)/bench-render.txt | $(GO) run ./internal/benchtab

comma := ,
SCALE         ?= 1M
FOLD_MEMLIMIT ?= 1GiB
FOLD_RESTART  ?=
.PHONY: bench-fold
bench-fold: ## the Pebble fold at SCALE keys (default 1M; SCALE=1M,10M,50M: ~30 GB of disk and an hour at 50M) beside raw file I/O, each size in its own process under GOMEMLIMIT=FOLD_MEMLIMIT; FOLD_RESTART=1M,10M adds slipagent restarts over a Pebble fold of those sizes
	@mkdir -p $(BIN)
	$(GO) test -c -o $(BIN)/pebblefold.test ./snapshot/pebblefold
	@if [ -n "$(FOLD_RESTART)" ]; then \
	  $(MAKE) --no-print-directory build plugins-go && $(GO) build -o $(BIN)/nats-server github.com/nats-io/nats-server/v2; \
	fi
	@set -e; { \
	for s in $(subst $(comma), ,$(SCALE)); do \
	  echo "== $$s keys: GOMEMLIMIT=$(FOLD_MEMLIMIT), load average $$(cut -d' ' -f1-3 /proc/loadavg)" >&2; \
	  GOMEMLIMIT=$(FOLD_MEMLIMIT) SLIPSTREAM_BENCH_SCALE=$$s $(BIN)/pebblefold.test -test.run '^$$' -test.bench '^BenchmarkScale$$' -test.benchtime 1x -test.timeout 0; \
	done; \
	if [ -n "$(FOLD_RESTART)" ]; then \
	  echo "== agent restarts: load average $$(cut -d' ' -f1-3 /proc/loadavg)" >&2; \
	  SLIPSTREAM_BENCH_RESTART=$(FOLD_RESTART) SLIPSTREAM_BENCH_SLIPAGENT=$(abspath $(BIN))/slipagent \
	  SLIPSTREAM_BENCH_PLUGIN=$(abspath $(BIN))/plugins/template.wasm SLIPSTREAM_BENCH_NATS_SERVER=$(abspath $(BIN))/nats-server \
	  $(BIN)/pebblefold.test -test.run '^$$' -test.bench '^BenchmarkAgentRestart$$' -test.benchtime 1x -test.timeout 0; \
	fi; } | tee $(BIN)/bench-fold.txt | $(GO) run ./internal/benchtab
	@echo "load average at the end: $$(cut -d' ' -f1-3 /proc/loadavg)"

E2E_QUICK ?=
E2E_BIG   ?=
bench-e2e: build plugins-go ## slipagent vs a bare nats.go renderer on a real nats-server (E2E_QUICK=1: small sizes, E2E_BIG=1: adds 1M keys)
	$(GO) build -o $(BIN)/nats-server github.com/nats-io/nats-server/v2
	E2E_QUICK=$(E2E_QUICK) E2E_BIG=$(E2E_BIG) $(GO) run ./internal/e2ebench \
	  -slipagent $(BIN)/slipagent -plugin $(BIN)/plugins/template.wasm -nats-server $(BIN)/nats-server

N ?= 20
K ?= 10000
BOOTSTRAP ?=
.PHONY: bench-fleet
bench-fleet: build plugins-go ## N agents (default 20) on a K-key bucket (default 10000): start together, a server restart, a leader loss on a 3-node R3 cluster (BOOTSTRAP=1: joining by a plain sync vs from an artifact in NATS)
	$(GO) build -o $(BIN)/nats-server github.com/nats-io/nats-server/v2
	FLEET_BOOTSTRAP=$(BOOTSTRAP) $(GO) run ./internal/fleetbench -n $(N) -k $(K) \
	  -slipagent $(BIN)/slipagent -plugin $(BIN)/plugins/template.wasm -nats-server $(BIN)/nats-server

KILLS ?= 5
.PHONY: failover
failover: ## R3 failover: stop, then SIGKILL, the stream leader KILLS times each; prints ms from the writer's first acknowledged put to applied
	$(GO) test -count=$(KILLS) -timeout 30m -v -run '^TestWatchAppliedFailsOverOnR3(AfterSIGKILL)?$$' ./kvcore/ | grep -E 'lost;|applied .* after|^(---|ok|FAIL)'

fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg; \
	  done; \
	done

check: ## gofmt, vet (host and wasip1), go mod tidy, then the tests
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./plugins/sdk/... ./plugins/abi/... ./plugins/examples/...
	$(GO) mod tidy -diff
	$(MAKE) test

GO_PLUGINS := files template nginx-upstreams

plugins: plugins-go ## build every example plugin into bin/plugins/ (the C one needs clang for wasm32-wasi, the AssemblyScript one npm, the Rust one rustc for WASI: each is left out, saying so, without its toolchain)
	@if $(HAVE_WASI_CLANG); then $(MAKE) --no-print-directory plugin-c; else echo $(NO_WASI_CLANG); fi
	@if $(HAVE_NODE); then $(MAKE) --no-print-directory plugin-as; else echo $(NO_NODE); fi
	@if $(HAVE_RUST_WASI); then $(MAKE) --no-print-directory plugin-rust; else echo $(NO_RUST_WASI); fi

plugins-go: ## build the Go example plugins into bin/plugins/
	@mkdir -p $(BIN)/plugins
	@set -e; for p in $(GO_PLUGINS); do \
	  echo "go    $(BIN)/plugins/$$p.wasm"; \
	  GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $(BIN)/plugins/$$p.wasm ./plugins/examples/$$p; \
	done

plugin-c: ## build the C example plugin into bin/plugins/ (needs clang, lld and wasi-libc)
	@mkdir -p $(BIN)/plugins
	@echo "clang $(BIN)/plugins/envfile.wasm"
	@clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wall -Wextra -Werror -Wl,--strip-all \
	  -o $(BIN)/plugins/envfile.wasm plugins/examples/envfile/envfile.c

AS_SDK := plugins/sdk/assemblyscript

plugin-as: ## build the AssemblyScript example plugin into bin/plugins/ (needs node >= 18 and npm)
	@mkdir -p $(BIN)/plugins
	@test -x $(AS_SDK)/node_modules/.bin/asc || (cd $(AS_SDK) && npm ci --no-audit --no-fund --loglevel=error)
	@echo "asc   $(BIN)/plugins/files-as.wasm"
	@$(AS_SDK)/node_modules/.bin/asc plugins/examples/files-as/assembly/index.ts \
	  --exportStart _initialize --use abort=$(AS_SDK)/assembly/index/slipstream_abort -O --noAssert \
	  -o $(BIN)/plugins/files-as.wasm

plugin-rust: ## build the Rust example plugin into bin/plugins/ (needs cargo and a rustc with the wasm32-wasip1 or wasm32-wasi standard library)
	@mkdir -p $(BIN)/plugins
	@tc=$$($(FIND_RUST_WASI)) || { echo "no Rust toolchain for WASI: install rustc cargo libstd-rust-dev-wasm32 (Debian), or rustup target add wasm32-wasip1"; exit 1; }; \
	set -e -- $$tc; echo "cargo $(BIN)/plugins/jsonfile.wasm ($$1, $$3)"; \
	RUSTC=$$1 RUSTFLAGS="--remap-path-prefix=$(CURDIR)=." $$2 build --offline --locked --release --quiet --target $$3 --target-dir $(BIN)/cargo \
	  --manifest-path plugins/examples/jsonfile/Cargo.toml; \
	cp $(BIN)/cargo/$$3/release/jsonfile.wasm $(BIN)/plugins/jsonfile.wasm

clean: ## remove build outputs
	rm -rf $(BIN) dev-out
	rm -rf dist

# Release artifacts. VERSION is git describe's; the binary reports it in
# `slipagent version`, and the packages' version is derived from it. A tree
# without a tag counts its commits from v0.0.0, so that its packages order
# by history (0.0.0+gitN.HASH) and an upgrade is not taken for a downgrade.
# (A shallow clone counts only the commits it has: build packages from a
# full one.)
ifndef VERSION
VERSION   := $(shell git describe --tags --dirty 2>/dev/null || { n=$$(git rev-list --count HEAD 2>/dev/null) && echo "v0.0.0-$$n-g$$(git rev-parse --short HEAD)$$(git diff --quiet HEAD || echo -dirty)"; } || echo unknown)
endif
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo +dirty)
DIST_ARCH ?= $(shell $(GO) env GOARCH)
DIST_DIR  := $(BIN)/dist/$(DIST_ARCH)

version: ## print the version make dist stamps (git describe's, or v0.0.0-N-gHASH without a tag)
	@echo $(VERSION)

dist: ## build dist/: a tarball, a .deb and an .rpm for linux/DIST_ARCH (default: this machine's)
	@rm -rf $(DIST_DIR) && mkdir -p $(DIST_DIR)
	@echo "go    $(DIST_DIR)/slipagent ($(VERSION), linux/$(DIST_ARCH), static)"
	CGO_ENABLED=0 GOOS=linux GOARCH=$(DIST_ARCH) $(GO) build \
	  -ldflags "-s -w -X main.stampedVersion=$(VERSION) -X main.stampedCommit=$(COMMIT)" \
	  -o $(DIST_DIR)/slipagent ./cmd/slipagent
	@$(MAKE) --no-print-directory plugins BIN=$(DIST_DIR)
	$(GO) run ./internal/dist -version $(VERSION) -arch $(DIST_ARCH) \
	  -binary $(DIST_DIR)/slipagent -plugins $(DIST_DIR)/plugins -out dist
