//! The escrow's books beyond single orders: withdrawable credits per account (payouts the token refused,
//! which the escrow credited), each order's deferred payouts with the withdrawal that paid them out, and the
//! reconciliation of each escrow's liabilities against its token balance.
//!
//! `withdraw(account)` pays an account's whole credit at once, so a credited payout is withdrawn by the
//! first withdrawal of the same account on the same escrow after it (in chain order); until then it is
//! withdrawable.

use std::collections::BTreeSet;

use alloy::primitives::{Address, U256};
use axum::{extract::State, http::StatusCode, response::Response};
use holdfast_primitives::{EscrowEvent, Finality, Heights, OrderState, Reconciliation};
use holdfast_store::{OrderReader, StoredEvent};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    error::{ApiError, ApiResult, ErrorEnvelope},
    format::{addr, decimal, hash, iso8601, parse_address},
    http::{ApiPath, ApiQuery, fresh_json},
    model::{FinalityName, TokenRecord},
    routes::OrderQuery,
    state::{AppState, Snapshot},
};

/// Where a credit event happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerPos {
    /// Transaction hash.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub transaction_hash: String,
    /// Block number.
    pub block_number: u64,
    /// Log index in the block.
    pub log_index: u64,
    /// Block time (ISO-8601 UTC).
    pub timestamp: String,
    /// Finality of the block.
    pub finality: FinalityName,
}

impl LedgerPos {
    fn new(e: &StoredEvent, h: &Heights) -> Self {
        Self {
            transaction_hash: hash(e.raw.pos.tx_hash),
            block_number: e.raw.pos.block_number,
            log_index: e.raw.pos.log_index,
            timestamp: iso8601(e.raw.pos.block_timestamp),
            finality: Finality::of(e.raw.pos.block_number, h).into(),
        }
    }
}

/// A payout of an order that the token refused (a blocklisted recipient, a paused token) and the escrow
/// credited to the recipient, who withdraws it with `withdraw(account)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeferredPayoutRecord {
    /// Who the payout was for (EIP-55).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub recipient: String,
    /// Amount credited, base units (integer string).
    pub amount: String,
    /// Amount credited, token units (exact decimal string).
    pub amount_decimal: String,
    /// Where it was credited.
    pub credited: LedgerPos,
    /// The withdrawal that paid it out; `null` while it is still withdrawable.
    pub withdrawn: Option<LedgerPos>,
}

/// An entry of an account's credit history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreditEntry {
    /// `credited` (a payout of `orderId` credited) or `withdrawn` (the whole credit paid out).
    pub kind: CreditEntryKind,
    /// The order whose payout was credited (`null` for a withdrawal).
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub order_id: Option<String>,
    /// Amount, base units.
    pub amount: String,
    /// Amount, token units.
    pub amount_decimal: String,
    /// Where it happened.
    pub at: LedgerPos,
    /// For a credit: the withdrawal that paid it out (`null` while withdrawable, and for withdrawals).
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    pub withdrawn_in: Option<String>,
}

/// Kind of a credit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CreditEntryKind {
    /// A payout credited to the account.
    Credited,
    /// The account's credit withdrawn.
    Withdrawn,
}

/// An account's credit in one escrow.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreditBalance {
    /// Chain id.
    pub chain_id: u64,
    /// Escrow (EIP-55).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub escrow: String,
    /// The escrow's token.
    pub token: TokenRecord,
    /// Withdrawable now (as of the indexed head), base units.
    pub withdrawable: String,
    /// Withdrawable now, token units.
    pub withdrawable_decimal: String,
    /// Every credit and withdrawal, in chain order.
    pub history: Vec<CreditEntry>,
}

/// An account's credits in every escrow where it has any history.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountCredits {
    /// The account (EIP-55).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub account: String,
    /// One entry per escrow, by chain id and escrow.
    pub data: Vec<CreditBalance>,
}

/// How an escrow's token balance compares with what it owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReconciliationResult {
    /// The balance equals the liabilities.
    Match,
    /// The escrow holds more than it owes: tokens sent to it directly (not through an order). Harmless;
    /// no order can pay them out.
    Surplus,
    /// The escrow holds less than the indexer says it owes: an alert (a token that charges fees on
    /// transfer or rebases, or an indexing fault). Logged as an error and exported as
    /// `holdfast_reconciliation_ok 0`.
    Shortfall,
}

