//! Change-log retention (issue 10): compaction keeps every order's latest entry and never what a connected
//! stream of the same process has not been sent; a stream resumed from a compacted position gets `resync`.
//! On SQLite and Postgres, against anvil and the real indexer.

use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use holdfast_api::router;
use holdfast_store::{FeedReader, OrderFilter};

use crate::harness::{Chain, SseStream, TestDb, app, index};

fn id(n: u8) -> B256 {
    B256::with_last_byte(n)
}

/// The change events of `s` (heights skipped) until none arrives for a second.
async fn changes(s: &mut SseStream) -> Vec<crate::harness::Sse> {
    let mut out = Vec::new();
    while let Some(e) = s.next_within(Duration::from_secs(1)).await {
        if e.event != "heights" {
            out.push(e);
        }
    }
    out
}

async fn retention(db: TestDb) {
    let c = Chain::start().await;
    let store = db.store().await;
    let deliver_by = c.now().await + 86_400;
    // Three orders, two of them updated several times: 7 entries, 3 of them each order's latest.
    // (Indexed after each step, so that each update is its own entry.)
    for n in 1..=3u8 {
        c.lock(1, id(n), c.addr(2), 1_000, Address::ZERO, deliver_by, 60).await;
    }
    index(&c, &store).await;
    for n in 1..=2u8 {
        send!(c.escrow().deliver(id(n), B256::ZERO).from(c.addr(2)));
    }
    index(&c, &store).await;
    for n in 1..=2u8 {
        send!(c.escrow().release(id(n), U256::from(1_000)).from(c.addr(1)));
    }
    let state = app(&c, &store, None);
    let r = router(state.clone());
    let indexer = index(&c, &store).await.with_change_floor(state.change_floor());
    let last = store.last_change_seq().await.unwrap();
    let all = store.changes(0, last, &OrderFilter::default(), 100).await.unwrap();
    assert_eq!(all.len(), 7, "{all:?}");

    // A connected stream that has been sent nothing past position 2 holds retention there.
    // (Only its first event is read, the chain's heights, sent before the stream reads the log: the log is
    // read after the compaction.)
    let mut held = SseStream::open(&r, "/v1/stream?after=2", &[]).await;
    let first = held.next_within(Duration::from_secs(5)).await.unwrap();
    assert_eq!(first.event, "heights");
    let deleted = indexer.compact(0).await.unwrap();
    assert!(deleted <= 2, "only entries at or below the stream's position may go: {deleted}");
    let rest = changes(&mut held).await;
    let ids: Vec<i64> = rest.iter().map(|e| e.id.as_deref().unwrap().parse().unwrap()).collect();
    assert_eq!(ids, (3..=last).collect::<Vec<_>>(), "the connected stream misses nothing: {rest:?}");
    assert!(rest.iter().all(|e| e.event != "resync"));
    drop(held);

    // No stream open: everything superseded goes, each order keeps its latest entry.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let deleted = indexer.compact(0).await.unwrap();
    assert!(deleted > 0);
    assert_eq!(store.compacted_through().await.unwrap(), last);
    let kept = store.changes(0, last, &OrderFilter::default(), 100).await.unwrap();
    let mut orders: Vec<B256> = kept.iter().map(|ch| ch.order_id).collect();
    orders.sort();
    assert_eq!(orders, vec![id(1), id(2), id(3)], "one entry per order: {kept:?}");
    for ch in &kept {
        let latest = all.iter().rev().find(|a| a.order_id == ch.order_id).unwrap();
        assert_eq!(ch.seq, latest.seq, "the kept entry is the order's latest");
    }

    // Resuming from a compacted position: resync first, then the stream goes on from the end.
    let mut behind = SseStream::open(&r, "/v1/stream", &[("last-event-id", "2")]).await;
    let resync = behind.until(Duration::from_secs(5), "resync", |e| e.event != "heights").await;
    assert_eq!(resync.event, "resync", "{resync:?}");
    assert_eq!(resync.data["after"], 2);
    assert_eq!(resync.data["lastSeq"], last);
    assert_eq!(resync.id, Some(last.to_string()));
    // From the end (nothing compacted above it): no resync.
    let mut current = SseStream::open(&r, &format!("/v1/stream?after={last}"), &[]).await;
    assert!(changes(&mut current).await.is_empty());
    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_sqlite() {
    retention(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_postgres() {
    retention(TestDb::postgres().await).await;
}
