//! Order, payment, event and transaction endpoints.

use std::{sync::Arc, time::Duration};

use alloy::primitives::{Address, B256};
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use holdfast_primitives::{Finality, OrderState};
use holdfast_store::{OrderFilter, OrderReader};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::{
    error::{ApiError, ApiResult, ErrorEnvelope},
    format::{decode_cursor, encode_cursor, parse_address, parse_b256},
    http::{ApiPath, ApiQuery, Cacheable, cached_json, fresh_json},
    ledger::{DeferredPayoutRecord, deferred_payouts},
    model::{
        EventList, EventRecord, FinalityName, OrderList, OrderRecord, OrderStatusName, PaymentRecord,
        TransactionRecord, TxStatus,
    },
    state::{AppState, NodeTx, Snapshot, TxLookup},
};

/// Default page size of `GET /v1/orders`.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of `GET /v1/orders`.
pub const MAX_LIMIT: u32 = 500;

/// Which order, when the same id exists in several escrows.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// Chain id.
    pub chain_id: Option<u64>,
    /// Escrow contract (any letter case).
    #[param(pattern = r"^0[xX][0-9a-fA-F]{40}$")]
    pub escrow: Option<String>,
}

impl OrderQuery {
    pub(crate) fn escrow(&self) -> ApiResult<Option<Address>> {
        self.escrow.as_deref().map(|e| parse_address("escrow", e)).transpose()
    }

    /// The chain id, refused above 2^63 - 1 (no chain the store can hold; `int64` in the document).
    pub(crate) fn chain_id(&self) -> ApiResult<Option<u64>> {
        match self.chain_id {
            Some(c) if c > i64::MAX as u64 => Err(ApiError::invalid("chainId", "chainId is out of range")),
            c => Ok(c),
        }
    }
}

/// Filters shared by the list and the stream.
#[derive(Debug, Default)]
pub(crate) struct RawFilter {
    pub(crate) payer: Option<String>,
    pub(crate) payee: Option<String>,
    pub(crate) arbiter: Option<String>,
    pub(crate) escrow: Option<String>,
    pub(crate) status: Option<OrderStatusName>,
    pub(crate) chain_id: Option<u64>,
    pub(crate) locked_from: Option<u64>,
    pub(crate) locked_to: Option<u64>,
}

impl RawFilter {
    pub(crate) fn parse(self) -> ApiResult<OrderFilter> {
        let opt = |field: &str, v: Option<String>| v.map(|s| parse_address(field, &s)).transpose();
        // `lockedFrom >= lockedTo` is an empty interval, answered with no orders: OpenAPI cannot state a
        // relation between two parameters, so the document (and a client generated from it) allows it.
        for (field, v) in
            [("lockedFrom", self.locked_from), ("lockedTo", self.locked_to), ("chainId", self.chain_id)]
        {
            if v.is_some_and(|v| v > i64::MAX as u64) {
                return Err(ApiError::invalid(field, format!("{field} is out of range")));
            }
        }
        Ok(OrderFilter {
            chain_id: self.chain_id,
            escrow: opt("escrow", self.escrow)?,
            payer: opt("payer", self.payer)?,
            payee: opt("payee", self.payee)?,
            arbiter: opt("arbiter", self.arbiter)?,
            status: self.status.map(Into::into),
            locked_from: self.locked_from,
            locked_to: self.locked_to,
            after: None,
            limit: 0,
        })
    }
}

/// Filters and page of `GET /v1/orders`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Payer address (any letter case).
    #[param(pattern = r"^0[xX][0-9a-fA-F]{40}$")]
    pub payer: Option<String>,
    /// Payee address.
    #[param(pattern = r"^0[xX][0-9a-fA-F]{40}$")]
    pub payee: Option<String>,
    /// Arbiter address.
    #[param(pattern = r"^0[xX][0-9a-fA-F]{40}$")]
    pub arbiter: Option<String>,
    /// Escrow contract.
    #[param(pattern = r"^0[xX][0-9a-fA-F]{40}$")]
    pub escrow: Option<String>,
    /// Order status.
    pub status: Option<OrderStatusName>,
    /// Chain id.
    pub chain_id: Option<u64>,
    /// Locked at or after (unix seconds, block time).
    pub locked_from: Option<u64>,
    /// Locked before (unix seconds, block time).
    pub locked_to: Option<u64>,
    /// `nextCursor` of the previous page.
    #[param(pattern = r"^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

