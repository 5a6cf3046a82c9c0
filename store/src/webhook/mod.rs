//! Webhook subscriptions, the outbox and the attempt history.
//!
//! - [`OutboxWriter`] is part of an indexing step's transaction ([`crate::WriteTx`]): the indexer appends
//!   change-log entries, decides with `holdfast_primitives::webhook` which subscriptions each is owed, and
//!   queues those deliveries before the commit, so that a crash can neither lose nor invent one.
//! - [`WebhookStore`] is everything else: the operator's subscriptions (the CLI), and the delivery workers'
//!   queue (claim due deliveries with a lease, record each attempt).
//!
//! Times of the queue are unix milliseconds; subscription times are unix seconds.

mod postgres;
mod sqlite;

use std::{fmt, future::Future};

use alloy::primitives::{Address, B256, BlockNumber};
use holdfast_primitives::{
    ChangeKind, Finality, OrderKey, OrderState, OrderStatus,
    change::ChangeFiling,
    webhook::{Announced, FanoutChange, FanoutSubscription, SubscriptionFilter},
};

use crate::{
    Error, Result,
    rows::{address, b256, parse_state, u},
};

/// Whether a subscription's deliveries are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionState {
    /// Deliveries are sent.
    Active,
    /// Paused by the operator: deliveries queue up, none is sent until it is resumed.
    Paused,
    /// Disabled by Holdfast (the endpoint answered `410 Gone`, or kept failing past the retry horizon):
    /// deliveries queue up and are kept for when the operator resumes it.
    Disabled,
}

impl SubscriptionState {
    /// Stable name (as stored).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "active" => Self::Active,
            "paused" => Self::Paused,
            "disabled" => Self::Disabled,
            _ => return Err(Error::corrupt_value(format!("subscription state {s:?}"))),
        })
    }
}

/// A subscription to add.
#[derive(Clone)]
pub struct NewSubscription {
    /// Target URL (validated by the caller).
    pub url: String,
    /// Free text for the operator.
    pub description: String,
    /// What it follows.
    pub filter: SubscriptionFilter,
    /// A change is delivered once its block reaches this finality.
    pub finality: Finality,
    /// Signing secret (`whsec_…`).
    pub secret: String,
}

impl fmt::Debug for NewSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSubscription")
            .field("url", &self.url)
            .field("filter", &self.filter)
            .field("finality", &self.finality)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A stored subscription. Its `Debug` output never shows the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Id.
    pub id: i64,
    /// Target URL.
    pub url: String,
    /// Free text for the operator.
    pub description: String,
    /// What it follows.
    pub filter: SubscriptionFilter,
    /// A change is delivered once its block reaches this finality.
    pub finality: Finality,
    /// Current signing secret.
    pub secret: String,
    /// The secret before the last rotation and the unix time (seconds) until which it also signs.
    pub previous_secret: Option<(String, u64)>,
    /// Whether deliveries are sent.
    pub state: SubscriptionState,
    /// Why it is paused or disabled.
    pub state_reason: Option<String>,
    /// Change-log entries at or below this position predate it.
    pub from_seq: i64,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub updated_at: u64,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("filter", &self.filter)
            .field("finality", &self.finality)
            .field("state", &self.state)
            .field("state_reason", &self.state_reason)
            .field("from_seq", &self.from_seq)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The secrets that sign a delivery at unix time `now`: the current one, and the previous one during
    /// its grace period.
    pub fn signing_secrets(&self, now: u64) -> (&str, Option<&str>) {
        let previous =
            self.previous_secret.as_ref().filter(|(_, until)| now < *until).map(|(s, _)| s.as_str());
        (&self.secret, previous)
    }

    fn fanout(&self) -> FanoutSubscription {
        FanoutSubscription { id: self.id, from_seq: self.from_seq, filter: self.filter.clone() }
    }
}

/// What happened to a queued delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its finality, its turn in its order, or its next attempt.
    Pending,
    /// The endpoint accepted it (2xx).
    Delivered,
    /// A reorg reverted it before it was delivered.
    Cancelled,
}

