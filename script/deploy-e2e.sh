#!/usr/bin/env bash
# End-to-end check of script/deploy.sh against a throwaway anvil (127.0.0.1, free port, killed on exit).
#
#   script/deploy-e2e.sh
#
# Checks: the default devnet deployment (MockUSDC + escrow + mints to the ten anvil accounts) and its file
# (deploymentBlock = block of the escrow creation receipt, no escrow code one block earlier); a second deployment
# with TOKEN, MINT_TO and PRIVATE_KEY overrides; that a dry run writes no file; that a non-31337 chain requires
# PRIVATE_KEY and TOKEN. Writes only deployments/e2e-*.local.json (git-ignored) and removes them; builds and
# broadcast logs go to a temporary directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="$ROOT/node_modules/.bin"
ANVIL="$BIN/anvil"
CAST="$BIN/cast"
FORGE="$BIN/forge"

fail() {
    echo "deploy-e2e: FAIL: $*" >&2
    exit 1
}
for tool in "$ANVIL" "$CAST" "$FORGE"; do [[ -x "$tool" ]] || fail "$tool not found: run 'npm ci' first"; done

work=$(mktemp -d)
anvil_pid=""
file1="deployments/e2e-$$-1.local.json"
file2="deployments/e2e-$$-2.local.json"
file3="deployments/e2e-$$-dry.local.json"
cleanup() {
    if [[ -n "$anvil_pid" ]] && kill -0 "$anvil_pid" 2>/dev/null; then
        kill "$anvil_pid" 2>/dev/null || true
        wait "$anvil_pid" 2>/dev/null || true
    fi
    rm -f "$file1" "$file2" "$file3"
    rm -rf "$work"
}
trap cleanup EXIT

port=$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
rpc="http://127.0.0.1:$port"
"$ANVIL" --host 127.0.0.1 --port "$port" >"$work/anvil.log" 2>&1 &
anvil_pid=$!
for _ in $(seq 1 100); do
    "$CAST" chain-id --rpc-url "$rpc" >/dev/null 2>&1 && break
    kill -0 "$anvil_pid" 2>/dev/null || fail "anvil exited: $(cat "$work/anvil.log")"
    sleep 0.1
done
"$CAST" chain-id --rpc-url "$rpc" >/dev/null 2>&1 || fail "anvil did not start on port $port"
echo "deploy-e2e: anvil on $rpc"
"$CAST" rpc anvil_mine 7 --rpc-url "$rpc" >/dev/null # so that the deployment block is not block 1

# Compile into, and log broadcasts to, a private directory: the project's out/ and cache/ may be in use by another
# build, and broadcast/ may hold the log of a real local deployment.
export FOUNDRY_OUT="$work/out" FOUNDRY_CACHE_PATH="$work/cache" FOUNDRY_BROADCAST="$work/broadcast"

json() { # file dotted.key
    node -e 'const [f, k] = process.argv.slice(1);
console.log(k.split(".").reduce((v, p) => v[p], JSON.parse(require("fs").readFileSync(f, "utf8"))))' "$1" "$2"
}

check_file() { # file expected_deployer
    local file=$1 deployer=$2 escrow token block tx receipt
    [[ -f "$file" ]] || fail "$file was not written"
    [[ $(json "$file" chainId) == 31337 ]] || fail "$file: chainId"
    escrow=$(json "$file" escrow)
    token=$(json "$file" token.address)
    block=$(json "$file" deploymentBlock)
    tx=$(json "$file" deploymentTx)
    [[ "$block" =~ ^[0-9]+$ ]] || fail "$file: deploymentBlock is '$block'"
    receipt=$("$CAST" receipt "$tx" --json --rpc-url "$rpc")
    printf '%s' "$receipt" | node -e '
const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
const [escrow, block] = process.argv.slice(1);
if (Number(r.status) !== 1 || String(r.contractAddress).toLowerCase() !== escrow.toLowerCase() ||
    Number(BigInt(r.blockNumber)) !== Number(block)) { console.error(JSON.stringify(r)); process.exit(1); }
' "$escrow" "$block" || fail "$file: deploymentTx receipt does not match escrow and block"
    [[ $("$CAST" code "$escrow" --block "$block" --rpc-url "$rpc") != 0x ]] || fail "no escrow code at block $block"
    [[ $("$CAST" code "$escrow" --block $((block - 1)) --rpc-url "$rpc") == 0x ]] ||
        fail "escrow code already at block $((block - 1))"
    [[ $("$CAST" call "$escrow" 'token()(address)' --rpc-url "$rpc") == "$token" ]] || fail "escrow.token() != $token"
    [[ $(json "$file" token.symbol) == $("$CAST" call "$token" 'symbol()(string)' --rpc-url "$rpc" | tr -d '"') ]] ||
        fail "$file: token.symbol"
    [[ $(json "$file" token.decimals) == 6 ]] || fail "$file: token.decimals"
    [[ $(json "$file" deployer) == "$deployer" ]] || fail "$file: deployer"
    echo "deploy-e2e: ok: $file (escrow $escrow, block $block)"
}