fn heights_etag(o: &OrderState, state: &AppState, snap: &Snapshot) -> (Vec<u8>, Cacheable) {
    let h = snap.heights(o.chain_id);
    let token = state.config.token(o.chain_id, o.escrow);
    let immutable =
        o.status.is_settled() && Finality::of(o.last_pos().block_number, &h) == Finality::Finalized;
    let mut version = serde_json::to_vec(o).unwrap_or_default();
    version.extend_from_slice(format!("|{}|{}|{:?}", token.symbol, token.decimals, token.address).as_bytes());
    if immutable {
        version.extend_from_slice(b"|final");
        (version, Cacheable::Immutable)
    } else {
        version.extend_from_slice(format!("|{}|{}|{}", h.head, h.safe, h.finalized).as_bytes());
        (version, Cacheable::Revalidate)
    }
}

/// The validator of a record with deferred payouts: their withdrawals are not part of the order's state,
/// so they are added to it, and the record is immutable only once every payout was withdrawn in a finalized
/// block (until then a withdrawal can still come, or be reorganised away).
fn payouts_etag(
    (mut version, cache): (Vec<u8>, Cacheable),
    payouts: &Option<Vec<DeferredPayoutRecord>>,
    h: &holdfast_primitives::Heights,
) -> (Vec<u8>, Cacheable) {
    let Some(payouts) = payouts else { return (version, cache) };
    version.extend_from_slice(&serde_json::to_vec(payouts).unwrap_or_default());
    let settled =
        payouts.iter().all(|p| p.withdrawn.as_ref().is_some_and(|w| w.finality == FinalityName::Finalized));
    if matches!(cache, Cacheable::Immutable) && !settled {
        version.extend_from_slice(format!("|{}|{}|{}", h.head, h.safe, h.finalized).as_bytes());
        return (version, Cacheable::Revalidate);
    }
    (version, cache)
}

async fn find_order(state: &AppState, id: &str, q: &OrderQuery) -> ApiResult<Arc<OrderState>> {
    let order_id = parse_b256("orderId", id)?;
    let escrow = q.escrow()?;
    state.order(q.chain_id, escrow, order_id).await?.ok_or_else(|| ApiError::OrderNotFound(id.to_string()))
}

/// `GET /v1/orders/{orderId}`: which order, and an optional long-poll.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct OrderWaitQuery {
    /// Chain id.
    pub chain_id: Option<u64>,
    /// Escrow contract (any letter case).
    #[param(pattern = r"^0[xX][0-9a-fA-F]{40}$")]
    pub escrow: Option<String>,
    /// Wait up to this many seconds (at most the server's cap, 60 by default) until the order exists and
    /// its latest state (the record's `finality`) is at least `finality`.
    pub wait: Option<u64>,
    /// Finality to wait for (default `pending`: indexed at all). Given without `wait`, checked once.
    pub finality: Option<FinalityName>,
}

