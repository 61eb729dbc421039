# otter: make help lists the targets.
SHELL := bash
.DEFAULT_GOAL := help

# Addresses of the local stack (infra/up.sh), handed to integration tests.
IT_ENV := OTTER_IT_MYSQL_URL=mysql://otter:otter@127.0.0.1:3307 \
          OTTER_IT_TARGET_URL=mysql://otter:otter@127.0.0.1:3308 \
          OTTER_IT_BROKERS=127.0.0.1:9092 \
          OTTER_IT_ZK=127.0.0.1:2181 \
          OTTER_IT_TANSU=$(shell bash -c '. infra/lib.sh && echo "$$TANSU_BIN"')
IT_FEATURES := otter-capture/it,otter-coord/it,otter-apply/it,otter-ctl/it
TEST_THREADS ?= 2
# The short chaos run of `make test` (debug build, the one the tests built): fixed
# seed, so a red run can be replayed.
CI_CHAOS_SEED ?= 7

.PHONY: help up down status demo test test-unit fmt lint bench bench-capture bench-apply fuzz chaos

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

up: ## install what is missing and start MariaDB x2, ZooKeeper and Tansu on 127.0.0.1
	infra/up.sh

down: ## stop the local stack (data kept; infra/down.sh --wipe removes it)
	infra/down.sh

status: ## say what runs where and what is missing
	infra/status.sh

demo: ## bring everything up, define a pipeline with otterctl, serve it (2 captures + apply), verify (PROMETHEUS=1: keep running with a local Prometheus)
	infra/demo.sh

test: ## every test: unit, fixtures, and integration tests against the real servers
	infra/up.sh
	infra/install.sh python
	infra/check-monitoring.sh
	$(IT_ENV) cargo test --workspace --features $(IT_FEATURES) -- --test-threads=$(TEST_THREADS)
	infra/install.sh chaos
	OTTER_BIN_DIR=$(or $(CARGO_TARGET_DIR),target)/debug loadtest/chaos.py --rounds 3 --seed $(CI_CHAOS_SEED)

test-unit: ## unit and fixture tests only (no servers needed)
	cargo test --workspace

fmt: ## format the code
	cargo fmt --all

lint: ## rustfmt check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --features $(IT_FEATURES) -- -D warnings

# make bench SCENARIO=bulk|single|oltp|wide|hot|many-tables|all|none SCALE=1
#            STEADY_RATES=1000,5000,10000 (empty: none) STEADY_SECS=60 PROFILE=1
SCENARIO ?= oltp
SCALE ?= 1
STEADY_RATES ?= 1000,5000,10000
STEADY_SECS ?= 60
bench: ## otter vs MariaDB's native replica: catch-up, steady-state lag, CPU and RSS (see loadtest/README.md)
	loadtest/bench.sh --scenario "$(SCENARIO)" --scale "$(SCALE)" --steady-rates "$(STEADY_RATES)" \
	  --steady-secs "$(STEADY_SECS)" $(if $(PROFILE),--profile)

bench-capture: ## capture throughput alone on a recorded 1M-change binlog
	loadtest/capture-bench.sh

bench-apply: ## apply throughput and end-to-end catch-up benchmark (see loadtest/README.md)
	BENCH_BROKER=memory loadtest/apply-bench.sh

fuzz: ## fuzz the binlog and Kafka-record decoders (FUZZ_SECS=600 each, FUZZ_TARGETS="binlog envelope"; see fuzz/README.md)
	infra/fuzz.sh

# make chaos ROUNDS=20 SEED=<n> (default: from the clock, printed) ONLY=fault,fault
ROUNDS ?= 20
chaos: ## fault injection against a running pipeline: kill, stop and restart every part, verify each round (see loadtest/README.md)
	infra/up.sh
	infra/install.sh chaos
	cargo build --release -q -p otter-capture -p otter-apply -p otter-ctl
	loadtest/chaos.py --rounds $(ROUNDS) $(if $(SEED),--seed $(SEED)) $(if $(ONLY),--only $(ONLY))
