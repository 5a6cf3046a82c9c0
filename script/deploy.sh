#!/usr/bin/env bash
# Deploy Holdfast and write the deployment file with the exact deployment block.
#
#   script/deploy.sh [--rpc-url URL] [other `forge script` options...]
#
# 1. Broadcasts script/Deploy.s.sol with --slow (MockUSDC when TOKEN is unset — devnets only —, HoldfastEscrow,
#    optional MockUSDC mints). The script writes the deployment file with "deploymentBlock": null.
# 2. Finds the escrow creation transaction (candidates from forge's broadcast log, each checked against the
#    node's receipt), and writes the receipt's block number and the transaction hash into the file. An indexer
#    starts from that block. On any failure the previous deployment file is restored (or the new one removed).
#
# Against a fresh anvil (`anvil` on 127.0.0.1:8545), with anvil's first default key:
#   script/deploy.sh --rpc-url http://127.0.0.1:8545        -> deployments/31337.local.json (git-ignored)
# Elsewhere: PRIVATE_KEY=0x... TOKEN=0x... script/deploy.sh --rpc-url URL    -> deployments/<chainId>.json
#
# Environment: RPC_URL (default http://127.0.0.1:8545, or ETH_RPC_URL), PRIVATE_KEY (required unless chain id
# 31337), TOKEN, ALLOW_MOCK_TOKEN, MINT_TO, MINT_AMOUNT, DEPLOYMENT_FILE (see script/Deploy.s.sol),
# CONFIRMATIONS (default 1: confirmations to wait for before reading the escrow creation receipt).
# End-to-end check against a throwaway anvil: script/deploy-e2e.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="$ROOT/node_modules/.bin"
FORGE="${FORGE:-$BIN/forge}"
CAST="${CAST:-$BIN/cast}"

die() {
    echo "deploy.sh: error: $*" >&2
    exit 1
}
usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

for tool in "$FORGE" "$CAST"; do
    [[ -x "$tool" ]] || die "$tool not found: run 'npm ci' (or 'make deps') first"
done
command -v node >/dev/null || die "node is required"

# Set-but-empty variables mean "unset" (forge would fail to parse an empty number or address).
for var in PRIVATE_KEY TOKEN ALLOW_MOCK_TOKEN MINT_TO MINT_AMOUNT DEPLOYMENT_FILE; do
    if [[ -z "${!var:-}" ]]; then unset "$var"; fi
done

