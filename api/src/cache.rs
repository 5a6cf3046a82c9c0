//! Single-order reads served from memory, for stores whose every read is a network round trip (Postgres).
//!
//! Each entry is tagged with the generation of the watcher's snapshot taken *before* the store was read,
//! and is served only while that generation is current. The watcher starts a new generation whenever the
//! snapshot it reads differs (any commit moves a cursor or appends to the change log: new events, a
//! re-derivation, a rollback), and whenever it fails to read (so nothing is served from memory while the
//! store cannot be checked). An entry therefore never holds an order older than the snapshot the API
//! shows for it: long-polls and the change feed, which wake on the same snapshot, never run ahead of
//! it. What it can lag is a commit the watcher has not read yet: by the time a `LISTEN` notification (or
//! the in-process indexer's) takes to arrive, at worst `poll_interval` if notifications are lost. A read
//! through the store during that time could see the commit; one from memory answers as of the snapshot.
//!
//! Not used on SQLite, whose reads are inline and cheaper than this map's bookkeeping, and whose
//! standalone `serve` has no commit notifications (only the poll).

use std::sync::Arc;

use alloy::primitives::{Address, B256};
use holdfast_primitives::OrderState;

/// What a lookup asks for: (chain id, escrow, order id), as [`holdfast_store::OrderReader::order`] takes it.
pub(crate) type OrderLookup = (Option<u64>, Option<Address>, B256);

/// A bounded map of recent single-order lookups (found or not), valid for one snapshot generation.
pub(crate) struct OrderCache {
    entries: quick_cache::sync::Cache<OrderLookup, (u64, Option<Arc<OrderState>>)>,
}

impl std::fmt::Debug for OrderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderCache").field("capacity", &self.entries.capacity()).finish_non_exhaustive()
    }
}

impl OrderCache {
    /// Room for `capacity` lookups (the least recently used go first).
    pub(crate) fn new(capacity: usize) -> Self {
        Self { entries: quick_cache::sync::Cache::new(capacity) }
    }

    /// The answer stored for `key` in `generation`, if any (`Some(None)`: the order did not exist).
    pub(crate) fn get(&self, key: &OrderLookup, generation: u64) -> Option<Option<Arc<OrderState>>> {
        self.entries.get(key).filter(|(g, _)| *g == generation).map(|(_, o)| o)
    }

    /// Store the answer read for `key` after `generation` was current.
    pub(crate) fn put(&self, key: OrderLookup, generation: u64, order: Option<Arc<OrderState>>) {
        self.entries.insert(key, (generation, order));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_only_in_its_generation() {
        let cache = OrderCache::new(2);
        let key = (Some(1), None, B256::repeat_byte(1));
        assert!(cache.get(&key, 0).is_none());
        cache.put(key, 7, None);
        assert_eq!(cache.get(&key, 7), Some(None), "a miss is remembered in its generation");
        assert!(cache.get(&key, 8).is_none(), "and not after it");
        // Bounded: more lookups than the capacity evict some.
        for b in 2..10u8 {
            cache.put((None, None, B256::repeat_byte(b)), 8, None);
        }
        let held = (1..10u8).filter(|b| cache.get(&(None, None, B256::repeat_byte(*b)), 8).is_some()).count();
        assert!(held <= 2, "{held} entries held, capacity 2");
    }
}
