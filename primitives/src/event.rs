//! Escrow events: the raw log as stored (the source of truth) and its decoded form.

use alloy::{
    primitives::{Address, B256, BlockNumber, Bytes, Log as PrimitiveLog, LogData, U256},
    sol_types::SolEventInterface,
};
use serde::{Deserialize, Serialize};

use crate::bindings::IHoldfastEscrow::IHoldfastEscrowEvents;

/// Where an event sits on the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPos {
    /// Block number.
    pub block_number: BlockNumber,
    /// Block hash.
    pub block_hash: B256,
    /// Block timestamp (seconds).
    pub block_timestamp: u64,
    /// Transaction hash.
    pub tx_hash: B256,
    /// Transaction index in the block.
    pub tx_index: u64,
    /// Log index in the block.
    pub log_index: u64,
}

/// A raw escrow log as stored: enough to decode it again without any RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// Chain id.
    pub chain_id: u64,
    /// Emitting escrow.
    pub escrow: Address,
    /// Position on the chain.
    pub pos: EventPos,
    /// Log topics.
    pub topics: Vec<B256>,
    /// Log data.
    pub data: Bytes,
}

/// Contract status values (as in `IHoldfastEscrow.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContractStatus {
    /// Unused order id.
    None,
    /// Funds held, not delivered.
    Held,
    /// Delivered, dispute window running.
    Delivered,
    /// Frozen for the arbiter.
    Frozen,
    /// Settled (final).
    Settled,
}

impl ContractStatus {
    /// From the event's `uint8`.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::Held,
            2 => Self::Delivered,
            3 => Self::Frozen,
            4 => Self::Settled,
            _ => return None,
        })
    }
}

/// A decoded escrow event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum EscrowEvent {
    /// Funds deposited for a new order.
    #[serde(rename_all = "camelCase")]
    Locked {
        /// Order id.
        order_id: B256,
        /// Payer.
        payer: Address,
        /// Payee.
        payee: Address,
        /// Arbiter (zero: none).
        arbiter: Address,
        /// Amount locked.
        amount: U256,
        /// Delivery deadline.
        deliver_by: u64,
        /// Dispute window (seconds).
        dispute_window: u32,
        /// Status after the event.
        status: u8,
    },
    /// Payee marked delivery.
    #[serde(rename_all = "camelCase")]
    Delivered {
        /// Order id.
        order_id: B256,
        /// Evidence hash.
        evidence: B256,
        /// Auto-release time.
        releasable_at: u64,
        /// Remaining after the event.
        remaining: U256,
        /// Status after the event.
        status: u8,
    },
    /// Funds released to the payee.
    #[serde(rename_all = "camelCase")]
    Released {
        /// Order id.
        order_id: B256,
        /// Caller.
        by: Address,
        /// Amount released.
        amount: U256,
        /// Remaining after the event.
        remaining: U256,
        /// Status after the event.
        status: u8,
    },
    /// Funds refunded to the payer.
    #[serde(rename_all = "camelCase")]
    Refunded {
        /// Order id.
        order_id: B256,
        /// Caller.
        by: Address,
        /// Amount refunded.
        amount: U256,
        /// Remaining after the event.
        remaining: U256,
        /// Status after the event.
        status: u8,
    },
    /// Order frozen for its arbiter.
    #[serde(rename_all = "camelCase")]
    Frozen {
        /// Order id.
        order_id: B256,
        /// Caller.
        by: Address,
        /// Reason code.
        reason: B256,
        /// When the default outcome becomes executable.
        timeout_at: u64,
        /// Remaining after the event.
        remaining: U256,
        /// Status after the event.
        status: u8,
    },
    /// Frozen order settled.
    #[serde(rename_all = "camelCase")]
    Resolved {
        /// Order id.
        order_id: B256,
        /// Caller.
        by: Address,
        /// Paid to the payee.
        to_payee: U256,
        /// Paid to the payer.
        to_payer: U256,
        /// Whether the timeout default settled it.
        by_timeout: bool,
        /// Remaining after the event.
        remaining: U256,
        /// Status after the event.
        status: u8,
    },
    /// A payout failed and was credited for a later withdrawal.
    #[serde(rename_all = "camelCase")]
    PayoutDeferred {
        /// Order id.
        order_id: B256,
        /// Credited recipient.
        recipient: Address,
        /// Amount credited.
        amount: U256,
    },
    /// Credited funds paid out.
    #[serde(rename_all = "camelCase")]
    Withdrawn {
        /// Account paid.
        account: Address,
        /// Amount paid.
        amount: U256,
    },
}

