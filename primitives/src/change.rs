//! What the indexer tells the rest of Holdfast: the durable change log (the API's change feed), in-process
//! notifications of committed and reverted ranges, and reconciliation results. Consumers import these from
//! here, not from the sync engine.

use alloy::primitives::{Address, B256, BlockNumber, U256};
use serde::{Deserialize, Serialize};

use crate::{
    chain::Heights,
    order::{OrderKey, OrderState, u256_dec},
};

/// What a change-log entry says about an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The order's derived state changed (new events were committed, or it was re-derived).
    OrderUpdated,
    /// A reorg reverted a state already logged; the entry carries the re-derived state, if any.
    OrderRetracted,
}

impl ChangeKind {
    /// Stable name (as stored).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderUpdated => "order_updated",
            Self::OrderRetracted => "order_retracted",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "order_updated" => Some(Self::OrderUpdated),
            "order_retracted" => Some(Self::OrderRetracted),
            _ => None,
        }
    }
}

/// One entry of the change log: appended in the same transaction as the change it records, so its
/// sequence number is a durable resume position for change feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Position in the log (ascending, in commit order).
    pub seq: i64,
    /// What happened.
    pub kind: ChangeKind,
    /// Chain id.
    pub chain_id: u64,
    /// Escrow.
    pub escrow: Address,
    /// Order id.
    pub order_id: B256,
    /// `OrderUpdated`: the last block of the new state. `OrderRetracted`: the fork block (everything above
    /// it was reverted).
    pub block_number: BlockNumber,
    /// The order's state after the change (`None`: a reorg erased the order).
    pub state: Option<OrderState>,
}

/// The fields a change-log entry is filed (and filtered) under: the order's fixed fields and its status at
/// the time of the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeFiling {
    /// Chain id.
    pub chain_id: u64,
    /// Escrow.
    pub escrow: Address,
    /// Order id.
    pub order_id: B256,
    /// Payer.
    pub payer: Address,
    /// Payee.
    pub payee: Address,
    /// Arbiter.
    pub arbiter: Option<Address>,
    /// Status name (`OrderStatus::as_str`) of the state the entry was filed under.
    pub status: String,
    /// Lock time (unix seconds).
    pub lock_time: u64,
}

impl ChangeFiling {
    /// The filing of an order's state.
    pub fn of(o: &OrderState) -> Self {
        Self {
            chain_id: o.chain_id,
            escrow: o.escrow,
            order_id: o.order_id,
            payer: o.payer,
            payee: o.payee,
            arbiter: o.arbiter,
            status: o.status.as_str().to_string(),
            lock_time: o.locked.pos.block_timestamp,
        }
    }
}

/// One change-log entry to append (the store assigns its sequence number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    /// What happened.
    pub kind: ChangeKind,
    /// What it is filed under.
    pub filing: ChangeFiling,
    /// See [`Change::block_number`].
    pub block_number: BlockNumber,
    /// The order's state after the change (`None`: no order any more).
    pub state: Option<OrderState>,
}

impl NewChange {
    /// An `order_updated` entry for a derived state.
    pub fn updated(o: &OrderState) -> Self {
        Self {
            kind: ChangeKind::OrderUpdated,
            filing: ChangeFiling::of(o),
            block_number: o.last_pos().block_number,
            state: Some(o.clone()),
        }
    }
}

/// The last change-log entry of an order, as a rollback needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastChange {
    /// What it was filed under.
    pub filing: ChangeFiling,
    /// The state it announced.
    pub state: Option<OrderState>,
}

/// What the indexer tells in-process listeners (the API's long-poll and change feed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexNotification {
    /// Blocks up to `cursor` were committed; `orders` changed.
    Committed {
        /// New cursor.
        cursor: BlockNumber,
        /// Orders whose state changed.
        orders: Vec<OrderKey>,
    },
    /// Blocks above `fork` were reverted by a reorg; `orders` were re-derived.
    Reverted {
        /// Last block both chains share.
        fork: BlockNumber,
        /// Depth of the reorg (old cursor − fork).
        depth: u64,
        /// Orders re-derived.
        orders: Vec<OrderKey>,
    },
    /// New chain heights (finality may have advanced).
    Heights(Heights),
}

impl IndexNotification {
    /// The orders the notification is about (none for new heights).
    pub fn orders(&self) -> &[OrderKey] {
        match self {
            Self::Committed { orders, .. } | Self::Reverted { orders, .. } => orders,
            Self::Heights(_) => &[],
        }
    }

    /// Whether it reports a reorg.
    pub fn is_revert(&self) -> bool {
        matches!(self, Self::Reverted { .. })
    }
}

/// Reconciliation result for one escrow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconciliation {
    /// Chain id.
    pub chain_id: u64,
    /// Escrow.
    pub escrow: Address,
    /// Finalized height at which the comparison was made.
    pub block_number: BlockNumber,
    /// Sum of remainders and credits the indexer derived.
    #[serde(with = "u256_dec")]
    pub expected: U256,
    /// Token balance of the escrow at that height.
    #[serde(with = "u256_dec")]
    pub actual: U256,
    /// Whether they agree.
    pub ok: bool,
    /// Unix time of the check.
    pub checked_at: u64,
}

/// How the in-process indexer is doing, as the API's readiness reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum IndexerHealth {
    /// Connecting to the node for the first time.
    Starting,
    /// Following the chain.
    Running,
    /// A dependency (the node, the database) is failing; the indexer retries without limit and resumes where
    /// the store says.
    Faulted {
        /// The last failure.
        fault: String,
        /// When the failures began (unix seconds).
        since: u64,
        /// Retries so far.
        retries: u32,
    },
    /// Stopped for a reason retrying cannot fix (a reset chain, a reorg below finality, a corrupt or newer
    /// store, a configuration error); the data already indexed stays served.
    Halted {
        /// Why.
        reason: String,
    },
    /// Another process writes this chain (Postgres writer election); this one takes over when that one
    /// stops. The store stays as fresh as that writer keeps it.
    Standby {
        /// The writer's holder string as it recorded it, if known.
        writer: Option<String>,
    },
}

impl IndexerHealth {
    /// Whether indexing is currently working (the store can be fresh).
    pub fn is_running(&self) -> bool {
        matches!(self, Self::Running)
    }

    /// The role this process plays for the chain: `standby` while another process writes it, else
    /// `writer` (this process indexes it, or tries to).
    pub fn role(&self) -> &'static str {
        match self {
            Self::Standby { .. } => "standby",
            _ => "writer",
        }
    }

    /// The state's name, as serialised (`starting`, `running`, `faulted`, `halted`, `standby`).
    pub fn state_name(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Faulted { .. } => "faulted",
            Self::Halted { .. } => "halted",
            Self::Standby { .. } => "standby",
        }
    }
}
