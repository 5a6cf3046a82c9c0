//! Holdfast indexer: follows the escrow's logs, keeps the raw events as the source of truth, derives each
//! order's payment state, and survives reorganisations, restarts and RPC faults without losing or
//! duplicating anything.
//!
//! Layers: [`chain`] (RPC with retries and adaptive ranges) → [`events`] (decoding) → [`state`] (the order
//! state machine) → [`store`] (SQLite / Postgres), driven by [`sync::Indexer`].

pub mod bindings;
pub mod chain;
pub mod config;
mod error;
pub mod events;
pub mod state;
pub mod store;
pub mod sync;

pub use config::{BackfillConfig, Deployment, FinalityPolicy, IndexerConfig, RetryConfig};
pub use error::{Error, Result};
