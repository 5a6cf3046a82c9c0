//! Random escrow event sequences for the derivation properties, with an independent shadow model of what a
//! correct derivation must produce.
//!
//! A scenario is generated as a list of *intents* ("the next legal move of order 2", "a release of order 1
//! whatever its state", "a withdrawal by the payer of order 0", each possibly corrupted), not as events:
//! [`Scenario::build`] walks the intents with a shadow model of every order, computes each event's fields from
//! it (so most events are legal and the state machine gets deep into its states) and records whether the
//! event is legal. Corruptions always make an event illegal (release beyond what remains, a wrong post-state
//! `remaining` or `status`, a payout credited to a stranger, ...); so does a move the order's state does not
//! allow (delivered twice, frozen without an arbiter, anything for an order never locked). Illegal events
//! leave the shadow untouched, which is the spec the state machine is held to.
//!
//! Raw logs carry empty topics and data: derivation only reads the decoded event and the raw event's chain
//! id, escrow and position.

use std::collections::{BTreeMap, HashMap};

use alloy::primitives::{Address, B256, Bytes, U256};
use holdfast_primitives::{
    ContractStatus, DecodedEvent, EscrowEvent, EventPos, OrderKey, OrderState, OrderStatus, RawEvent,
    derive::CreditKey,
};
use proptest::prelude::*;

/// Chain id of every generated event.
pub(crate) const CHAIN_ID: u64 = 31_337;

/// An account that is neither payer, payee nor arbiter of any order.
pub(crate) fn stranger() -> Address {
    Address::repeat_byte(0x99)
}

/// Escrow number `i`.
pub(crate) fn escrow(i: u8) -> Address {
    Address::repeat_byte(0xE0 + i)
}

/// Order id number `i`; the same ids are used at every escrow (so only the (escrow, id) key tells orders
/// apart).
pub(crate) fn order_id(i: u8) -> B256 {
    B256::with_last_byte(0x01 + i)
}

/// An order id that is never locked.
pub(crate) fn unknown_order_id() -> B256 {
    B256::with_last_byte(0xFF)
}

/// Payers are shared by pairs of orders (and across escrows), so credits of several orders add up.
fn payer(i: u8) -> Address {
    Address::with_last_byte(0x10 + i % 2)
}

fn payee(i: u8) -> Address {
    Address::with_last_byte(0x20 + i)
}

fn arbiter(i: u8) -> Address {
    Address::with_last_byte(0x30 + i)
}

/// A chain position: block `block` (its hash derived from the number), log `log_index`.
pub(crate) fn pos(block: u64, log_index: u64) -> EventPos {
    let mut hash = [0u8; 32];
    hash[0] = 0xBB;
    hash[24..].copy_from_slice(&block.to_be_bytes());
    let mut tx = hash;
    tx[0] = 0x77;
    tx[8..16].copy_from_slice(&log_index.to_be_bytes());
    EventPos {
        block_number: block,
        block_hash: B256::from(hash),
        block_timestamp: 1_700_000_000 + block * 12,
        tx_hash: B256::from(tx),
        tx_index: log_index,
        log_index,
    }
}

/// A decoded event as the store would hand it to derivation.
pub(crate) fn decoded(escrow: Address, pos: EventPos, event: EscrowEvent) -> DecodedEvent {
    DecodedEvent {
        raw: RawEvent { chain_id: CHAIN_ID, escrow, pos, topics: Vec::new(), data: Bytes::new() },
        event,
    }
}

/// The order an event belongs to.
pub(crate) fn key_of(e: &DecodedEvent) -> Option<OrderKey> {
    e.event.order_id().map(|id| (e.raw.escrow, id))
}

/// Borrow a slice of events the way `apply_batch` takes them.
pub(crate) fn refs(events: &[DecodedEvent]) -> Vec<&DecodedEvent> {
    events.iter().collect()
}

/// Kinds of order events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Lock,
    Deliver,
    Release,
    Refund,
    Freeze,
    Resolve,
    Defer,
}

const KINDS: [Kind; 7] =
    [Kind::Lock, Kind::Deliver, Kind::Release, Kind::Refund, Kind::Freeze, Kind::Resolve, Kind::Defer];

/// How an event is made illegal. Each applies to every kind (mapped to the closest meaningful corruption).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Corrupt {
    /// Post-state `remaining` off by `1 + k`.
    WrongRemaining(u8),
    /// Post-state `status` wrong (pick `k` among the wrong ones, including an unknown value).
    WrongStatus(u8),
    /// Amount `1 + k` beyond what is allowed (remaining, paid out, credit).
    Excess(u8),
    /// A zero release or refund.
    ZeroAmount,
    /// A deferred payout credited to a stranger.
    Stranger,
    /// An amount `U256::MAX - k` (only with [`scenario_with_huge_amounts`]).
    Huge(u8),
}

