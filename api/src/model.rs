//! What the API serves: records built from the indexer's derived state, with exact amounts (base-unit
//! integer strings next to decimal strings), EIP-55 addresses and finality from the chain heights.

use alloy::primitives::{B256, U256};
use holdfast_primitives::{
    ContractStatus, EscrowEvent, EventPos, Finality, Heights, OrderState, OrderStatus,
};
use holdfast_store::StoredEvent;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    config::{ApiConfig, TokenInfo},
    format::{addr, decimal, hash, iso8601},
};

/// An order's payment state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatusName {
    /// Funds held, not delivered yet.
    Held,
    /// Delivered; the dispute window runs until `deadlines.releasableAt`.
    Delivered,
    /// Frozen for the arbiter.
    Frozen,
    /// Settled: everything went to the payee.
    Released,
    /// Settled: everything went back to the payer, refunded by the payee.
    Refunded,
    /// Settled: everything went back to the payer because the payee never delivered.
    Expired,
    /// Settled with parts to both sides.
    Split,
}

impl From<OrderStatus> for OrderStatusName {
    fn from(s: OrderStatus) -> Self {
        match s {
            OrderStatus::Held => Self::Held,
            OrderStatus::Delivered => Self::Delivered,
            OrderStatus::Frozen => Self::Frozen,
            OrderStatus::Released => Self::Released,
            OrderStatus::Refunded => Self::Refunded,
            OrderStatus::Expired => Self::Expired,
            OrderStatus::Split => Self::Split,
        }
    }
}

impl From<OrderStatusName> for OrderStatus {
    fn from(s: OrderStatusName) -> Self {
        match s {
            OrderStatusName::Held => Self::Held,
            OrderStatusName::Delivered => Self::Delivered,
            OrderStatusName::Frozen => Self::Frozen,
            OrderStatusName::Released => Self::Released,
            OrderStatusName::Refunded => Self::Refunded,
            OrderStatusName::Expired => Self::Expired,
            OrderStatusName::Split => Self::Split,
        }
    }
}

/// How final a block is: `pending` (above the safe height, can still be reorganised away), `safe`, or
/// `finalized` (never rewritten).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FinalityName {
    /// Above the safe height.
    Pending,
    /// At or below the safe height.
    Safe,
    /// At or below the finalized height.
    Finalized,
}

impl From<Finality> for FinalityName {
    fn from(f: Finality) -> Self {
        match f {
            Finality::Pending => Self::Pending,
            Finality::Safe => Self::Safe,
            Finality::Finalized => Self::Finalized,
        }
    }
}

/// Confirmations of `block`: `head - block + 1` (0 above the head).
pub fn confirmations(block: u64, h: &Heights) -> u64 {
    if h.head >= block { h.head - block + 1 } else { 0 }
}

/// The token of an escrow.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    /// Token contract (EIP-55), if configured.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub address: Option<String>,
    /// Symbol.
    pub symbol: String,
    /// Decimals of the base unit.
    pub decimals: u8,
}

impl From<&TokenInfo> for TokenRecord {
    fn from(t: &TokenInfo) -> Self {
        Self { address: t.address.map(addr), symbol: t.symbol.clone(), decimals: t.decimals }
    }
}

/// One step of an order's life, where it happened and how final it is.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// Event kind: `locked`, `delivered`, `released`, `refunded`, `frozen`, `resolved`, `payout_deferred`.
    pub kind: String,
    /// Transaction hash.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub transaction_hash: String,
    /// Block number.
    pub block_number: u64,
    /// Block hash.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub block_hash: String,
    /// Block timestamp (unix seconds).
    pub block_timestamp: u64,
    /// Log index in the block.
    pub log_index: u64,
    /// Finality of the block.
    pub finality: FinalityName,
    /// `head - blockNumber + 1`.
    pub confirmations: u64,
}

