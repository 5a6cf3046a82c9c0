# Holdfast — one entry point for building and testing everything.
#   make test    install what is missing (npm ci) and run every check and test suite
#   make dev     run the whole stack on a local anvil (see README)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

BIN   := $(CURDIR)/node_modules/.bin
FORGE := $(BIN)/forge
export PATH := $(BIN):$(PATH)

.PHONY: dev test deps sol sol-fmt sol-build sol-test sol-snapshot coverage gas-snapshot \
	rust rust-fmt rust-clippy rust-test deploy-e2e bench-gas

# The stack on a local anvil: anvil, MockUSDC + escrow, indexer and API (Ctrl-C stops everything).
# `make dev ARGS=--keep` resumes the previous chain and store.
dev: deps
	cargo build -p holdfast --locked
	target/debug/holdfast dev $(ARGS)

# Everything CI runs. Rust tests start their own anvil and use Postgres at 127.0.0.1:5432
# (override with HOLDFAST_TEST_PG=postgres://user@host:port/postgres).
test: sol rust deploy-e2e

deps: node_modules/.installed .venv/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Python tools of the tests (Schemathesis, the OpenAPI fuzzer), pinned in requirements-dev.txt.
.venv/.installed: requirements-dev.txt
	python3 -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check --no-input -r requirements-dev.txt
	@touch $@

sol: sol-fmt sol-build sol-test sol-snapshot

sol-fmt: deps
	$(FORGE) fmt --check

# Size limits (EIP-170) apply to what gets deployed: the escrow and the devnet token. Test and script
# helpers (the invariant handler, the deploy script) are never deployed to a real chain.
sol-build: deps
	$(FORGE) build --sizes contracts test/mocks/MockUSDC.sol \
		--out target/forge-sizes/out --cache-path target/forge-sizes/cache
	$(FORGE) build

sol-test: deps
	$(FORGE) test

# Gas of the deterministic unit tests (fuzz and invariant figures depend on the run count).
SNAPSHOT_ARGS := --no-match-test 'testFuzz_|invariant_'
sol-snapshot: deps
	$(FORGE) snapshot --check $(SNAPSHOT_ARGS)

gas-snapshot: deps
	$(FORGE) snapshot $(SNAPSHOT_ARGS)

coverage: deps
	$(FORGE) coverage --ir-minimum --report summary --no-match-coverage '^(test|script|bench)/'

rust: rust-fmt rust-clippy rust-test

rust-fmt:
	cargo fmt --all --check

rust-clippy:
	cargo clippy --workspace --all-targets --locked -- -D warnings

rust-test: deps
	cargo test --workspace --locked

# The deploy script against a throwaway anvil, checked against the node's receipts.
deploy-e2e: deps
	bash script/deploy-e2e.sh

# Gas of every escrow operation on anvil (see BENCHMARKS.md); --update rewrites the table there.
bench-gas: deps
	bash bench/gas.sh
