#!/usr/bin/env bash
# Holdfast gas benchmark: full-transaction gasUsed (21,000 base, calldata, execution, after refunds) of every
# escrow operation, read from the receipts of real transactions on a throwaway anvil, with a USDC-like token
# (bench/contracts/FiatTokenLike.sol) and a minimal two-slot reference escrow (bench/contracts/ReferenceEscrow.sol)
# measured in the same run on the same token.
#
#   bash bench/gas.sh             print the table (and write bench/results/gas.json)
#   bash bench/gas.sh --update    also rewrite the table in BENCHMARKS.md (between the gas-table markers)
#
# Conditions: every measured operation is its own transaction, so every account and slot starts cold (EIP-2929);
# each one touches its order for the first time in that transaction; the payer, the payee and the escrow already
# hold tokens (no zero-to-non-zero balance writes, no balance emptied); the payer's EIP-2612 nonce is already
# non-zero, except in the row that says otherwise; approve is its own transaction, reported on its own row.
# Deterministic: fixed genesis timestamp, keys, order ids, amounts and deadlines, so calldata is the same each run.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="$ROOT/node_modules/.bin"
FORGE="${FORGE:-$BIN/forge}"
CAST="${CAST:-$BIN/cast}"
ANVIL="${ANVIL:-$BIN/anvil}"
HARDFORK="${HARDFORK:-prague}"

UPDATE=0
for arg in "$@"; do
    case "$arg" in
        --update) UPDATE=1 ;;
        -h | --help)
            sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "gas.sh: unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

die() {
    echo "gas.sh: error: $*" >&2
    exit 1
}
for tool in "$FORGE" "$CAST" "$ANVIL"; do
    [[ -x "$tool" ]] || die "$tool not found: run 'npm ci' (or 'make deps') first"
done
command -v node >/dev/null || die "node is required"

