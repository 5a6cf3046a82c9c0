//! End to end against anvil and a running indexer: long-polling a transaction at each finality, and the
//! change feed through a reorg (retraction) and a resume from `Last-Event-ID`; on SQLite (the API woken by
//! the in-process indexer's notifications) and Postgres (the standalone watcher polling the store).

use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, B256, U256},
    providers::{Provider, ext::AnvilApi},
    rpc::types::anvil::{ReorgOptions, TransactionData},
};
use holdfast_api::{AppState, router};
use holdfast_indexer::sync::Indexer;
use holdfast_store::Store;
use tokio::sync::oneshot;

use crate::harness::{Chain, SseStream, TestDb, app, assert_error, get, get_with};

const DAY: u64 = 86_400;

fn hex(b: B256) -> String {
    format!("{b:#x}")
}

/// Run `body` with an indexer following the chain into `store` (joined, not spawned: the indexer's
/// future is not `Send`), and the API state over the same store; the indexer stops when `body` ends.
async fn with_indexer<F, Fut>(c: &Chain, store: &Store, embedded: bool, body: F)
where
    F: FnOnce(AppState) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let indexer = Indexer::new(c.config(false), store.clone()).await.unwrap();
    let mut state = app(c, store, None);
    if embedded {
        state = state.with_notifications(indexer.subscribe());
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let run = indexer.run(async {
        let _ = stopped.await;
    });
    let test = {
        let state = state.clone();
        async move {
            body(state.clone()).await;
            state.shutdown();
            let _ = stop.send(());
        }
    };
    let (ran, ()) = tokio::join!(run, test);
    ran.unwrap();
}

async fn long_poll(backend: &str, embedded: bool) {
    let c = Chain::start().await;
    let db = TestDb::of(backend).await;
    let store = db.store().await;
    with_indexer(&c, &store, embedded, |state| long_poll_body(&c, state)).await;
    db.cleanup(store).await;
}