impl StepRecord {
    fn new(kind: &str, pos: &EventPos, h: &Heights) -> Self {
        Self {
            kind: kind.to_string(),
            transaction_hash: hash(pos.tx_hash),
            block_number: pos.block_number,
            block_hash: hash(pos.block_hash),
            block_timestamp: pos.block_timestamp,
            log_index: pos.log_index,
            finality: Finality::of(pos.block_number, h).into(),
            confirmations: confirmations(pos.block_number, h),
        }
    }
}

/// An order's deadlines (unix seconds).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deadlines {
    /// Delivery deadline: without delivery by then, anyone may refund the payer (`expired`).
    pub deliver_by: u64,
    /// Set at delivery: from then on anyone may release to the payee.
    pub releasable_at: Option<u64>,
    /// Set when frozen: from then on anyone may execute the default outcome.
    pub freeze_timeout_at: Option<u64>,
}

/// An event that was illegal for the order's state (impossible with a correct contract): recorded, not
/// applied.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyRecord {
    /// Event kind.
    pub kind: String,
    /// Why it was not applied.
    pub reason: String,
    /// Transaction hash.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub transaction_hash: String,
    /// Block number.
    pub block_number: u64,
    /// Log index.
    pub log_index: u64,
}

/// An order: its parties, exact amounts, status, deadlines, every step with its transaction and finality.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderRecord {
    /// Chain id.
    pub chain_id: u64,
    /// Escrow contract (EIP-55).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub escrow: String,
    /// Order id (`0x` + 64 hex digits).
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub order_id: String,
    /// Payer.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub payer: String,
    /// Payee.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub payee: String,
    /// Arbiter (`null`: the order can never be frozen).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub arbiter: Option<String>,
    /// The escrow's token.
    pub token: TokenRecord,
    /// Amount locked, in base units (integer string).
    pub amount: String,
    /// Amount locked, in token units (exact decimal string, no trailing zeros).
    pub amount_decimal: String,
    /// Total released to the payee, base units.
    pub released: String,
    /// Total released, token units.
    pub released_decimal: String,
    /// Total refunded to the payer, base units.
    pub refunded: String,
    /// Total refunded, token units.
    pub refunded_decimal: String,
    /// Still held, base units.
    pub remaining: String,
    /// Still held, token units.
    pub remaining_decimal: String,
    /// Payouts the token refused and the escrow credited for a later withdrawal, base units.
    pub deferred: String,
    /// Deferred payouts, token units.
    pub deferred_decimal: String,
    /// Each deferred payout with the withdrawal that paid it out (`withdrawn: null` while the recipient
    /// can still withdraw it). Present when `deferred` is not zero, on reads of the order (`GET
    /// /v1/orders…`); the change feed's records omit it, as a withdrawal is an account's event that does
    /// not change the order (follow `GET /v1/accounts/{address}/credits`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred_payouts: Option<Vec<crate::ledger::DeferredPayoutRecord>>,
    /// Payment status.
    pub status: OrderStatusName,
    /// Whether the order can no longer change on the canonical chain (settled; see `finality`).
    pub settled: bool,
    /// The contract's own status: `held`, `delivered`, `frozen`, `settled`.
    pub contract_status: String,
    /// Dispute window (seconds after delivery).
    pub dispute_window: u32,
    /// Deadlines.
    pub deadlines: Deadlines,
    /// Delivery evidence hash.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub evidence: Option<String>,
    /// Freeze reason code.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub freeze_reason: Option<String>,
    /// Who froze it.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub frozen_by: Option<String>,
    /// Whether the timeout default settled the frozen order.
    pub resolved_by_timeout: bool,
    /// Lock time (block timestamp, unix seconds).
    pub locked_at: u64,
    /// Time of the last step (unix seconds).
    pub updated_at: u64,
    /// Every step, the lock first, in chain order.
    pub steps: Vec<StepRecord>,
    /// Finality of the record: that of its last step's block.
    pub finality: FinalityName,
    /// Confirmations of the last step's block.
    pub confirmations: u64,
    /// Illegal events recorded for this order (empty with a correct contract).
    pub anomalies: Vec<AnomalyRecord>,
}