/// The latest reconciliation of one escrow.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationRecord {
    /// Chain id.
    pub chain_id: u64,
    /// Escrow (EIP-55).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub escrow: String,
    /// The escrow's token.
    pub token: TokenRecord,
    /// The indexed block (by hash) both sides were read at.
    pub block_number: u64,
    /// Finality of that block now.
    pub finality: FinalityName,
    /// What the escrow owes as derived: the remainders of open orders plus every account's withdrawable
    /// credit, base units.
    pub liabilities: String,
    /// `token.balanceOf(escrow)` at that block, base units.
    pub balance: String,
    /// `balance - liabilities`, base units (negative for a shortfall).
    pub difference: String,
    /// `match`, `surplus` or `shortfall`.
    pub result: ReconciliationResult,
    /// When it was checked (ISO-8601 UTC).
    pub checked_at: String,
}

impl ReconciliationRecord {
    /// Build from a stored reconciliation.
    pub fn new(r: &Reconciliation, token: TokenRecord, h: &Heights) -> Self {
        let (result, difference) = match r.actual.cmp(&r.expected) {
            std::cmp::Ordering::Equal => (ReconciliationResult::Match, "0".to_string()),
            std::cmp::Ordering::Greater => {
                (ReconciliationResult::Surplus, (r.actual - r.expected).to_string())
            }
            std::cmp::Ordering::Less => {
                (ReconciliationResult::Shortfall, format!("-{}", r.expected - r.actual))
            }
        };
        Self {
            chain_id: r.chain_id,
            escrow: addr(r.escrow),
            token,
            block_number: r.block_number,
            finality: Finality::of(r.block_number, h).into(),
            liabilities: r.expected.to_string(),
            balance: r.actual.to_string(),
            difference,
            result,
            checked_at: iso8601(r.checked_at),
        }
    }
}

/// Every escrow's latest reconciliation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReconciliationList {
    /// By chain id and escrow; empty until the indexer has checked (every 10 s while it runs).
    pub data: Vec<ReconciliationRecord>,
}

/// The latest reconciliation of every indexed escrow (read by `/readyz` too).
pub(crate) async fn reconciliations(
    state: &AppState,
    snap: &Snapshot,
) -> ApiResult<Vec<ReconciliationRecord>> {
    let mut out = Vec::new();
    // The chains indexed as last seen, and the configured ones (indexed since, maybe).
    let chains: BTreeSet<u64> =
        snap.chains.keys().copied().chain(state.config.escrows.iter().map(|e| e.chain_id)).collect();
    for chain_id in chains {
        let h = snap.heights(chain_id);
        for r in state.store.reconciliations(chain_id).await? {
            let token = TokenRecord::from(state.config.token(r.chain_id, r.escrow));
            out.push(ReconciliationRecord::new(&r, token, &h));
        }
    }
    Ok(out)
}

/// Each escrow's token balance against what it owes, as last checked by the indexer.
#[utoipa::path(
    get,
    path = "/v1/reconciliation",
    tag = "ledger",
    responses((status = 200, description = "The latest check of every escrow", body = ReconciliationList))
)]
pub(crate) async fn get_reconciliation(State(state): State<AppState>) -> ApiResult<Response> {
    let snap = state.snapshot().await?;
    let data = reconciliations(&state, &snap).await?;
    Ok(fresh_json(StatusCode::OK, &ReconciliationList { data }))
}

