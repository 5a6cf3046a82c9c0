//! Plain unit tests of the store-facing derivation helpers: `diff_orders`, `retraction`, `credit_balances`,
//! and `replay` of an account-level event.

use std::collections::HashMap;

use alloy::primitives::{Address, B256, U256};
use holdfast_primitives::{
    ChangeKind, EscrowEvent, OrderKey, OrderState, OrderStatus,
    change::{ChangeFiling, LastChange},
    derive::{
        CreditDelta, CreditDeltas, DeriveError, OrderDiff, credit_balances, diff_orders, replay,
        replay_order, retraction,
    },
};

use crate::scenario::{decoded, escrow, order_id, pos};

fn locked(key: OrderKey, amount: u64) -> EscrowEvent {
    EscrowEvent::Locked {
        order_id: key.1,
        payer: Address::with_last_byte(0x10),
        payee: Address::with_last_byte(0x20),
        arbiter: Address::ZERO,
        amount: U256::from(amount),
        deliver_by: 1_800_000_000,
        dispute_window: 3_600,
        status: 1,
    }
}

/// The state of order `key` after a single lock of `amount`.
pub(crate) fn locked_order(key: OrderKey, amount: u64) -> OrderState {
    let (o, anomalies) = replay_order(&[decoded(key.0, pos(1, 0), locked(key, amount))]);
    assert!(anomalies.is_empty());
    o.expect("a lock creates the order")
}

/// The state of order `key` after a lock of `amount` and its delivery.
fn delivered_order(key: OrderKey, amount: u64) -> OrderState {
    let delivered = EscrowEvent::Delivered {
        order_id: key.1,
        evidence: B256::ZERO,
        releasable_at: 1_800_000_100,
        remaining: U256::from(amount),
        status: 2,
    };
    let events = [decoded(key.0, pos(1, 0), locked(key, amount)), decoded(key.0, pos(2, 0), delivered)];
    let (o, anomalies) = replay_order(&events);
    assert!(anomalies.is_empty());
    let o = o.expect("a lock creates the order");
    assert_eq!(o.status, OrderStatus::Delivered);
    o
}

/// Five keys, ascending.
fn keys() -> [OrderKey; 5] {
    let k = [
        (escrow(0), order_id(0)),
        (escrow(0), order_id(1)),
        (escrow(0), order_id(2)),
        (escrow(1), order_id(0)),
        (escrow(1), order_id(1)),
    ];
    assert!(k.windows(2).all(|w| w[0] < w[1]));
    k
}

#[test]
fn diff_deletes_stored_keys_that_derive_to_nothing() {
    let [k1, k2, k3, ..] = keys();
    let derived = vec![(k1, None), (k2, Some(locked_order(k2, 5)))];
    let stored = vec![(k1, locked_order(k1, 1)), (k2, locked_order(k2, 5)), (k3, locked_order(k3, 7))];
    // k1 derives to nothing; k3 (after the last derived key) is not derived at all.
    assert_eq!(diff_orders(derived, stored), OrderDiff { upserts: vec![], deletes: vec![k1, k3] });
}

#[test]
fn diff_upserts_changed_and_new_and_leaves_equal_ones_alone() {
    let [k1, k2, k3, k4, _] = keys();
    let derived = vec![
        (k1, Some(locked_order(k1, 2))),
        (k2, Some(locked_order(k2, 3))),
        (k3, Some(delivered_order(k3, 4))),
        (k4, None),
    ];
    let stored = vec![(k1, locked_order(k1, 1)), (k3, delivered_order(k3, 4))];
    let diff = diff_orders(derived, stored);
    assert_eq!(diff.upserts, vec![locked_order(k1, 2), locked_order(k2, 3)]);
    assert!(diff.deletes.is_empty());
}

#[test]
fn diff_handles_interleaved_keys() {
    let [k1, k2, k3, k4, k5] = keys();
    // Derived and stored keys alternate; the first and the last key are stored only.
    let derived = vec![(k2, Some(locked_order(k2, 1))), (k3, None), (k4, Some(locked_order(k4, 9)))];
    let stored = vec![(k1, locked_order(k1, 1)), (k3, locked_order(k3, 1)), (k5, locked_order(k5, 1))];
    let diff = diff_orders(derived, stored);
    assert_eq!(diff.upserts, vec![locked_order(k2, 1), locked_order(k4, 9)]);
    assert_eq!(diff.deletes, vec![k1, k3, k5]);

    // Stored keys between derived ones that are equal stay untouched, different ones are upserted.
    let derived = vec![(k1, Some(locked_order(k1, 1))), (k3, Some(locked_order(k3, 2))), (k5, None)];
    let stored = vec![(k1, locked_order(k1, 1)), (k2, locked_order(k2, 1)), (k3, locked_order(k3, 1))];
    let diff = diff_orders(derived, stored);
    assert_eq!(diff.upserts, vec![locked_order(k3, 2)]);
    assert_eq!(diff.deletes, vec![k2]);
}