fn contract_status_name(s: ContractStatus) -> &'static str {
    match s {
        ContractStatus::None => "none",
        ContractStatus::Held => "held",
        ContractStatus::Delivered => "delivered",
        ContractStatus::Frozen => "frozen",
        ContractStatus::Settled => "settled",
    }
}

impl OrderRecord {
    /// Build from the derived state.
    pub fn new(o: &OrderState, cfg: &ApiConfig, h: &Heights) -> Self {
        let token = cfg.token(o.chain_id, o.escrow);
        let d = token.decimals;
        let mut steps = Vec::with_capacity(o.steps.len() + 1);
        steps.push(StepRecord::new(&o.locked.kind, &o.locked.pos, h));
        steps.extend(o.steps.iter().map(|s| StepRecord::new(&s.kind, &s.pos, h)));
        let last = o.last_pos();
        Self {
            chain_id: o.chain_id,
            escrow: addr(o.escrow),
            order_id: hash(o.order_id),
            payer: addr(o.payer),
            payee: addr(o.payee),
            arbiter: o.arbiter.map(addr),
            token: token.into(),
            amount: o.amount.to_string(),
            amount_decimal: decimal(o.amount, d),
            released: o.released.to_string(),
            released_decimal: decimal(o.released, d),
            refunded: o.refunded.to_string(),
            refunded_decimal: decimal(o.refunded, d),
            remaining: o.remaining.to_string(),
            remaining_decimal: decimal(o.remaining, d),
            deferred: o.deferred.to_string(),
            deferred_decimal: decimal(o.deferred, d),
            deferred_payouts: None,
            status: o.status.into(),
            settled: o.status.is_settled(),
            contract_status: contract_status_name(o.contract_status).into(),
            dispute_window: o.dispute_window,
            deadlines: Deadlines {
                deliver_by: o.deliver_by,
                releasable_at: o.releasable_at,
                freeze_timeout_at: o.freeze_timeout_at,
            },
            evidence: o.evidence.map(hash),
            freeze_reason: o.freeze_reason.map(hash),
            frozen_by: o.frozen_by.map(addr),
            resolved_by_timeout: o.resolved_by_timeout,
            locked_at: o.locked.pos.block_timestamp,
            updated_at: last.block_timestamp,
            steps,
            finality: Finality::of(last.block_number, h).into(),
            confirmations: confirmations(last.block_number, h),
            anomalies: o
                .anomalies
                .iter()
                .map(|a| AnomalyRecord {
                    kind: a.kind.clone(),
                    reason: a.reason.clone(),
                    transaction_hash: hash(a.pos.tx_hash),
                    block_number: a.pos.block_number,
                    log_index: a.pos.log_index,
                })
                .collect(),
        }
    }
}

/// A page of orders.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderList {
    /// Orders in lock order (block, log index).
    pub data: Vec<OrderRecord>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Payment status of the on-chain escrow rail.
///
/// | order status | payment status |
/// |---|---|
/// | held | held |
/// | delivered | release_pending |
/// | frozen | frozen |
/// | released | released |
/// | refunded | refunded |
/// | expired | refunded |
/// | split | split |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Funds locked in the escrow.
    Held,
    /// Delivered: released to the payee when the dispute window closes (unless frozen).
    ReleasePending,
    /// Frozen for the arbiter.
    Frozen,
    /// Paid to the payee.
    Released,
    /// Returned to the payer (refunded by the payee, or expired undelivered).
    Refunded,
    /// Divided between payee and payer.
    Split,
}

impl From<OrderStatus> for PaymentStatus {
    fn from(s: OrderStatus) -> Self {
        match s {
            OrderStatus::Held => Self::Held,
            OrderStatus::Delivered => Self::ReleasePending,
            OrderStatus::Frozen => Self::Frozen,
            OrderStatus::Released => Self::Released,
            OrderStatus::Refunded | OrderStatus::Expired => Self::Refunded,
            OrderStatus::Split => Self::Split,
        }
    }
}

