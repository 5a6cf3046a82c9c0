//! The load generator works and the indexer accounts for every generated event.

use holdfast_store::OrderReader;

use crate::harness::{Chain, GEN_BATCH, TestDb, index};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_load_is_indexed_exactly() {
    let c = Chain::start().await;
    let g = c.load_generator().await;
    c.generate(g, 1, 4).await;
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let indexer = index(&c, &store).await;
    // 4 lock batches + 2 release batches (with PayoutDeferred never: the payee is not blacklisted).
    assert_eq!(store.counts(31337).await.unwrap(), (6 * GEN_BATCH, 4 * GEN_BATCH));
    let rec = indexer.reconcile().await.unwrap();
    assert!(rec[0].ok, "{:?}", rec[0]);
    db.cleanup(store).await;
}
