//! Holdfast indexer: follows the escrow's logs, keeps the raw events as the source of truth, derives each
//! order's payment state, and survives reorganisations, restarts and RPC faults without losing or
//! duplicating anything.
//!
//! Layers: [`chain`] (RPC with retries, [`retry`], and adaptive ranges) → decoding and derivation
//! (`holdfast_primitives`) → [`writer`] (one store transaction per step, `holdfast_store`), driven by
//! [`sync::Indexer`].

pub mod capped_http;
pub mod chain;
pub mod config;
mod error;
mod metrics;
pub mod retry;
pub mod source;
pub mod sync;
pub mod writer;

pub use config::{
    BackfillConfig, DEFAULT_CHANGE_LOG_KEEP, Deployment, FinalityPolicy, IndexerConfig, RetryConfig,
};
pub use error::{ConfigError, Error, ResetReason, Result};