/// Rail type of Holdfast payments.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum RailType {
    /// Funds held by an on-chain escrow contract.
    #[serde(rename = "onchain-escrow")]
    OnchainEscrow,
}

/// Where and how the payment is held.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRail {
    /// Always `onchain-escrow`.
    #[serde(rename = "type")]
    pub rail_type: RailType,
    /// Chain name (`eip155:<id>` when not known).
    pub chain: String,
    /// Chain id.
    pub chain_id: u64,
    /// Token symbol.
    pub token: String,
    /// Token contract, if configured.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub token_address: Option<String>,
    /// Escrow contract.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub escrow_address: String,
    /// Payer.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub payer_address: String,
    /// Payee.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub payee_address: String,
    /// Arbiter, if any.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub arbiter_address: Option<String>,
}

/// Proof verification mode: always `rpc` (the record is derived from the chain's logs).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerificationMode {
    /// Verified against the chain through RPC.
    Rpc,
}

/// Proof status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProofStatus {
    /// The lock is indexed but its block is not finalized yet.
    Pending,
    /// The lock's block is finalized.
    Verified,
}

/// Proof that the funds were locked: the lock transaction.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentProof {
    /// Lock transaction.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub transaction_hash: String,
    /// Its block.
    pub block_number: u64,
    /// Always `rpc`.
    pub verification_mode: VerificationMode,
    /// `verified` once the lock's block is finalized, else `pending`.
    pub status: ProofStatus,
    /// Finality of the lock's block.
    pub finality: FinalityName,
    /// Confirmations of the lock's block.
    pub confirmations: u64,
    /// Chain name.
    pub chain: String,
    /// Token symbol.
    pub token: String,
    /// Token contract, if configured.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub token_address: Option<String>,
    /// Payer.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub payer_address: String,
    /// Payee (the escrow holds the funds for it).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub payee_address: String,
    /// Amount locked, token units.
    pub amount: String,
    /// Amount locked, base units.
    pub raw_amount: String,
    /// Lock time (ISO-8601 UTC).
    pub locked_at: String,
}

/// The settling transaction of a settled order.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentSettlement {
    /// Last transaction of the order.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub transaction_hash: String,
    /// Its block.
    pub block_number: u64,
    /// Finality of that block.
    pub finality: FinalityName,
    /// Settlement time (ISO-8601 UTC).
    pub settled_at: String,
}

/// A payment in the shape marketplaces use for an on-chain escrow rail.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRecord {
    /// `pay_` + the order id's 64 hex digits.
    pub id: String,
    /// Order id.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub order_id: String,
    /// Payment status (see the mapping from order status in the API docs).
    pub status: PaymentStatus,
    /// The order status it maps from.
    pub order_status: OrderStatusName,
    /// Rail.
    pub rail: PaymentRail,
    /// Amount locked, token units (exact decimal string).
    pub amount: String,
    /// Amount locked, base units.
    pub raw_amount: String,
    /// Released to the payee so far, token units.
    pub released: String,
    /// Refunded to the payer so far, token units.
    pub refunded: String,
    /// Still held, token units.
    pub remaining: String,
    /// Currency (the token symbol).
    pub currency: String,
    /// Proof of the lock.
    pub proof: PaymentProof,
    /// The settling transaction, once settled.
    pub settlement: Option<PaymentSettlement>,
    /// Remarks (anomalies, deferred payouts).
    pub notes: Vec<String>,
    /// Payouts the token refused and the escrow credited, base units (`"0"` if none).
    pub deferred: String,
    /// Each deferred payout with the withdrawal that paid it out, as on the order (present when `deferred`
    /// is not zero).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred_payouts: Option<Vec<crate::ledger::DeferredPayoutRecord>>,
    /// Lock time (ISO-8601 UTC).
    pub created_at: String,
    /// Time of the last step (ISO-8601 UTC).
    pub updated_at: String,
}

