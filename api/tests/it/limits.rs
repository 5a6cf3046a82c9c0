//! Bounded resources per client: the long-poll timeout read from the parsed query, the request limits and the
//! cap on waiters answered with the error envelope (through the router), and the server's own limits over
//! TCP (header-read timeout, connection cap, what hyper answers itself). An empty SQLite store is enough:
//! no chain is needed to be rejected.

use std::time::{Duration, Instant};

use alloy::primitives::B256;
use holdfast_api::{ApiConfig, AppState, router};

use crate::harness::{TestDb, assert_error, get};

fn hex(b: B256) -> String {
    format!("{b:#x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_timeout_follows_the_parsed_wait() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    // A request timeout well below the wait: a wait the timeout layer does not see is cut at 300 ms.
    let cfg = ApiConfig { request_timeout: Duration::from_millis(300), ..Default::default() };
    let r = router(AppState::new(store.clone(), cfg));
    let tx = hex(B256::repeat_byte(0xab));
    let order = hex(B256::repeat_byte(0xcd));
    for (uri, code) in [
        (format!("/v1/transactions/{tx}?w%61it=1"), "TX_NOT_FOUND"),
        (format!("/v1/orders/{order}?w%61it=1"), "ORDER_NOT_FOUND"),
        (format!("/v1/transactions/{tx}?finality=safe&%77ait=1"), "TX_NOT_FOUND"),
    ] {
        let started = Instant::now();
        let reply = get(&r, &uri).await;
        let took = started.elapsed();
        assert_error(&reply, 404, code);
        assert!(took >= Duration::from_millis(950), "{uri}: the 1 s wait was honoured, took {took:?}");
        assert!(took < Duration::from_secs(3), "{uri}: took {took:?}");
    }
    // An invalid wait is a typed 400 naming the parameter, however its name is spelled.
    for uri in [
        format!("/v1/transactions/{tx}?wait=abc"),
        format!("/v1/transactions/{tx}?w%61it=-1"),
        format!("/v1/orders/{order}?wait=1.5"),
        format!("/v1/transactions/{tx}?wait=61"),
    ] {
        let reply = get(&r, &uri).await;
        assert_error(&reply, 400, "VALIDATION_ERROR");
        assert_eq!(reply.json["error"]["details"]["field"], "wait", "{uri}: {}", reply.text);
    }
    // A repeated wait is rejected by the handler, not waited for.
    let started = Instant::now();
    let reply = get(&r, &format!("/v1/transactions/{tx}?wait=1&w%61it=1")).await;
    assert_error(&reply, 400, "VALIDATION_ERROR");
    assert!(started.elapsed() < Duration::from_millis(500));
    db.cleanup(store).await;
}
