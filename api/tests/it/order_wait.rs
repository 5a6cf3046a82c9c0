//! `GET /v1/orders/{orderId}?wait=&finality=`: long-polling an order until it exists with its latest state
//! at a finality, against anvil and a running indexer (the API woken by its notifications).

use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, B256},
    providers::ext::AnvilApi,
};
use holdfast_api::{AppState, router};
use holdfast_indexer::sync::Indexer;
use holdfast_store::Store;
use tokio::sync::oneshot;

use crate::{
    harness::{Chain, TestDb, app, assert_error, get},
    openapi::Schemas,
};

fn hex(b: B256) -> String {
    format!("{b:#x}")
}

/// Run `body` with an indexer following the chain into `store` (joined: its future is not `Send`).
async fn with_indexer<F, Fut>(c: &Chain, store: &Store, body: F)
where
    F: FnOnce(AppState) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let indexer = Indexer::new(c.config(false), store.clone()).await.unwrap();
    let state = app(c, store, None).with_notifications(indexer.subscribe());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_long_poll_until_exists_and_finality() {
    let c = Chain::start().await;
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    with_indexer(&c, &store, |state| body(&c, state)).await;
    db.cleanup(store).await;
}

async fn body(c: &Chain, state: AppState) {
    let store = state.store().clone();
    let r = router(state);
    let schemas = Schemas::new(&get(&r, "/openapi.json").await.json);
    let id = B256::with_last_byte(0x77);
    let uri = |q: &str| format!("/v1/orders/{}?{q}", hex(id));

    // Unknown, and still unknown when the wait ends: 404 after the wait.
    let started = Instant::now();
    assert_error(&get(&r, &uri("wait=1")).await, 404, "ORDER_NOT_FOUND");
    assert!(started.elapsed() >= Duration::from_millis(900));

    // A wait longer than the ordinary request timeout is not cut off by it (only a plain read is).
    let short = holdfast_api::ApiConfig { request_timeout: Duration::from_millis(300), ..Default::default() };
    let r_short = router(app(c, &store, Some(short)));
    let started = Instant::now();
    assert_error(&get(&r_short, &uri("wait=1")).await, 404, "ORDER_NOT_FOUND");
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Locked while the request waits: answered as soon as the indexer has it.
    let by = c.now().await + 86_400;
    let locker = {
        let provider = c.provider.clone();
        let (escrow, payer, payee) = (c.escrow, c.addr(1), c.addr(2));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            holdfast_primitives::bindings::IHoldfastEscrow::new(escrow, &provider)
                .lock(id, payee, alloy::primitives::U256::from(5_000_000u64), Address::ZERO, by, 60)
                .from(payer)
                .send()
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
        })
    };
    let started = Instant::now();
    let o = get(&r, &uri("wait=9")).await;
    assert_eq!(o.status, 200, "{}", o.text);
    schemas.check("OrderRecord", &o.json);
    assert_eq!(o.json["status"], "held");
    assert_eq!(o.json["finality"], "pending");
    assert_eq!(o.headers["cache-control"], "no-store");
    assert!(started.elapsed() >= Duration::from_millis(250), "answered before the lock");
    assert!(started.elapsed() < Duration::from_secs(8), "woke late: {:?}", started.elapsed());
    locker.await.unwrap();

    // Not safe yet: checked once without wait, and with a wait that runs out: 408 with the record.
    let t = get(&r, &uri("finality=safe")).await;
    assert_error(&t, 408, "WAIT_TIMEOUT");
    let started = Instant::now();
    let t = get(&r, &uri("wait=1&finality=safe")).await;
    assert_error(&t, 408, "WAIT_TIMEOUT");
    assert!(started.elapsed() >= Duration::from_millis(900));
    schemas.check("ErrorEnvelope", &t.json);
    schemas.check("OrderRecord", &t.json["error"]["details"]);
    assert_eq!(t.json["error"]["details"]["finality"], "pending");
    assert_eq!(t.json["error"]["retryable"], true);

    // Safe once 32 blocks are mined on top (anvil: safe = head - 32); the waiter wakes on the commit.
    let miner = {
        let provider = c.provider.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            provider.anvil_mine(Some(32), None).await.unwrap();
        })
    };
    let started = Instant::now();
    let o = get(&r, &uri("wait=9&finality=safe")).await;
    assert_eq!(o.status, 200, "{}", o.text);
    assert_eq!(o.json["finality"], "safe");
    assert!(started.elapsed() >= Duration::from_millis(250), "answered before the blocks were mined");
    miner.await.unwrap();

    // A new step makes the latest state pending again: safe is no longer reached.
    let tx = send!(c.escrow().deliver(id, B256::ZERO).from(c.addr(2)));
    assert_eq!(get(&r, &format!("/v1/transactions/{}?wait=9", hex(tx))).await.status, 200);
    let t = get(&r, &uri("wait=2&finality=safe")).await;
    assert_error(&t, 408, "WAIT_TIMEOUT");
    assert_eq!(t.json["error"]["details"]["status"], "delivered");

    // Plain reads are unchanged (cacheable), and the parameters are validated.
    let plain = get(&r, &format!("/v1/orders/{}", hex(id))).await;
    assert_eq!(plain.status, 200);
    assert!(plain.headers.get("etag").is_some());
    assert_error(&get(&r, &uri("wait=61")).await, 400, "VALIDATION_ERROR");
    assert_error(&get(&r, &uri("finality=soon")).await, 400, "VALIDATION_ERROR");
    assert_error(&get(&r, &uri("wait=1&wait=2")).await, 400, "VALIDATION_ERROR");
    assert_error(&get(&r, "/v1/orders/0x1234?wait=1").await, 400, "VALIDATION_ERROR");
    let o = get(&r, &format!("/v1/orders/{}?wait=1&chainId=31337&escrow={}", hex(id), c.escrow)).await;
    assert_eq!(o.status, 200, "{}", o.text);
}
