#!/usr/bin/env bash
# Holdfast read API benchmark (BENCHMARKS.md, "Read API (issue 4)"): builds the release binaries, generates a
# ~100k-order chain on a throwaway anvil, indexes it with the real `holdfast index` into a fresh SQLite file and a
# fresh Postgres database, serves each with the real `holdfast serve` and loads it from a second process
# (holdfast-api-bench: keep-alive HTTP/1.1, random ids / payees; plus wrk when installed), then measures the
# end-to-end latency from a lock transaction to `GET /v1/orders/{id}` against `holdfast run` (ws). Prints the
# tables; removes its files, stops its processes and drops its database (also on failure).
#
#   bash bench/api.sh                          everything, defaults
#   bash bench/api.sh --conns 64 --secs 20     options are passed to holdfast-api-bench (see bench/api/src/main.rs)
#   bash bench/api.sh --backends sqlite --no-e2e
#
# Needs: npm ci (anvil, forge), Postgres at 127.0.0.1:5432 (trust, user postgres; HOLDFAST_TEST_PG overrides),
# optionally wrk (`apt-get install wrk`) for the cross-check. Not part of `make test`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[ -x node_modules/.bin/anvil ] || npm ci --no-audit --no-fund --loglevel=error
cargo build --release --locked -p holdfast -p holdfast-api-bench
exec target/release/holdfast-api-bench "$@"
