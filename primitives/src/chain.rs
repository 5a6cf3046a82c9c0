//! Chain types: block references, heights and finality, and the indexer's per-chain bookkeeping.

use alloy::primitives::{B256, BlockNumber};
use serde::{Deserialize, Serialize};

/// A block header as remembered for reorg detection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockRef {
    /// Number.
    pub number: BlockNumber,
    /// Hash.
    pub hash: B256,
    /// Parent hash.
    pub parent_hash: B256,
    /// Timestamp.
    pub timestamp: u64,
}

/// Chain heights as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Heights {
    /// Latest block.
    pub head: BlockNumber,
    /// Latest safe block.
    pub safe: BlockNumber,
    /// Latest finalized block.
    pub finalized: BlockNumber,
}

/// Per-chain indexing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainMeta {
    /// Chain id.
    pub chain_id: u64,
    /// Hash of block 0, to recognise a reset chain.
    pub genesis_hash: B256,
    /// Last fully indexed block.
    pub cursor: BlockNumber,
    /// Its hash.
    pub cursor_hash: B256,
    /// Heights when the cursor last moved.
    pub heights: Heights,
    /// Unix time of the last update.
    pub updated_at: u64,
}

/// How final a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Finality {
    /// Above the safe height: can still be reorganised away.
    Pending,
    /// At or below the safe height.
    Safe,
    /// At or below the finalized height: never rewritten.
    Finalized,
}

impl Finality {
    /// Finality of `block` given the heights.
    pub fn of(block: BlockNumber, h: &Heights) -> Self {
        if block <= h.finalized {
            Self::Finalized
        } else if block <= h.safe {
            Self::Safe
        } else {
            Self::Pending
        }
    }

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Safe => "safe",
            Self::Finalized => "finalized",
        }
    }
}
