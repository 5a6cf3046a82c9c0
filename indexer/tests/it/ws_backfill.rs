//! A websocket backfill of a history larger than one websocket message (issue 10). A range whose response
//! is over the message limit breaks its connection; alloy's pubsub would send it again on every reconnect
//! and the backfill would never end. The log ranges have a connection of their own that is replaced, and
//! the range split, so the backfill completes and equals an http index of the same chain.

use std::time::Duration;

use alloy::{
    providers::{Provider, ext::AnvilApi},
    rpc::types::Filter,
};
use holdfast_indexer::sync::Indexer;

use crate::harness::{Chain, TestDb, index, snapshot};

/// The limit of this test's websocket: above any one block's logs (150 here), below the history's.
const LIMIT: usize = 256 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_backfill_larger_than_one_message_completes() {
    let c = Chain::start().await;
    let g = c.load_generator().await;
    c.generate(g, 1, 4).await;
    let all = c.provider.get_logs(&Filter::new().address(c.escrow).from_block(0)).await.unwrap();
    let size = serde_json::to_string(&all).unwrap().len();
    assert!(size > 2 * LIMIT, "the history ({size} bytes) is larger than one message ({LIMIT})");

    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let mut cfg = c.config(true);
    // One range over the whole history, as after growing across empty blocks.
    cfg.backfill.initial_range = 100_000;
    cfg.retry.max_response_bytes = LIMIT;
    cfg.retry.request_timeout = Duration::from_secs(2);
    let indexer = Indexer::new(cfg, store.clone()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(180), indexer.sync_to_head())
        .await
        .expect("the websocket backfill stalled")
        .unwrap();

    let fresh_db = TestDb::sqlite().await;
    let fresh = fresh_db.store().await;
    index(&c, &fresh).await;
    assert_eq!(snapshot(&store).await, snapshot(&fresh).await, "the websocket backfill equals an http index");
    db.cleanup(store).await;
    fresh_db.cleanup(fresh).await;
}

/// The cap of the http test: below two of its blocks' logs (150 each), so that most parts are one block.
const HTTP_LIMIT: usize = 128 * 1024;

/// Over http, a log range whose response is over `max_response_bytes` is abandoned at the cap and split:
/// the logs come back complete, from ranges each under the cap (the range hint shrank), and a backfill
/// with one range over the whole history equals an index without the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_range_over_the_response_cap_is_split_and_completes() {
    use std::sync::atomic::{AtomicU64, Ordering};

    use holdfast_indexer::chain::Chain as Node;
    use holdfast_primitives::event::event_signatures;

    let c = Chain::start().await;
    let g = c.load_generator().await;
    c.generate(g, 1, 4).await;
    // Below the finalized block (head - 64 on anvil): the backfill path, not the unfinalized tail.
    c.provider.anvil_mine(Some(80), None).await.unwrap();
    let head = c.provider.get_block_number().await.unwrap();
    let all = c.provider.get_logs(&Filter::new().address(c.escrow).from_block(0)).await.unwrap();
    let size = serde_json::to_string(&all).unwrap().len();
    assert!(size > 2 * HTTP_LIMIT, "the history ({size} bytes) is larger than the cap ({HTTP_LIMIT})");

    let mut cfg = c.config(false);
    cfg.retry.max_response_bytes = HTTP_LIMIT;
    let node = Node::connect(&cfg.rpc_url, cfg.retry.clone()).await.unwrap();
    let span = head - c.deploy_block + 1;
    let hint = AtomicU64::new(span);
    let logs = node.logs(&[c.escrow], &event_signatures(), c.deploy_block, head, &hint, 1).await.unwrap();
    assert_eq!(logs.len(), all.len(), "every log, once");
    assert!(
        logs.windows(2).all(|w| (w[0].block_number, w[0].log_index) < (w[1].block_number, w[1].log_index))
    );
    assert!(hint.load(Ordering::Relaxed) < span, "the range was not split at the cap");

    let db = TestDb::sqlite().await;
    let store = db.store().await;
    cfg.backfill.initial_range = 100_000;
    let (notify, mut commits) = tokio::sync::broadcast::channel(100_000);
    let indexer = Indexer::new(cfg, store.clone()).await.unwrap().with_notify(notify);
    tokio::time::timeout(Duration::from_secs(180), indexer.sync_to_head()).await.expect("stalled").unwrap();
    // Each part of a split range is committed by itself: no batch holds more orders than one response
    // under the cap can carry (the whole range held at once would be one batch of every order).
    let per_log = size / all.len();
    let mut largest = 0;
    while let Ok(n) = commits.try_recv() {
        if let holdfast_primitives::IndexNotification::Committed { orders, .. } = n {
            largest = largest.max(orders.len());
        }
    }
    // One block cannot be split: the bound is one response under the cap (the node's JSON is not exactly
    // ours: twice the estimate), or one block's logs.
    let mut per_block = std::collections::BTreeMap::new();
    for l in &all {
        *per_block.entry(l.block_number).or_insert(0usize) += 1;
    }
    let bound = (2 * HTTP_LIMIT / per_log).max(per_block.values().copied().max().unwrap_or(0));
    assert!(bound < all.len(), "the bound ({bound}) must be below the whole history ({})", all.len());
    assert!(largest > 0, "nothing was committed");
    assert!(largest <= bound, "a batch of {largest} orders: more than one response under the cap ({bound})");
    let fresh_db = TestDb::sqlite().await;
    let fresh = fresh_db.store().await;
    index(&c, &fresh).await;
    assert_eq!(
        snapshot(&store).await,
        snapshot(&fresh).await,
        "the capped backfill equals an index without it"
    );
    db.cleanup(store).await;
    fresh_db.cleanup(fresh).await;
}
