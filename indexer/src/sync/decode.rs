//! RPC logs to raw, decoded escrow events.

use alloy::{eips::BlockNumberOrTag, primitives::BlockNumber, rpc::types::Log};
use futures::{StreamExt, TryStreamExt};
use holdfast_primitives::{BlockRef, DecodedEvent, EventPos, RawEvent};

use crate::{Error, Result, source::ChainSource};

/// Logs to stored events. Nodes that do not put `blockTimestamp` on logs: the timestamp comes from `headers`
/// or, failing that, from the node.
pub(crate) async fn decode_logs<C: ChainSource>(
    chain: &C,
    chain_id: u64,
    logs: &[Log],
    headers: &[BlockRef],
) -> Result<Vec<DecodedEvent>> {
    // Nodes that do not put `blockTimestamp` on logs: take it from the headers.
    let mut missing: Vec<BlockNumber> = logs
        .iter()
        .filter(|l| l.block_timestamp.is_none())
        .filter_map(|l| l.block_number)
        .filter(|n| !headers.iter().any(|h| h.number == *n))
        .collect();
    missing.dedup();
    let chain = chain.clone();
    let extra: Vec<BlockRef> = futures::stream::iter(missing)
        .map(move |n| {
            let chain = chain.clone();
            async move {
                chain.header(BlockNumberOrTag::Number(n)).await?.ok_or(Error::MissingBlock { number: n })
            }
        })
        .buffered(16)
        .try_collect()
        .await?;
    let ts = |n: Option<BlockNumber>| {
        let n = n?;
        headers.iter().chain(extra.iter()).find(|h| h.number == n).map(|h| h.timestamp)
    };
    let mut out = Vec::with_capacity(logs.len());
    for log in logs {
        if log.removed {
            continue;
        }
        let raw = raw_event(chain_id, log, ts(log.block_number)).map_err(|missing| Error::InvalidLog {
            missing,
            block: log.block_number,
            tx: log.transaction_hash,
        })?;
        match raw.decode() {
            Some(ev) => out.push(ev),
            None => {
                tracing::warn!(tx = %log.transaction_hash.unwrap_or_default(), "undecodable escrow log skipped")
            }
        }
    }
    Ok(out)
}

/// The raw event of an RPC log. `Err(field)` if a required field is missing (a pending log).
fn raw_event(
    chain_id: u64,
    log: &Log,
    fallback_timestamp: Option<u64>,
) -> std::result::Result<RawEvent, &'static str> {
    Ok(RawEvent {
        chain_id,
        escrow: log.address(),
        pos: EventPos {
            block_number: log.block_number.ok_or("blockNumber")?,
            block_hash: log.block_hash.ok_or("blockHash")?,
            block_timestamp: log.block_timestamp.or(fallback_timestamp).ok_or("blockTimestamp")?,
            tx_hash: log.transaction_hash.ok_or("transactionHash")?,
            tx_index: log.transaction_index.ok_or("transactionIndex")?,
            log_index: log.log_index.ok_or("logIndex")?,
        },
        topics: log.topics().to_vec(),
        data: log.data().data.clone(),
    })
}