/// What an intent does.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// A move the order's current state allows (chosen by the number); if there is none, an illegal one.
    Next(u8),
    /// This kind of event, whatever the order's state.
    Forced(Kind),
    /// A withdrawal by the target order's payee (`by_payee`) or payer at its escrow.
    Withdraw,
}

/// One generated step.
#[derive(Debug, Clone)]
pub(crate) struct Intent {
    escrow: u8,
    /// `None`: an order id that is never locked.
    order: Option<u8>,
    op: Op,
    /// Source of amounts and choices.
    frac: u64,
    by_payee: bool,
    corrupt: Option<Corrupt>,
    /// 0: same block as the previous event (next log index); otherwise that many blocks later.
    block_step: u8,
}

/// A generated scenario.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    n_escrows: u8,
    n_orders: u8,
    intents: Vec<Intent>,
}

/// The shadow of an order: what a correct derivation must have after the legal events so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shadow {
    pub(crate) payer: Address,
    pub(crate) payee: Address,
    pub(crate) arbiter: Option<Address>,
    pub(crate) amount: U256,
    pub(crate) released: U256,
    pub(crate) refunded: U256,
    pub(crate) remaining: U256,
    pub(crate) deferred: U256,
    pub(crate) contract_status: ContractStatus,
    pub(crate) status: OrderStatus,
}

impl Shadow {
    fn paid_out(&self) -> U256 {
        self.released + self.refunded
    }

    /// The derived status once nothing remains (mirrors the documented meaning of `OrderStatus`).
    fn settle(&mut self, expiry: bool) {
        if !self.remaining.is_zero() {
            return;
        }
        self.contract_status = ContractStatus::Settled;
        self.status = match (self.released.is_zero(), self.refunded.is_zero()) {
            (_, true) => OrderStatus::Released,
            (true, false) if expiry => OrderStatus::Expired,
            (true, false) => OrderStatus::Refunded,
            (false, false) => OrderStatus::Split,
        };
    }

    /// The comparable part of a derived state.
    pub(crate) fn of(o: &OrderState) -> Self {
        Self {
            payer: o.payer,
            payee: o.payee,
            arbiter: o.arbiter,
            amount: o.amount,
            released: o.released,
            refunded: o.refunded,
            remaining: o.remaining,
            deferred: o.deferred,
            contract_status: o.contract_status,
            status: o.status,
        }
    }
}

/// A built scenario: the events in chain order and what the shadow model expects of them.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub(crate) events: Vec<DecodedEvent>,
    /// Per event: whether a correct state machine applies it. Always `true` for `Withdrawn` (not an order
    /// event, never an anomaly).
    pub(crate) legal: Vec<bool>,
    /// Final shadow of every order that was ever (legally) locked.
    pub(crate) orders: BTreeMap<OrderKey, Shadow>,
}

fn other_status(correct: u8, k: u8) -> u8 {
    let wrong: Vec<u8> = [0u8, 1, 2, 3, 4, 9].into_iter().filter(|s| *s != correct).collect();
    wrong[usize::from(k) % wrong.len()]
}

fn excess(base: U256, k: u8) -> U256 {
    base.saturating_add(U256::from(1 + u64::from(k)))
}

fn huge(k: u8) -> U256 {
    U256::MAX - U256::from(k)
}

