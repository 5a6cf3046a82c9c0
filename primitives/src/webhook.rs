//! Webhook subscriptions and the outbox's fan-out rules, as pure functions: which change-log entries a
//! subscription is owed, and what a reorg's retraction does to the deliveries of an order that are still
//! queued or were already announced. The indexer applies them inside the transaction that appends the
//! changes (so the outbox can neither lose nor invent a notification); the store only keeps the rows.

use alloy::primitives::{Address, BlockNumber};

use crate::{
    Finality,
    change::{ChangeFiling, ChangeKind},
    order::OrderStatus,
};

/// What a subscription asks to be told about: the fixed fields of `/v1/orders` and `/v1/stream` filters,
/// and the statuses whose updates it wants (empty: every status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionFilter {
    /// Only this chain.
    pub chain_id: Option<u64>,
    /// Only this escrow.
    pub escrow: Option<Address>,
    /// Only orders of this payer.
    pub payer: Option<Address>,
    /// Only orders of this payee.
    pub payee: Option<Address>,
    /// Only orders with this arbiter.
    pub arbiter: Option<Address>,
    /// Only updates into these statuses (empty: all). Retractions ignore it: a receiver that was told a
    /// state must learn that it no longer holds, whatever the state is now.
    pub statuses: Vec<OrderStatus>,
}

impl SubscriptionFilter {
    /// Whether the order filed under `f` is one this filter follows (its fixed fields only).
    pub fn follows(&self, f: &ChangeFiling) -> bool {
        self.chain_id.is_none_or(|c| c == f.chain_id)
            && self.escrow.is_none_or(|e| e == f.escrow)
            && self.payer.is_none_or(|p| p == f.payer)
            && self.payee.is_none_or(|p| p == f.payee)
            && self.arbiter.is_none_or(|a| Some(a) == f.arbiter)
    }

    /// Whether an `order_updated` entry filed under `f` is owed to this filter's subscription.
    pub fn wants_update(&self, f: &ChangeFiling) -> bool {
        self.follows(f) && (self.statuses.is_empty() || self.statuses.iter().any(|s| s.as_str() == f.status))
    }
}

/// A subscription as the fan-out sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanoutSubscription {
    /// Id.
    pub id: i64,
    /// Changes at or below this change-log position predate the subscription and are not owed.
    pub from_seq: i64,
    /// What it follows.
    pub filter: SubscriptionFilter,
}

/// A change-log entry as the fan-out sees it (no state: the store copies it into the outbox row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanoutChange {
    /// Change-log position.
    pub seq: i64,
    /// Kind.
    pub kind: ChangeKind,
    /// What the entry is filed under.
    pub filing: ChangeFiling,
    /// See [`crate::Change::block_number`] (for a retraction: the fork block).
    pub block_number: BlockNumber,
}

/// The newest delivery of an order to a subscription that its receiver may have seen: delivered, or
/// attempted at least once (a timed-out attempt may still have been processed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announced {
    /// Subscription.
    pub subscription_id: i64,
    /// The block of the announced change ([`FanoutChange::block_number`]).
    pub block_number: BlockNumber,
}

/// The subscriptions owed an `order_updated` entry, in subscription order.
pub fn owed_update(subs: &[FanoutSubscription], change: &FanoutChange) -> Vec<i64> {
    subs.iter()
        .filter(|s| change.seq > s.from_seq && s.filter.wants_update(&change.filing))
        .map(|s| s.id)
        .collect()
}

/// The subscriptions owed a retraction (`change`, an `order_retracted` entry with the fork block): those
/// that follow the order and whose receiver may have seen a state built above the fork (`announced`: the
/// newest possibly-seen delivery of the order per subscription). A queued, never-attempted delivery above
/// the fork is cancelled instead (the store does that for every subscription: it is no longer true), so a
/// subscription that was never told anything the reorg reverted is owed nothing.
pub fn owed_retraction(
    subs: &[FanoutSubscription],
    change: &FanoutChange,
    announced: &[Announced],
) -> Vec<i64> {
    subs.iter()
        .filter(|s| change.seq > s.from_seq && s.filter.follows(&change.filing))
        .filter(|s| {
            announced.iter().any(|a| a.subscription_id == s.id && a.block_number > change.block_number)
        })
        .map(|s| s.id)
        .collect()
}

