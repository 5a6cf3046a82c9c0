//! Properties of derivation over generated event sequences (see [`crate::scenario`]): rollback, incremental
//! application against re-derivation, and the anomaly accounting of the state machine.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use alloy::primitives::{B256, U256};
use holdfast_primitives::{
    ChangeKind, DecodedEvent, EscrowEvent, OrderKey, OrderState,
    change::{ChangeFiling, LastChange, NewChange},
    derive::{
        AnomalyRecord, CreditKey, apply_batch, credit_balances, credit_deltas, diff_orders, replay_order,
        retraction, touched_orders,
    },
};
use proptest::{
    prelude::*,
    sample::Index,
    strategy::ValueTree,
    test_runner::{FileFailurePersistence, TestCaseError, TestRunner},
};

use crate::scenario::{self, Built, Shadow, key_of, refs};

fn events_of(events: &[DecodedEvent], key: OrderKey) -> impl Iterator<Item = &DecodedEvent> {
    events.iter().filter(move |e| key_of(e) == Some(key))
}

fn anomalies_of(anomalies: &[AnomalyRecord], key: OrderKey) -> Vec<AnomalyRecord> {
    anomalies.iter().filter(|a| (a.escrow, a.order_id) == (key.0, Some(key.1))).cloned().collect()
}

fn order_keys(events: &[DecodedEvent]) -> BTreeSet<OrderKey> {
    events.iter().filter_map(key_of).collect()
}

fn key(o: &OrderState) -> OrderKey {
    (o.escrow, o.order_id)
}

/// What the indexer loads before applying a batch: the stored states of the orders the batch touches.
fn prior_of(store: &HashMap<OrderKey, OrderState>, batch: &[DecodedEvent]) -> HashMap<OrderKey, OrderState> {
    touched_orders(batch).into_iter().filter_map(|k| store.get(&k).map(|o| (k, o.clone()))).collect()
}

/// Independent oracle for credits: balances after the events one by one, `None` if a withdrawal ever exceeds
/// the credit at that point (a chain a correct escrow cannot produce).
fn running_credits(events: &[DecodedEvent]) -> Option<BTreeMap<CreditKey, U256>> {
    let mut out = BTreeMap::new();
    for e in events {
        match &e.event {
            EscrowEvent::PayoutDeferred { recipient, amount, .. } => {
                let c: &mut U256 = out.entry((e.raw.escrow, *recipient)).or_default();
                *c = c.checked_add(*amount).expect("generated credits stay far from U256::MAX");
            }
            EscrowEvent::Withdrawn { account, amount } => {
                let c: &mut U256 = out.entry((e.raw.escrow, *account)).or_default();
                *c = c.checked_sub(*amount)?;
            }
            _ => {}
        }
    }
    Some(out)
}