impl EscrowEvent {
    /// Decode topics and data of one escrow log. `None` for a log that is not an escrow event.
    pub fn decode(topics: &[B256], data: &Bytes) -> Option<Self> {
        let log = LogData::new(topics.to_vec(), data.clone())?;
        let decoded =
            IHoldfastEscrowEvents::decode_log(&PrimitiveLog { address: Address::ZERO, data: log }).ok()?;
        Some(match decoded.data {
            IHoldfastEscrowEvents::Locked(e) => Self::Locked {
                order_id: e.orderId,
                payer: e.payer,
                payee: e.payee,
                arbiter: e.arbiter,
                amount: e.amount,
                deliver_by: e.deliverBy,
                dispute_window: e.disputeWindow,
                status: e.status as u8,
            },
            IHoldfastEscrowEvents::Delivered(e) => Self::Delivered {
                order_id: e.orderId,
                evidence: e.evidence,
                releasable_at: e.releasableAt,
                remaining: e.remaining,
                status: e.status as u8,
            },
            IHoldfastEscrowEvents::Released(e) => Self::Released {
                order_id: e.orderId,
                by: e.by,
                amount: e.amount,
                remaining: e.remaining,
                status: e.status as u8,
            },
            IHoldfastEscrowEvents::Refunded(e) => Self::Refunded {
                order_id: e.orderId,
                by: e.by,
                amount: e.amount,
                remaining: e.remaining,
                status: e.status as u8,
            },
            IHoldfastEscrowEvents::Frozen(e) => Self::Frozen {
                order_id: e.orderId,
                by: e.by,
                reason: e.reason,
                timeout_at: e.timeoutAt,
                remaining: e.remaining,
                status: e.status as u8,
            },
            IHoldfastEscrowEvents::Resolved(e) => Self::Resolved {
                order_id: e.orderId,
                by: e.by,
                to_payee: e.toPayee,
                to_payer: e.toPayer,
                by_timeout: e.byTimeout,
                remaining: e.remaining,
                status: e.status as u8,
            },
            IHoldfastEscrowEvents::PayoutDeferred(e) => {
                Self::PayoutDeferred { order_id: e.orderId, recipient: e.recipient, amount: e.amount }
            }
            IHoldfastEscrowEvents::Withdrawn(e) => Self::Withdrawn { account: e.account, amount: e.amount },
        })
    }

    /// The order the event belongs to (`None` for account-level events).
    pub fn order_id(&self) -> Option<B256> {
        match self {
            Self::Locked { order_id, .. }
            | Self::Delivered { order_id, .. }
            | Self::Released { order_id, .. }
            | Self::Refunded { order_id, .. }
            | Self::Frozen { order_id, .. }
            | Self::Resolved { order_id, .. }
            | Self::PayoutDeferred { order_id, .. } => Some(*order_id),
            Self::Withdrawn { .. } => None,
        }
    }

    /// The account whose withdrawable credit the event changes: the recipient of a deferred payout, the
    /// account of a withdrawal (`None` for the other events).
    pub fn credit_account(&self) -> Option<Address> {
        match self {
            Self::PayoutDeferred { recipient, .. } => Some(*recipient),
            Self::Withdrawn { account, .. } => Some(*account),
            _ => None,
        }
    }

    /// Short name, as stored in the `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Locked { .. } => "locked",
            Self::Delivered { .. } => "delivered",
            Self::Released { .. } => "released",
            Self::Refunded { .. } => "refunded",
            Self::Frozen { .. } => "frozen",
            Self::Resolved { .. } => "resolved",
            Self::PayoutDeferred { .. } => "payout_deferred",
            Self::Withdrawn { .. } => "withdrawn",
        }
    }
}

/// The topic0 of every escrow event, for the `eth_getLogs` filter: the selectors of the `sol!` expansion.
pub fn event_signatures() -> Vec<B256> {
    IHoldfastEscrowEvents::SELECTORS.iter().map(|s| B256::from(*s)).collect()
}

/// A stored raw event with its decoded form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedEvent {
    /// The raw log.
    pub raw: RawEvent,
    /// Its decoded form.
    pub event: EscrowEvent,
}

impl RawEvent {
    /// Decode (`None` if the log is not an escrow event).
    pub fn decode(self) -> Option<DecodedEvent> {
        let event = EscrowEvent::decode(&self.topics, &self.data)?;
        Some(DecodedEvent { raw: self, event })
    }
}