impl DeliveryStatus {
    /// Stable name (as stored).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => Self::Pending,
            "delivered" => Self::Delivered,
            "cancelled" => Self::Cancelled,
            _ => return Err(Error::corrupt_value(format!("delivery status {s:?}"))),
        })
    }
}

/// One queued delivery: a change-log entry owed to a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Id.
    pub id: i64,
    /// Subscription.
    pub subscription_id: i64,
    /// The change-log entry's position.
    pub change_seq: i64,
    /// Chain id.
    pub chain_id: u64,
    /// Escrow.
    pub escrow: Address,
    /// Order id.
    pub order_id: B256,
    /// Kind of the change.
    pub kind: ChangeKind,
    /// See [`holdfast_primitives::Change::block_number`].
    pub block_number: BlockNumber,
    /// The order after the change (`None`: a reorg erased it).
    pub state: Option<OrderState>,
    /// Status.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// Unix ms of the next attempt (pending).
    pub next_attempt_at: i64,
    /// Unix ms of the first attempt.
    pub first_attempt_at: Option<i64>,
    /// Unix ms of the successful attempt.
    pub delivered_at: Option<i64>,
    /// The body as first sent.
    pub payload: Option<String>,
    /// Unix ms when it was queued.
    pub created_at: i64,
}

impl Delivery {
    /// The Standard Webhooks message id: stable per (subscription, change), the receiver's idempotency key.
    pub fn message_id(&self) -> String {
        format!("msg_{}_{}", self.subscription_id, self.change_seq)
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// 2xx.
    Delivered,
    /// Anything else; retried later.
    Failed,
    /// `410 Gone`: the subscription was disabled.
    Gone,
}

impl AttemptResult {
    /// Stable name (as stored).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Gone => "gone",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            "gone" => Self::Gone,
            _ => return Err(Error::corrupt_value(format!("attempt result {s:?}"))),
        })
    }
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The delivery.
    pub delivery_id: i64,
    /// Unix ms.
    pub attempted_at: i64,
    /// How long the request took.
    pub latency_ms: u64,
    /// The response's status code, if one came.
    pub status_code: Option<u16>,
    /// Outcome.
    pub result: AttemptResult,
    /// The transport error, if any (human text).
    pub error: Option<String>,
    /// The first bytes of the response body.
    pub response: Option<String>,
}

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterAttempt {
    /// Delivered.
    Delivered,
    /// Try again at this unix ms.
    RetryAt(i64),
    /// Disable the subscription with this reason (the delivery stays queued, for a resume).
    Disable(String),
}

/// One attempt to record with [`WebhookStore::record_attempts`]: the attempt, the body sent, what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The attempt.
    pub attempt: Attempt,
    /// The body sent (kept from the first attempt on).
    pub payload: String,
    /// What follows it.
    pub after: AfterAttempt,
}

/// A delivery claimed by a worker, with its subscription.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The delivery.
    pub delivery: Delivery,
    /// Its subscription.
    pub subscription: Subscription,
}

/// The queue at a glance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Undelivered deliveries (any subscription state).
    pub pending: u64,
    /// Unix ms when the oldest undelivered one was queued.
    pub oldest_created_at: Option<i64>,
}

