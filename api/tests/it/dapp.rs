//! What a dApp developer ran into in the first hour (issue 12, the API and the stream): validation errors
//! that name the parameter, a stream resumed beyond the end of the change log (resync), a status-filtered
//! stream that reports orders leaving the filter, and a transaction wait that ends at once when a reorg
//! removed the transaction. Against anvil and a real SQLite store filled by the real indexer.

use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, B256, U256},
    providers::{Provider, ext::AnvilApi},
    rpc::types::anvil::ReorgOptions,
};
use holdfast_api::{ApiConfig, AppState, router};
use holdfast_store::FeedReader;

use crate::{
    harness::{Chain, Sse, SseStream, TestDb, app, assert_error, get, get_with, index},
    openapi::Schemas,
};

const DAY: u64 = 86_400;

fn id(n: u8) -> B256 {
    B256::with_last_byte(n)
}

fn hex(b: B256) -> String {
    format!("{b:#x}")
}

/// The next event that is not `heights` (panics after `within`).
async fn next_change(s: &mut SseStream, within: Duration, what: &str) -> Sse {
    s.until(within, what, |e| e.event != "heights").await
}

/// Events other than `heights` until `within` passes without one.
async fn drain(s: &mut SseStream, within: Duration) -> Vec<Sse> {
    let mut out = Vec::new();
    while let Some(e) = s.next_within(within).await {
        if e.event != "heights" {
            out.push(e);
        }
    }
    out
}

/// Remove the chain's last block (and with it the transactions in it) by a reorg of depth 1.
async fn reorg_last_block(c: &Chain) {
    c.provider.anvil_reorg(ReorgOptions { depth: 1, tx_block_pairs: vec![] }).await.unwrap();
}

// --- Item 12: every validation error about a query parameter names it in `error.details.field`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_name_the_parameter() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let r = router(AppState::new(store.clone(), ApiConfig::default()));
    let schemas = Schemas::new(&get(&r, "/openapi.json").await.json);
    let o = hex(id(1));
    let cases: Vec<(String, &str)> = vec![
        // Unknown parameters (also when the name is percent-encoded).
        ("/v1/orders?foo=1".into(), "foo"),
        ("/v1/orders?w%61it=1".into(), "wait"),
        (format!("/v1/orders/{o}?bogus=1"), "bogus"),
        (format!("/v1/orders/{o}/payment?x=1"), "x"),
        (format!("/v1/orders/{o}/events?after=1"), "after"),
        (format!("/v1/transactions/{o}?zz=1"), "zz"),
        ("/v1/stream?cursor=abc".into(), "cursor"),
        // Repeated parameters.
        ("/v1/orders?chainId=1&chainId=2".into(), "chainId"),
        ("/v1/orders?limit=5&payer=0x0000000000000000000000000000000000000001&limit=5".into(), "limit"),
        (format!("/v1/orders/{o}?wait=1&wait=2"), "wait"),
        (format!("/v1/orders/{o}/events?escrow=1&escrow=2"), "escrow"),
        ("/v1/stream?after=1&after=2".into(), "after"),
        // Bad enum values.
        ("/v1/orders?status=lost".into(), "status"),
        (format!("/v1/orders/{o}?finality=final"), "finality"),
        (format!("/v1/transactions/{o}?finality=final"), "finality"),
        ("/v1/stream?status=nope".into(), "status"),
        // Not numbers.
        ("/v1/orders?limit=abc".into(), "limit"),
        ("/v1/orders?lockedFrom=x".into(), "lockedFrom"),
        ("/v1/orders?chainId=-1".into(), "chainId"),
        (format!("/v1/orders/{o}?wait=soon"), "wait"),
        (format!("/v1/orders/{o}/payment?chainId=abc"), "chainId"),
        (format!("/v1/transactions/{o}?wait=-1"), "wait"),
        ("/v1/stream?after=x".into(), "after"),
        ("/v1/stream?lockedTo=1.5".into(), "lockedTo"),
        // Malformed path parameters and addresses.
        ("/v1/orders/0x123".into(), "orderId"),
        ("/v1/transactions/0xdead".into(), "txHash"),
        ("/v1/orders?payee=0xnothex".into(), "payee"),
    ];
    let mut wrong = Vec::new();
    for (uri, field) in cases {
        let reply = get(&r, &uri).await;
        assert_error(&reply, 400, "VALIDATION_ERROR");
        schemas.check("ErrorEnvelope", &reply.json);
        if reply.json["error"]["details"]["field"] != field {
            wrong.push(format!("{uri}: want field {field:?}, got {}", reply.text));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    let bad_id = get_with(&r, "/v1/stream", &[("last-event-id", "x")]).await;
    assert_eq!(bad_id.json["error"]["details"]["field"], "Last-Event-ID");
    db.cleanup(store).await;
}
