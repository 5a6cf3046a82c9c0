//! Where blocks and logs come from: [`ChainSource`], the interface the sync loop works over. [`Chain`] (a
//! JSON-RPC node) is the production implementation; tests drive the same loop — reorgs, ranges, finality —
//! over an in-memory chain, without anvil.

use std::{future::Future, sync::atomic::AtomicU64};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, BlockNumber, U256},
    rpc::types::Log,
};
use futures::{StreamExt, stream::BoxStream};
use holdfast_primitives::{BlockRef, Heights};

use crate::{
    Result,
    chain::{Chain, LogPiece},
    config::FinalityPolicy,
};

/// Announced heads, in the order the node announced them; ends when the subscription does.
pub type HeadStream = BoxStream<'static, BlockRef>;

/// A chain the indexer follows.
pub trait ChainSource: Clone + Send + Sync + 'static {
    /// The node's chain id.
    fn chain_id(&self) -> impl Future<Output = Result<u64>> + Send;
    /// The latest block number.
    fn head(&self) -> impl Future<Output = Result<BlockNumber>> + Send;
    /// One header (`None`: the node has no such block).
    fn header(&self, at: BlockNumberOrTag) -> impl Future<Output = Result<Option<BlockRef>>> + Send;
    /// Headers `from..=to`, ascending; every one must exist.
    fn headers(
        &self,
        from: BlockNumber,
        to: BlockNumber,
    ) -> impl Future<Output = Result<Vec<BlockRef>>> + Send;
    /// Head, safe and finalized heights under `policy`.
    fn heights(&self, policy: FinalityPolicy) -> impl Future<Output = Result<Heights>> + Send;
    /// The logs of `addresses` with a topic0 in `topics` in blocks `from..=to`. `range` is the range size in
    /// use; a source that must split a range (a node refusing it) lowers it, never below `min_range`.
    fn logs(
        &self,
        addresses: &[Address],
        topics: &[B256],
        from: BlockNumber,
        to: BlockNumber,
        range: &AtomicU64,
        min_range: u64,
    ) -> impl Future<Output = Result<Vec<Log>>> + Send;
    /// [`ChainSource::logs`] sent to `sink` in pieces, in chain order, each complete for its blocks and
    /// together covering `from..=to`: a source that splits a range sends each part as it arrives, so the
    /// caller never holds more than a part. The default sends the whole range as one piece.
    #[allow(clippy::too_many_arguments)]
    fn logs_in_pieces(
        &self,
        addresses: &[Address],
        topics: &[B256],
        from: BlockNumber,
        to: BlockNumber,
        range: &AtomicU64,
        min_range: u64,
        sink: tokio::sync::mpsc::Sender<LogPiece>,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            let logs = self.logs(addresses, topics, from, to, range, min_range).await?;
            let _ = sink.send(LogPiece { from, to, logs }).await;
            Ok(())
        }
    }
    /// The logs of one block, by hash (an error if the block is no longer known).
    fn block_logs(
        &self,
        addresses: &[Address],
        topics: &[B256],
        block: B256,
    ) -> impl Future<Output = Result<Vec<Log>>> + Send;
    /// `token.balanceOf(account)` at the block with this hash.
    fn balance_of(
        &self,
        token: Address,
        account: Address,
        block: B256,
    ) -> impl Future<Output = Result<U256>> + Send;
    /// The token an escrow holds.
    fn escrow_token(&self, escrow: Address) -> impl Future<Output = Result<Address>> + Send;
    /// New heads as they are announced; `None` when this source has no subscription (the loop polls).
    fn new_heads(&self) -> impl Future<Output = Result<Option<HeadStream>>> + Send;
    /// A fresh connection to the same node, to replace this one after repeated faults (a websocket whose
    /// backend is gone stays gone).
    fn reconnect(&self) -> impl Future<Output = Result<Self>> + Send;
}

impl ChainSource for Chain {
    async fn reconnect(&self) -> Result<Self> {
        Chain::reconnect(self).await
    }
    async fn chain_id(&self) -> Result<u64> {
        Ok(Chain::chain_id(self))
    }
    async fn head(&self) -> Result<BlockNumber> {
        Chain::head(self).await
    }
    async fn header(&self, at: BlockNumberOrTag) -> Result<Option<BlockRef>> {
        Chain::header(self, at).await
    }
    async fn headers(&self, from: BlockNumber, to: BlockNumber) -> Result<Vec<BlockRef>> {
        Chain::headers(self, from, to).await
    }
    async fn heights(&self, policy: FinalityPolicy) -> Result<Heights> {
        Chain::heights(self, policy).await
    }
    async fn logs(
        &self,
        addresses: &[Address],
        topics: &[B256],
        from: BlockNumber,
        to: BlockNumber,
        range: &AtomicU64,
        min_range: u64,
    ) -> Result<Vec<Log>> {
        Chain::logs(self, addresses, topics, from, to, range, min_range).await
    }
    async fn logs_in_pieces(
        &self,
        addresses: &[Address],
        topics: &[B256],
        from: BlockNumber,
        to: BlockNumber,
        range: &AtomicU64,
        min_range: u64,
        sink: tokio::sync::mpsc::Sender<LogPiece>,
    ) -> Result<()> {
        Chain::logs_in_pieces(self, addresses, topics, from, to, range, min_range, sink).await
    }
    async fn block_logs(&self, addresses: &[Address], topics: &[B256], block: B256) -> Result<Vec<Log>> {
        Chain::block_logs(self, addresses, topics, block).await
    }
    async fn balance_of(&self, token: Address, account: Address, block: B256) -> Result<U256> {
        Chain::balance_of(self, token, account, block).await
    }
    async fn escrow_token(&self, escrow: Address) -> Result<Address> {
        Chain::escrow_token(self, escrow).await
    }
    async fn new_heads(&self) -> Result<Option<HeadStream>> {
        if !self.is_ws() {
            return Ok(None);
        }
        let heads = self.heads().await?;
        Ok(Some(
            futures::stream::unfold(heads, |mut h| async move { h.next().await.map(|b| (b, h)) }).boxed(),
        ))
    }
}