/// One order; optionally long-polls until it exists with its latest state at a finality.
#[utoipa::path(
    get,
    path = "/v1/orders/{orderId}",
    tag = "orders",
    params(("orderId" = String, Path, description = "Order id: 0x + 64 hex digits", pattern = r"^0[xX][0-9a-fA-F]{64}$"), OrderWaitQuery),
    responses(
        (status = 200, description = "The order. Without `wait`/`finality`: `ETag` (weak) and `Cache-Control`: \
            `immutable` once settled and finalized, else `no-cache`; `If-None-Match` answers 304. With them: \
            `no-store`.", body = OrderRecord,
            links(("lockTransaction" = (operation_id = "get_transaction",
                parameters(("txHash" = "$response.body#/steps/0/transactionHash")),
                description = "The transaction that locked the order")))),
        (status = 304, description = "Not modified"),
        (status = 400, description = "VALIDATION_ERROR (bad id or escrow, wait above the cap, unknown finality)", body = ErrorEnvelope),
        (status = 404, description = "ORDER_NOT_FOUND (also when it is still unknown after the wait)", body = ErrorEnvelope),
        (status = 408, description = "WAIT_TIMEOUT: the order exists, but its latest state did not reach the \
            requested finality before the wait ended; `error.details` is the current OrderRecord", body = ErrorEnvelope),
        (status = 503, description = "TOO_MANY_WAITS (with `wait`: the server's cap on open long-polls and \
            streams is reached; `Retry-After`), REQUEST_TIMEOUT, SHUTTING_DOWN", body = ErrorEnvelope),
    )
)]
pub(crate) async fn get_order(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<OrderWaitQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let OrderWaitQuery { chain_id, escrow, wait, finality } = q;
    let sel = OrderQuery { chain_id, escrow };
    if wait.is_none() && finality.is_none() {
        let o = find_order(&state, &id, &sel).await?;
        let snap = state.snapshot().await?;
        let h = snap.heights(o.chain_id);
        let mut record = OrderRecord::new(&o, &state.config, &h);
        record.deferred_payouts = deferred_payouts(&state, &o, &h).await?;
        let (version, cache) = payouts_etag(heights_etag(&o, &state, &snap), &record.deferred_payouts, &h);
        return Ok(cached_json(&headers, &record, &version, cache));
    }
    // Long-poll: the same wake-ups as `GET /v1/transactions/{txHash}?wait=` (indexer commits or the
    // watcher's snapshot), never polling the store on a timer.
    let order_id = parse_b256("orderId", &id)?;
    let escrow = sel.escrow()?;
    let wait = checked_wait(&state, wait)?;
    let target = finality.unwrap_or(FinalityName::Pending);
    let chain_id = sel.chain_id;
    let polled = long_poll(
        &state,
        wait,
        |_deadline| {
            let state = state.clone();
            async move {
                let Some(o) = state.store.order(chain_id, escrow, order_id).await? else { return Ok(None) };
                let snap = state.snapshot().await?;
                let h = snap.heights(o.chain_id);
                let mut record = OrderRecord::new(&o, &state.config, &h);
                record.deferred_payouts = deferred_payouts(&state, &o, &h).await?;
                Ok(Some(record))
            }
        },
        |r: &OrderRecord| r.finality >= target,
    )
    .await?;
    match polled {
        Polled::Ready(r) => Ok(fresh_json(StatusCode::OK, &r)),
        Polled::TimedOut(None) => Err(ApiError::OrderNotFound(id)),
        Polled::TimedOut(Some(r)) => Err(wait_timeout(&format!("order {id}"), target, wait, &r)),
    }
}

/// `?wait=` checked against the configured maximum (absent: 0, no wait).
fn checked_wait(state: &AppState, wait: Option<u64>) -> ApiResult<u64> {
    let max = state.config.max_wait.as_secs();
    let wait = wait.unwrap_or(0);
    if wait > max {
        return Err(ApiError::invalid("wait", format!("wait must be at most {max} seconds")));
    }
    Ok(wait)
}

/// How a long-poll ended.
enum Polled<T> {
    /// The record reached the condition.
    Ready(T),
    /// The wait ended first; the last record read (`None`: still not found).
    TimedOut(Option<T>),
}

/// Read with `read` (given the wait's deadline) until `ready` holds for the record or `wait` seconds pass.
/// Woken by the indexer's commits (or the watcher's snapshot), never by a timer on the store; ends at
/// shutdown with SHUTTING_DOWN. Shared by the order and transaction long-polls. With `wait > 0` it takes a
/// waiter's place (`TOO_MANY_WAITS` when none is free).
async fn long_poll<T, Fut: Future<Output = ApiResult<Option<T>>>>(
    state: &AppState,
    wait: u64,
    mut read: impl FnMut(tokio::time::Instant) -> Fut,
    ready: impl Fn(&T) -> bool,
) -> ApiResult<Polled<T>> {
    // A request that waits holds one of the server's places for waiters until it ends.
    let _slot = if wait > 0 { Some(state.wait_slot()?) } else { None };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut rx = state.subscribe();
    let shutdown = crate::state::until_shutdown(state.shutdown_signal());
    tokio::pin!(shutdown);
    loop {
        // Mark the current snapshot seen before reading, so a commit during the read wakes the next wait.
        rx.borrow_and_update();
        let record = read(deadline).await?;
        match record {
            Some(r) if ready(&r) => return Ok(Polled::Ready(r)),
            record if tokio::time::Instant::now() >= deadline => return Ok(Polled::TimedOut(record)),
            _ => {}
        }
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    tokio::time::sleep_until(deadline).await;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {}
            _ = &mut shutdown => return Err(ApiError::ShuttingDown),
        }
    }
}