/// An account's withdrawable credits and their history.
#[utoipa::path(
    get,
    path = "/v1/accounts/{address}/credits",
    tag = "ledger",
    params(("address" = String, Path, description = "Account: 0x + 40 hex digits (any letter case)", pattern = r"^0[xX][0-9a-fA-F]{40}$"), OrderQuery),
    responses(
        (status = 200, description = "One entry per escrow where the account was ever credited (empty if none)", body = AccountCredits),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorEnvelope),
    )
)]
pub(crate) async fn get_credits(
    State(state): State<AppState>,
    ApiPath(address): ApiPath<String>,
    ApiQuery(q): ApiQuery<OrderQuery>,
) -> ApiResult<Response> {
    let account = parse_address("address", &address)?;
    let (chain_id, escrow) = (q.chain_id()?, q.escrow()?);
    let events = state.store.account_credit_events(chain_id, escrow, account).await?;
    let snap = state.snapshot().await?;
    let places: BTreeSet<(u64, Address)> = events.iter().map(|e| (e.raw.chain_id, e.raw.escrow)).collect();
    let mut data = Vec::with_capacity(places.len());
    for (chain_id, escrow) in places {
        let h = snap.heights(chain_id);
        let token = state.config.token(chain_id, escrow);
        let mine: Vec<&StoredEvent> =
            events.iter().filter(|e| e.raw.chain_id == chain_id && e.raw.escrow == escrow).collect();
        let (history, withdrawable) = credit_history(&mine, token.decimals, &h)?;
        data.push(CreditBalance {
            chain_id,
            escrow: addr(escrow),
            token: TokenRecord::from(token),
            withdrawable: withdrawable.to_string(),
            withdrawable_decimal: decimal(withdrawable, token.decimals),
            history,
        });
    }
    Ok(fresh_json(StatusCode::OK, &AccountCredits { account: addr(account), data }))
}

/// The history of one account in one escrow (its live credit events in chain order), each credit marked
/// with the withdrawal that paid it out, and what is withdrawable after the last event.
fn credit_history(events: &[&StoredEvent], decimals: u8, h: &Heights) -> ApiResult<(Vec<CreditEntry>, U256)> {
    let mut history = Vec::with_capacity(events.len());
    let mut open: Vec<usize> = Vec::new();
    let mut balance = U256::ZERO;
    for e in events {
        let (kind, order_id, amount) = match &e.event {
            EscrowEvent::PayoutDeferred { order_id, amount, .. } => {
                balance = balance
                    .checked_add(*amount)
                    .ok_or_else(|| ApiError::Internal("credit balance overflows 256 bits".into()))?;
                open.push(history.len());
                (CreditEntryKind::Credited, Some(hash(*order_id)), *amount)
            }
            EscrowEvent::Withdrawn { amount, .. } => {
                for i in open.drain(..) {
                    let entry: &mut CreditEntry = &mut history[i];
                    entry.withdrawn_in = Some(hash(e.raw.pos.tx_hash));
                }
                balance = U256::ZERO;
                (CreditEntryKind::Withdrawn, None, *amount)
            }
            _ => continue,
        };
        history.push(CreditEntry {
            kind,
            order_id,
            amount: amount.to_string(),
            amount_decimal: decimal(amount, decimals),
            at: LedgerPos::new(e, h),
            withdrawn_in: None,
        });
    }
    Ok((history, balance))
}

/// The deferred payouts of `o`, each with the withdrawal that paid it out; `None` if it has none.
pub(crate) async fn deferred_payouts(
    state: &AppState,
    o: &OrderState,
    h: &Heights,
) -> ApiResult<Option<Vec<DeferredPayoutRecord>>> {
    if o.deferred.is_zero() {
        return Ok(None);
    }
    let decimals = state.config.token(o.chain_id, o.escrow).decimals;
    let events = state.store.order_events(o.chain_id, o.escrow, o.order_id).await?;
    // Each recipient's credit events, read once (an order paid out in parts credits its payee each time).
    let mut accounts: std::collections::HashMap<Address, Vec<StoredEvent>> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for e in events.iter().filter(|e| !e.reverted) {
        let EscrowEvent::PayoutDeferred { recipient, amount, .. } = &e.event else { continue };
        if !accounts.contains_key(recipient) {
            let read =
                state.store.account_credit_events(Some(o.chain_id), Some(o.escrow), *recipient).await?;
            accounts.insert(*recipient, read);
        }
        let account = &accounts[recipient];
        let at = (e.raw.pos.block_number, e.raw.pos.log_index);
        let withdrawn = account
            .iter()
            .find(|w| {
                matches!(w.event, EscrowEvent::Withdrawn { .. })
                    && (w.raw.pos.block_number, w.raw.pos.log_index) > at
            })
            .map(|w| LedgerPos::new(w, h));
        out.push(DeferredPayoutRecord {
            recipient: addr(*recipient),
            amount: amount.to_string(),
            amount_decimal: decimal(*amount, decimals),
            credited: LedgerPos::new(e, h),
            withdrawn,
        });
    }
    Ok(Some(out))
}
