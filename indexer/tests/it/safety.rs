//! The indexer refuses to corrupt data: a reset chain halts with a clear error (or, when configured,
//! wipes and re-indexes), and a reorg below the recorded finalized height halts instead of rewriting it.

use alloy::{
    primitives::{Address, B256, U256},
    providers::ext::AnvilApi,
    rpc::types::anvil::ReorgOptions,
};
use holdfast_indexer::{Error, FinalityPolicy, sync::Indexer};
use holdfast_store::OrderReader;

use crate::harness::{Chain, TestDb, snapshot};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_chain_halts_unless_reset_is_allowed() {
    let a = Chain::start().await;
    let deliver_by = a.now().await + 86_400;
    a.lock(1, B256::with_last_byte(1), a.addr(2), 10, Address::ZERO, deliver_by, 60).await;
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    Indexer::new(a.config(false), store.clone()).await.unwrap().sync_to_head().await.unwrap();
    assert_eq!(store.counts(31337).await.unwrap(), (1, 1));

    // "anvil restarted": same chain id and addresses, different genesis. Anvil's genesis hash follows its
    // start time in seconds, so the second chain starts in a later second.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let b = Chain::start().await;
    assert_ne!(b.genesis().await, a.genesis().await);
    assert_eq!(b.escrow, a.escrow, "deterministic deployment addresses");
    let mut cfg = b.config(false);
    cfg.deployments = vec![a.deployment()];
    let err = Indexer::new(cfg.clone(), store.clone()).await.unwrap().sync_to_head().await.unwrap_err();
    assert!(matches!(err, Error::ChainReset { chain_id: 31337, .. }), "{err}");
    assert!(err.to_string().contains("--reset"), "the error names the way out: {err}");
    assert_eq!(store.counts(31337).await.unwrap(), (1, 1), "nothing was changed");

    cfg.reset_on_chain_reset = true;
    Indexer::new(cfg, store.clone()).await.unwrap().sync_to_head().await.unwrap();
    assert_eq!(store.counts(31337).await.unwrap(), (0, 0), "the new chain has no orders");
    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_below_finality_halts_without_rewriting() {
    let c = Chain::start().await;
    let deliver_by = c.now().await + 86_400;
    for n in 1..=6u8 {
        c.lock(1, B256::with_last_byte(n), c.addr(2), u64::from(n), Address::ZERO, deliver_by, 60).await;
    }
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let mut cfg = c.config(false);
    // A node whose finality is 2 blocks deep.
    cfg.finality = FinalityPolicy::Depth { safe: 1, finalized: 2 };
    let indexer = Indexer::new(cfg, store.clone()).await.unwrap();
    indexer.sync_to_head().await.unwrap();
    let before = snapshot(&store).await;
    assert_eq!(before.len(), 6);

    // A 5-block reorg reaches below the finalized height the store recorded.
    c.provider.anvil_reorg(ReorgOptions { depth: 5, tx_block_pairs: vec![] }).await.unwrap();
    let err = indexer.sync_to_head().await.unwrap_err();
    assert!(matches!(err, Error::ReorgBelowFinality { .. }), "{err}");
    assert_eq!(snapshot(&store).await, before, "finalized data was not rewritten");
    let o = store.order(Some(31337), None, B256::with_last_byte(1)).await.unwrap().unwrap();
    assert_eq!(o.amount, U256::from(1));
    db.cleanup(store).await;
}