/// For a transaction the store has no event of: what the node (if the server has one) says. A failed
/// transaction is `TX_FAILED`, one mined without an escrow event in a block already indexed `TX_NOT_FOUND`,
/// both at once; anything else (not mined yet, mined above the indexed block, the node unreachable, no
/// answer within `limit`) leaves the answer to the store.
async fn ask_the_node(
    state: &AppState,
    snap: &Snapshot,
    tx_hash: B256,
    tx: &str,
    limit: Duration,
) -> ApiResult<()> {
    // One node per indexed chain: a transaction hash belongs to at most one of them, so the first node that
    // knows it answers. All are asked at once, each for at most `limit`: a node that hangs (a black-holed
    // connection) neither holds up the answer of another chain's node nor the request.
    let mut asked: futures::stream::FuturesUnordered<_> =
        state.tx_lookups.iter().map(|node| ask_one_node(node.as_ref(), snap, tx_hash, tx, limit)).collect();
    while let Some(answer) = futures::StreamExt::next(&mut asked).await {
        match answer {
            Ok(true) => continue,
            Ok(false) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How long [`ask_the_node`] waits for one node's receipt at most (a long-poll's read also stops at its
/// deadline). Unlike the indexer's calls, this one is on a request's path: a node that has not answered by
/// then is treated as one that cannot tell.
const NODE_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a long-poll's node lookup may run past the wait's deadline (the check made at the deadline).
const NODE_LOOKUP_GRACE: Duration = Duration::from_millis(250);

/// [`ask_the_node`] for one node: `Ok(true)` when this node has not mined the transaction (or cannot be
/// asked, or does not answer within `limit`), so another chain's node may know it.
async fn ask_one_node(
    node: &dyn TxLookup,
    snap: &Snapshot,
    tx_hash: B256,
    tx: &str,
    limit: Duration,
) -> ApiResult<bool> {
    let chain_id = node.chain_id();
    let answer =
        tokio::time::timeout(limit, node.lookup(tx_hash)).await.unwrap_or_else(|elapsed| Err(elapsed.into()));
    match answer {
        Ok(NodeTx::Failed { block }) => Err(ApiError::TxFailed {
            message: format!(
                "transaction {tx} failed on chain {chain_id} in block {block} (receipt status 0): a reverted \
                 call emits no escrow event, so it will never be indexed"
            ),
            details: serde_json::json!({"transactionHash": tx, "chainId": chain_id, "blockNumber": block}),
        }),
        Ok(NodeTx::Succeeded { block }) if snap.chains.get(&chain_id).is_some_and(|m| m.cursor >= block) => {
            Err(ApiError::TxNotFound(tx.to_string()))
        }
        Ok(NodeTx::Succeeded { .. }) => Ok(false),
        Ok(NodeTx::NotMined) => Ok(true),
        Err(e) => {
            tracing::debug!(error = %e, tx, chain_id, "cannot ask the node about a transaction");
            Ok(true)
        }
    }
}

/// WAIT_TIMEOUT for `what` (e.g. "order 0x…"), with the current record as details.
fn wait_timeout(what: &str, target: FinalityName, wait: u64, record: &impl serde::Serialize) -> ApiError {
    let target =
        serde_json::to_value(target).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    match serde_json::to_value(record) {
        Ok(details) => ApiError::WaitTimeout {
            message: format!("{what} did not reach {target} finality within {wait} s"),
            details,
        },
        Err(e) => ApiError::Internal(e.to_string()),
    }
}

/// The order's payment, in the shape marketplaces use for an on-chain escrow rail.
#[utoipa::path(
    get,
    path = "/v1/orders/{orderId}/payment",
    tag = "orders",
    params(("orderId" = String, Path, description = "Order id: 0x + 64 hex digits", pattern = r"^0[xX][0-9a-fA-F]{64}$"), OrderQuery),
    responses(
        (status = 200, description = "The payment (caching as for the order)", body = PaymentRecord),
        (status = 304, description = "Not modified"),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorEnvelope),
        (status = 404, description = "ORDER_NOT_FOUND", body = ErrorEnvelope),
    )
)]
pub(crate) async fn get_payment(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<OrderQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let o = find_order(&state, &id, &q).await?;
    let snap = state.snapshot().await?;
    let h = snap.heights(o.chain_id);
    let mut record = PaymentRecord::new(&o, &state.config, &h);
    record.deferred_payouts = deferred_payouts(&state, &o, &h).await?;
    let (mut version, cache) = payouts_etag(heights_etag(&o, &state, &snap), &record.deferred_payouts, &h);
    version.extend_from_slice(format!("|payment|{}", state.config.chain_name(o.chain_id)).as_bytes());
    Ok(cached_json(&headers, &record, &version, cache))
}

