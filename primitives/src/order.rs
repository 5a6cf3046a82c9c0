//! The order state machine: derives each order's payment state from its events, and flags every event that
//! a correct contract could not have emitted in the order's current state (an anomaly) instead of applying it.

use alloy::primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};

use crate::event::{ContractStatus, EscrowEvent, EventPos};

/// Serde for `U256` as an exact decimal string.
pub mod u256_dec {
    use alloy::primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Serialize as a decimal string.
    pub fn serialize<S: Serializer>(v: &U256, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    /// Deserialize from a decimal string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<U256, D::Error> {
        let s = String::deserialize(d)?;
        U256::from_str_radix(&s, 10).map_err(D::Error::custom)
    }
}

/// An order's key within a chain: (escrow, order id).
pub type OrderKey = (Address, B256);

/// The payment state a client sees, finer than the contract's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Funds held, not delivered yet.
    Held,
    /// Delivered; the dispute window runs until `releasableAt`.
    Delivered,
    /// Frozen: only the arbiter (or the timeout default) settles it.
    Frozen,
    /// Settled, everything went to the payee.
    Released,
    /// Settled, everything went back to the payer (by the payee).
    Refunded,
    /// Settled, everything went back to the payer because the payee never delivered.
    Expired,
    /// Settled with parts to both sides.
    Split,
}

impl OrderStatus {
    /// Stable lower-case name (as stored and served).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Delivered => "delivered",
            Self::Frozen => "frozen",
            Self::Released => "released",
            Self::Refunded => "refunded",
            Self::Expired => "expired",
            Self::Split => "split",
        }
    }

    /// Parse a stored or requested name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "held" => Self::Held,
            "delivered" => Self::Delivered,
            "frozen" => Self::Frozen,
            "released" => Self::Released,
            "refunded" => Self::Refunded,
            "expired" => Self::Expired,
            "split" => Self::Split,
            _ => return None,
        })
    }

    /// Whether the order can no longer change.
    pub fn is_settled(self) -> bool {
        !matches!(self, Self::Held | Self::Delivered | Self::Frozen)
    }
}

/// One step in an order's life, with where it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Event kind.
    pub kind: String,
    /// Position on the chain.
    #[serde(flatten)]
    pub pos: EventPos,
}

/// An event that was illegal for the order's state; recorded, not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Anomaly {
    /// Event kind.
    pub kind: String,
    /// Where it happened.
    #[serde(flatten)]
    pub pos: EventPos,
    /// Why it was not applied.
    pub reason: String,
}

/// An order's derived state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderState {
    /// Chain id.
    pub chain_id: u64,
    /// Escrow address.
    pub escrow: Address,
    /// Order id.
    pub order_id: B256,
    /// Payer.
    pub payer: Address,
    /// Payee.
    pub payee: Address,
    /// Arbiter (`None`: the order can never be frozen).
    pub arbiter: Option<Address>,
    /// Amount locked.
    #[serde(with = "u256_dec")]
    pub amount: U256,
    /// Total released to the payee (including arbiter awards and credited payouts).
    #[serde(with = "u256_dec")]
    pub released: U256,
    /// Total refunded to the payer (including arbiter awards and credited payouts).
    #[serde(with = "u256_dec")]
    pub refunded: U256,
    /// Still held.
    #[serde(with = "u256_dec")]
    pub remaining: U256,
    /// Payouts that the token refused and the escrow credited for a later withdrawal.
    #[serde(with = "u256_dec")]
    pub deferred: U256,
    /// Derived payment status.
    pub status: OrderStatus,
    /// The contract's status.
    pub contract_status: ContractStatus,
    /// Delivery deadline.
    pub deliver_by: u64,
    /// Dispute window in seconds.
    pub dispute_window: u32,
    /// When anyone may release (set at delivery).
    pub releasable_at: Option<u64>,
    /// When a frozen order's default outcome becomes executable.
    pub freeze_timeout_at: Option<u64>,
    /// Delivery evidence hash.
    pub evidence: Option<B256>,
    /// Freeze reason.
    pub freeze_reason: Option<B256>,
    /// Who froze it.
    pub frozen_by: Option<Address>,
    /// Whether the timeout default settled a frozen order.
    pub resolved_by_timeout: bool,
    /// The lock.
    pub locked: Step,
    /// Every applied step after the lock, in chain order.
    pub steps: Vec<Step>,
    /// Events that were illegal for the order's state (impossible with a correct contract).
    pub anomalies: Vec<Anomaly>,
}

