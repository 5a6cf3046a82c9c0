//! Derivation as pure functions: given the prior state of the orders a batch touches and the batch's
//! events, everything that must be written — order states, anomalies, credit changes, change-log entries
//! and retractions. The same step, [`replay`], serves a commit, a rollback (re-deriving the touched orders
//! from the events that remain) and a full re-derivation. No I/O: the indexer loads what these functions
//! need from the store and writes back what they return, inside one transaction.

use std::collections::{BTreeMap, HashMap};

use alloy::primitives::{Address, B256, BlockNumber, U256};

use crate::{
    change::{ChangeKind, LastChange, NewChange},
    event::{DecodedEvent, EscrowEvent, RawEvent},
    order::{self, Applied, OrderKey, OrderState},
};

/// An event that was illegal for its order's state: recorded (in the store's anomaly table and on the
/// order), never applied and never dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyRecord {
    /// Chain id.
    pub chain_id: u64,
    /// Escrow.
    pub escrow: Address,
    /// Order id (`None` for an account-level event).
    pub order_id: Option<B256>,
    /// Block number.
    pub block_number: BlockNumber,
    /// Block hash.
    pub block_hash: B256,
    /// Log index in the block.
    pub log_index: u64,
    /// Event kind.
    pub kind: &'static str,
    /// Why it was not applied.
    pub reason: String,
}

/// How a batch changes one account's credit at one escrow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreditDelta {
    /// Payouts credited (`PayoutDeferred`).
    pub added: U256,
    /// Credits paid out (`Withdrawn`).
    pub withdrawn: U256,
}

/// A credited account: (escrow, account).
pub type CreditKey = (Address, Address);

/// Credit changes by account, in a stable order.
pub type CreditDeltas = BTreeMap<CreditKey, CreditDelta>;

/// A derivation that cannot be completed: the stored state contradicts the events (never the case for a
/// store written by this code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeriveError {
    /// More was withdrawn than was ever credited to the account.
    #[error("withdrawal of {withdrawn} by {account} at escrow {escrow} exceeds its credit of {credit}")]
    CreditUnderflow {
        /// Escrow.
        escrow: Address,
        /// Account.
        account: Address,
        /// Credit before the batch plus what the batch added.
        credit: U256,
        /// Withdrawn in the batch.
        withdrawn: U256,
    },
}

/// The one replay step: apply `event` to its order's state `slot`. An illegal event becomes an anomaly (on
/// the order, and in `anomalies`). Returns whether the event was an anomaly.
pub fn replay(
    slot: &mut Option<OrderState>,
    raw: &RawEvent,
    event: &EscrowEvent,
    anomalies: &mut Vec<AnomalyRecord>,
) -> bool {
    match order::apply(slot, raw.chain_id, raw.escrow, &raw.pos, event) {
        Applied::Anomaly(reason) => {
            anomalies.push(AnomalyRecord {
                chain_id: raw.chain_id,
                escrow: raw.escrow,
                order_id: event.order_id(),
                block_number: raw.pos.block_number,
                block_hash: raw.pos.block_hash,
                log_index: raw.pos.log_index,
                kind: event.kind(),
                reason,
            });
            true
        }
        Applied::Ok | Applied::NotOrderEvent => false,
    }
}

/// The credit changes of `events` (deferred payouts and withdrawals), whatever else they are. Sums saturate
/// at `U256::MAX` instead of wrapping (no token has that supply; a saturated credit can only make a later
/// withdrawal fail loudly, never make one pass).
pub fn credit_deltas<'a>(events: impl IntoIterator<Item = &'a DecodedEvent>) -> CreditDeltas {
    let mut out = CreditDeltas::new();
    for e in events {
        match &e.event {
            EscrowEvent::PayoutDeferred { recipient, amount, .. } => {
                let d = out.entry((e.raw.escrow, *recipient)).or_default();
                d.added = d.added.saturating_add(*amount);
            }
            EscrowEvent::Withdrawn { account, amount } => {
                let d = out.entry((e.raw.escrow, *account)).or_default();
                d.withdrawn = d.withdrawn.saturating_add(*amount);
            }
            _ => {}
        }
    }
    out
}

/// New credit balances: `current` (missing: zero) plus `deltas`.
pub fn credit_balances(
    current: &HashMap<CreditKey, U256>,
    deltas: &CreditDeltas,
) -> Result<Vec<(CreditKey, U256)>, DeriveError> {
    deltas
        .iter()
        .map(|(key, d)| {
            let credit = current.get(key).copied().unwrap_or_default().saturating_add(d.added);
            let next = credit.checked_sub(d.withdrawn).ok_or(DeriveError::CreditUnderflow {
                escrow: key.0,
                account: key.1,
                credit,
                withdrawn: d.withdrawn,
            })?;
            Ok((*key, next))
        })
        .collect()
}