/// An order's full event history, including events later reverted by a reorg.
#[utoipa::path(
    get,
    path = "/v1/orders/{orderId}/events",
    tag = "orders",
    params(("orderId" = String, Path, description = "Order id: 0x + 64 hex digits", pattern = r"^0[xX][0-9a-fA-F]{64}$"), OrderQuery),
    responses(
        (status = 200, description = "Events in chain order; reverted ones marked `reverted: true`", body = EventList),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorEnvelope),
        (status = 404, description = "ORDER_NOT_FOUND: no event of this order was ever indexed", body = ErrorEnvelope),
    )
)]
pub(crate) async fn get_order_events(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<OrderQuery>,
) -> ApiResult<Response> {
    let order_id = parse_b256("orderId", &id)?;
    let escrow = q.escrow()?;
    // Where the order lives: as asked, else where it is indexed, else (an order a reorg erased) the first
    // configured escrow that has events for it.
    let mut candidates: Vec<(u64, Address)> = Vec::new();
    if let (Some(c), Some(e)) = (q.chain_id, escrow) {
        candidates.push((c, e));
    } else if let Some(o) = state.store.order(q.chain_id, escrow, order_id).await? {
        candidates.push((o.chain_id, o.escrow));
    } else {
        candidates.extend(
            state
                .config
                .escrows
                .iter()
                .filter(|e| {
                    q.chain_id.is_none_or(|c| c == e.chain_id) && escrow.is_none_or(|a| a == e.escrow)
                })
                .map(|e| (e.chain_id, e.escrow)),
        );
    }
    for (chain_id, escrow) in candidates {
        let events = state.store.order_events(chain_id, escrow, order_id).await?;
        if events.is_empty() {
            continue;
        }
        let snap = state.snapshot().await?;
        let h = snap.heights(chain_id);
        let data = events.iter().map(|e| EventRecord::new(e, &state.config, &h)).collect();
        return Ok(fresh_json(StatusCode::OK, &EventList { data }));
    }
    Err(ApiError::OrderNotFound(id))
}

/// A page of orders, filtered, in lock order.
#[utoipa::path(
    get,
    path = "/v1/orders",
    tag = "orders",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of orders in lock order (block, log index); follow `nextCursor`", body = OrderList),
        (status = 400, description = "VALIDATION_ERROR (unknown parameter, bad address, cursor or limit)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn list_orders(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::invalid("limit", format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut filter = RawFilter {
        payer: q.payer,
        payee: q.payee,
        arbiter: q.arbiter,
        escrow: q.escrow,
        status: q.status,
        chain_id: q.chain_id,
        locked_from: q.locked_from,
        locked_to: q.locked_to,
    }
    .parse()?;
    filter.after = after;
    filter.limit = limit + 1;
    let mut orders = state.store.orders(&filter).await?;
    let more = orders.len() > limit as usize;
    orders.truncate(limit as usize);
    let snap = state.snapshot().await?;
    let next_cursor = if more {
        orders.last().map(|o| encode_cursor(o.locked.pos.block_number, o.locked.pos.log_index))
    } else {
        None
    };
    let mut data = Vec::with_capacity(orders.len());
    for o in &orders {
        let h = snap.heights(o.chain_id);
        let mut record = OrderRecord::new(o, &state.config, &h);
        record.deferred_payouts = deferred_payouts(&state, o, &h).await?;
        data.push(record);
    }
    Ok(fresh_json(StatusCode::OK, &OrderList { data, next_cursor }))
}

/// Long-poll options of `GET /v1/transactions/{txHash}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct TxQuery {
    /// Wait up to this many seconds (at most the server's cap, 60 by default) for the transaction to be
    /// indexed at `finality`.
    pub wait: Option<u64>,
    /// Finality to wait for (default `pending`: indexed at all). Given without `wait`, checked once.
    pub finality: Option<FinalityName>,
}

fn reached(record: &TransactionRecord, target: FinalityName) -> bool {
    record.finality.is_some_and(|f| f >= target)
}