/// The outbox side of an indexing step (see the module docs).
pub trait OutboxWriter {
    /// The subscriptions that accumulate deliveries: all of them (paused and disabled ones keep a backlog).
    fn fanout_subscriptions(&mut self) -> impl Future<Output = Result<Vec<FanoutSubscription>>> + Send;
    /// The position the fan-out has read the change log through.
    fn fanout_through(&mut self) -> impl Future<Output = Result<i64>> + Send;
    /// Record the position the fan-out has read the change log through.
    fn set_fanout_through(&mut self, seq: i64) -> impl Future<Output = Result<()>> + Send;
    /// The change-log entries after `after` (without states), ascending.
    fn change_filings_after(&mut self, after: i64) -> impl Future<Output = Result<Vec<FanoutChange>>> + Send;
    /// Per subscription, the newest delivery of the order that its receiver may have seen (delivered, or
    /// attempted at least once).
    fn announced(
        &mut self,
        chain_id: u64,
        key: OrderKey,
    ) -> impl Future<Output = Result<Vec<Announced>>> + Send;
    /// Cancel every undelivered delivery of the order built on a block above `block` (a reorg reverted it);
    /// returns how many.
    fn cancel_deliveries_above(
        &mut self,
        chain_id: u64,
        key: OrderKey,
        block: BlockNumber,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Queue deliveries: (subscription id, change-log position), each with a copy of the entry; due at unix
    /// ms `now`.
    fn enqueue_deliveries(
        &mut self,
        rows: &[(i64, i64)],
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Subscriptions and the delivery queue (each call its own transaction).
pub trait WebhookStore {
    /// Add a subscription; it is owed the changes appended after this call.
    fn add_subscription(&self, s: &NewSubscription) -> impl Future<Output = Result<Subscription>> + Send;
    /// One subscription.
    fn subscription(&self, id: i64) -> impl Future<Output = Result<Option<Subscription>>> + Send;
    /// Every subscription, by id.
    fn subscriptions(&self) -> impl Future<Output = Result<Vec<Subscription>>> + Send;
    /// Set a subscription's state (with the reason); returns whether it exists. Making it active makes its
    /// queued deliveries due now.
    fn set_subscription_state(
        &self,
        id: i64,
        state: SubscriptionState,
        reason: Option<&str>,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Delete a subscription with its queue and history; returns whether it existed.
    fn remove_subscription(&self, id: i64) -> impl Future<Output = Result<bool>> + Send;
    /// Replace the signing secret; the old one keeps signing too until unix time `previous_until`.
    fn rotate_secret(
        &self,
        id: i64,
        secret: &str,
        previous_until: u64,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Queue again the delivered deliveries of a subscription from change-log position `from_seq` on (same
    /// message ids); returns how many.
    fn replay(&self, id: i64, from_seq: i64) -> impl Future<Output = Result<u64>> + Send;
    /// Claim up to `limit` due deliveries for `lease_ms` (unix ms `now`): pending, of an active subscription,
    /// at the subscription's finality (retractions at once), the earliest undelivered one of their order for
    /// their subscription (deliveries of one order go out in order), not leased by another worker.
    fn claim_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Claim>>> + Send;
    /// Record an attempt and what follows it; `payload`: the body sent (kept from the first attempt on).
    fn record_attempt(
        &self,
        attempt: &Attempt,
        payload: &str,
        after: &AfterAttempt,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Record several attempts, each as [`WebhookStore::record_attempt`] does, in one transaction (a worker
    /// records what finished while its previous records were being written: one commit for many attempts).
    fn record_attempts(&self, records: &[AttemptRecord]) -> impl Future<Output = Result<()>> + Send;
    /// A subscription's deliveries, newest first, up to `limit`.
    fn deliveries(&self, id: i64, limit: u32) -> impl Future<Output = Result<Vec<Delivery>>> + Send;
    /// A delivery's attempts, oldest first.
    fn attempts(&self, delivery_id: i64) -> impl Future<Output = Result<Vec<Attempt>>> + Send;
    /// Undelivered deliveries and the age of the oldest.
    fn queue_stats(&self) -> impl Future<Output = Result<QueueStats>> + Send;
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

// ---- SQL shared by both backends (both take `$n` parameters) ----

const SUBSCRIPTION_COLUMNS: &str = "id, url, description, chain_id, escrow, payer, payee, arbiter, statuses, \
     finality, secret, previous_secret, previous_secret_until, state, state_reason, from_seq, created_at, \
     updated_at";

const DELIVERY_COLUMNS: &str = "o.id, o.subscription_id, o.change_seq, o.chain_id, o.escrow, o.order_id, o.kind, \
     o.block_number, o.state, o.status, o.attempts, o.next_attempt_at, o.first_attempt_at, o.delivered_at, \
     o.payload, o.created_at";

const INSERT_SUBSCRIPTION: &str = "INSERT INTO webhook_subscriptions (url, description, chain_id, escrow, payer, \
     payee, arbiter, statuses, finality, secret, state, from_seq, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', \
     (SELECT COALESCE(MAX(seq), 0) FROM changes), $11, $11) RETURNING id";

const ANNOUNCED: &str = "SELECT subscription_id, block_number FROM webhook_outbox o \
     WHERE chain_id = $1 AND escrow = $2 AND order_id = $3 AND (status = 'delivered' OR attempts > 0) \
     AND change_seq = (SELECT MAX(p.change_seq) FROM webhook_outbox p WHERE p.chain_id = o.chain_id \
     AND p.escrow = o.escrow AND p.order_id = o.order_id AND p.subscription_id = o.subscription_id \
     AND (p.status = 'delivered' OR p.attempts > 0))";

const CANCEL_ABOVE: &str = "UPDATE webhook_outbox SET status = 'cancelled' WHERE chain_id = $1 AND escrow = $2 \
     AND order_id = $3 AND block_number > $4 AND status = 'pending'";

const ENQUEUE_ONE: &str = "INSERT INTO webhook_outbox (subscription_id, change_seq, chain_id, escrow, order_id, \
     kind, block_number, state, status, attempts, next_attempt_at, lease_until, created_at) \
     SELECT $1, seq, chain_id, escrow, order_id, kind, block_number, state, 'pending', 0, $3, 0, $3 \
     FROM changes WHERE seq = $2 ON CONFLICT (subscription_id, change_seq) DO NOTHING";

/// The due deliveries (`$1`: now, `$2`: limit). The finality gate is `webhook::deliverable` in SQL (so that
/// the limit applies to deliverable rows only: a backlog waiting for finality must not starve the rest); a
/// test checks both agree.
const DUE: &str = "SELECT o.id FROM webhook_outbox o \
     JOIN webhook_subscriptions s ON s.id = o.subscription_id \
     JOIN chain_meta m ON m.chain_id = o.chain_id \
     WHERE o.status = 'pending' AND s.state = 'active' AND o.next_attempt_at <= $1 AND o.lease_until <= $1 \
     AND (o.kind = 'order_retracted' OR s.finality = 'pending' \
          OR (s.finality = 'safe' AND o.block_number <= m.safe) \
          OR (s.finality = 'finalized' AND o.block_number <= m.finalized)) \
     AND NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE p.chain_id = o.chain_id AND p.escrow = o.escrow \
          AND p.order_id = o.order_id AND p.subscription_id = o.subscription_id AND p.status = 'pending' \
          AND p.change_seq < o.change_seq) \
     ORDER BY o.next_attempt_at, o.id LIMIT $2";

const INSERT_ATTEMPT: &str = "INSERT INTO webhook_attempts (outbox_id, attempted_at, latency_ms, status_code, \
     result, error, response) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// `$1` id, `$2` status, `$3` next attempt, `$4` attempted at, `$5` delivered at, `$6` payload.
const AFTER_ATTEMPT: &str = "UPDATE webhook_outbox SET status = $2, attempts = attempts + 1, next_attempt_at = $3, \
     lease_until = 0, first_attempt_at = COALESCE(first_attempt_at, $4), delivered_at = $5, \
     payload = COALESCE(payload, $6) WHERE id = $1";

const DISABLE_SUBSCRIPTION_OF: &str = "UPDATE webhook_subscriptions SET state = 'disabled', state_reason = $2, \
     updated_at = $3 WHERE id = (SELECT subscription_id FROM webhook_outbox WHERE id = $1)";

const SET_STATE: &str =
    "UPDATE webhook_subscriptions SET state = $2, state_reason = $3, updated_at = $4 WHERE id = $1";

const DUE_NOW: &str = "UPDATE webhook_outbox SET next_attempt_at = $2, lease_until = 0 \
     WHERE subscription_id = $1 AND status = 'pending'";

const ROTATE: &str = "UPDATE webhook_subscriptions SET previous_secret = secret, previous_secret_until = $3, \
     secret = $2, updated_at = $4 WHERE id = $1";

const REPLAY: &str = "UPDATE webhook_outbox SET status = 'pending', next_attempt_at = $3, lease_until = 0, \
     delivered_at = NULL WHERE subscription_id = $1 AND change_seq >= $2 AND status = 'delivered'";

const QUEUE_STATS: &str =
    "SELECT COUNT(*) AS pending, MIN(created_at) AS oldest FROM webhook_outbox WHERE status = 'pending'";

const CHANGE_FILINGS_AFTER: &str = "SELECT seq, chain_id, escrow, order_id, kind, block_number, payer, payee, \
     arbiter, status, lock_time FROM changes WHERE seq > $1 ORDER BY seq";

// ---- rows ----

#[derive(sqlx::FromRow)]
struct SubscriptionRow {
    id: i64,
    url: String,
    description: String,
    chain_id: Option<i64>,
    escrow: Option<Vec<u8>>,
    payer: Option<Vec<u8>>,
    payee: Option<Vec<u8>>,
    arbiter: Option<Vec<u8>>,
    statuses: String,
    finality: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until: Option<i64>,
    state: String,
    state_reason: Option<String>,
    from_seq: i64,
    created_at: i64,
    updated_at: i64,
}

fn opt_address(v: Option<Vec<u8>>) -> Result<Option<Address>> {
    v.as_deref().map(address).transpose()
}

fn parse_finality(s: &str) -> Result<Finality> {
    Ok(match s {
        "pending" => Finality::Pending,
        "safe" => Finality::Safe,
        "finalized" => Finality::Finalized,
        _ => return Err(Error::corrupt_value(format!("finality {s:?}"))),
    })
}

/// Stored name of a finality.
fn finality_name(f: Finality) -> &'static str {
    match f {
        Finality::Pending => "pending",
        Finality::Safe => "safe",
        Finality::Finalized => "finalized",
    }
}

fn statuses_text(s: &[OrderStatus]) -> String {
    s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

impl SubscriptionRow {
    fn decode(self) -> Result<Subscription> {
        let statuses = self
            .statuses
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| OrderStatus::parse(s).ok_or_else(|| Error::corrupt_value(format!("status {s:?}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Subscription {
            id: self.id,
            url: self.url,
            description: self.description,
            filter: SubscriptionFilter {
                chain_id: self.chain_id.map(u),
                escrow: opt_address(self.escrow)?,
                payer: opt_address(self.payer)?,
                payee: opt_address(self.payee)?,
                arbiter: opt_address(self.arbiter)?,
                statuses,
            },
            finality: parse_finality(&self.finality)?,
            secret: self.secret,
            previous_secret: self.previous_secret.zip(self.previous_secret_until.map(u)),
            state: SubscriptionState::parse(&self.state)?,
            state_reason: self.state_reason,
            from_seq: self.from_seq,
            created_at: u(self.created_at),
            updated_at: u(self.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    subscription_id: i64,
    change_seq: i64,
    chain_id: i64,
    escrow: Vec<u8>,
    order_id: Vec<u8>,
    kind: String,
    block_number: i64,
    state: Option<String>,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    first_attempt_at: Option<i64>,
    delivered_at: Option<i64>,
    payload: Option<String>,
    created_at: i64,
}

impl DeliveryRow {
    fn decode(self) -> Result<Delivery> {
        Ok(Delivery {
            id: self.id,
            subscription_id: self.subscription_id,
            change_seq: self.change_seq,
            chain_id: u(self.chain_id),
            escrow: address(&self.escrow)?,
            order_id: b256(&self.order_id)?,
            kind: ChangeKind::parse(&self.kind)
                .ok_or_else(|| Error::corrupt_value(format!("change kind {:?}", self.kind)))?,
            block_number: u(self.block_number),
            state: self.state.as_deref().map(parse_state).transpose()?,
            status: DeliveryStatus::parse(&self.status)?,
            attempts: self.attempts.clamp(0, i64::from(u32::MAX)) as u32,
            next_attempt_at: self.next_attempt_at,
            first_attempt_at: self.first_attempt_at,
            delivered_at: self.delivered_at,
            payload: self.payload,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    outbox_id: i64,
    attempted_at: i64,
    latency_ms: i64,
    status_code: Option<i64>,
    result: String,
    error: Option<String>,
    response: Option<String>,
}

impl AttemptRow {
    fn decode(self) -> Result<Attempt> {
        Ok(Attempt {
            delivery_id: self.outbox_id,
            attempted_at: self.attempted_at,
            latency_ms: u(self.latency_ms),
            status_code: self.status_code.and_then(|c| u16::try_from(c).ok()),
            result: AttemptResult::parse(&self.result)?,
            error: self.error,
            response: self.response,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AnnouncedRow {
    subscription_id: i64,
    block_number: i64,
}

#[derive(sqlx::FromRow)]
struct FilingRow {
    seq: i64,
    chain_id: i64,
    escrow: Vec<u8>,
    order_id: Vec<u8>,
    kind: String,
    block_number: i64,
    payer: Vec<u8>,
    payee: Vec<u8>,
    arbiter: Option<Vec<u8>>,
    status: String,
    lock_time: i64,
}

impl FilingRow {
    fn decode(self) -> Result<FanoutChange> {
        Ok(FanoutChange {
            seq: self.seq,
            kind: ChangeKind::parse(&self.kind)
                .ok_or_else(|| Error::corrupt_value(format!("change kind {:?}", self.kind)))?,
            filing: ChangeFiling {
                chain_id: u(self.chain_id),
                escrow: address(&self.escrow)?,
                order_id: b256(&self.order_id)?,
                payer: address(&self.payer)?,
                payee: address(&self.payee)?,
                arbiter: opt_address(self.arbiter)?,
                status: self.status,
                lock_time: u(self.lock_time),
            },
            block_number: u(self.block_number),
        })
    }
}

#[derive(sqlx::FromRow)]
struct StatsRow {
    pending: i64,
    oldest: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct IdRow {
    id: i64,
}

#[derive(sqlx::FromRow)]
struct ThroughRow {
    through: i64,
}

/// A claimed row joined with its subscription.
fn claims(deliveries: Vec<DeliveryRow>, subs: Vec<SubscriptionRow>) -> Result<Vec<Claim>> {
    let subs: Vec<Subscription> = subs.into_iter().map(SubscriptionRow::decode).collect::<Result<_>>()?;
    deliveries
        .into_iter()
        .map(|d| {
            let delivery = d.decode()?;
            let subscription = subs
                .iter()
                .find(|s| s.id == delivery.subscription_id)
                .cloned()
                .ok_or_else(|| Error::corrupt_value("a claimed delivery without its subscription"))?;
            Ok(Claim { delivery, subscription })
        })
        .collect()
}

/// What an attempt's outcome writes: (status, next attempt, delivered at).
fn after_columns(a: &Attempt, after: &AfterAttempt) -> (&'static str, i64, Option<i64>) {
    match after {
        AfterAttempt::Delivered => (DeliveryStatus::Delivered.as_str(), a.attempted_at, Some(a.attempted_at)),
        AfterAttempt::RetryAt(at) => (DeliveryStatus::Pending.as_str(), *at, None),
        AfterAttempt::Disable(_) => (DeliveryStatus::Pending.as_str(), a.attempted_at, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_debug_never_shows_a_secret() {
        let s = Subscription {
            id: 1,
            url: "https://example.com/hook".into(),
            description: String::new(),
            filter: SubscriptionFilter::default(),
            finality: Finality::Safe,
            secret: "whsec_c2VjcmV0".into(),
            previous_secret: Some(("whsec_b2xk".into(), 10)),
            state: SubscriptionState::Active,
            state_reason: None,
            from_seq: 0,
            created_at: 0,
            updated_at: 0,
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("c2VjcmV0") && !shown.contains("b2xk"), "{shown}");
        assert_eq!(s.signing_secrets(9), ("whsec_c2VjcmV0", Some("whsec_b2xk")));
        assert_eq!(s.signing_secrets(10), ("whsec_c2VjcmV0", None));
    }
}