WORK=$(mktemp -d)
ANVIL_PID=""
cleanup() {
    if [[ -n "$ANVIL_PID" ]] && kill -0 "$ANVIL_PID" 2>/dev/null; then
        kill "$ANVIL_PID" 2>/dev/null || true
        wait "$ANVIL_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ build (private out/ and cache/)

echo "gas.sh: building contracts/HoldfastEscrow.sol and bench/contracts/*.sol" >&2
"$FORGE" build --out "$WORK/out" --cache-path "$WORK/cache" \
    contracts/HoldfastEscrow.sol bench/contracts/FiatTokenLike.sol bench/contracts/ReferenceEscrow.sol \
    >"$WORK/build.log" 2>&1 || die "forge build failed:
$(cat "$WORK/build.log")"

# ------------------------------------------------------------------ anvil

T0=1800000000 # genesis timestamp (2027-01-15); all deadlines are fixed offsets from it
PORT=$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
RPC="http://127.0.0.1:$PORT"
"$ANVIL" --host 127.0.0.1 --port "$PORT" --hardfork "$HARDFORK" --timestamp "$T0" --accounts 10 \
    --mnemonic "test test test test test test test test test test test junk" >"$WORK/anvil.log" 2>&1 &
ANVIL_PID=$!
for _ in $(seq 1 100); do
    "$CAST" chain-id --rpc-url "$RPC" >/dev/null 2>&1 && break
    kill -0 "$ANVIL_PID" 2>/dev/null || die "anvil exited:
$(cat "$WORK/anvil.log")"
    sleep 0.1
done
CHAIN_ID=$("$CAST" chain-id --rpc-url "$RPC" 2>/dev/null) || die "anvil did not answer on $RPC"
echo "gas.sh: anvil ($HARDFORK) on $RPC" >&2

# ------------------------------------------------------------------ helpers

MNEMONIC="test test test test test test test test test test test junk"
key() { "$CAST" wallet private-key "$MNEMONIC" "$1"; }
addr() { "$CAST" wallet address --private-key "$1"; }

K_DEPLOYER=$(key 0) # token owner, master minter, pauser, blacklister; deploys everything
K_PAYER=$(key 1)
K_PAYEE=$(key 2)
K_ARBITER=$(key 3)
K_RELAYER=$(key 4) # submits EIP-3009 locks for the payer
K_KEEPER=$(key 5)  # anyone: auto-release, expiry refund, resolveByTimeout
K_PAYER2=$(key 6)  # a payer that never used EIP-2612 before
K_ADMIN=$(key 9)   # proxy admin (may not call the token)
DEPLOYER=$(addr "$K_DEPLOYER")
PAYER=$(addr "$K_PAYER")
PAYEE=$(addr "$K_PAYEE")
ARBITER=$(addr "$K_ARBITER")
PAYER2=$(addr "$K_PAYER2")
ZERO=0x0000000000000000000000000000000000000000

# Prints a field of a JSON document read from stdin (dotted path; hex quantities stay as they are).
jget() { node -e 'const d = JSON.parse(require("fs").readFileSync(0, "utf8")); const v = process.argv[1].split(".").reduce((o, k) => (o == null ? o : o[k]), d); console.log(v == null ? "" : v);' "$1"; }

LAST_RECEIPT="$WORK/receipt.json"

# tx KEY TO SIG ARGS... : sends a transaction (fixed gas limit: no estimation), fails loudly on a revert,
# leaves the receipt in $LAST_RECEIPT and its gasUsed in GAS. (Runs in the calling shell: no subshell may hide
# a failure.)
GAS=""
tx() {
    local k=$1 to=$2
    shift 2
    if ! "$CAST" send --private-key "$k" --rpc-url "$RPC" --gas-limit 3000000 --json "$to" "$@" >"$LAST_RECEIPT" 2>"$WORK/send.err"; then
        die "transaction failed: $to $*
$(cat "$WORK/send.err")"
    fi
    if [[ $(jget status <"$LAST_RECEIPT") != 0x1 ]]; then
        local reason
        reason=$("$CAST" call --from "$(addr "$k")" --rpc-url "$RPC" "$to" "$@" 2>&1 || true)
        die "transaction reverted: $to $*
$reason$(decode_error "$reason")"
    fi
    GAS=$(node -e 'console.log(Number(BigInt(process.argv[1])))' "$(jget gasUsed <"$LAST_RECEIPT")")
}

# decode_error TEXT : names the custom error whose data ("data: \"0x...\"") appears in TEXT, from the ABIs built.
decode_error() {
    local data sig
    data=$(grep -o 'data: "0x[0-9a-fA-F]*"' <<<"$1" | head -1 | cut -d'"' -f2 || true)
    [[ ${#data} -ge 10 ]] || return 0
    while read -r sig; do
        if [[ $("$CAST" sig "$sig") == "${data:0:10}" ]]; then
            printf '\n= %s: %s' "$sig" "$("$CAST" decode-error --sig "$sig" "$data" 2>/dev/null | paste -sd' ' -)"
            return 0
        fi
    done < <(find "$WORK/out" -name '*.json' -not -path '*/build-info/*' -exec node -e '
const sigs = new Set();
for (const f of process.argv.slice(1)) {
  for (const e of JSON.parse(require("fs").readFileSync(f, "utf8")).abi || []) {
    if (e.type === "error" && e.inputs.every((i) => !i.type.startsWith("tuple"))) sigs.add(`${e.name}(${e.inputs.map((i) => i.type).join(",")})`);
  }
}
console.log([...sigs].join("\n"));
' {} +)
}

# deploy KEY ARTIFACT [LIBRARY_ADDRESS] [CONSTRUCTOR_SIG ARGS...] : prints the new contract's address.
deploy() {
    local k=$1 artifact=$2 lib=$3 code
    shift 3
    code=$(node -e '
const fs = require("fs");
const [file, lib] = process.argv.slice(1);
const a = JSON.parse(fs.readFileSync(file, "utf8"));
let code = a.bytecode.object.replace(/^0x/, "");
for (const refs of Object.values(a.bytecode.linkReferences || {}))
  for (const places of Object.values(refs))
    for (const { start, length } of places) {
      if (!/^0x[0-9a-fA-F]{40}$/.test(lib)) { console.error("library address needed for " + file); process.exit(1); }
      code = code.slice(0, start * 2) + lib.slice(2).toLowerCase() + code.slice((start + length) * 2);
    }
if (code.includes("__$")) { console.error("unlinked library in " + file); process.exit(1); }
console.log("0x" + code);
' "$WORK/out/$artifact" "$lib") || die "cannot read $artifact"
    if ! "$CAST" send --private-key "$k" --rpc-url "$RPC" --json --create "$code" "$@" >"$LAST_RECEIPT" 2>"$WORK/send.err"; then
        die "deployment of $artifact failed:
$(cat "$WORK/send.err")"
    fi
    [[ $(jget status <"$LAST_RECEIPT") == 0x1 ]] || die "deployment of $artifact reverted"
    "$CAST" to-check-sum-address "$(jget contractAddress <"$LAST_RECEIPT")"
}

call() { "$CAST" call --rpc-url "$RPC" "$@" | cut -d' ' -f1; }
set_time() { "$CAST" rpc evm_setNextBlockTimestamp "$1" --rpc-url "$RPC" >/dev/null; }
id() { "$CAST" keccak "holdfast-bench:$1"; }

DOMAIN_TYPE='"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}]'
domain() { printf '{"name":"USD Coin","version":"2","chainId":%s,"verifyingContract":"%s"}' "$CHAIN_ID" "$TOKEN"; }
# receive_auth_json FROM TO VALUE VALID_AFTER VALID_BEFORE NONCE
receive_auth_json() {
    printf '{"types":{%s,"ReceiveWithAuthorization":[{"name":"from","type":"address"},{"name":"to","type":"address"},{"name":"value","type":"uint256"},{"name":"validAfter","type":"uint256"},{"name":"validBefore","type":"uint256"},{"name":"nonce","type":"bytes32"}]},"primaryType":"ReceiveWithAuthorization","domain":%s,"message":{"from":"%s","to":"%s","value":"%s","validAfter":"%s","validBefore":"%s","nonce":"%s"}}' \
        "$DOMAIN_TYPE" "$(domain)" "$1" "$2" "$3" "$4" "$5" "$6"
}
# permit_json OWNER SPENDER VALUE NONCE DEADLINE
permit_json() {
    printf '{"types":{%s,"Permit":[{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]},"primaryType":"Permit","domain":%s,"message":{"owner":"%s","spender":"%s","value":"%s","nonce":"%s","deadline":"%s"}}' \
        "$DOMAIN_TYPE" "$(domain)" "$1" "$2" "$3" "$4" "$5"
}

PAYOUT_DEFERRED_TOPIC=$("$CAST" keccak "PayoutDeferred(bytes32,address,uint256)")
no_deferred_payout() {
    ! grep -qi "${PAYOUT_DEFERRED_TOPIC#0x}" "$LAST_RECEIPT" || die "a payout was deferred (credited) in: $1"
}

# ------------------------------------------------------------------ results

ROWS=() # group|label|gas|target|note|key
record() { # group label gas target note [key: pairs a Holdfast row with its reference row]
    [[ "$3" =~ ^[1-9][0-9]*$ ]] || die "no gasUsed measured for: $2"
    ROWS+=("$1|$2|$3|$4|$5|${6:-}")
    printf 'gas.sh: %-58s %9s\n' "$2" "$3" >&2
}

# measure GROUP LABEL TARGET NOTE PAIR_KEY KEY TO SIG ARGS... : one measured transaction.
measure() {
    local group=$1 label=$2 target=$3 note=$4 pair=$5
    shift 5
    tx "$@"
    record "$group" "$label" "$GAS" "$target" "$note" "$pair"
    no_deferred_payout "$label"
}

# ------------------------------------------------------------------ deployment and setup (not measured)

AMOUNT=100000000                # 100 USDC per order
DELIVER_BY=$((T0 + 7 * 86400))  # every order: deliver within 7 days
WINDOW=$((3 * 86400))           # dispute window after delivery
VALID_BEFORE=$((T0 + 365 * 86400))
PERMIT_DEADLINE=$((T0 + 365 * 86400))

LIB=$(deploy "$K_DEPLOYER" FiatTokenLike.sol/SignatureCheckerLike.json -)
IMPL=$(deploy "$K_DEPLOYER" FiatTokenLike.sol/FiatTokenV2_2Like.json "$LIB")
TOKEN=$(deploy "$K_ADMIN" FiatTokenLike.sol/FiatTokenProxyLike.json - "constructor(address)" "$IMPL")
tx "$K_DEPLOYER" "$TOKEN" "initialize(string,string,string,uint8,address,address,address,address)" \
    "USD Coin" USDC USD 6 "$DEPLOYER" "$DEPLOYER" "$DEPLOYER" "$DEPLOYER"
tx "$K_DEPLOYER" "$TOKEN" "configureMinter(address,uint256)" "$DEPLOYER" 1000000000000000000
for who in "$PAYER" "$PAYER2"; do tx "$K_DEPLOYER" "$TOKEN" "mint(address,uint256)" "$who" 10000000000000; done
tx "$K_DEPLOYER" "$TOKEN" "mint(address,uint256)" "$PAYEE" 1000000 # 1 USDC: the payee's balance is non-zero

ESCROW=$(deploy "$K_DEPLOYER" HoldfastEscrow.sol/HoldfastEscrow.json - "constructor(address)" "$TOKEN")
REF=$(deploy "$K_DEPLOYER" ReferenceEscrow.sol/ReferenceEscrow.json - "constructor(address)" "$TOKEN")
echo "gas.sh: token (proxy) $TOKEN, implementation $IMPL, escrow $ESCROW, reference $REF" >&2

LOCK_SIG="lock(bytes32,address,uint256,address,uint64,uint32)"
LOCK_3009_SIG="lockWithAuthorization(address,bytes32,address,uint256,address,uint64,uint32,uint256,uint256,uint8,bytes32,bytes32)"
LOCK_PERMIT_SIG="lockWithPermit(bytes32,address,uint256,address,uint64,uint32,uint256,uint8,bytes32,bytes32)"
REF_LOCK_SIG="lock(bytes32,address,uint96,uint64)"
REF_LOCK_3009_SIG="lockWithAuthorization(address,bytes32,address,uint96,uint64,uint256,uint256,uint8,bytes32,bytes32)"

# Each *_args function leaves the transaction (KEY TO SIG ARGS...) in TX, signing what needs a signature.
TX=()
sign_into_vrs() { # KEY TYPED_DATA_JSON -> V R S
    local sig
    sig=$("$CAST" wallet sign --private-key "$1" --data "$2") || die "signing failed: $2"
    V=$((16#${sig:130:2}))
    R=0x${sig:2:64}
    S=0x${sig:66:64}
}
permit_lock_args() { # KEY ORDER ARBITER: lockWithPermit by the signer
    local k=$1 owner nonce
    owner=$(addr "$k")
    nonce=$(call "$TOKEN" "nonces(address)(uint256)" "$owner")
    sign_into_vrs "$k" "$(permit_json "$owner" "$ESCROW" "$AMOUNT" "$nonce" "$PERMIT_DEADLINE")"
    TX=("$k" "$ESCROW" "$LOCK_PERMIT_SIG" "$2" "$PAYEE" "$AMOUNT" "$3" "$DELIVER_BY" "$WINDOW" "$PERMIT_DEADLINE" "$V" "$R" "$S")
}
auth_lock_args() { # ORDER ARBITER: lockWithAuthorization signed by the payer, sent by the relayer
    local nonce
    nonce=$(call "$ESCROW" "authorizationNonce(bytes32,address,uint256,address,uint64,uint32)(bytes32)" \
        "$1" "$PAYEE" "$AMOUNT" "$2" "$DELIVER_BY" "$WINDOW")
    sign_into_vrs "$K_PAYER" "$(receive_auth_json "$PAYER" "$ESCROW" "$AMOUNT" 0 "$VALID_BEFORE" "$nonce")"
    TX=("$K_RELAYER" "$ESCROW" "$LOCK_3009_SIG" "$PAYER" "$1" "$PAYEE" "$AMOUNT" "$2" "$DELIVER_BY" "$WINDOW" 0 "$VALID_BEFORE" "$V" "$R" "$S")
}
allowance_lock_args() { # ORDER ARBITER: lock by the payer (approve it first)
    TX=("$K_PAYER" "$ESCROW" "$LOCK_SIG" "$1" "$PAYEE" "$AMOUNT" "$2" "$DELIVER_BY" "$WINDOW")
}
approve() { tx "$K_PAYER" "$TOKEN" "approve(address,uint256)" "$1" "$AMOUNT"; } # exact amount, as a dapp would

# Ballast: the escrows hold other orders' funds before anything is measured, the payer's permit nonce is
# non-zero (steady state for a returning payer), and the arbiter has been used before.
permit_lock_args "$K_PAYER" "$(id ballast)" "$ZERO"
tx "${TX[@]}"
permit_lock_args "$K_PAYER" "$(id ballast-arbiter)" "$ARBITER"
tx "${TX[@]}"
approve "$REF"
tx "$K_PAYER" "$REF" "$REF_LOCK_SIG" "$(id ref-ballast)" "$PAYEE" "$AMOUNT" "$DELIVER_BY"

# ------------------------------------------------------------------ measured: HoldfastEscrow

H="HoldfastEscrow"
approve "$ESCROW"
record "$H" "approve (separate tx before a lock by allowance)" "$GAS" "" "USDC-like approve, allowance 0 → amount"
allowance_lock_args "$(id A)" "$ZERO"
measure "$H" "lock by allowance (no arbiter)" 105000 "plus the approve tx above" lock "${TX[@]}"
approve "$ESCROW"
allowance_lock_args "$(id B)" "$ARBITER"
measure "$H" "lock by allowance, with arbiter" "" "{+lock by allowance (no arbiter)}: the 3rd slot" - "${TX[@]}"
auth_lock_args "$(id C)" "$ZERO"
measure "$H" "lock by EIP-3009, relayed (no arbiter)" 140000 "sent by a third account (relayer)" lock3009 "${TX[@]}"
auth_lock_args "$(id D)" "$ARBITER"
measure "$H" "lock by EIP-3009, relayed, with arbiter" "" "{+lock by EIP-3009, relayed (no arbiter)}: the 3rd slot" - "${TX[@]}"
permit_lock_args "$K_PAYER" "$(id E)" "$ZERO"
measure "$H" "lock by EIP-2612 permit (no arbiter)" "" "payer's permit nonce already non-zero" - "${TX[@]}"
permit_lock_args "$K_PAYER" "$(id F)" "$ARBITER"
measure "$H" "lock by EIP-2612 permit, with arbiter" "" "{+lock by EIP-2612 permit (no arbiter)}: the 3rd slot" - "${TX[@]}"
permit_lock_args "$K_PAYER2" "$(id P2)" "$ZERO"
measure "$H" "lock by EIP-2612 permit, payer's first permit" "" "{+lock by EIP-2612 permit (no arbiter)}: permit nonce 0 → 1" - "${TX[@]}"
approve "$ESCROW"
allowance_lock_args "$(id G)" "$ARBITER" # for "resolve (all to the payee)"; not measured
tx "${TX[@]}"

measure "$H" "deliver" 35000 "by the payee" - "$K_PAYEE" "$ESCROW" "deliver(bytes32,bytes32)" "$(id A)" "$(id evidence)"
measure "$H" "release (full, by payer)" 60000 "delivered order → Settled" release \
    "$K_PAYER" "$ESCROW" "release(bytes32,uint256)" "$(id A)" "$AMOUNT"
measure "$H" "release (partial, by payer)" 60000 "half; the order stays Held" - \
    "$K_PAYER" "$ESCROW" "release(bytes32,uint256)" "$(id B)" $((AMOUNT / 2))
measure "$H" "refund (full, by payee)" 60000 "→ Settled" refund "$K_PAYEE" "$ESCROW" "refund(bytes32,uint256)" "$(id C)" "$AMOUNT"
measure "$H" "freeze (by payee)" 35000 "Held order with an arbiter" - \
    "$K_PAYEE" "$ESCROW" "freeze(bytes32,bytes32)" "$(id D)" "$(id reason)"
measure "$H" "resolve (split between payee and payer)" "" "two transfers" - \
    "$K_ARBITER" "$ESCROW" "resolve(bytes32,uint256)" "$(id D)" $((AMOUNT / 2))
tx "$K_PAYEE" "$ESCROW" "freeze(bytes32,bytes32)" "$(id G)" "$(id reason)"
measure "$H" "resolve (all to the payee)" "" "one transfer" - \
    "$K_ARBITER" "$ESCROW" "resolve(bytes32,uint256)" "$(id G)" "$AMOUNT"
tx "$K_PAYEE" "$ESCROW" "deliver(bytes32,bytes32)" "$(id E)" "$(id evidence)" # auto-released below
tx "$K_PAYEE" "$ESCROW" "freeze(bytes32,bytes32)" "$(id F)" "$(id reason)"     # resolved by timeout below

# ------------------------------------------------------------------ measured: ReferenceEscrow (same token, same run)

RE="ReferenceEscrow"
approve "$REF"
measure "$RE" "reference: lock by allowance" "" "2 slots, 1 event, transferFrom" lock \
    "$K_PAYER" "$REF" "$REF_LOCK_SIG" "$(id R1)" "$PAYEE" "$AMOUNT" "$DELIVER_BY"
nonce=$(call "$REF" "authorizationNonce(bytes32,address,uint96,uint64)(bytes32)" "$(id R2)" "$PAYEE" "$AMOUNT" "$DELIVER_BY")
sign_into_vrs "$K_PAYER" "$(receive_auth_json "$PAYER" "$REF" "$AMOUNT" 0 "$VALID_BEFORE" "$nonce")"
measure "$RE" "reference: lock by EIP-3009, relayed" "" "2 slots, 1 event, receiveWithAuthorization" lock3009 \
    "$K_RELAYER" "$REF" "$REF_LOCK_3009_SIG" "$PAYER" "$(id R2)" "$PAYEE" "$AMOUNT" "$DELIVER_BY" 0 "$VALID_BEFORE" "$V" "$R" "$S"
measure "$RE" "reference: release (full, by payer)" "" "1 slot written, 1 event, transfer" release \
    "$K_PAYER" "$REF" "release(bytes32)" "$(id R1)"
measure "$RE" "reference: refund (full, by payee)" "" "1 slot written, 1 event, transfer" refund \
    "$K_PAYEE" "$REF" "refund(bytes32)" "$(id R2)"

# ------------------------------------------------------------------ measured after time passes

set_time $((T0 + 8 * 86400)) # E's dispute window is over; B's deliverBy has passed
measure "$H" "release (auto-release by anyone, after the window)" 60000 "delivered order, whole remainder" - \
    "$K_KEEPER" "$ESCROW" "release(bytes32,uint256)" "$(id E)" "$AMOUNT"
measure "$H" "refund (expiry, by anyone)" 60000 "undelivered order, whole remainder" - \
    "$K_KEEPER" "$ESCROW" "refund(bytes32,uint256)" "$(id B)" $((AMOUNT / 2))
set_time $((T0 + 40 * 86400)) # F's freeze timeout (30 days) is over
measure "$H" "resolveByTimeout (by anyone)" "" "default outcome, one transfer" - \
    "$K_KEEPER" "$ESCROW" "resolveByTimeout(bytes32)" "$(id F)"

# ------------------------------------------------------------------ consistency checks

# HoldfastEscrow now holds the two ballast orders and P2 (locked, untouched): 3 × AMOUNT.
held=$(call "$TOKEN" "balanceOf(address)(uint256)" "$ESCROW")
[[ "$held" == $((3 * AMOUNT)) ]] || die "escrow balance is $held, expected $((3 * AMOUNT))"
held=$(call "$TOKEN" "balanceOf(address)(uint256)" "$REF")
[[ "$held" == "$AMOUNT" ]] || die "reference escrow balance is $held, expected $AMOUNT"

# ------------------------------------------------------------------ report

FORGE_VERSION=$("$FORGE" --version | head -1)
COMPILER_SETTINGS=$("$FORGE" config --json | node -e 'const c = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log((c.optimizer ? `optimizer ${Number(c.optimizer_runs).toLocaleString("en-US")} runs` : "no optimizer") +
  `, evm_version ${c.evm_version}` + (c.via_ir ? ", via-ir" : ""))')
SOLC_VERSION=$(node -e 'console.log(require(process.argv[1]).version())' "$ROOT/node_modules/solc" 2>/dev/null || echo unknown)
mkdir -p bench/results
printf '%s\n' "${ROWS[@]}" | node -e '
const fs = require("fs");
const [forge, solc, settings, hardfork, update, outJson, mdFile] = process.argv.slice(1);
const rows = fs.readFileSync(0, "utf8").trim().split("\n").map((l) => {
  const [group, label, gas, target, note, pair] = l.split("|");
  return { group, label, gasUsed: Number(gas), target: target ? Number(target) : null, note, pair: pair || null };
});
// Table order (rows are measured in the order the chain state allows).
const order = ["approve", "lock by allowance", "lock by EIP-3009", "lock by EIP-2612", "deliver", "release (full",
  "release (partial", "release (auto", "refund (full", "refund (expiry", "freeze", "resolve (", "resolveByTimeout"];
const rank = (r) => { const i = order.findIndex((p) => r.label.startsWith(p)); return i < 0 ? order.length : i; };
const fmt = (n) => n.toLocaleString("en-US");
const holdfast = rows.filter((r) => r.group === "HoldfastEscrow").map((r, i) => [r, i])
  .sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1]).map(([r]) => r);
const reference = rows.filter((r) => r.group === "ReferenceEscrow");
const out = [];
out.push("| Operation (HoldfastEscrow) | gasUsed | Target | Result | Notes |", "|---|--:|--:|:-:|---|");
for (const r of holdfast) {
  const result = r.target == null ? "" : r.gasUsed <= r.target ? "pass" : "**miss** (+" + fmt(r.gasUsed - r.target) + ")";
  // "{+LABEL}" in a note: the difference to the row LABEL.
  const note = r.note.replace(/\{\+([^}]*)\}/g, (_, l) => {
    const o = holdfast.find((x) => x.label === l);
    return o ? `+${fmt(r.gasUsed - o.gasUsed)} vs ${l.replace(/ \(no arbiter\)$/, "")}` : "";
  });
  out.push(`| ${r.label} | ${fmt(r.gasUsed)} | ${r.target == null ? "" : "≤ " + fmt(r.target)} | ${result} | ${note} |`);
}
out.push("", "| Same token, same run | HoldfastEscrow | ReferenceEscrow (2 slots, no rules) | Holdfast − reference |",
  "|---|--:|--:|--:|");
for (const ref of reference) {
  const h = holdfast.find((r) => r.pair && r.pair === ref.pair);
  const what = ref.label.replace(/^reference: /, "");
  out.push(`| ${what} | ${h ? fmt(h.gasUsed) : ""} | ${fmt(ref.gasUsed)} | ${h ? "+" + fmt(h.gasUsed - ref.gasUsed) : ""} |`);
}
const env = `Measured with ${forge.replace(/^forge Version: /, "Foundry ")}, solc ${solc.replace(/\+commit.*/, "")} ` +
  `(${settings}), anvil hardfork ${hardfork}; token: bench/contracts/FiatTokenLike.sol.`;
const table = out.join("\n");
console.log(table + "\n\n" + env);
fs.writeFileSync(outJson, JSON.stringify({ environment: { forge, solc, settings, hardfork }, rows }, null, 2) + "\n");
if (update === "1") {
  const begin = "<!-- gas-table:begin -->", end = "<!-- gas-table:end -->";
  const md = fs.readFileSync(mdFile, "utf8");
  const i = md.indexOf(begin), j = md.indexOf(end);
  if (i < 0 || j < i) { console.error("gas.sh: error: markers " + begin + " / " + end + " not found in " + mdFile); process.exit(1); }
  fs.writeFileSync(mdFile, md.slice(0, i + begin.length) + "\n" + table + "\n\n" + env + "\n" + md.slice(j));
  console.error("gas.sh: updated " + mdFile);
}
' "$FORGE_VERSION" "$SOLC_VERSION" "$COMPILER_SETTINGS" "$HARDFORK" "$UPDATE" bench/results/gas.json BENCHMARKS.md