/// What a transaction did to which orders; optionally long-polls until it is indexed at a finality.
#[utoipa::path(
    get,
    path = "/v1/transactions/{txHash}",
    tag = "transactions",
    params(("txHash" = String, Path, description = "Transaction hash: 0x + 64 hex digits", pattern = r"^0[xX][0-9a-fA-F]{64}$"), TxQuery),
    responses(
        (status = 200, description = "The transaction's escrow events and the orders it changed", body = TransactionRecord),
        (status = 400, description = "VALIDATION_ERROR (bad hash, wait above the cap, unknown finality)", body = ErrorEnvelope),
        (status = 404, description = "TX_NOT_FOUND: unknown, or it emitted no escrow event (after the wait; at \
            once when the server has a node (`holdfast run`) that says it was mined in a block already indexed)", body = ErrorEnvelope),
        (status = 408, description = "WAIT_TIMEOUT: indexed, but not at the requested finality before the wait \
            ended; `error.details` is the current TransactionRecord", body = ErrorEnvelope),
        (status = 409, description = "TX_REVERTED (with `wait` or `finality`): a reorg removed every escrow event \
            of the transaction; answered as soon as it is seen, not retryable; `error.details` is the \
            TransactionRecord (`status: reverted`). TX_FAILED: it was mined and failed (receipt status 0), so \
            it emitted no event and never will; answered at once by a server with a node (`holdfast run`); \
            not retryable; `error.details`: `transactionHash`, `chainId`, `blockNumber`", body = ErrorEnvelope),
        (status = 503, description = "TOO_MANY_WAITS (with `wait`: the server's cap on open long-polls and \
            streams is reached; `Retry-After`), REQUEST_TIMEOUT, SHUTTING_DOWN", body = ErrorEnvelope),
    )
)]
pub(crate) async fn get_transaction(
    State(state): State<AppState>,
    ApiPath(tx): ApiPath<String>,
    ApiQuery(q): ApiQuery<TxQuery>,
) -> ApiResult<Response> {
    let tx_hash = parse_b256("txHash", &tx)?;
    let wait = checked_wait(&state, q.wait)?;
    let conditional = q.wait.is_some() || q.finality.is_some();
    let target = q.finality.unwrap_or(FinalityName::Pending);
    let polled = long_poll(
        &state,
        wait,
        |deadline| {
            let state = state.clone();
            let tx = tx.clone();
            async move {
                let events = state.store.tx_events(tx_hash).await?;
                let snap = state.snapshot().await?;
                if events.is_empty() {
                    // Within a wait, a node is asked until the wait's deadline at most (the check at the
                    // deadline gets NODE_LOOKUP_GRACE): a hung node must not stretch the wait.
                    let limit = if wait == 0 {
                        NODE_LOOKUP_TIMEOUT
                    } else {
                        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                        NODE_LOOKUP_TIMEOUT.min(left.max(NODE_LOOKUP_GRACE))
                    };
                    ask_the_node(&state, &snap, tx_hash, &tx, limit).await?;
                }
                Ok(events.first().map(|e| {
                    let events: Vec<_> =
                        events.iter().filter(|x| x.raw.chain_id == e.raw.chain_id).cloned().collect();
                    TransactionRecord::new(tx_hash, &events, &state.config, &snap.heights(e.raw.chain_id))
                }))
            }
        },
        // A transaction whose events a reorg removed reaches no finality: answered at once (TX_REVERTED), not
        // when the wait runs out.
        |r: &TransactionRecord| !conditional || reached(r, target) || r.status == TxStatus::Reverted,
    )
    .await?;
    match polled {
        Polled::Ready(r) if conditional && r.status == TxStatus::Reverted => Err(tx_reverted(&tx, &r)),
        Polled::Ready(r) => Ok(fresh_json(StatusCode::OK, &r)),
        Polled::TimedOut(None) => Err(ApiError::TxNotFound(tx)),
        Polled::TimedOut(Some(r)) if r.status == TxStatus::Reverted => Err(tx_reverted(&tx, &r)),
        Polled::TimedOut(Some(r)) => Err(wait_timeout(&format!("transaction {tx}"), target, wait, &r)),
    }
}

/// TX_REVERTED for transaction `tx`, with its record as details.
fn tx_reverted(tx: &str, record: &TransactionRecord) -> ApiError {
    match serde_json::to_value(record) {
        Ok(details) => ApiError::TxReverted {
            message: format!(
                "transaction {tx}: a reorg removed every escrow event it emitted; it reaches no finality unless \
                 the chain includes it again (check it with a node, and send it again if it was dropped)"
            ),
            details,
        },
        Err(e) => ApiError::Internal(e.to_string()),
    }
}