impl PaymentRecord {
    /// Build from the derived state.
    pub fn new(o: &OrderState, cfg: &ApiConfig, h: &Heights) -> Self {
        let token = cfg.token(o.chain_id, o.escrow);
        let d = token.decimals;
        let chain = cfg.chain_name(o.chain_id);
        let lock = &o.locked.pos;
        let lock_finality = Finality::of(lock.block_number, h);
        let last = o.last_pos();
        let mut notes = Vec::new();
        if !o.deferred.is_zero() {
            notes.push(format!(
                "{} {} of the payouts were refused by the token and credited for withdrawal from the escrow",
                decimal(o.deferred, d),
                token.symbol
            ));
        }
        for a in &o.anomalies {
            notes.push(format!(
                "anomaly: {} event in block {} not applied: {}",
                a.kind, a.pos.block_number, a.reason
            ));
        }
        Self {
            id: format!("pay_{}", alloy::hex::encode(o.order_id.as_slice())),
            order_id: hash(o.order_id),
            status: o.status.into(),
            order_status: o.status.into(),
            rail: PaymentRail {
                rail_type: RailType::OnchainEscrow,
                chain: chain.clone(),
                chain_id: o.chain_id,
                token: token.symbol.clone(),
                token_address: token.address.map(addr),
                escrow_address: addr(o.escrow),
                payer_address: addr(o.payer),
                payee_address: addr(o.payee),
                arbiter_address: o.arbiter.map(addr),
            },
            amount: decimal(o.amount, d),
            raw_amount: o.amount.to_string(),
            released: decimal(o.released, d),
            refunded: decimal(o.refunded, d),
            remaining: decimal(o.remaining, d),
            currency: token.symbol.clone(),
            proof: PaymentProof {
                transaction_hash: hash(lock.tx_hash),
                block_number: lock.block_number,
                verification_mode: VerificationMode::Rpc,
                status: if lock_finality == Finality::Finalized {
                    ProofStatus::Verified
                } else {
                    ProofStatus::Pending
                },
                finality: lock_finality.into(),
                confirmations: confirmations(lock.block_number, h),
                chain,
                token: token.symbol.clone(),
                token_address: token.address.map(addr),
                payer_address: addr(o.payer),
                payee_address: addr(o.payee),
                amount: decimal(o.amount, d),
                raw_amount: o.amount.to_string(),
                locked_at: iso8601(lock.block_timestamp),
            },
            settlement: o.status.is_settled().then(|| PaymentSettlement {
                transaction_hash: hash(last.tx_hash),
                block_number: last.block_number,
                finality: Finality::of(last.block_number, h).into(),
                settled_at: iso8601(last.block_timestamp),
            }),
            notes,
            deferred: o.deferred.to_string(),
            deferred_payouts: None,
            created_at: iso8601(lock.block_timestamp),
            updated_at: iso8601(last.block_timestamp),
        }
    }
}

/// Decoded fields of an escrow event (only those the event has). Amounts come as base-unit strings with a
/// `…Decimal` twin.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventData {
    /// Caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub by: Option<String>,
    /// Payer (`locked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub payer: Option<String>,
    /// Payee (`locked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub payee: Option<String>,
    /// Arbiter (`locked`; absent for none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub arbiter: Option<String>,
    /// Amount moved (`locked`, `released`, `refunded`, `payout_deferred`, `withdrawn`), base units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Amount moved, token units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_decimal: Option<String>,
    /// Delivery deadline (`locked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_by: Option<u64>,
    /// Dispute window (`locked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispute_window: Option<u32>,
    /// Evidence hash (`delivered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub evidence: Option<String>,
    /// Auto-release time (`delivered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub releasable_at: Option<u64>,
    /// Freeze reason (`frozen`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub reason: Option<String>,
    /// When the default outcome becomes executable (`frozen`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_at: Option<u64>,
    /// Paid to the payee (`resolved`), base units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_payee: Option<String>,
    /// Paid to the payer (`resolved`), base units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_payer: Option<String>,
    /// Paid to the payee (`resolved`), token units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_payee_decimal: Option<String>,
    /// Paid to the payer (`resolved`), token units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_payer_decimal: Option<String>,
    /// Whether the timeout default settled it (`resolved`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_timeout: Option<bool>,
    /// Credited recipient (`payout_deferred`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub recipient: Option<String>,
    /// Account paid (`withdrawn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub account: Option<String>,
    /// Remaining after the event, base units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<String>,
    /// Remaining after the event, token units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_decimal: Option<String>,
    /// Contract status after the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_status: Option<String>,
}

