//! Range sizing for the backfill: a pure function of what the last response returned, so it is tested
//! (property tests below) without a node.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::BackfillConfig;

/// The range size after a response of `n` logs over `span` blocks, fetched while the size was `size`: aim
/// at `target_logs` per response (bounded memory with `concurrency` ranges in flight); shrink in proportion
/// after a heavy response (never below `min_range`), grow only after a full, light range (4× while far below
/// the target, 1.5× near it, never above `max_range`).
pub(crate) fn next_range(size: u64, cfg: &BackfillConfig, span: u64, n: u64) -> u64 {
    let target = cfg.target_logs.max(1);
    if n > target {
        // Not `clamp`: it panics when the floor is above the current size (an initial range set below
        // `min_range`); then the floor wins.
        let floor = cfg.min_range.max(1);
        (span.saturating_mul(target) / n).max(floor).min(size.max(floor))
    } else if span >= size && n <= target / 2 {
        let grown = if n.saturating_mul(8) <= target { size.saturating_mul(4) } else { size + size / 2 + 1 };
        grown.min(cfg.max_range).max(size)
    } else {
        size
    }
}

/// Apply [`next_range`] to the shared size (ranges in flight report concurrently: a shrink always wins, a
/// grow only if nobody changed the size meanwhile).
pub(crate) fn resize_range(range: &AtomicU64, cfg: &BackfillConfig, span: u64, n: u64) {
    let size = range.load(Ordering::Relaxed);
    let next = next_range(size, cfg, span, n);
    if next < size {
        range.fetch_min(next, Ordering::Relaxed);
    } else if next > size {
        let _ = range.compare_exchange(size, next, Ordering::Relaxed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn cfg(min_range: u64, max_range: u64, target_logs: u64) -> BackfillConfig {
        BackfillConfig { min_range, max_range, target_logs, ..BackfillConfig::default() }
    }

    #[test]
    fn heavy_shrinks_light_full_grows_partial_stays() {
        let c = cfg(1, 10_000, 1_000);
        assert_eq!(next_range(100, &c, 100, 4_000), 25, "4x the target over 100 blocks: a quarter");
        assert_eq!(next_range(100, &c, 100, 10), 400, "far below the target: 4x");
        assert_eq!(next_range(100, &c, 100, 400), 151, "below half the target: 1.5x");
        assert_eq!(next_range(100, &c, 50, 10), 100, "a partial range (the tail) says nothing");
        assert_eq!(next_range(100, &c, 100, 800), 100, "near the target: stay");
        assert_eq!(next_range(5_000, &c, 5_000, 0), 10_000, "capped at max_range");
        assert_eq!(next_range(3, &c, 3, 1_000_000), 1, "never below min_range");
    }

    proptest! {
        /// Whatever a sequence of responses says, the size stays within [min_range, max_range]; a response
        /// over the target never grows it, and a full light one never shrinks it.
        #[test]
        fn sizes_stay_in_bounds_and_move_the_right_way(
            min in 1u64..50,
            extra in 0u64..5_000,
            target in 1u64..20_000,
            responses in proptest::collection::vec((0u64..3, 0u64..100_000), 1..60),
        ) {
            let c = cfg(min, min + extra, target);
            let mut size = min;
            for (kind, n) in responses {
                // kind 0: a full range; 1: a partial one (the end of the backfill); 2: a wider one (in flight
                // before the last change).
                let span = match kind { 0 => size, 1 => (size / 2).max(1), _ => size.saturating_mul(2) };
                let next = next_range(size, &c, span, n);
                prop_assert!(next >= c.min_range.min(size) && next <= c.max_range.max(size), "{next} out of bounds");
                if n > target {
                    prop_assert!(next <= size, "grew after {n} logs > target {target}");
                }
                if span >= size && n <= target / 2 {
                    prop_assert!(next >= size, "shrank after a full light range");
                }
                size = next;
            }
        }
    }
}