/// The orders `events` touch, in first-touch order.
pub fn touched_orders<'a>(events: impl IntoIterator<Item = &'a DecodedEvent>) -> Vec<OrderKey> {
    let mut seen = std::collections::HashSet::new();
    events
        .into_iter()
        .filter_map(|e| e.event.order_id().map(|id| (e.raw.escrow, id)))
        .filter(|k| seen.insert(*k))
        .collect()
}

/// What committing a batch of new events must write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchDerivation {
    /// Every order the batch touched, in first-touch order.
    pub touched: Vec<OrderKey>,
    /// The new state of every touched order that exists (first-touch order): to upsert, each with an
    /// `order_updated` change-log entry ([`NewChange::updated`]).
    pub orders: Vec<OrderState>,
    /// Illegal events, in chain order.
    pub anomalies: Vec<AnomalyRecord>,
    /// Credit changes.
    pub credits: CreditDeltas,
}

/// Apply new `events` (chain order, none already applied) to the `prior` states of the orders they touch
/// (absent: never locked).
pub fn apply_batch(mut prior: HashMap<OrderKey, OrderState>, events: &[&DecodedEvent]) -> BatchDerivation {
    let touched = touched_orders(events.iter().copied());
    let slot_of: HashMap<OrderKey, usize> = touched.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let mut slots: Vec<Option<OrderState>> = touched.iter().map(|k| prior.remove(k)).collect();
    let mut anomalies = Vec::new();
    for e in events {
        if let Some(order_id) = e.event.order_id() {
            replay(&mut slots[slot_of[&(e.raw.escrow, order_id)]], &e.raw, &e.event, &mut anomalies);
        }
    }
    let orders: Vec<OrderState> = slots.into_iter().flatten().collect();
    BatchDerivation { touched, orders, anomalies, credits: credit_deltas(events.iter().copied()) }
}

/// Derive one order from scratch from its (live) events in chain order: its state (`None`: it was never
/// locked) and the anomalies on the way.
pub fn replay_order<'a>(
    events: impl IntoIterator<Item = &'a DecodedEvent>,
) -> (Option<OrderState>, Vec<AnomalyRecord>) {
    let mut order = None;
    let mut anomalies = Vec::new();
    for e in events {
        replay(&mut order, &e.raw, &e.event, &mut anomalies);
    }
    (order, anomalies)
}

/// The retraction a rollback to `fork` owes for one order: `last` is the order's last change-log entry
/// (`None`: never logged, so nobody was told anything to retract), `current` its re-derived state. No entry
/// when the last announced state still holds.
pub fn retraction(
    last: Option<LastChange>,
    current: Option<&OrderState>,
    fork: BlockNumber,
) -> Option<NewChange> {
    let last = last?;
    if last.state.as_ref() == current {
        return None;
    }
    Some(NewChange {
        kind: ChangeKind::OrderRetracted,
        filing: last.filing,
        block_number: fork,
        state: current.cloned(),
    })
}

/// What re-deriving a range of orders must write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderDiff {
    /// Orders whose derived state differs from the stored one (or that are not stored): to upsert.
    pub upserts: Vec<OrderState>,
    /// Stored orders that no longer derive to anything: to delete.
    pub deletes: Vec<OrderKey>,
}

/// An order as a store holds it, compared with a derived state without decoding it (a store may compare
/// encodings: decoding every stored order costs more than encoding the derived one).
pub trait StoredOrder {
    /// Whether the stored order is exactly `o`.
    fn holds(&self, o: &OrderState) -> bool;
}

impl StoredOrder for OrderState {
    fn holds(&self, o: &OrderState) -> bool {
        self == o
    }
}

/// Merge the derived states of a key range (ascending, complete) with the stored ones of the same range
/// (ascending): what has to change.
pub fn diff_orders<T: StoredOrder>(
    derived: Vec<(OrderKey, Option<OrderState>)>,
    stored: Vec<(OrderKey, T)>,
) -> OrderDiff {
    let mut out = OrderDiff::default();
    let mut stored = stored.into_iter().peekable();
    for (key, order) in derived {
        let mut existing = None;
        while let Some((k, _)) = stored.peek() {
            if *k < key {
                out.deletes.push(*k);
                stored.next();
            } else {
                if *k == key {
                    existing = stored.next().map(|(_, o)| o);
                }
                break;
            }
        }
        match order {
            Some(o) if !existing.as_ref().is_some_and(|s| s.holds(&o)) => out.upserts.push(o),
            Some(_) => {}
            None if existing.is_some() => out.deletes.push(key),
            None => {}
        }
    }
    out.deletes.extend(stored.map(|(k, _)| k));
    out
}
