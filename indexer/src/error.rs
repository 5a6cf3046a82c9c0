//! Indexer errors.

use alloy::{
    primitives::{B256, BlockNumber},
    transports::TransportError,
};
use url::Url;

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
    /// The node did not answer at all (connection refused or dropped, no websocket handshake, every
    /// attempt timed out), after all retries.
    #[error("rpc: cannot connect to {url}: {source}")]
    Connect {
        /// The RPC endpoint.
        url: Url,
        /// The last attempt's failure (boxed, as in [`Error::Contract`], to keep [`Error`] small).
        #[source]
        source: Box<TransportError>,
    },
    /// An RPC call failed after all retries, or the node refused it (see
    /// [`classify`](crate::retry::classify) for which failures are retried).
    #[error("rpc: {call}: {source}")]
    Rpc {
        /// The JSON-RPC method.
        call: &'static str,
        /// The last attempt's failure.
        #[source]
        source: TransportError,
    },
    /// `eth_getLogs` over `from..=to` failed after all retries and splits.
    #[error("rpc: eth_getLogs {from}..={to}: {source}")]
    Logs {
        /// First block of the range.
        from: BlockNumber,
        /// Last block of the range.
        to: BlockNumber,
        /// The last attempt's failure.
        #[source]
        source: TransportError,
    },
    /// A contract view call failed (transport failures after all retries, or an undecodable answer).
    #[error("rpc: contract call {call}: {source}")]
    Contract {
        /// The Solidity function.
        call: &'static str,
        /// What failed.
        #[source]
        source: Box<alloy::contract::Error>,
    },
    /// The node has no block at this height: the chain moved (a reorg shortened it), or the node lags.
    #[error("rpc: the node has no block {number} (chain moved?)")]
    MissingBlock {
        /// The height asked for.
        number: BlockNumber,
    },
    /// The node returned a log without a field every mined log has (a pending log, a broken node).
    #[error("rpc: the node returned a log without {missing} (block {block:?}, transaction {tx:?})")]
    InvalidLog {
        /// The missing field (JSON-RPC name).
        missing: &'static str,
        /// The log's block, if it has one.
        block: Option<BlockNumber>,
        /// The log's transaction, if it has one.
        tx: Option<B256>,
    },
    /// A fetch task panicked or was cancelled.
    #[error("fetch task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The node serves a different chain than the deployments are on.
    #[error("chain mismatch: the RPC serves chain {node}, the deployments are on chain {configured}")]
    ChainMismatch {
        /// The node's chain id.
        node: u64,
        /// The deployments' chain id.
        configured: u64,
    },
    /// The chain behind the RPC was reset (different genesis, or head far below the checkpoint).
    #[error(
        "the chain was reset: {reason}; the store holds data of the old chain. Re-index from scratch with \
         --reset (this deletes the stored events and orders of chain {chain_id})"
    )]
    ChainReset {
        /// What shows the reset.
        reason: ResetReason,
        /// The chain whose stored data is stale.
        chain_id: u64,
    },
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
    Config(#[from] ConfigError),
}

/// What shows that the chain behind the RPC was reset ([`Error::ChainReset`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResetReason {
    /// The genesis block differs from the stored one.
    #[error("genesis hash is {node}, the store has {stored}")]
    Genesis {
        /// The node's genesis hash.
        node: B256,
        /// The stored genesis hash.
        stored: B256,
    },
    /// The head is far below the stored cursor.
    #[error("head {head} is far below the stored cursor {cursor}")]
    HeadBelowCursor {
        /// The node's head.
        head: BlockNumber,
        /// The stored cursor.
        cursor: BlockNumber,
    },
}

/// Invalid configuration ([`Error::Config`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No deployment to follow.
    #[error("no escrow deployment configured")]
    NoDeployment,
    /// Deployments on more than one chain.
    #[error("deployments on different chains ({first} and {other}); run one indexer per chain")]
    MixedChains {
        /// The first deployment's chain.
        first: u64,
        /// Another deployment's chain.
        other: u64,
    },
    /// An RPC URL that is not http(s) or ws(s).
    #[error("unsupported RPC URL scheme {0:?}")]
    UnsupportedScheme(String),
    /// New heads asked of an http endpoint.
    #[error("new heads need a ws:// or wss:// RPC URL")]
    HeadsNeedWebsocket,
    /// The block before the start block is beyond the node's head.
    #[error("the node has no block {0} (start block beyond the head?)")]
    StartBeyondHead(BlockNumber),
}

impl Error {
    /// Whether retrying cannot fix it: the indexer halts (and says why) instead of retrying. Everything
    /// else — a node or database that does not answer, a call that failed, a block the node does not have
    /// yet — is a fault the indexer retries without limit, resuming where the store says.
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::ChainReset { .. }
            | Self::ReorgBelowFinality { .. }
            | Self::ChainMismatch { .. }
            | Self::Config(_)
            | Self::Derive(_) => true,
            // A corrupt store, a store migrated by a newer Holdfast, or a URL no backend serves; a database
            // that fails or refuses connections is a fault like any other.
            Self::Store(e) => !matches!(e, holdfast_store::Error::Db(_) | holdfast_store::Error::Sqlite(_)),
            _ => false,
        }
    }
}
