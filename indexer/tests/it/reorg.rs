//! Reorg drill: random reorgs of depth 1–10 (anvil_reorg) while orders are created and settled. After each,
//! the incrementally indexed store must equal a fresh index of the canonical chain, and the reverted events
//! stay visible as reverted.

use alloy::{
    primitives::{Address, B256, U256},
    providers::{Provider, ext::AnvilApi},
    rpc::types::anvil::{ReorgOptions, TransactionData},
};
use holdfast_indexer::sync::Indexer;
use holdfast_primitives::bindings::IHoldfastEscrow;
use holdfast_store::OrderReader;
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::harness::{Chain, TestDb, drill_scale, index, snapshot};

/// Replace the last `depth` blocks; the new chain carries one new lock of `amount` for `id`.
async fn reorg_with_lock(c: &Chain, depth: u64, id: B256, amount: u64, deliver_by: u64) {
    let tx = c
        .escrow()
        .lock(id, c.addr(8), U256::from(amount), Address::ZERO, deliver_by, 60)
        .from(c.addr(9))
        .into_transaction_request();
    c.provider
        .anvil_reorg(ReorgOptions { depth, tx_block_pairs: vec![(TransactionData::JSON(tx), depth - 1)] })
        .await
        .unwrap();
}

async fn drill(backend: &str, rounds: usize) {
    let seed: u64 =
        std::env::var("HOLDFAST_REORG_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("reorg drill on {backend}: seed {seed} (set HOLDFAST_REORG_SEED to replay)");
    let mut rng = StdRng::seed_from_u64(seed);
    let c = Chain::start().await;
    // Enough blocks above the deployment that depth-10 reorgs stay above anvil's finality (head - 64).
    c.provider.anvil_mine(Some(80), None).await.unwrap();
    let db = TestDb::of(backend).await;
    let store = db.store().await;
    let indexer = Indexer::new(c.config(false), store.clone()).await.unwrap();
    let deliver_by = c.now().await + 86_400;
    let mut next_id = 1u64;
    let mut held: Vec<(B256, usize)> = Vec::new();
    let mut total_reverted = 0usize;

    for round in 0..rounds {
        // Activity: new orders, and some settle.
        for _ in 0..rng.random_range(1..=4) {
            let payer = rng.random_range(1..=3);
            let id = B256::from(U256::from(next_id));
            next_id += 1;
            c.lock(payer, id, c.addr(7), rng.random_range(1..1_000_000), Address::ZERO, deliver_by, 60).await;
            held.push((id, payer));
        }
        if !held.is_empty() && rng.random_bool(0.5) {
            let (id, payer) = held.swap_remove(rng.random_range(0..held.len()));
            let o = c.escrow().getOrder(id).call().await.unwrap();
            if o.order.status == IHoldfastEscrow::Status::Held {
                let amount = U256::from(o.order.remaining);
                let _ = c
                    .escrow()
                    .release(id, amount)
                    .from(c.addr(payer))
                    .send()
                    .await
                    .unwrap()
                    .get_receipt()
                    .await;
            }
        }
        indexer.sync_to_head().await.unwrap();

        // Reorg: replace the last `depth` blocks; the new chain carries one new lock.
        let depth = rng.random_range(1..=10u64);
        let id = B256::from(U256::from(next_id));
        next_id += 1;
        reorg_with_lock(&c, depth, id, round as u64 + 1, deliver_by).await;
        if rng.random_bool(0.5) {
            c.provider.anvil_mine(Some(rng.random_range(1..3)), None).await.unwrap();
        }
        indexer.sync_to_head().await.unwrap();

        let fresh_db = TestDb::sqlite().await;
        let fresh = fresh_db.store().await;
        index(&c, &fresh).await;
        let (got, want) = (snapshot(&store).await, snapshot(&fresh).await);
        assert_eq!(got.len(), want.len(), "round {round} depth {depth}: order count differs (seed {seed})");
        assert_eq!(
            got, want,
            "round {round} depth {depth}: derived state differs from a fresh index (seed {seed})"
        );
        assert_eq!(
            store.counts(31337).await.unwrap(),
            fresh.counts(31337).await.unwrap(),
            "round {round}: canonical event counts differ (seed {seed})"
        );
        fresh_db.cleanup(fresh).await;

        // Reverted events are kept, marked reverted (also those of orders the reorg erased).
        total_reverted = 0;
        for n in 1..next_id {
            let evs = store.order_events(31337, c.escrow, B256::from(U256::from(n))).await.unwrap();
            total_reverted += evs.iter().filter(|e| e.reverted).count();
        }
        // held orders that vanished with the reorg are dropped from the local list.
        let mut still = Vec::new();
        for (id, payer) in held.drain(..) {
            if c.escrow().getOrder(id).call().await.unwrap().order.status == IHoldfastEscrow::Status::Held {
                still.push((id, payer));
            }
        }
        held = still;
    }
    // Locks inside reorged blocks were reverted at least once across the drill.
    assert!(
        total_reverted > 0,
        "no event was ever reverted: the drill did not exercise reorgs (seed {seed})"
    );
    let head = c.provider.get_block_number().await.unwrap();
    assert!(head > c.deploy_block);
    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_drill_sqlite() {
    drill("sqlite", 12 * drill_scale()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_drill_postgres() {
    drill("postgres", 12 * drill_scale()).await;
}

/// The live path over websocket (`Indexer::run`: new heads by subscription, the fast path that commits a
/// head extending the cursor without a reorg check) under random reorgs: after each, the store converges
/// to a fresh index of the canonical chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_drill_live_ws_sqlite() {
    let seed: u64 = rand::random();
    eprintln!("live ws reorg drill: seed {seed}");
    let _ = tracing_subscriber::fmt().with_env_filter("holdfast_indexer=debug").with_test_writer().try_init();
    let mut rng = StdRng::seed_from_u64(seed);
    let c = Chain::start().await;
    c.provider.anvil_mine(Some(80), None).await.unwrap();
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let indexer = std::sync::Arc::new(Indexer::new(c.config(true), store.clone()).await.unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = {
        let indexer = indexer.clone();
        tokio::spawn(async move {
            indexer
                .run(async {
                    let _ = stopped.await;
                })
                .await
        })
    };
    let deliver_by = c.now().await + 86_400;
    let mut next_id = 1u64;
    for round in 0..8 * drill_scale() {
        for _ in 0..rng.random_range(1..=3) {
            let id = B256::from(U256::from(next_id));
            next_id += 1;
            c.lock(
                rng.random_range(1..=3),
                id,
                c.addr(7),
                rng.random_range(1..1_000_000),
                Address::ZERO,
                deliver_by,
                60,
            )
            .await;
        }
        let depth = rng.random_range(1..=6u64);
        let id = B256::from(U256::from(next_id));
        next_id += 1;
        reorg_with_lock(&c, depth, id, round as u64 + 1, deliver_by).await;
        // New heads after the reorg: the live loop must notice the fork and converge.
        c.provider.anvil_mine(Some(rng.random_range(1..3)), None).await.unwrap();

        let fresh_db = TestDb::sqlite().await;
        let fresh = fresh_db.store().await;
        index(&c, &fresh).await;
        let want = snapshot(&fresh).await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let got = snapshot(&store).await;
            if got == want {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                let diff: Vec<_> = got.iter().zip(&want).filter(|(g, w)| g != w).take(1).collect();
                let meta = holdfast_store::ChainReader::chain_meta(&store, 31337).await.unwrap().unwrap();
                let node =
                    c.provider.get_block_by_number(meta.cursor.into()).await.unwrap().map(|b| b.header.hash);
                let head = c.provider.get_block_number().await.unwrap();
                eprintln!(
                    "store cursor {} {} / node at cursor {node:?} / node head {head} / finished {}",
                    meta.cursor,
                    meta.cursor_hash,
                    running.is_finished()
                );
                panic!(
                    "round {round} depth {depth}: the live indexer did not converge to the canonical chain \
                     (seed {seed}); {} vs {} orders; first differences (got, want): {diff:#?}",
                    got.len(),
                    want.len()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(!running.is_finished(), "the live indexer stopped (seed {seed})");
        fresh_db.cleanup(fresh).await;
    }
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    db.cleanup(store).await;
}