/// When a queued delivery may be sent: an update once its block reaches the subscription's finality, a
/// retraction at once (it corrects something the receiver was already told).
pub fn deliverable(kind: ChangeKind, block: BlockNumber, wanted: Finality, h: &crate::Heights) -> bool {
    match kind {
        ChangeKind::OrderRetracted => true,
        ChangeKind::OrderUpdated => Finality::of(block, h) >= wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Heights;

    fn filing(payer: u8, status: &str) -> ChangeFiling {
        ChangeFiling {
            chain_id: 1,
            escrow: Address::repeat_byte(0xee),
            order_id: Default::default(),
            payer: Address::repeat_byte(payer),
            payee: Address::repeat_byte(0xbb),
            arbiter: None,
            status: status.into(),
            lock_time: 0,
        }
    }

    fn sub(id: i64, from_seq: i64, filter: SubscriptionFilter) -> FanoutSubscription {
        FanoutSubscription { id, from_seq, filter }
    }

    #[test]
    fn updates_go_to_matching_subscriptions_created_before_them() {
        let subs = [
            sub(1, 0, SubscriptionFilter::default()),
            sub(2, 0, SubscriptionFilter { payer: Some(Address::repeat_byte(0xaa)), ..Default::default() }),
            sub(3, 0, SubscriptionFilter { payer: Some(Address::repeat_byte(0xcc)), ..Default::default() }),
            sub(4, 5, SubscriptionFilter::default()),
            sub(5, 0, SubscriptionFilter { statuses: vec![OrderStatus::Released], ..Default::default() }),
            sub(6, 0, SubscriptionFilter { arbiter: Some(Address::repeat_byte(1)), ..Default::default() }),
        ];
        let ch = FanoutChange {
            seq: 5,
            kind: ChangeKind::OrderUpdated,
            filing: filing(0xaa, "held"),
            block_number: 10,
        };
        assert_eq!(owed_update(&subs, &ch), vec![1, 2]);
        let released = FanoutChange { seq: 6, filing: filing(0xaa, "released"), ..ch };
        assert_eq!(owed_update(&subs, &released), vec![1, 2, 4, 5]);
    }

    #[test]
    fn a_retraction_is_owed_only_where_a_reverted_state_may_have_been_seen() {
        let subs = [
            sub(1, 0, SubscriptionFilter::default()),
            // Wants only releases: still owed the retraction of a release it was told about.
            sub(2, 0, SubscriptionFilter { statuses: vec![OrderStatus::Released], ..Default::default() }),
            sub(3, 0, SubscriptionFilter::default()),
            sub(4, 0, SubscriptionFilter { payer: Some(Address::repeat_byte(0xcc)), ..Default::default() }),
        ];
        let r = FanoutChange {
            seq: 9,
            kind: ChangeKind::OrderRetracted,
            filing: filing(0xaa, "released"),
            block_number: 7,
        };
        let announced = [
            Announced { subscription_id: 1, block_number: 8 },
            Announced { subscription_id: 2, block_number: 9 },
            // Told only a state at the fork or below: it still holds.
            Announced { subscription_id: 3, block_number: 7 },
            Announced { subscription_id: 4, block_number: 9 },
        ];
        assert_eq!(owed_retraction(&subs, &r, &announced), vec![1, 2]);
        assert!(owed_retraction(&subs, &r, &[]).is_empty(), "nothing seen, nothing to retract");
    }

    #[test]
    fn updates_wait_for_the_subscription_finality_and_retractions_do_not() {
        let h = Heights { head: 20, safe: 15, finalized: 10 };
        for (block, wanted, ok) in [
            (20, Finality::Pending, true),
            (16, Finality::Safe, false),
            (15, Finality::Safe, true),
            (11, Finality::Finalized, false),
            (10, Finality::Finalized, true),
        ] {
            assert_eq!(deliverable(ChangeKind::OrderUpdated, block, wanted, &h), ok, "{block} {wanted:?}");
        }
        assert!(deliverable(ChangeKind::OrderRetracted, 19, Finality::Finalized, &h));
    }
}