impl Scenario {
    /// Walk the intents with the shadow model and produce the events.
    pub(crate) fn build(&self) -> Built {
        let mut shadows: BTreeMap<OrderKey, Shadow> = BTreeMap::new();
        // Credits as the escrow would hold them if every `PayoutDeferred` was real (derivation credits even
        // anomalous ones, see `credit_deltas`): only used to size plausible withdrawals.
        let mut credits: HashMap<CreditKey, U256> = HashMap::new();
        let mut events = Vec::with_capacity(self.intents.len());
        let mut legal = Vec::with_capacity(self.intents.len());
        let (mut block, mut log_index) = (100u64, 0u64);
        for (n, it) in self.intents.iter().enumerate() {
            if n > 0 {
                if it.block_step == 0 {
                    log_index += 1;
                } else {
                    block += u64::from(it.block_step);
                    log_index = it.frac % 3;
                }
            }
            let at = pos(block, log_index);
            let esc = escrow(it.escrow % self.n_escrows);
            let idx = it.order.map(|o| o % self.n_orders);
            let id = idx.map_or_else(unknown_order_id, order_id);
            // Participants of an order that does not exist (yet): those it would have.
            let i = idx.unwrap_or(self.n_orders);
            let key = (esc, id);
            let frac = it.frac;

            let kind = match &it.op {
                Op::Withdraw => {
                    let account = if it.by_payee { payee(i) } else { payer(i) };
                    let credit = credits.get(&(esc, account)).copied().unwrap_or_default();
                    let amount = match it.corrupt {
                        Some(Corrupt::Huge(k)) => huge(k),
                        Some(c) => excess(credit, corrupt_k(c)),
                        None => U256::from(frac) % credit.saturating_add(U256::from(1)),
                    };
                    if let Some(c) = credits.get_mut(&(esc, account)) {
                        *c = c.saturating_sub(amount);
                    }
                    events.push(decoded(esc, at, EscrowEvent::Withdrawn { account, amount }));
                    legal.push(true);
                    continue;
                }
                Op::Forced(k) => *k,
                Op::Next(pick) => {
                    let moves = if idx.is_some() { legal_moves(shadows.get(&key)) } else { Vec::new() };
                    if moves.is_empty() {
                        KINDS[1 + usize::from(*pick) % (KINDS.len() - 1)]
                    } else {
                        moves[usize::from(*pick) % moves.len()]
                    }
                }
            };
            // An order id that is never locked stays so.
            let kind = if idx.is_none() && kind == Kind::Lock { Kind::Release } else { kind };

            let s = shadows.get(&key);
            let rem = s.map_or(U256::ZERO, |s| s.remaining);
            let cs = s.map_or(ContractStatus::None, |s| s.contract_status);
            let movable = matches!(cs, ContractStatus::Held | ContractStatus::Delivered);
            let (event, state_ok, corrupted) = match kind {
                Kind::Lock => {
                    let amount = if frac % 16 == 0 { U256::ZERO } else { U256::from(1 + (frac >> 8) % 1000) };
                    let status = match it.corrupt {
                        Some(c) => other_status(1, corrupt_k(c)),
                        None => 1,
                    };
                    let event = EscrowEvent::Locked {
                        order_id: id,
                        payer: payer(i),
                        payee: payee(i),
                        arbiter: if frac & 2 == 0 { arbiter(i) } else { Address::ZERO },
                        amount,
                        deliver_by: 1_800_000_000,
                        dispute_window: 3_600,
                        status,
                    };
                    (event, s.is_none(), it.corrupt.is_some())
                }
                Kind::Deliver => {
                    let (mut remaining, mut status) = (rem, 2);
                    match it.corrupt {
                        Some(Corrupt::WrongRemaining(k)) => remaining = excess(rem, k),
                        Some(c) => status = other_status(2, corrupt_k(c)),
                        None => {}
                    }
                    let event = EscrowEvent::Delivered {
                        order_id: id,
                        evidence: if frac & 4 == 0 { B256::repeat_byte(0xEE) } else { B256::ZERO },
                        releasable_at: 1_800_000_000 + frac % 1_000,
                        remaining,
                        status,
                    };
                    (event, cs == ContractStatus::Held, it.corrupt.is_some())
                }
                Kind::Release | Kind::Refund => {
                    let mut amount = if rem.is_zero() {
                        U256::from(1 + frac % 5)
                    } else if frac % 3 == 0 {
                        rem
                    } else {
                        U256::from(1) + U256::from(frac >> 4) % rem
                    };
                    let mut remaining = rem.saturating_sub(amount);
                    let settled = remaining.is_zero();
                    let mut status = if settled { ContractStatus::Settled as u8 } else { cs as u8 }.max(1);
                    match it.corrupt {
                        Some(Corrupt::Excess(k)) => {
                            amount = excess(rem, k);
                            (remaining, status) = (U256::ZERO, 4);
                        }
                        Some(Corrupt::Huge(k)) => {
                            amount = huge(k);
                            (remaining, status) = (U256::ZERO, 4);
                        }
                        Some(Corrupt::ZeroAmount) => (amount, remaining) = (U256::ZERO, rem),
                        Some(Corrupt::WrongRemaining(k)) => remaining = excess(remaining, k),
                        Some(c) => status = other_status(status, corrupt_k(c)),
                        None => {}
                    }
                    let payee_i = s.map_or(payee(i), |s| s.payee);
                    let by = match (kind, it.by_payee) {
                        (Kind::Refund, true) => payee_i,
                        (Kind::Refund, false) => stranger(),
                        (_, true) => payee_i,
                        (_, false) => payer(i),
                    };
                    let event = if kind == Kind::Release {
                        EscrowEvent::Released { order_id: id, by, amount, remaining, status }
                    } else {
                        EscrowEvent::Refunded { order_id: id, by, amount, remaining, status }
                    };
                    (event, movable && !rem.is_zero(), it.corrupt.is_some())
                }
                Kind::Freeze => {
                    let (mut remaining, mut status) = (rem, 3);
                    match it.corrupt {
                        Some(Corrupt::WrongRemaining(k)) => remaining = excess(rem, k),
                        Some(c) => status = other_status(3, corrupt_k(c)),
                        None => {}
                    }
                    let event = EscrowEvent::Frozen {
                        order_id: id,
                        by: if it.by_payee { payee(i) } else { payer(i) },
                        reason: B256::repeat_byte(0xAB),
                        timeout_at: 1_900_000_000 + frac % 1_000,
                        remaining,
                        status,
                    };
                    let has_arbiter = s.is_some_and(|s| s.arbiter.is_some());
                    (event, movable && has_arbiter, it.corrupt.is_some())
                }
                Kind::Resolve => {
                    let mut to_payee = U256::from(frac) % (rem + U256::from(1));
                    let mut to_payer = rem - to_payee;
                    let (mut remaining, mut status) = (U256::ZERO, 4);
                    match it.corrupt {
                        Some(Corrupt::Excess(k)) => to_payer = excess(to_payer, k),
                        Some(Corrupt::Huge(k)) => to_payee = huge(k),
                        Some(Corrupt::WrongRemaining(k)) => remaining = excess(U256::ZERO, k),
                        Some(c) => status = other_status(4, corrupt_k(c)),
                        None => {}
                    }
                    let event = EscrowEvent::Resolved {
                        order_id: id,
                        by: arbiter(i),
                        to_payee,
                        to_payer,
                        by_timeout: frac & 8 == 0,
                        remaining,
                        status,
                    };
                    (event, cs == ContractStatus::Frozen, it.corrupt.is_some())
                }
                Kind::Defer => {
                    let avail = s.map_or(U256::ZERO, |s| s.paid_out() - s.deferred);
                    let mut amount = if avail.is_zero() {
                        U256::from(1 + frac % 5)
                    } else {
                        U256::from(1) + U256::from(frac) % avail
                    };
                    let mut recipient = match s {
                        Some(s) if it.by_payee => s.payee,
                        Some(s) => s.payer,
                        None if it.by_payee => payee(i),
                        None => payer(i),
                    };
                    match it.corrupt {
                        Some(Corrupt::Huge(k)) => amount = huge(k),
                        Some(Corrupt::Excess(k) | Corrupt::WrongRemaining(k)) => amount = excess(avail, k),
                        Some(Corrupt::Stranger | Corrupt::ZeroAmount | Corrupt::WrongStatus(_)) => {
                            recipient = stranger()
                        }
                        None => {}
                    }
                    // Credited whether or not the order accepts it (as `credit_deltas` does).
                    let c = credits.entry((esc, recipient)).or_default();
                    *c = c.saturating_add(amount);
                    let event = EscrowEvent::PayoutDeferred { order_id: id, recipient, amount };
                    (event, s.is_some() && !avail.is_zero(), it.corrupt.is_some())
                }
            };
            let ok = state_ok && !corrupted;
            if ok {
                advance(&mut shadows, key, &event);
            }
            events.push(decoded(esc, at, event));
            legal.push(ok);
        }
        Built { events, legal, orders: shadows }
    }
}