async fn long_poll_body(c: &Chain, state: AppState) {
    let r = router(state);
    let by = c.now().await + DAY;

    // Sent, then awaited at `pending`: answered as soon as the indexer has it.
    let tx = c.lock(1, B256::with_last_byte(1), c.addr(2), 5_000_000, Address::ZERO, by, 60).await;
    let uri = |q: &str| format!("/v1/transactions/{}?{q}", hex(tx));
    let started = Instant::now();
    let t = get(&r, &uri("wait=10")).await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.json["finality"], "pending");
    assert_eq!(t.json["orders"][0]["effects"][0], "locked");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Not safe yet: the wait runs out with the current state.
    let t = get(&r, &uri("wait=1&finality=safe")).await;
    assert_error(&t, 408, "WAIT_TIMEOUT");
    assert_eq!(t.json["error"]["details"]["finality"], "pending");

    // Safe once 32 blocks are mined on top (anvil: safe = head - 32); the waiter wakes on the commit.
    for (target, blocks) in [("safe", 32), ("finalized", 32)] {
        let provider = c.provider.clone();
        let miner = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            provider.anvil_mine(Some(blocks), None).await.unwrap();
        });
        let started = Instant::now();
        let t = get(&r, &uri(&format!("wait=30&finality={target}"))).await;
        assert_eq!(t.status, 200, "{target}: {}", t.text);
        assert_eq!(t.json["finality"], target);
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "{target}: answered before the blocks were mined"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{target}: woke late ({:?})", started.elapsed());
        miner.await.unwrap();
    }
    let p = get(&r, &format!("/v1/orders/{}/payment", hex(B256::with_last_byte(1)))).await;
    assert_eq!(p.json["proof"]["status"], "verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_each_finality_sqlite_embedded() {
    long_poll("sqlite", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_each_finality_postgres_standalone() {
    long_poll("postgres", false).await;
}

async fn reorg_stream(backend: &str, embedded: bool) {
    let c = Chain::start().await;
    let db = TestDb::of(backend).await;
    let store = db.store().await;
    with_indexer(&c, &store, embedded, |state| reorg_stream_body(&c, state)).await;
    db.cleanup(store).await;
}

async fn reorg_stream_body(c: &Chain, state: AppState) {
    let r = router(state);
    let by = c.now().await + DAY;
    let (a, b, cc) = (B256::with_last_byte(0xA), B256::with_last_byte(0xB), B256::with_last_byte(0xC));
    let wait = Duration::from_secs(15);
    let updated =
        |o: B256| move |e: &crate::harness::Sse| e.event == "order.updated" && e.data["orderId"] == hex(o);

    // Live stream from now on.
    let mut live = SseStream::open(&r, "/v1/stream", &[]).await;
    c.lock(1, a, c.addr(2), 1_000, Address::ZERO, by, 60).await;
    let ev_a = live.until(wait, "update of A", updated(a)).await;
    let id_a = ev_a.id.clone().unwrap();
    let lock_b = c.lock(1, b, c.addr(2), 2_000, Address::ZERO, by, 60).await;
    let ev_b = live.until(wait, "update of B", updated(b)).await;
    assert_eq!(ev_b.data["order"]["status"], "held");

    // Reorg the last block (B's lock) away; the new block locks C instead.
    let fork = c.provider.get_block_number().await.unwrap() - 1;
    let tx = c
        .escrow()
        .lock(cc, c.addr(8), U256::from(3_000), Address::ZERO, by, 60)
        .from(c.addr(9))
        .into_transaction_request();
    c.provider
        .anvil_reorg(ReorgOptions { depth: 1, tx_block_pairs: vec![(TransactionData::JSON(tx), 0)] })
        .await
        .unwrap();
    let retraction = live.until(wait, "retraction of B", |e| e.event == "order.retracted").await;
    assert_eq!(retraction.data["orderId"], hex(b));
    assert!(retraction.data["order"].is_null(), "B no longer exists: {}", retraction.data);
    assert_eq!(retraction.data["blockNumber"], fork);
    assert!(
        retraction.id.as_deref().unwrap().parse::<i64>().unwrap()
            > ev_b.id.as_deref().unwrap().parse().unwrap()
    );
    live.until(wait, "update of C", updated(cc)).await;

    // The erased order: gone, but its history shows the reverted lock.
    assert_error(&get(&r, &format!("/v1/orders/{}", hex(b))).await, 404, "ORDER_NOT_FOUND");
    let ev = get(&r, &format!("/v1/orders/{}/events", hex(b))).await;
    assert_eq!(ev.status, 200, "{}", ev.text);
    assert_eq!(ev.json["data"][0]["reverted"], true);
    assert!(ev.json["data"][0]["finality"].is_null());
    let t = get(&r, &format!("/v1/transactions/{}", hex(lock_b))).await;
    assert_eq!(t.json["status"], "reverted", "{}", t.text);

    // Resume after A's update: B's update, its retraction and C's update, in log order.
    let names = |events: &[crate::harness::Sse]| {
        events
            .iter()
            .map(|e| format!("{} {}", e.event, e.data["orderId"].as_str().unwrap_or("")))
            .collect::<Vec<_>>()
    };
    // The `n` expected changes (a deadline, not a silence, ends a slow replay), then nothing more for 500 ms.
    let collect = |mut s: SseStream, n: usize| async move {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while out.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(e) = s.next_within(left).await else { break };
            if e.event != "heights" {
                out.push(e);
            }
        }
        while let Some(e) = s.next_within(Duration::from_millis(500)).await {
            if e.event != "heights" {
                out.push(e);
            }
        }
        out
    };
    let resumed = collect(SseStream::open(&r, "/v1/stream", &[("last-event-id", &id_a)]).await, 3).await;
    assert_eq!(
        names(&resumed),
        [
            format!("order.updated {}", hex(b)),
            format!("order.retracted {}", hex(b)),
            format!("order.updated {}", hex(cc))
        ]
    );
    // The header wins over `after`; filters apply to the replay (C has another payer).
    let payer1 = format!("{:#x}", c.addr(1));
    let filtered = collect(
        SseStream::open(&r, &format!("/v1/stream?after=0&payer={payer1}"), &[("last-event-id", &id_a)]).await,
        2,
    )
    .await;
    assert_eq!(
        names(&filtered),
        [format!("order.updated {}", hex(b)), format!("order.retracted {}", hex(b))]
    );
    // A status filter still delivers retractions.
    let by_status =
        collect(SseStream::open(&r, &format!("/v1/stream?after={id_a}&status=released"), &[]).await, 1).await;
    assert_eq!(names(&by_status), [format!("order.retracted {}", hex(b))]);
    let _ = get_with(&r, "/healthz", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_reorg_retraction_and_resume_sqlite() {
    reorg_stream("sqlite", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_reorg_retraction_and_resume_postgres() {
    reorg_stream("postgres", false).await;
}