#[test]
fn diff_of_nothing_is_nothing() {
    let [k1, ..] = keys();
    assert_eq!(diff_orders::<OrderState>(vec![], vec![]), OrderDiff::default());
    assert_eq!(diff_orders::<OrderState>(vec![(k1, None)], vec![]), OrderDiff::default());
}

#[test]
fn no_retraction_for_an_order_never_logged() {
    let [k1, ..] = keys();
    assert_eq!(retraction(None, None, 10), None);
    assert_eq!(retraction(None, Some(&locked_order(k1, 1)), 10), None);
}

#[test]
fn no_retraction_when_the_last_announced_state_still_holds() {
    let [k1, ..] = keys();
    let o = locked_order(k1, 1);
    let last = LastChange { filing: ChangeFiling::of(&o), state: Some(o.clone()) };
    assert_eq!(retraction(Some(last), Some(&o), 10), None);
    // An earlier retraction already announced that the order is gone.
    let gone = LastChange { filing: ChangeFiling::of(&o), state: None };
    assert_eq!(retraction(Some(gone), None, 10), None);
}

#[test]
fn retraction_carries_the_last_filing_and_the_current_state() {
    let [k1, ..] = keys();
    // Announced: delivered. After the rollback: only locked (held), or not even locked.
    let announced = delivered_order(k1, 4);
    let current = locked_order(k1, 4);
    let filing = ChangeFiling::of(&announced);
    assert_ne!(
        filing,
        ChangeFiling::of(&current),
        "the filing must be the announced one, not the current one"
    );
    let last = LastChange { filing: filing.clone(), state: Some(announced) };

    let r = retraction(Some(last.clone()), Some(&current), 7).expect("a retraction");
    assert_eq!(r.kind, ChangeKind::OrderRetracted);
    assert_eq!(r.filing, filing);
    assert_eq!(r.block_number, 7);
    assert_eq!(r.state, Some(current.clone()));

    let r = retraction(Some(last), None, 3).expect("a retraction");
    assert_eq!(
        (r.kind, &r.filing, r.block_number, &r.state),
        (ChangeKind::OrderRetracted, &filing, 3, &None)
    );

    // Announced gone, re-derived back into existence.
    let gone = LastChange { filing: filing.clone(), state: None };
    let r = retraction(Some(gone), Some(&current), 5).expect("a retraction");
    assert_eq!((r.filing, r.block_number, r.state), (filing, 5, Some(current)));
}

fn deltas(entries: &[((Address, Address), u64, u64)]) -> CreditDeltas {
    entries
        .iter()
        .map(|&(k, added, withdrawn)| {
            (k, CreditDelta { added: U256::from(added), withdrawn: U256::from(withdrawn) })
        })
        .collect()
}

#[test]
fn credit_balances_add_credits_and_subtract_withdrawals() {
    let (a, b) = ((escrow(0), Address::with_last_byte(1)), (escrow(0), Address::with_last_byte(2)));
    let current = HashMap::from([(a, U256::from(5)), (b, U256::from(100))]);
    // The whole credit can be withdrawn; a missing current balance is zero; accounts without a delta are
    // not returned.
    let c = (escrow(1), Address::with_last_byte(1));
    let out = credit_balances(&current, &deltas(&[(a, 2, 7), (c, 4, 1)])).unwrap();
    assert_eq!(out, vec![(a, U256::ZERO), (c, U256::from(3))]);
}

#[test]
fn credit_balances_underflow_is_an_error() {
    let (a, b) = ((escrow(0), Address::with_last_byte(1)), (escrow(0), Address::with_last_byte(2)));
    let current = HashMap::from([(a, U256::from(5))]);
    assert_eq!(
        credit_balances(&current, &deltas(&[(a, 2, 8)])),
        Err(DeriveError::CreditUnderflow {
            escrow: a.0,
            account: a.1,
            credit: U256::from(7),
            withdrawn: U256::from(8)
        })
    );
    // Nothing credited at all; and one bad account fails the whole batch.
    assert_eq!(
        credit_balances(&current, &deltas(&[(a, 0, 1), (b, 0, 1)])),
        Err(DeriveError::CreditUnderflow {
            escrow: b.0,
            account: b.1,
            credit: U256::ZERO,
            withdrawn: U256::from(1)
        })
    );
}

#[test]
fn replaying_an_account_level_event_changes_nothing() {
    let [k1, ..] = keys();
    let withdrawn = decoded(
        k1.0,
        pos(5, 0),
        EscrowEvent::Withdrawn { account: Address::with_last_byte(0x10), amount: U256::from(3) },
    );
    let mut anomalies = Vec::new();
    for before in [None, Some(locked_order(k1, 4))] {
        let mut slot = before.clone();
        assert!(!replay(&mut slot, &withdrawn.raw, &withdrawn.event, &mut anomalies));
        assert_eq!(slot, before);
    }
    assert!(anomalies.is_empty());
}