fn status_name(s: u8) -> Option<String> {
    ContractStatus::from_u8(s).map(|s| contract_status_name(s).to_string())
}

impl EventData {
    fn new(e: &EscrowEvent, decimals: u8) -> Self {
        let amt = |v: &U256| (Some(v.to_string()), Some(decimal(*v, decimals)));
        let mut d = Self::default();
        match e {
            EscrowEvent::Locked {
                payer, payee, arbiter, amount, deliver_by, dispute_window, status, ..
            } => {
                d.payer = Some(addr(*payer));
                d.payee = Some(addr(*payee));
                d.arbiter = (!arbiter.is_zero()).then(|| addr(*arbiter));
                (d.amount, d.amount_decimal) = amt(amount);
                d.deliver_by = Some(*deliver_by);
                d.dispute_window = Some(*dispute_window);
                (d.remaining, d.remaining_decimal) = amt(amount);
                d.contract_status = status_name(*status);
            }
            EscrowEvent::Delivered { evidence, releasable_at, remaining, status, .. } => {
                d.evidence = Some(hash(*evidence));
                d.releasable_at = Some(*releasable_at);
                (d.remaining, d.remaining_decimal) = amt(remaining);
                d.contract_status = status_name(*status);
            }
            EscrowEvent::Released { by, amount, remaining, status, .. }
            | EscrowEvent::Refunded { by, amount, remaining, status, .. } => {
                d.by = Some(addr(*by));
                (d.amount, d.amount_decimal) = amt(amount);
                (d.remaining, d.remaining_decimal) = amt(remaining);
                d.contract_status = status_name(*status);
            }
            EscrowEvent::Frozen { by, reason, timeout_at, remaining, status, .. } => {
                d.by = Some(addr(*by));
                d.reason = Some(hash(*reason));
                d.timeout_at = Some(*timeout_at);
                (d.remaining, d.remaining_decimal) = amt(remaining);
                d.contract_status = status_name(*status);
            }
            EscrowEvent::Resolved { by, to_payee, to_payer, by_timeout, remaining, status, .. } => {
                d.by = Some(addr(*by));
                (d.to_payee, d.to_payee_decimal) = amt(to_payee);
                (d.to_payer, d.to_payer_decimal) = amt(to_payer);
                d.by_timeout = Some(*by_timeout);
                (d.remaining, d.remaining_decimal) = amt(remaining);
                d.contract_status = status_name(*status);
            }
            EscrowEvent::PayoutDeferred { recipient, amount, .. } => {
                d.recipient = Some(addr(*recipient));
                (d.amount, d.amount_decimal) = amt(amount);
            }
            EscrowEvent::Withdrawn { account, amount } => {
                d.account = Some(addr(*account));
                (d.amount, d.amount_decimal) = amt(amount);
            }
        }
        d
    }
}

/// One stored escrow event, reverted ones included.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    /// Insertion sequence number in the store.
    pub seq: i64,
    /// Event kind: `locked`, `delivered`, `released`, `refunded`, `frozen`, `resolved`,
    /// `payout_deferred`, `withdrawn`.
    pub kind: String,
    /// Chain id.
    pub chain_id: u64,
    /// Emitting escrow.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub escrow: String,
    /// Order id (`null` for `withdrawn`).
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub order_id: Option<String>,
    /// Transaction hash.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub transaction_hash: String,
    /// Transaction index in the block.
    pub transaction_index: u64,
    /// Block number.
    pub block_number: u64,
    /// Block hash.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub block_hash: String,
    /// Block timestamp (unix seconds).
    pub block_timestamp: u64,
    /// Log index in the block.
    pub log_index: u64,
    /// Whether a reorg removed the event from the canonical chain.
    pub reverted: bool,
    /// Finality of the block (`null` for a reverted event).
    pub finality: Option<FinalityName>,
    /// Decoded fields.
    pub data: EventData,
}