proptest! {
    // Regressions are kept next to this file (`derive.proptest-regressions`).
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    /// Property 1. Commit a prefix P, then a suffix S on top of it; roll S back the way the indexer does on a
    /// reorg (re-derive every order P or S touched from P's events alone): the result is the state after P
    /// (orders only S touched disappear), with P's anomalies and none of S's. The retraction owed for each
    /// order S touched exists exactly when the state S announced differs from the rolled-back one.
    #[test]
    fn rolling_back_a_batch_equals_never_applying_it(built in scenario::scenario(), cut in any::<Index>()) {
        let events = &built.events;
        let (p, s) = events.split_at(cut.index(events.len() + 1));

        let after_p = apply_batch(HashMap::new(), &refs(p));
        let store_p: HashMap<OrderKey, OrderState> = after_p.orders.iter().map(|o| (key(o), o.clone())).collect();
        let after_s = apply_batch(prior_of(&store_p, s), &refs(s));
        let mut store_s = store_p.clone();
        store_s.extend(after_s.orders.iter().map(|o| (key(o), o.clone())));
        let mut log: HashMap<OrderKey, LastChange> = HashMap::new();
        // Every upserted order is logged with its `order_updated` entry.
        let logged: Vec<NewChange> = after_p.orders.iter().chain(&after_s.orders).map(NewChange::updated).collect();
        for c in &logged {
            let last = LastChange { filing: c.filing.clone(), state: c.state.clone() };
            log.insert((c.filing.escrow, c.filing.order_id), last);
        }

        let fork = p.last().map_or(0, |e| e.raw.pos.block_number);
        let touched_s: BTreeSet<OrderKey> = touched_orders(s).into_iter().collect();
        let mut keys: BTreeSet<OrderKey> = touched_orders(p).into_iter().collect();
        keys.extend(&touched_s);
        let mut rolled_back_anomalies = Vec::new();
        for k in keys {
            let (state, anomalies) = replay_order(events_of(p, k));
            prop_assert_eq!(state.as_ref(), store_p.get(&k), "order {:?} after rollback", k);
            prop_assert_eq!(&anomalies, &anomalies_of(&after_p.anomalies, k), "anomalies of {:?} after rollback", k);
            rolled_back_anomalies.extend(anomalies);

            // Every existing order a batch touches is announced, so the last announcement is the state after
            // S (nothing was ever announced for an order that never existed). Only orders S touched can owe a
            // retraction (the indexer asks only for those; the others must not owe one either).
            let announced = log.get(&k).cloned();
            prop_assert_eq!(announced.as_ref().and_then(|l| l.state.as_ref()), store_s.get(&k));
            let r = retraction(announced.clone(), state.as_ref(), fork);
            let reverted = store_s.get(&k) != state.as_ref();
            prop_assert!(touched_s.contains(&k) || !reverted, "{:?} changed without S touching it", k);
            prop_assert_eq!(r.is_some(), reverted, "retraction of {:?}: {:?}", k, r);
            if let (Some(r), Some(announced)) = (r, announced) {
                prop_assert_eq!(r.kind, ChangeKind::OrderRetracted);
                prop_assert_eq!(&r.filing, &announced.filing);
                prop_assert_eq!(r.block_number, fork);
                prop_assert_eq!(r.state, state);
            }
        }
        rolled_back_anomalies.sort_by_key(|a| (a.block_number, a.log_index));
        prop_assert_eq!(rolled_back_anomalies, after_p.anomalies);
    }

    /// Property 2. Applying a sequence in arbitrary batches (each fed the states the previous ones stored)
    /// derives what re-deriving every order from all its events does; the batch outputs are consistent
    /// (touched orders, one change per order, credit deltas); credit balances kept batch by batch equal
    /// those computed at once.
    ///
    /// On underflow the two are not symmetric, by design of batch-level credit deltas: within a batch a
    /// withdrawal is netted against every credit of the batch, even later ones, so a cut between a
    /// withdrawal and the credit that covers it makes the batch-wise computation fail where the computation
    /// at once succeeds. Only a chain that withdraws before it is credited (which a correct escrow cannot
    /// produce) can show this; the converse (at once fails, batch-wise succeeds) must never happen.
    #[test]
    fn applying_in_batches_equals_rederiving(built in scenario::scenario(), cuts in prop::collection::vec(any::<Index>(), 0..6)) {
        let events = &built.events;
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(events.len() + 1)).collect();
        bounds.extend([0, events.len()]);
        bounds.sort_unstable();

        let mut store: HashMap<OrderKey, OrderState> = HashMap::new();
        let mut anomalies = Vec::new();
        let mut balances: HashMap<CreditKey, U256> = HashMap::new();
        let mut credit_error = None;
        for w in bounds.windows(2) {
            let batch = &events[w[0]..w[1]];
            let d = apply_batch(prior_of(&store, batch), &refs(batch));

            let touched = touched_orders(batch);
            prop_assert_eq!(&d.touched, &touched);
            let derived: Vec<OrderKey> = d.orders.iter().map(key).collect();
            let expected: Vec<OrderKey> = touched
                .iter()
                .copied()
                .filter(|k| store.contains_key(k) || derived.contains(k))
                .collect();
            prop_assert_eq!(&derived, &expected, "a batch returns every touched order that exists, in first-touch order");
            for o in &d.orders {
                let c = NewChange::updated(o);
                prop_assert_eq!(c.kind, ChangeKind::OrderUpdated);
                prop_assert_eq!(c.state.as_ref(), Some(o));
                prop_assert_eq!(&c.filing, &ChangeFiling::of(o));
                prop_assert_eq!(c.block_number, o.last_pos().block_number);
            }
            prop_assert_eq!(&d.credits, &credit_deltas(batch));

            store.extend(d.orders.into_iter().map(|o| (key(&o), o)));
            anomalies.extend(d.anomalies);
            if credit_error.is_none() {
                match credit_balances(&balances, &d.credits) {
                    Ok(next) => balances.extend(next),
                    Err(e) => credit_error = Some(e),
                }
            }
        }

        let keys = order_keys(events);
        prop_assert!(store.keys().all(|k| keys.contains(k)));
        for k in keys {
            let (state, from_scratch) = replay_order(events_of(events, k));
            prop_assert_eq!(store.get(&k), state.as_ref(), "order {:?}", k);
            prop_assert_eq!(anomalies_of(&anomalies, k), from_scratch, "anomalies of {:?}", k);
        }
        prop_assert_eq!(&anomalies, &apply_batch(HashMap::new(), &refs(events)).anomalies);

        let at_once = credit_balances(&HashMap::new(), &credit_deltas(events));
        let running = running_credits(events);
        match (&credit_error, &at_once) {
            (None, Ok(all)) => {
                let all: BTreeMap<CreditKey, U256> = all.iter().copied().collect();
                let batched: BTreeMap<CreditKey, U256> = balances.into_iter().collect();
                prop_assert_eq!(&batched, &all);
                if let Some(running) = &running {
                    prop_assert_eq!(&batched, running);
                }
            }
            (None, Err(e)) => prop_assert!(false, "fails at once ({}) but not batch by batch", e),
            (Some(_), Err(_)) => prop_assert!(running.is_none()),
            (Some(e), Ok(_)) => prop_assert!(running.is_none(), "batch-wise underflow {} on a chain that never overdraws", e),
        }
    }

    /// Property 3. Every event of an order is either applied (it created the order or appended a step) or
    /// recorded as an anomaly (and, if the order existed, on the order) — never both, never dropped — and
    /// which one is what the shadow model says. Amounts are conserved.
    #[test]
    fn every_order_event_is_applied_or_an_anomaly(built in scenario::scenario()) {
        check_accounting(&built)?;
    }

    // Found a real bug: `PayoutDeferred`'s check used U256's wrapping `+`, so an amount near U256::MAX
    // wrapped around, passed and was applied (deferred went down). Minimal case: Locked(159),
    // Released(159, remaining 0, status 4), PayoutDeferred(2), PayoutDeferred(U256::MAX). Fixed with
    // `checked_add`; the case stays in derive.proptest-regressions.
    /// Property 3 again, with some corrupted amounts close to `U256::MAX`.
    #[test]
    fn every_order_event_is_applied_or_an_anomaly_with_huge_amounts(built in scenario::scenario_with_huge_amounts()) {
        check_accounting(&built)?;
    }

    /// `diff_orders` turns the stored states of a key range into the derived ones with the fewest writes:
    /// it upserts exactly the derived states that differ from (or are missing in) the store and deletes
    /// exactly the stored keys that derive to nothing (`None`, or no entry at all), both in key order.
    #[test]
    fn diff_orders_turns_stored_into_derived(cells in prop::collection::vec((0u8..4, 0u8..4, any::<bool>()), 0..10)) {
        // Per key (ascending): derived amount (3: derives to nothing), stored amount (3: not stored), and
        // whether the key is listed among the derived ones at all.
        let keys: Vec<OrderKey> =
            (0..cells.len()).map(|i| (scenario::escrow(i as u8 / 4), scenario::order_id(i as u8 % 4))).collect();
        prop_assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let state = |k: OrderKey, v: u8| (v < 3).then(|| crate::unit::locked_order(k, u64::from(v)));
        let mut derived = Vec::new();
        let mut stored = Vec::new();
        let (mut upserts, mut deletes) = (Vec::new(), Vec::new());
        for (&(d, s, listed), &k) in cells.iter().zip(&keys) {
            let (d, s) = (if listed { state(k, d) } else { None }, state(k, s));
            if listed {
                derived.push((k, d.clone()));
            }
            if let Some(s) = &s {
                stored.push((k, s.clone()));
            }
            match (d, s) {
                (Some(d), s) if Some(&d) != s.as_ref() => upserts.push(d),
                (None, Some(_)) => deletes.push(k),
                _ => {}
            }
        }
        let diff = diff_orders(derived, stored);
        prop_assert_eq!(diff.upserts, upserts);
        prop_assert_eq!(diff.deletes, deletes);
    }
}