balance() { "$CAST" call "$1" 'balanceOf(address)(uint256)' "$2" --rpc-url "$rpc" | cut -d' ' -f1; }

# 1. Default devnet deployment.
DEPLOYMENT_FILE="$file1" script/deploy.sh --rpc-url "$rpc" >"$work/deploy1.log" 2>&1 ||
    fail "deploy.sh (default) failed: $(tail -30 "$work/deploy1.log")"
check_file "$file1" 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
token=$(json "$file1" token.address)
[[ $(json "$file1" token.mock) == true ]] || fail "$file1: token.mock"
for account in $("$CAST" rpc eth_accounts --rpc-url "$rpc" | node -e 'JSON.parse(require("fs").readFileSync(0, "utf8")).forEach((a) => console.log(a))'); do
    [[ $(balance "$token" "$account") == 1000000000000 ]] || fail "$account was not minted 1,000,000 USDC"
done
echo "deploy-e2e: ok: 1,000,000 USDC minted to each of the 10 anvil accounts"

# 2. Existing token, another deployer, explicit mint list and amount.
key1=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d # anvil account 1
someone=0x000000000000000000000000000000000000dEaD
DEPLOYMENT_FILE="$file2" TOKEN="$token" PRIVATE_KEY="$key1" MINT_TO="$someone" MINT_AMOUNT=5000000 \
    script/deploy.sh --rpc-url "$rpc" >"$work/deploy2.log" 2>&1 ||
    fail "deploy.sh (TOKEN, PRIVATE_KEY, MINT_TO) failed: $(tail -30 "$work/deploy2.log")"
check_file "$file2" 0x70997970C51812dc3A010C7d01b50e0d17dc79C8
[[ $(json "$file2" token.address) == "$token" ]] || fail "$file2: TOKEN not used"
[[ $(json "$file2" token.mock) == false ]] || fail "$file2: token.mock"
[[ $(balance "$token" "$someone") == 5000000 ]] || fail "MINT_TO/MINT_AMOUNT not applied"
echo "deploy-e2e: ok: TOKEN, PRIVATE_KEY, MINT_TO and MINT_AMOUNT overrides"

# 3. A dry run (no --broadcast) writes nothing.
DEPLOYMENT_FILE="$file3" "$FORGE" script script/Deploy.s.sol:Deploy --rpc-url "$rpc" >"$work/dry.log" 2>&1 ||
    fail "dry run failed: $(tail -30 "$work/dry.log")"
[[ ! -e "$file3" ]] || fail "the dry run wrote $file3"
echo "deploy-e2e: ok: a dry run writes no deployment file"

# 4. Another chain id: PRIVATE_KEY and TOKEN are required.
"$CAST" rpc anvil_setChainId 1337 --rpc-url "$rpc" >/dev/null
if DEPLOYMENT_FILE=deployments/e2e-$$-x.json script/deploy.sh --rpc-url "$rpc" >"$work/x.log" 2>&1; then
    fail "deploy.sh on chain 1337 without PRIVATE_KEY succeeded"
fi
grep -q "set PRIVATE_KEY" "$work/x.log" || fail "unexpected error without PRIVATE_KEY: $(cat "$work/x.log")"
if DEPLOYMENT_FILE=deployments/e2e-$$-x.json PRIVATE_KEY="$key1" script/deploy.sh --rpc-url "$rpc" >"$work/y.log" 2>&1; then
    fail "deploy.sh on chain 1337 without TOKEN succeeded"
fi
grep -q "set TOKEN" "$work/y.log" || fail "unexpected error without TOKEN: $(cat "$work/y.log")"
[[ ! -e deployments/e2e-$$-x.json ]] || fail "a failed deployment left deployments/e2e-$$-x.json"
echo "deploy-e2e: ok: chain 1337 requires PRIVATE_KEY and TOKEN"

echo "deploy-e2e: all checks passed"
