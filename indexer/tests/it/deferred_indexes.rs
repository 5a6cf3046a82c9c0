//! Deferred read-path indexes (`holdfast_store::DeferredIndexes`): a store's first backfill drops them and
//! builds them once it reaches the finalized height; the outcome equals an index that kept them all along;
//! a store that holds events never drops them.

use std::collections::BTreeSet;

use alloy::{
    primitives::{B256, U256},
    providers::ext::AnvilApi,
};
use holdfast_indexer::sync::{Indexer, StepOutcome};
use holdfast_store::{DeferredIndexes, OrderReader, Store};

use crate::harness::{Chain, TestDb, snapshot};

/// The indexes a first backfill defers (the store's list, restated: a change to it must be deliberate).
const DEFERRED: &[&str] = &[
    "events_by_order",
    "events_by_block",
    "events_by_tx",
    "events_credit",
    "orders_by_lock",
    "orders_by_payer",
    "orders_by_payee",
    "orders_by_status",
    "orders_by_arbiter",
    "orders_by_order_id_chain",
    "orders_by_payee_status",
    "orders_by_payer_status",
];

/// Every index of the store's tables, by name (SQLite's automatic ones for keys included).
async fn index_names(store: &Store) -> BTreeSet<String> {
    let names: Vec<String> = match store {
        Store::Sqlite(s) => sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'index'")
            .fetch_all(s.pool())
            .await
            .unwrap(),
        Store::Postgres(s) => {
            sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema()")
                .fetch_all(s.pool())
                .await
                .unwrap()
        }
    };
    names.into_iter().collect()
}

async fn drill(backend: &str) {
    let c = Chain::start().await;
    let generator = c.load_generator().await;
    let next = c.generate(generator, 1, 4).await;
    // Bury it below the finality depth (64), so the first step is a backfill.
    c.provider.anvil_mine(Some(80), None).await.unwrap();

    let db = TestDb::of(backend).await;
    let store = db.store().await;
    let all = index_names(&store).await;
    let deferred: BTreeSet<String> = DEFERRED.iter().map(|n| n.to_string()).collect();
    assert!(all.is_superset(&deferred), "the migrations create every deferrable index: {all:?}");
    let kept: BTreeSet<String> = all.difference(&deferred).cloned().collect();
    assert!(kept.contains("changes_by_order"), "the change log's index is kept: {kept:?}");

    assert_eq!(store.defers_by_default(), backend == "postgres");
    // The first step backfills up to the finalized height, with the read indexes dropped.
    let mut cfg = c.config(false);
    cfg.backfill.defer_indexes = Some(true);
    let indexer = Indexer::new(cfg, store.clone()).await.unwrap();
    assert_eq!(indexer.step().await.unwrap(), StepOutcome::Progressed);
    assert!(store.indexes_deferred().await.unwrap(), "a first backfill defers the indexes");
    assert_eq!(index_names(&store).await, kept, "only the read-path indexes are dropped");
    // Reads are still answered (without their indexes).
    let first = B256::from(U256::from(1u64));
    assert!(store.order(None, None, first).await.unwrap().is_some(), "an order is readable meanwhile");
    // Deferred already: asking again changes nothing.
    assert!(store.defer_indexes().await.unwrap());
    // At the finalized height the next step builds them, and then follows the head.
    indexer.sync_to_head().await.unwrap();
    assert!(!store.indexes_deferred().await.unwrap(), "built at the finalized height");
    assert_eq!(index_names(&store).await, all, "the build restores exactly the migrations' indexes");
    // A store that holds events keeps its indexes.
    assert!(!store.defer_indexes().await.unwrap(), "a store with events does not defer");
    assert_eq!(index_names(&store).await, all);

    // The same chain indexed with the indexes maintained row by row gives the same records.
    let db2 = TestDb::of(backend).await;
    let plain = db2.store().await;
    // On an empty store: defer twice, build, build again (a no-op).
    assert!(plain.defer_indexes().await.unwrap());
    assert!(plain.defer_indexes().await.unwrap());
    assert_eq!(index_names(&plain).await, kept);
    assert!(plain.build_deferred_indexes().await.unwrap());
    assert!(!plain.build_deferred_indexes().await.unwrap());
    assert_eq!(index_names(&plain).await, all);
    let mut cfg = c.config(false);
    cfg.backfill.defer_indexes = Some(false);
    let indexer2 = Indexer::new(cfg, plain.clone()).await.unwrap();
    assert_eq!(indexer2.step().await.unwrap(), StepOutcome::Progressed);
    assert!(!plain.indexes_deferred().await.unwrap(), "--defer-indexes false keeps them");
    assert_eq!(index_names(&plain).await, all);
    indexer2.sync_to_head().await.unwrap();

    let (got, want) = (snapshot(&store).await, snapshot(&plain).await);
    assert_eq!(got.len() as u64, next - 1, "every generated order is indexed");
    assert_eq!(got, want, "deferring the indexes changes no record");
    assert_eq!(store.counts(31337).await.unwrap(), plain.counts(31337).await.unwrap());
    db2.cleanup(plain).await;
    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_backfill_defers_the_read_indexes_and_builds_them_at_finality_sqlite() {
    drill("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_backfill_defers_the_read_indexes_and_builds_them_at_finality_postgres() {
    drill("postgres").await;
}