fn check_accounting(built: &Built) -> Result<(), TestCaseError> {
    let events = &built.events;
    let whole = apply_batch(HashMap::new(), &refs(events));
    let states: HashMap<OrderKey, &OrderState> = whole.orders.iter().map(|o| (key(o), o)).collect();

    prop_assert!(
        whole.anomalies.iter().all(|a| a.order_id.is_some()),
        "an account-level event is never an anomaly"
    );
    prop_assert_eq!(whole.anomalies.len(), built.legal.iter().filter(|l| !**l).count());

    type Mark = (&'static str, B256, u64);
    let mark = |e: &DecodedEvent| (e.event.kind(), e.raw.pos.block_hash, e.raw.pos.log_index);
    for k in order_keys(events) {
        let evs: Vec<(usize, &DecodedEvent)> =
            events.iter().enumerate().filter(|(_, e)| key_of(e) == Some(k)).collect();
        let state = states.get(&k).copied();
        let applied: Vec<Mark> = state
            .map(|o| {
                std::iter::once(&o.locked)
                    .chain(&o.steps)
                    .map(|s| (kind_name(&s.kind), s.pos.block_hash, s.pos.log_index))
                    .collect()
            })
            .unwrap_or_default();
        let anomalies = anomalies_of(&whole.anomalies, k);
        let anomalous: Vec<Mark> = anomalies.iter().map(|a| (a.kind, a.block_hash, a.log_index)).collect();

        prop_assert_eq!(
            applied.len() + anomalies.len(),
            evs.len(),
            "order {:?}: steps + anomalies != events",
            k
        );
        for &(i, e) in &evs {
            let m = mark(e);
            let (a, b) = (applied.contains(&m), anomalous.contains(&m));
            prop_assert!(a != b, "event #{} {:?}: applied {}, anomaly {}", i, e.event, a, b);
            prop_assert_eq!(a, built.legal[i], "event #{} {:?} (legal: {})", i, e.event, built.legal[i]);
        }
        // Chain order on both sides.
        let legal: Vec<Mark> = evs.iter().filter(|(i, _)| built.legal[*i]).map(|(_, e)| mark(e)).collect();
        let illegal: Vec<Mark> = evs.iter().filter(|(i, _)| !built.legal[*i]).map(|(_, e)| mark(e)).collect();
        prop_assert_eq!(&applied, &legal);
        prop_assert_eq!(&anomalous, &illegal);

        prop_assert_eq!(state.map(Shadow::of), built.orders.get(&k).cloned(), "order {:?}", k);
        if let Some(o) = state {
            let lock = (o.locked.pos.block_number, o.locked.pos.log_index);
            let since_lock: Vec<_> = anomalies
                .iter()
                .filter(|a| (a.block_number, a.log_index) > lock)
                .map(|a| (a.kind, a.block_number, a.block_hash, a.log_index, a.reason.as_str()))
                .collect();
            let on_order: Vec<_> = o
                .anomalies
                .iter()
                .map(|a| {
                    (
                        kind_name(&a.kind),
                        a.pos.block_number,
                        a.pos.block_hash,
                        a.pos.log_index,
                        a.reason.as_str(),
                    )
                })
                .collect();
            prop_assert_eq!(on_order, since_lock, "anomalies on order {:?}", k);
            prop_assert_eq!(o.released + o.refunded + o.remaining, o.amount, "amounts of {:?}", k);
            prop_assert!(o.deferred <= o.released + o.refunded, "deferred beyond paid out on {:?}", k);
            prop_assert_eq!(
                o.status.is_settled(),
                o.remaining.is_zero() && o.contract_status == holdfast_primitives::ContractStatus::Settled
            );
        }
    }
    Ok(())
}

/// The `&'static str` kind name equal to a stored one (so marks compare across step, anomaly and event).
fn kind_name(kind: &str) -> &'static str {
    ["locked", "delivered", "released", "refunded", "frozen", "resolved", "payout_deferred", "withdrawn"]
        .into_iter()
        .find(|k| *k == kind)
        .unwrap_or("unknown")
}