impl OrderState {
    /// Position of the last applied event.
    pub fn last_pos(&self) -> &EventPos {
        self.steps.last().map_or(&self.locked.pos, |s| &s.pos)
    }
}

/// Outcome of applying one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The event was applied.
    Ok,
    /// The event was illegal; recorded as an anomaly on the order (if the order exists).
    Anomaly(String),
    /// The event is not about an order.
    NotOrderEvent,
}

/// Apply `event` to `order` (`None` if the order does not exist yet). Never panics; illegal events become
/// anomalies and leave the derived amounts and status untouched.
pub fn apply(
    order: &mut Option<OrderState>,
    chain_id: u64,
    escrow: Address,
    pos: &EventPos,
    event: &EscrowEvent,
) -> Applied {
    let kind = event.kind().to_string();
    let result = apply_inner(order, chain_id, escrow, pos, event);
    match result {
        Ok(applied) => applied,
        Err(reason) => {
            if let Some(o) = order.as_mut() {
                o.anomalies.push(Anomaly { kind, pos: *pos, reason: reason.clone() });
            }
            Applied::Anomaly(reason)
        }
    }
}

fn check_post(o: &OrderState, remaining: U256, status: u8) -> Result<(), String> {
    let st = ContractStatus::from_u8(status).ok_or_else(|| format!("unknown status {status}"))?;
    if o.remaining != remaining || o.contract_status != st {
        return Err(format!(
            "event reports remaining {remaining} status {st:?}, derived remaining {} status {:?}",
            o.remaining, o.contract_status
        ));
    }
    Ok(())
}

fn existing<'a>(order: &'a mut Option<OrderState>, kind: &str) -> Result<&'a mut OrderState, String> {
    order.as_mut().ok_or_else(|| format!("{kind} for an order that was never locked"))
}

/// `expiry`: the settling event is a refund executed by someone other than the payee (only possible after
/// `deliverBy` passed without delivery).
fn settle_status(o: &mut OrderState, expiry: bool) {
    if !o.remaining.is_zero() {
        return;
    }
    o.contract_status = ContractStatus::Settled;
    o.status = if o.refunded.is_zero() {
        OrderStatus::Released
    } else if o.released.is_zero() {
        if expiry { OrderStatus::Expired } else { OrderStatus::Refunded }
    } else {
        OrderStatus::Split
    };
}