fn corrupt_k(c: Corrupt) -> u8 {
    match c {
        Corrupt::WrongRemaining(k) | Corrupt::WrongStatus(k) | Corrupt::Excess(k) | Corrupt::Huge(k) => k,
        Corrupt::ZeroAmount => 0,
        Corrupt::Stranger => 1,
    }
}

/// The moves an order's state allows (`None`: not locked yet).
fn legal_moves(s: Option<&Shadow>) -> Vec<Kind> {
    let Some(s) = s else { return vec![Kind::Lock] };
    let mut moves = Vec::new();
    match s.contract_status {
        ContractStatus::Held | ContractStatus::Delivered => {
            if s.contract_status == ContractStatus::Held {
                moves.push(Kind::Deliver);
            }
            if !s.remaining.is_zero() {
                moves.extend([Kind::Release, Kind::Refund]);
            }
            if s.arbiter.is_some() {
                moves.push(Kind::Freeze);
            }
        }
        ContractStatus::Frozen => moves.push(Kind::Resolve),
        ContractStatus::None | ContractStatus::Settled => {}
    }
    if s.paid_out() > s.deferred {
        moves.push(Kind::Defer);
    }
    moves
}

/// Apply a legal event to the shadow.
fn advance(shadows: &mut BTreeMap<OrderKey, Shadow>, key: OrderKey, event: &EscrowEvent) {
    if let EscrowEvent::Locked { payer, payee, arbiter, amount, .. } = event {
        shadows.insert(
            key,
            Shadow {
                payer: *payer,
                payee: *payee,
                arbiter: (*arbiter != Address::ZERO).then_some(*arbiter),
                amount: *amount,
                released: U256::ZERO,
                refunded: U256::ZERO,
                remaining: *amount,
                deferred: U256::ZERO,
                contract_status: ContractStatus::Held,
                status: OrderStatus::Held,
            },
        );
        return;
    }
    let s = shadows.get_mut(&key).expect("a legal event of a locked order");
    match event {
        EscrowEvent::Delivered { .. } => {
            s.contract_status = ContractStatus::Delivered;
            s.status = OrderStatus::Delivered;
        }
        EscrowEvent::Released { amount, .. } => {
            s.remaining -= *amount;
            s.released += *amount;
            s.settle(false);
        }
        EscrowEvent::Refunded { amount, by, .. } => {
            s.remaining -= *amount;
            s.refunded += *amount;
            let expiry = *by != s.payee;
            s.settle(expiry);
        }
        EscrowEvent::Frozen { .. } => {
            s.contract_status = ContractStatus::Frozen;
            s.status = OrderStatus::Frozen;
        }
        EscrowEvent::Resolved { to_payee, to_payer, .. } => {
            s.released += *to_payee;
            s.refunded += *to_payer;
            s.remaining = U256::ZERO;
            s.settle(false);
        }
        EscrowEvent::PayoutDeferred { amount, .. } => s.deferred += *amount,
        EscrowEvent::Locked { .. } | EscrowEvent::Withdrawn { .. } => unreachable!("not an order move"),
    }
}

