#!/usr/bin/env bash
# Development stack on a local anvil: anvil on 127.0.0.1:${PORT:-8545}, MockUSDC + escrow deployed (10 funded
# accounts), and `holdfast index` following it over websocket into ./data/dev.db. Ctrl-C stops everything.
# (Stop-gap until `holdfast dev` lands; see README.)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PORT=${PORT:-8545}
[[ -x node_modules/.bin/anvil ]] || npm ci --no-audit --no-fund --loglevel=error
cargo build --release -p holdfast --locked
mkdir -p data
node_modules/.bin/anvil --host 127.0.0.1 --port "$PORT" >data/anvil.log 2>&1 &
ANVIL=$!
INDEXER=
# Stop every child on any exit (Ctrl-C, or a TERM sent to this script only): no orphaned anvil or indexer.
trap 'kill $INDEXER $ANVIL 2>/dev/null; wait 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
for _ in $(seq 50); do
    node_modules/.bin/cast chain-id --rpc-url "http://127.0.0.1:$PORT" >/dev/null 2>&1 && break
    sleep 0.1
done
DEPLOYMENT_FILE=deployments/31337.local.json script/deploy.sh --rpc-url "http://127.0.0.1:$PORT" >data/deploy.log
rm -f data/dev.db data/dev.db-wal data/dev.db-shm
echo "anvil:      http://127.0.0.1:$PORT (chain 31337)"
echo "deployment: $(tr -d '\n ' <deployments/31337.local.json)"
echo "store:      sqlite://data/dev.db"
target/release/holdfast index --rpc-url "ws://127.0.0.1:$PORT" --deployment deployments/31337.local.json \
    --database-url sqlite://data/dev.db --log-format human &
INDEXER=$!
wait "$INDEXER"