fn apply_inner(
    order: &mut Option<OrderState>,
    chain_id: u64,
    escrow: Address,
    pos: &EventPos,
    event: &EscrowEvent,
) -> Result<Applied, String> {
    let step = |kind: &str| Step { kind: kind.to_string(), pos: *pos };
    match event {
        EscrowEvent::Locked {
            order_id,
            payer,
            payee,
            arbiter,
            amount,
            deliver_by,
            dispute_window,
            status,
        } => {
            if let Some(o) = order {
                return Err(format!("locked again (order already {})", o.status.as_str()));
            }
            if *status != ContractStatus::Held as u8 {
                return Err(format!("locked with status {status}"));
            }
            *order = Some(OrderState {
                chain_id,
                escrow,
                order_id: *order_id,
                payer: *payer,
                payee: *payee,
                arbiter: (*arbiter != Address::ZERO).then_some(*arbiter),
                amount: *amount,
                released: U256::ZERO,
                refunded: U256::ZERO,
                remaining: *amount,
                deferred: U256::ZERO,
                status: OrderStatus::Held,
                contract_status: ContractStatus::Held,
                deliver_by: *deliver_by,
                dispute_window: *dispute_window,
                releasable_at: None,
                freeze_timeout_at: None,
                evidence: None,
                freeze_reason: None,
                frozen_by: None,
                resolved_by_timeout: false,
                locked: step("locked"),
                steps: Vec::new(),
                anomalies: Vec::new(),
            });
        }
        EscrowEvent::Delivered { evidence, releasable_at, remaining, status, .. } => {
            let o = existing(order, "delivered")?;
            if o.contract_status != ContractStatus::Held {
                return Err(format!("delivered while {}", o.status.as_str()));
            }
            let mut next = o.clone();
            next.contract_status = ContractStatus::Delivered;
            next.status = OrderStatus::Delivered;
            check_post(&next, *remaining, *status)?;
            next.releasable_at = Some(*releasable_at);
            next.evidence = (*evidence != B256::ZERO).then_some(*evidence);
            next.steps.push(step("delivered"));
            *o = next;
        }
        EscrowEvent::Released { amount, remaining, status, by, .. }
        | EscrowEvent::Refunded { amount, remaining, status, by, .. } => {
            let is_release = matches!(event, EscrowEvent::Released { .. });
            let kind = event.kind();
            let o = existing(order, kind)?;
            if !matches!(o.contract_status, ContractStatus::Held | ContractStatus::Delivered) {
                return Err(format!("{kind} while {}", o.status.as_str()));
            }
            if amount.is_zero() || *amount > o.remaining {
                return Err(format!("{kind} {amount} of remaining {}", o.remaining));
            }
            let mut next = o.clone();
            next.remaining -= *amount;
            if is_release {
                next.released += *amount;
            } else {
                next.refunded += *amount;
            }
            next.steps.push(step(kind));
            settle_status(&mut next, !is_release && *by != o.payee);
            check_post(&next, *remaining, *status)?;
            *o = next;
        }
        EscrowEvent::Frozen { by, reason, timeout_at, remaining, status, .. } => {
            let o = existing(order, "frozen")?;
            if !matches!(o.contract_status, ContractStatus::Held | ContractStatus::Delivered) {
                return Err(format!("frozen while {}", o.status.as_str()));
            }
            if o.arbiter.is_none() {
                return Err("frozen without an arbiter".into());
            }
            let mut next = o.clone();
            next.contract_status = ContractStatus::Frozen;
            next.status = OrderStatus::Frozen;
            check_post(&next, *remaining, *status)?;
            next.freeze_timeout_at = Some(*timeout_at);
            next.freeze_reason = Some(*reason);
            next.frozen_by = Some(*by);
            next.steps.push(step("frozen"));
            *o = next;
        }
        EscrowEvent::Resolved { to_payee, to_payer, by_timeout, remaining, status, .. } => {
            let o = existing(order, "resolved")?;
            if o.contract_status != ContractStatus::Frozen {
                return Err(format!("resolved while {}", o.status.as_str()));
            }
            if to_payee.checked_add(*to_payer) != Some(o.remaining) {
                return Err(format!("resolved {to_payee} + {to_payer} of remaining {}", o.remaining));
            }
            let mut next = o.clone();
            next.released += *to_payee;
            next.refunded += *to_payer;
            next.remaining = U256::ZERO;
            next.resolved_by_timeout = *by_timeout;
            next.steps.push(step("resolved"));
            settle_status(&mut next, false);
            check_post(&next, *remaining, *status)?;
            *o = next;
        }
        EscrowEvent::PayoutDeferred { recipient, amount, .. } => {
            let o = existing(order, "payout_deferred")?;
            if *recipient != o.payer && *recipient != o.payee {
                return Err(format!("payout credited to {recipient}, neither payer nor payee"));
            }
            let paid_out = o.released + o.refunded;
            // Checked: an amount near `U256::MAX` must not wrap around and pass.
            if o.deferred.checked_add(*amount).is_none_or(|d| d > paid_out) {
                return Err(format!("credited {amount} beyond the {paid_out} paid out"));
            }
            o.deferred += *amount;
            o.steps.push(step("payout_deferred"));
        }
        EscrowEvent::Withdrawn { .. } => return Ok(Applied::NotOrderEvent),
    }
    Ok(Applied::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(n: u64, ts: u64) -> EventPos {
        EventPos {
            block_number: n,
            block_hash: B256::with_last_byte(n as u8),
            block_timestamp: ts,
            tx_hash: B256::ZERO,
            tx_index: 0,
            log_index: 0,
        }
    }

    fn locked(amount: u64) -> EscrowEvent {
        EscrowEvent::Locked {
            order_id: B256::with_last_byte(1),
            payer: Address::with_last_byte(1),
            payee: Address::with_last_byte(2),
            arbiter: Address::with_last_byte(3),
            amount: U256::from(amount),
            deliver_by: 1_000,
            dispute_window: 60,
            status: 1,
        }
    }

    #[test]
    fn partial_release_then_refund_is_split() {
        let mut o = None;
        assert_eq!(apply(&mut o, 1, Address::ZERO, &pos(1, 10), &locked(100)), Applied::Ok);
        let rel = EscrowEvent::Released {
            order_id: B256::with_last_byte(1),
            by: Address::with_last_byte(1),
            amount: U256::from(30),
            remaining: U256::from(70),
            status: 1,
        };
        assert_eq!(apply(&mut o, 1, Address::ZERO, &pos(2, 20), &rel), Applied::Ok);
        let refund = EscrowEvent::Refunded {
            order_id: B256::with_last_byte(1),
            by: Address::with_last_byte(2),
            amount: U256::from(70),
            remaining: U256::ZERO,
            status: 4,
        };
        assert_eq!(apply(&mut o, 1, Address::ZERO, &pos(3, 30), &refund), Applied::Ok);
        let o = o.unwrap();
        assert_eq!(o.status, OrderStatus::Split);
        assert_eq!(o.released, U256::from(30));
        assert_eq!(o.refunded, U256::from(70));
        assert_eq!(o.remaining, U256::ZERO);
    }

    #[test]
    fn refund_after_deadline_by_stranger_is_expired() {
        let mut o = None;
        apply(&mut o, 1, Address::ZERO, &pos(1, 10), &locked(5));
        let refund = EscrowEvent::Refunded {
            order_id: B256::with_last_byte(1),
            by: Address::with_last_byte(9),
            amount: U256::from(5),
            remaining: U256::ZERO,
            status: 4,
        };
        assert_eq!(apply(&mut o, 1, Address::ZERO, &pos(2, 2_000), &refund), Applied::Ok);
        assert_eq!(o.unwrap().status, OrderStatus::Expired);
    }

    #[test]
    fn illegal_events_are_anomalies_not_applied() {
        let mut o = None;
        // Release of an order never locked.
        let rel = EscrowEvent::Released {
            order_id: B256::with_last_byte(1),
            by: Address::ZERO,
            amount: U256::from(1),
            remaining: U256::ZERO,
            status: 4,
        };
        assert!(matches!(apply(&mut o, 1, Address::ZERO, &pos(1, 1), &rel), Applied::Anomaly(_)));
        assert!(o.is_none());
        apply(&mut o, 1, Address::ZERO, &pos(2, 2), &locked(5));
        // Over-release.
        let over = EscrowEvent::Released {
            order_id: B256::with_last_byte(1),
            by: Address::ZERO,
            amount: U256::from(6),
            remaining: U256::ZERO,
            status: 4,
        };
        assert!(matches!(apply(&mut o, 1, Address::ZERO, &pos(3, 3), &over), Applied::Anomaly(_)));
        // Post-state mismatch.
        let wrong = EscrowEvent::Released {
            order_id: B256::with_last_byte(1),
            by: Address::ZERO,
            amount: U256::from(2),
            remaining: U256::from(4),
            status: 1,
        };
        assert!(matches!(apply(&mut o, 1, Address::ZERO, &pos(4, 4), &wrong), Applied::Anomaly(_)));
        let o = o.unwrap();
        assert_eq!(o.remaining, U256::from(5));
        assert_eq!(o.status, OrderStatus::Held);
        assert_eq!(o.anomalies.len(), 2);
    }
}
