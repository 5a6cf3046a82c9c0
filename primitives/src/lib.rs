//! Holdfast primitives: what the indexer, the storage, the API and the agent CLI share, with no database,
//! no RPC client and no async runtime.
//!
//! - [`bindings`]: the escrow's bindings, generated from `contracts/interfaces/IHoldfastEscrow.sol`;
//! - [`chain`]: block references, heights, finality and the per-chain cursor;
//! - [`event`]: raw escrow logs as stored (the source of truth) and their decoded form;
//! - [`order`]: an order's derived state and the state machine that applies one event;
//! - [`derive`]: derivation as pure functions — commit, rollback and re-derivation all go through it;
//! - [`change`]: the change log, in-process notifications and reconciliation results;
//! - [`webhook`]: webhook subscription filters and the outbox fan-out rules.

pub mod bindings;
pub mod chain;
pub mod change;
pub mod derive;
pub mod event;
pub mod order;
pub mod webhook;

pub use chain::{BlockRef, ChainMeta, Finality, Heights};
pub use change::{Change, ChangeKind, IndexNotification, IndexerHealth, Reconciliation};
pub use event::{ContractStatus, DecodedEvent, EscrowEvent, EventPos, RawEvent};
pub use order::{OrderKey, OrderState, OrderStatus};
