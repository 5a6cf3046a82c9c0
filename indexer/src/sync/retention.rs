//! Change-log retention: the `changes` table (the API's change feed) would grow one row per order update
//! forever. Once a minute, while caught up, every entry older than the newest `change_log_keep` that a newer
//! entry of the same order supersedes is deleted; each order keeps its latest entry, so a reader replaying
//! the log still learns every order's current state. Entries a connected reader of this process has not
//! been sent yet are kept (the [`Indexer::with_change_floor`] position).

use std::time::Duration;

use super::{IndexStore, Indexer};
use crate::{Result, source::ChainSource};

/// How often retention runs (while caught up).
const EVERY: Duration = Duration::from_secs(60);
/// Entries deleted per transaction (short write locks; the indexer's own steps interleave).
const BATCH: u32 = 5_000;

/// The highest position that may be compacted: none of the newest `keep` entries of a log ending at
/// `last`, and nothing above `floor` (the lowest position a connected reader has been sent). Pure, so the
/// arithmetic is tested without a store.
pub fn compaction_bound(last: i64, keep: u64, floor: Option<i64>) -> Option<i64> {
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let mut upto = last.saturating_sub(keep);
    if let Some(f) = floor {
        upto = upto.min(f);
    }
    (upto > 0).then_some(upto)
}

impl<S: IndexStore, C: ChainSource> Indexer<S, C> {
    /// Run retention if it is due (see the module documentation).
    pub(super) async fn maybe_compact(&self) -> Result<()> {
        let Some(keep) = self.cfg.change_log_keep else { return Ok(()) };
        if !super::due(&self.last_compaction, EVERY) {
            return Ok(());
        }
        self.compact(keep).await.map(|_| ())
    }

    /// Compact the change log now, keeping the newest `keep` entries (and every order's latest); returns
    /// how many entries were deleted.
    pub async fn compact(&self, keep: u64) -> Result<u64> {
        let last = self.store.last_change_seq().await?;
        let floor = self.change_floor.as_ref().and_then(|rx| *rx.borrow());
        let Some(upto) = compaction_bound(last, keep, floor) else { return Ok(0) };
        let deleted = self.store.compact_changes(upto, BATCH).await?;
        if deleted > 0 {
            tracing::info!(deleted, upto, last, "change log compacted");
        }
        metrics::counter!("holdfast_changes_compacted_total").increment(deleted);
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::compaction_bound;

    #[test]
    fn keeps_the_newest_entries_and_what_readers_still_need() {
        assert_eq!(compaction_bound(100, 30, None), Some(70));
        assert_eq!(compaction_bound(100, 100, None), None);
        assert_eq!(compaction_bound(100, 500, None), None);
        assert_eq!(compaction_bound(100, 0, None), Some(100));
        assert_eq!(compaction_bound(100, 30, Some(40)), Some(40));
        assert_eq!(compaction_bound(100, 30, Some(90)), Some(70));
        assert_eq!(compaction_bound(100, 30, Some(0)), None);
        assert_eq!(compaction_bound(0, 0, None), None);
        assert_eq!(compaction_bound(i64::MAX, u64::MAX, None), None);
    }
}