impl EventRecord {
    /// Build from a stored event.
    pub fn new(e: &StoredEvent, cfg: &ApiConfig, h: &Heights) -> Self {
        let token = cfg.token(e.raw.chain_id, e.raw.escrow);
        let pos = &e.raw.pos;
        Self {
            seq: e.seq,
            kind: e.event.kind().to_string(),
            chain_id: e.raw.chain_id,
            escrow: addr(e.raw.escrow),
            order_id: e.event.order_id().map(hash),
            transaction_hash: hash(pos.tx_hash),
            transaction_index: pos.tx_index,
            block_number: pos.block_number,
            block_hash: hash(pos.block_hash),
            block_timestamp: pos.block_timestamp,
            log_index: pos.log_index,
            reverted: e.reverted,
            finality: (!e.reverted).then(|| Finality::of(pos.block_number, h).into()),
            data: EventData::new(&e.event, token.decimals),
        }
    }
}

/// An order's full event history.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventList {
    /// Events in chain order, reverted ones included (marked `reverted: true`).
    pub data: Vec<EventRecord>,
}

/// Whether a transaction's escrow events are on the canonical chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TxStatus {
    /// Indexed on the canonical chain.
    Indexed,
    /// Every event of it was reverted by a reorg (it may be re-included later).
    Reverted,
}

/// What a transaction did to one order.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TxOrderEffect {
    /// Escrow.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub escrow: String,
    /// Order id.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub order_id: String,
    /// Event kinds the transaction emitted for the order (canonical events only), in log order.
    pub effects: Vec<String>,
}

/// What a transaction did to which orders.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionRecord {
    /// Transaction hash.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub transaction_hash: String,
    /// Chain id.
    pub chain_id: u64,
    /// `indexed`, or `reverted` when a reorg removed all of its events.
    pub status: TxStatus,
    /// Block of its canonical events (`null` when reverted).
    pub block_number: Option<u64>,
    /// That block's hash.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub block_hash: Option<String>,
    /// Finality of that block (`null` when reverted).
    pub finality: Option<FinalityName>,
    /// Confirmations of that block (0 when reverted).
    pub confirmations: u64,
    /// Orders the transaction changed.
    pub orders: Vec<TxOrderEffect>,
    /// Its escrow events, reverted ones included.
    pub events: Vec<EventRecord>,
}

impl TransactionRecord {
    /// Build from the transaction's stored events (non-empty, one chain).
    pub fn new(tx_hash: B256, events: &[StoredEvent], cfg: &ApiConfig, h: &Heights) -> Self {
        let chain_id = events.first().map_or(0, |e| e.raw.chain_id);
        let canonical: Vec<&StoredEvent> = events.iter().filter(|e| !e.reverted).collect();
        let block = canonical.first().map(|e| (e.raw.pos.block_number, e.raw.pos.block_hash));
        let mut orders: Vec<TxOrderEffect> = Vec::new();
        for e in &canonical {
            let Some(order_id) = e.event.order_id() else { continue };
            let (escrow, order_id) = (addr(e.raw.escrow), hash(order_id));
            match orders.iter_mut().find(|o| o.escrow == escrow && o.order_id == order_id) {
                Some(o) => o.effects.push(e.event.kind().to_string()),
                None => {
                    orders.push(TxOrderEffect { escrow, order_id, effects: vec![e.event.kind().to_string()] })
                }
            }
        }
        Self {
            transaction_hash: hash(tx_hash),
            chain_id,
            status: if block.is_some() { TxStatus::Indexed } else { TxStatus::Reverted },
            block_number: block.map(|b| b.0),
            block_hash: block.map(|b| hash(b.1)),
            finality: block.map(|b| Finality::of(b.0, h).into()),
            confirmations: block.map_or(0, |b| confirmations(b.0, h)),
            orders,
            events: events.iter().map(|e| EventRecord::new(e, cfg, h)).collect(),
        }
    }
}