rpc_url="${RPC_URL:-${ETH_RPC_URL:-http://127.0.0.1:8545}}"
forge_args=()
while (($#)); do
    case "$1" in
        --rpc-url | -f)
            [[ $# -ge 2 ]] || die "$1 needs a value"
            rpc_url="$2"
            shift 2
            ;;
        --rpc-url=*)
            rpc_url="${1#*=}"
            shift
            ;;
        --private-key | --private-key=* | --mnemonic* | --sender | --sender=*)
            die "$1: set the deployer with the PRIVATE_KEY environment variable instead (the script signs with it)"
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            forge_args+=("$1")
            shift
            ;;
    esac
done

chain_id=$("$CAST" chain-id --rpc-url "$rpc_url" 2>/dev/null) || die "no JSON-RPC node answers at $rpc_url"
if [[ -z "${PRIVATE_KEY:-}" && "$chain_id" != 31337 ]]; then
    die "chain $chain_id: set PRIVATE_KEY (anvil's default key is only used on chain 31337)"
fi

if [[ "$chain_id" == 31337 ]]; then default_file="deployments/$chain_id.local.json"; else default_file="deployments/$chain_id.json"; fi
export DEPLOYMENT_FILE="${DEPLOYMENT_FILE:-$default_file}"
case "$DEPLOYMENT_FILE" in
    deployments/*.json) ;;
    *) die "DEPLOYMENT_FILE must be a .json path under deployments/, relative to $ROOT (forge fs_permissions): $DEPLOYMENT_FILE" ;;
esac
[[ "$DEPLOYMENT_FILE" != *..* ]] || die "DEPLOYMENT_FILE must not contain '..': $DEPLOYMENT_FILE"

# Keep the previous deployment file until the new one is complete.
backup=""
if [[ -f "$DEPLOYMENT_FILE" ]]; then
    backup=$(mktemp)
    cp "$DEPLOYMENT_FILE" "$backup"
fi
done_ok=0
on_exit() {
    if [[ $done_ok -eq 0 ]]; then
        if [[ -n "$backup" ]]; then
            cp "$backup" "$DEPLOYMENT_FILE"
            echo "deploy.sh: failed; restored the previous $DEPLOYMENT_FILE" >&2
        elif [[ -f "$DEPLOYMENT_FILE" ]]; then
            rm -f "$DEPLOYMENT_FILE"
            echo "deploy.sh: failed; removed the incomplete $DEPLOYMENT_FILE" >&2
        fi
    fi
    [[ -z "$backup" ]] || rm -f "$backup"
}
trap on_exit EXIT

echo "deploy.sh: chain $chain_id at $rpc_url -> $DEPLOYMENT_FILE"
"$FORGE" script script/Deploy.s.sol:Deploy --rpc-url "$rpc_url" --broadcast --slow ${forge_args[@]+"${forge_args[@]}"} ||
    die "forge script failed"

[[ -f "$DEPLOYMENT_FILE" ]] || die "forge script did not write $DEPLOYMENT_FILE"
broadcast_dir=$("$FORGE" config --json | node -e 'const c = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(c.broadcast || "broadcast")')
run_file="$broadcast_dir/Deploy.s.sol/$chain_id/run-latest.json"
[[ -f "$run_file" ]] || die "broadcast log $run_file not found"

# The escrow creation transaction of this run. Forge's broadcast log is only a source of candidate hashes: forge
# 1.7.1 can pair `transactions[].hash` with the wrong transaction when it sends several at once, so the receipts'
# hashes come first and every candidate is checked against the node's own receipt (status 1, contractAddress =
# the escrow of the new file; a stale log from an earlier run names other addresses).
escrow=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).escrow)' "$DEPLOYMENT_FILE")
[[ "$escrow" =~ ^0x[0-9a-fA-F]{40}$ ]] || die "no escrow address in $DEPLOYMENT_FILE"
mapfile -t candidates < <(node -e '
const run = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const escrow = process.argv[2].toLowerCase();
const rs = run.receipts || [];
const hashes = [
  ...rs.filter((r) => String(r.contractAddress).toLowerCase() === escrow).map((r) => r.transactionHash),
  ...(run.transactions || []).filter((t) => /^CREATE2?$/.test(t.transactionType)).map((t) => t.hash),
  ...(run.transactions || []).map((t) => t.hash),
];
console.log([...new Set(hashes.filter(Boolean))].join("\n"));
' "$run_file" "$escrow")

tx_hash=""
block=""
for candidate in "${candidates[@]}"; do
    receipt=$("$CAST" receipt "$candidate" --json --confirmations "${CONFIRMATIONS:-1}" --rpc-url "$rpc_url") ||
        die "no receipt for transaction $candidate from $run_file"
    found=$(printf '%s' "$receipt" | node -e '
const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
if (String(r.contractAddress).toLowerCase() === process.argv[1].toLowerCase()) {
  if (Number(r.status) !== 1) { console.error("deploy.sh: error: the escrow creation transaction failed"); process.exit(1); }
  console.log(Number(BigInt(r.blockNumber)));
}
' "$escrow") || die "unexpected receipt for $candidate"
    if [[ -n "$found" ]]; then
        tx_hash="$candidate"
        block="$found"
        break
    fi
done
[[ -n "$tx_hash" ]] || die "no transaction in $run_file created the escrow $escrow"

# Sanity: the escrow has code at that block and (where the node keeps history) none just before it.
[[ $("$CAST" code "$escrow" --block "$block" --rpc-url "$rpc_url") != 0x ]] ||
    die "escrow $escrow has no code at block $block"
if ((block > 0)); then
    if before=$("$CAST" code "$escrow" --block $((block - 1)) --rpc-url "$rpc_url" 2>/dev/null); then
        [[ "$before" == 0x ]] || die "escrow $escrow already had code at block $((block - 1))"
    else
        echo "deploy.sh: note: the node has no state for block $((block - 1)); skipped the pre-deployment check" >&2
    fi
fi

node - "$DEPLOYMENT_FILE" "$block" "$tx_hash" <<'EOF'
const fs = require("fs");
const [file, block, txHash] = process.argv.slice(2);
const dep = JSON.parse(fs.readFileSync(file, "utf8"));
dep.deploymentBlock = Number(block);
dep.deploymentTx = txHash;
fs.writeFileSync(file, JSON.stringify(dep, null, 2) + "\n");
EOF
done_ok=1
echo "deploy.sh: escrow $escrow deployed in block $block (tx $tx_hash)"
cat "$DEPLOYMENT_FILE"
