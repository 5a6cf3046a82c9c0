//! Indexer errors.

use alloy::primitives::{B256, BlockNumber};

/// Result alias for the indexer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop the indexer or one of its store operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed (see [`holdfast_store::Error`] for database faults versus a corrupt store).
    #[error("store: {0}")]
    Store(#[from] holdfast_store::Error),
    /// Derivation found the stored state contradicting the events.
    #[error("derivation: {0}")]
    Derive(#[from] holdfast_primitives::derive::DeriveError),
    /// The RPC node failed after all retries, or answered something unusable.
    #[error("rpc: {0}")]
    Rpc(String),
    /// The node reports a different chain than configured or than the store holds.
    #[error("chain mismatch: {0}")]
    ChainMismatch(String),
    /// The chain behind the RPC was reset (different genesis, or head far below the checkpoint).
    #[error(
        "the chain was reset: {0}; the store holds data of the old chain. Re-index from scratch with \
         --reset (this deletes the stored events and orders of chain {1})"
    )]
    ChainReset(String, u64),
    /// The node asked to rewrite blocks at or below finality: a lagging or broken node. Halting keeps the
    /// stored data correct.
    #[error(
        "reorg below finality: the node's block {block} hash {node_hash} differs from the stored finalized \
         block (finalized height {finalized}); refusing to rewrite finalized data (is the node lagging or broken?)"
    )]
    ReorgBelowFinality {
        /// The height at which the hashes differ.
        block: BlockNumber,
        /// The node's hash at that height.
        node_hash: B256,
        /// The stored finalized height.
        finalized: BlockNumber,
    },
    /// Invalid configuration.
    #[error("config: {0}")]
    Config(String),
}