/// The properties are only as good as the sequences: check (over a fixed-seed sample) that generated
/// scenarios are mostly legal, reach every derived status and produce every kind of anomaly.
#[test]
fn scenarios_exercise_the_state_machine() {
    let mut runner = TestRunner::deterministic();
    let strategy = scenario::scenario();
    let (mut events, mut legal) = (0usize, 0usize);
    let mut statuses = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    let mut reasons: Vec<String> = Vec::new();
    let mut steps = 0;
    for _ in 0..300 {
        let built = strategy.new_tree(&mut runner).expect("a scenario").current();
        events += built.events.len();
        legal += built.legal.iter().filter(|l| **l).count();
        kinds.extend(built.events.iter().map(|e| e.event.kind()));
        let d = apply_batch(HashMap::new(), &refs(&built.events));
        statuses.extend(d.orders.iter().map(|o| o.status.as_str()));
        steps = steps.max(d.orders.iter().map(|o| o.steps.len()).max().unwrap_or(0));
        reasons.extend(d.anomalies.into_iter().map(|a| a.reason));
    }
    let share = legal as f64 / events as f64;
    assert!((0.6..0.95).contains(&share), "share of legal events {share:.2}");
    assert!(steps >= 4, "longest order life: {steps} steps after the lock");
    let all_statuses = ["held", "delivered", "frozen", "released", "refunded", "expired", "split"];
    assert_eq!(statuses, all_statuses.into_iter().collect(), "final statuses reached");
    assert_eq!(kinds.len(), 8, "event kinds generated: {kinds:?}");
    for needle in [
        "locked again",
        "locked with status",
        "never locked",
        "delivered while",
        "released while",
        "refunded while",
        "frozen while",
        "resolved while",
        "frozen without an arbiter",
        "of remaining",
        "event reports remaining",
        "unknown status",
        "neither payer nor payee",
        "beyond the",
    ] {
        let n = reasons.iter().filter(|r| r.contains(needle)).count();
        assert!(n >= 3, "anomaly \"{needle}\" seen {n} times");
    }
}