/// Liveness.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// Indexing state of one chain.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainStatus {
    /// Chain id.
    pub chain_id: u64,
    /// Last fully indexed block.
    pub cursor: u64,
    /// Chain head when last seen.
    pub head: u64,
    /// Safe height.
    pub safe: u64,
    /// Finalized height.
    pub finalized: u64,
    /// `head - cursor`.
    pub lag_blocks: u64,
    /// When the indexing state last changed (unix seconds).
    pub updated_at: u64,
    /// Seconds since then.
    pub seconds_since_update: u64,
    /// This process's role for the chain: `writer` (its indexer writes the chain), `standby` (another
    /// process writes it; this one takes over when that one stops) or `reader` (no indexer of this chain
    /// here: `holdfast serve`, reading what another process commits).
    pub role: String,
    /// The in-process indexer's state for the chain (`starting`, `running`, `faulted`, `halted`,
    /// `standby`); absent for a reader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexer: Option<String>,
}

/// Readiness report.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: String,
    /// Why not ready (empty when ready).
    pub reasons: Vec<String>,
    /// Every chain's indexing state.
    pub chains: Vec<ChainStatus>,
    /// Every escrow's latest reconciliation (also `GET /v1/reconciliation`). It does not decide
    /// readiness: a `shortfall` is an alert for the operator (the records served are still what the chain
    /// says), not a reason to take the API out of a load balancer.
    pub reconciliation: Vec<crate::ledger::ReconciliationRecord>,
}

/// Kind of a change-feed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum ChangeType {
    /// The order's state changed; `order` is the new record.
    #[serde(rename = "order.updated")]
    OrderUpdated,
    /// A reorg reverted a state sent before; `order` is the re-derived record, `null` if the order no
    /// longer exists.
    #[serde(rename = "order.retracted")]
    OrderRetracted,
    /// Only on a stream filtered by `status`: the order, last announced in the filtered status, changed to
    /// another status (it leaves the filter); `order` is the new record. No further updates of it follow
    /// unless it returns to the filtered status.
    #[serde(rename = "order.left")]
    OrderLeft,
}

/// The data of an `order.updated`, `order.left` or `order.retracted` stream event.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRecord {
    /// Position in the change log (also the SSE `id`: resume with `Last-Event-ID`).
    pub seq: i64,
    /// Kind (also the SSE `event` name).
    #[serde(rename = "type")]
    pub change_type: ChangeType,
    /// Chain id.
    pub chain_id: u64,
    /// Escrow.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub escrow: String,
    /// Order id.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub order_id: String,
    /// `order.updated`, `order.left`: the last block of the new state. `order.retracted`: the fork block;
    /// every state built on blocks above it was reverted.
    pub block_number: u64,
    /// The order after the change (`null`: a reorg erased it).
    pub order: Option<OrderRecord>,
}

/// The data of a `resync` stream event: the client asked to resume after a position beyond the end of the
/// change log (the store was reset or re-created, or the position was never served), so changes it holds
/// may have been lost and none can be replayed from there. Its SSE `id` is `lastSeq`; the stream continues
/// with the changes after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResyncRecord {
    /// The position the client asked to resume after (`Last-Event-ID` or `after`).
    pub after: i64,
    /// The newest position of the change log (0: empty); the stream continues after it.
    pub last_seq: i64,
    /// What the client must do (human-readable).
    pub message: String,
}

/// The data of a `heights` stream event: sent at the start and whenever a chain's heights move, so
/// clients can advance the finality of the orders they hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeightsRecord {
    /// Chain id.
    pub chain_id: u64,
    /// Last fully indexed block.
    pub cursor: u64,
    /// Head.
    pub head: u64,
    /// Safe height.
    pub safe: u64,
    /// Finalized height.
    pub finalized: u64,
}