fn kind_strategy() -> impl Strategy<Value = Kind> {
    prop::sample::select(KINDS.to_vec())
}

fn corrupt_strategy(huge: bool) -> BoxedStrategy<Corrupt> {
    let common = prop_oneof![
        3 => any::<u8>().prop_map(Corrupt::WrongRemaining),
        3 => any::<u8>().prop_map(Corrupt::WrongStatus),
        3 => (0u8..5).prop_map(Corrupt::Excess),
        1 => Just(Corrupt::ZeroAmount),
        1 => Just(Corrupt::Stranger),
    ];
    if huge {
        prop_oneof![3 => common, 2 => (0u8..4).prop_map(Corrupt::Huge)].boxed()
    } else {
        common.boxed()
    }
}

fn intent_strategy(huge: bool) -> impl Strategy<Value = Intent> {
    let op = prop_oneof![
        16 => any::<u8>().prop_map(Op::Next),
        3 => kind_strategy().prop_map(Op::Forced),
        2 => Just(Op::Withdraw),
    ];
    (
        0u8..2,
        prop::option::weighted(0.93, 0u8..4),
        op,
        any::<u64>(),
        any::<bool>(),
        prop::option::weighted(0.12, corrupt_strategy(huge)),
        prop_oneof![2 => Just(0u8), 3 => 1u8..4],
    )
        .prop_map(|(escrow, order, op, frac, by_payee, corrupt, block_step)| Intent {
            escrow,
            order,
            op,
            frac,
            by_payee,
            corrupt,
            block_step,
        })
}

fn scenario_strategy(huge: bool) -> impl Strategy<Value = Scenario> {
    (1u8..=2, 2u8..=4, prop::collection::vec(intent_strategy(huge), 0..48))
        .prop_map(|(n_escrows, n_orders, intents)| Scenario { n_escrows, n_orders, intents })
}

/// Scenarios with amounts that stay far from `U256::MAX`.
pub(crate) fn scenario() -> impl Strategy<Value = Built> {
    scenario_strategy(false).prop_map(|s| s.build())
}

/// Scenarios where some corrupted amounts are close to `U256::MAX`.
pub(crate) fn scenario_with_huge_amounts() -> impl Strategy<Value = Built> {
    scenario_strategy(true).prop_map(|s| s.build())
}
