//! Every endpoint and every error code through `tower::ServiceExt::oneshot`, against a SQLite store the real
//! indexer filled from an anvil chain with an order in every status; responses validated against the served
//! OpenAPI document.

use holdfast_primitives::IndexerHealth;
use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, B256, U256},
    providers::{Provider, ext::AnvilApi},
};
use axum::{body::Body, http::Request};
use holdfast_api::{ApiConfig, AppState, ErrorCode, router};
use serde_json::Value;

use crate::{
    harness::{Chain, SseStream, TestDb, app, assert_error, get, get_with, index},
    openapi::Schemas,
};

const DAY: u64 = 86_400;

fn id(n: u8) -> B256 {
    B256::with_last_byte(n)
}

fn hex(b: B256) -> String {
    format!("{b:#x}")
}

pub(crate) struct Fixture {
    pub(crate) c: Chain,
    /// (order id, expected status, expected payment status), in lock order.
    orders: Vec<(B256, &'static str, &'static str)>,
    lock_txs: Vec<B256>,
    pending_lock: B256,
}

/// One order in every status; all but the last are finalized.
pub(crate) async fn fixture() -> Fixture {
    let c = Chain::start().await;
    let (payer, payee, arbiter, stranger) = (1usize, 2usize, 3usize, 4usize);
    let now = c.now().await;
    let by = now + 10 * DAY;
    let e = c.escrow();
    let mut lock_txs = Vec::new();
    // 1 held (with an arbiter), 12.5 USDC.
    lock_txs.push(c.lock(payer, id(1), c.addr(payee), 12_500_000, c.addr(arbiter), by, 3_600).await);
    // 2 delivered.
    lock_txs.push(c.lock(payer, id(2), c.addr(payee), 5_000_000, Address::ZERO, by, 3_600).await);
    send!(e.deliver(id(2), B256::with_last_byte(0xEE)).from(c.addr(payee)));
    // 3 frozen (delivered, then frozen by the payer).
    lock_txs.push(c.lock(payer, id(3), c.addr(payee), 1_000, c.addr(arbiter), by, 3_600).await);
    send!(e.deliver(id(3), B256::ZERO).from(c.addr(payee)));
    send!(e.freeze(id(3), B256::with_last_byte(7)).from(c.addr(payer)));
    // 4 released.
    lock_txs.push(c.lock(payer, id(4), c.addr(payee), 100, Address::ZERO, by, 60).await);
    send!(e.release(id(4), U256::from(100)).from(c.addr(payer)));
    // 5 refunded by the payee.
    lock_txs.push(c.lock(payer, id(5), c.addr(payee), 100, Address::ZERO, by, 60).await);
    send!(e.refund(id(5), U256::from(100)).from(c.addr(payee)));
    // 6 expired: never delivered, refunded by a stranger after the deadline.
    lock_txs.push(c.lock(payer, id(6), c.addr(payee), 7, Address::ZERO, now + 100, 60).await);
    // 7 split.
    lock_txs.push(c.lock(payer, id(7), c.addr(payee), 1_000, Address::ZERO, by, 60).await);
    send!(e.release(id(7), U256::from(300)).from(c.addr(payer)));
    send!(e.refund(id(7), U256::from(700)).from(c.addr(payee)));
    c.warp(200).await;
    send!(e.refund(id(6), U256::from(7)).from(c.addr(stranger)));
    // Finalize all of the above (anvil: finalized = head - 64), then one more order that stays pending.
    c.provider.anvil_mine(Some(70), None).await.unwrap();
    let pending_lock = c.lock(payer, id(8), c.addr(payee), 42, Address::ZERO, by + DAY, 60).await;
    lock_txs.push(pending_lock);
    let orders = vec![
        (id(1), "held", "held"),
        (id(2), "delivered", "release_pending"),
        (id(3), "frozen", "frozen"),
        (id(4), "released", "released"),
        (id(5), "refunded", "refunded"),
        (id(6), "expired", "refunded"),
        (id(7), "split", "split"),
        (id(8), "held", "held"),
    ];
    Fixture { c, orders, lock_txs, pending_lock }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_and_error_code_sqlite() {
    let f = fixture().await;
    let c = &f.c;
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    index(c, &store).await;
    let state = app(c, &store, None);
    let r = router(state.clone());
    let head = c.provider.get_block_number().await.unwrap();
    let mut seen_codes = std::collections::BTreeSet::new();
    let mut err = |reply: &crate::harness::Reply, status: u16, code: &str| {
        assert_error(reply, status, code);
        seen_codes.insert(code.to_string());
    };

    // --- OpenAPI document and docs page.
    let doc = get(&r, "/openapi.json").await;
    assert_eq!(doc.status, 200);
    for path in [
        "/v1/orders",
        "/v1/orders/{orderId}",
        "/v1/orders/{orderId}/payment",
        "/v1/orders/{orderId}/events",
        "/v1/transactions/{txHash}",
        "/v1/stream",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/accounts/{address}/credits",
        "/v1/reconciliation",
    ] {
        assert!(doc.json["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
        for status in ["413", "414", "431", "500", "503"] {
            assert!(
                doc.json["paths"][path]["get"]["responses"].get(status).is_some(),
                "{path}: {status} undocumented"
            );
        }
    }
    // Parameters are as strict as the server: ids, hashes and addresses have their pattern, the page size
    // its bounds, and `wait` the server's cap.
    let params = |path: &str| doc.json["paths"][path]["get"]["parameters"].as_array().unwrap().clone();
    let param = |path: &str, name: &str| params(path).into_iter().find(|p| p["name"] == name).unwrap();
    assert_eq!(param("/v1/orders/{orderId}", "orderId")["schema"]["pattern"], "^0[xX][0-9a-fA-F]{64}$");
    assert_eq!(param("/v1/transactions/{txHash}", "txHash")["schema"]["pattern"], "^0[xX][0-9a-fA-F]{64}$");
    assert_eq!(param("/v1/orders", "payer")["schema"]["pattern"], "^0[xX][0-9a-fA-F]{40}$");
    assert_eq!(param("/v1/orders", "limit")["schema"]["minimum"], 1);
    assert_eq!(param("/v1/orders", "limit")["schema"]["maximum"], 500);
    assert_eq!(param("/v1/orders/{orderId}", "wait")["schema"]["maximum"], 60);
    let schemas = Schemas::new(&doc.json);
    let docs = get(&r, "/docs").await;
    assert_eq!(docs.status, 200);
    assert!(docs.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(docs.text.contains("/v1/orders/{orderId}/payment") && docs.text.contains("release_pending"));
    assert!(
        !docs.text.contains("<script") && !docs.text.contains("http://") && !docs.text.contains("https://")
    );
    for code in ErrorCode::ALL {
        assert!(docs.text.contains(code.as_str()), "{} undocumented", code.as_str());
    }

    // --- Single orders: every status, exact amounts, checksummed addresses, finality, caching.
    for (i, (oid, status, _)) in f.orders.iter().enumerate() {
        let o = get(&r, &format!("/v1/orders/{}", hex(*oid))).await;
        assert_eq!(o.status, 200, "{}", o.text);
        schemas.check("OrderRecord", &o.json);
        assert_eq!(o.json["status"], *status, "order {i}");
        assert_eq!(o.json["orderId"], hex(*oid));
        assert_eq!(o.json["escrow"], c.escrow.to_checksum(None));
        assert_eq!(o.json["payer"], c.addr(1).to_checksum(None));
        assert_eq!(o.json["payee"], c.addr(2).to_checksum(None));
        assert_eq!(o.json["token"]["address"], c.token.to_checksum(None));
        assert_eq!(o.json["steps"][0]["kind"], "locked");
        assert_eq!(o.json["steps"][0]["transactionHash"], hex(f.lock_txs[i]));
        let last = o.json["steps"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(o.json["confirmations"], head - last["blockNumber"].as_u64().unwrap() + 1);
        assert_eq!(o.json["finality"], last["finality"]);
        let immutable = o.json["settled"] == true && o.json["finality"] == "finalized";
        let cc = o.headers["cache-control"].to_str().unwrap();
        assert_eq!(cc.contains("immutable"), immutable, "order {i}: {cc}");
        let etag = o.headers["etag"].to_str().unwrap().to_string();
        let again = get_with(&r, &format!("/v1/orders/{}", hex(*oid)), &[("if-none-match", &etag)]).await;
        assert_eq!(again.status, 304);
        assert!(again.text.is_empty());
    }
    let held = get(&r, &format!("/v1/orders/{}", hex(id(1)))).await.json;
    assert_eq!(held["amount"], "12500000");
    assert_eq!(held["amountDecimal"], "12.5");
    assert_eq!(held["remainingDecimal"], "12.5");
    assert_eq!(held["releasedDecimal"], "0");
    assert_eq!(held["arbiter"], c.addr(3).to_checksum(None));
    assert_eq!(held["token"]["symbol"], "USDC");
    assert_eq!(held["token"]["decimals"], 6);
    assert_eq!(held["finality"], "finalized");
    assert!(held["deadlines"]["deliverBy"].as_u64().unwrap() > held["lockedAt"].as_u64().unwrap());
    assert!(held["deadlines"]["releasableAt"].is_null());
    let split = get(&r, &format!("/v1/orders/{}", hex(id(7)))).await.json;
    assert_eq!((split["released"].as_str(), split["refunded"].as_str()), (Some("300"), Some("700")));
    assert_eq!(split["releasedDecimal"], "0.0003");
    assert_eq!(split["steps"].as_array().unwrap().len(), 3);
    let frozen = get(&r, &format!("/v1/orders/{}", hex(id(3)))).await.json;
    assert!(frozen["deadlines"]["freezeTimeoutAt"].as_u64().is_some());
    assert_eq!(frozen["frozenBy"], c.addr(1).to_checksum(None));
    let pending = get(&r, &format!("/v1/orders/{}", hex(id(8)))).await;
    assert_eq!(pending.json["finality"], "pending");
    assert_eq!(pending.json["confirmations"], 1);
    assert_eq!(pending.headers["cache-control"], "no-cache");
    // Ids and addresses accepted in any case; chainId/escrow narrow the lookup.
    let upper = format!("0x{}", alloy::hex::encode(id(1)).to_uppercase());
    assert_eq!(get(&r, &format!("/v1/orders/{upper}")).await.json["orderId"], hex(id(1)));
    let lower_escrow = format!("{:#x}", c.escrow);
    let narrowed = get(&r, &format!("/v1/orders/{}?chainId=31337&escrow={lower_escrow}", hex(id(1)))).await;
    assert_eq!(narrowed.status, 200);
    let other_escrow =
        get(&r, &format!("/v1/orders/{}?escrow={:#x}", hex(id(1)), Address::with_last_byte(9))).await;
    err(&other_escrow, 404, "ORDER_NOT_FOUND");
    err(&get(&r, &format!("/v1/orders/{}?chainId=1", hex(id(1)))).await, 404, "ORDER_NOT_FOUND");

    // --- Payments: the status mapping, rail and proof.
    for (oid, status, payment_status) in &f.orders {
        let p = get(&r, &format!("/v1/orders/{}/payment", hex(*oid))).await;
        assert_eq!(p.status, 200, "{}", p.text);
        schemas.check("PaymentRecord", &p.json);
        assert_eq!(p.json["status"], *payment_status, "{status}");
        assert_eq!(p.json["orderStatus"], *status);
        assert_eq!(p.json["rail"]["type"], "onchain-escrow");
        assert_eq!(p.json["rail"]["chain"], "anvil");
        assert_eq!(p.json["rail"]["escrowAddress"], c.escrow.to_checksum(None));
        assert_eq!(p.json["rail"]["tokenAddress"], c.token.to_checksum(None));
        assert_eq!(p.json["currency"], "USDC");
        assert_eq!(p.json["proof"]["verificationMode"], "rpc");
        let verified = if *oid == id(8) { "pending" } else { "verified" };
        assert_eq!(p.json["proof"]["status"], verified);
        assert!(p.etag_like());
    }
    let p = get(&r, &format!("/v1/orders/{}/payment", hex(id(1)))).await.json;
    assert_eq!((p["amount"].as_str(), p["rawAmount"].as_str()), (Some("12.5"), Some("12500000")));
    assert_eq!(p["proof"]["transactionHash"], hex(f.lock_txs[0]));
    assert!(p["settlement"].is_null());
    assert!(p["createdAt"].as_str().unwrap().ends_with('Z'));
    let p = get(&r, &format!("/v1/orders/{}/payment", hex(id(4)))).await.json;
    assert_eq!(p["settlement"]["finality"], "finalized");

    // --- Events.
    let ev = get(&r, &format!("/v1/orders/{}/events", hex(id(7)))).await;
    assert_eq!(ev.status, 200);
    schemas.check("EventList", &ev.json);
    let kinds: Vec<&str> =
        ev.json["data"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["locked", "released", "refunded"]);
    assert_eq!(ev.json["data"][1]["data"]["amount"], "300");
    assert_eq!(ev.json["data"][1]["data"]["amountDecimal"], "0.0003");
    assert_eq!(ev.json["data"][1]["data"]["by"], c.addr(1).to_checksum(None));
    assert!(ev.json["data"].as_array().unwrap().iter().all(|e| e["reverted"] == false));
    err(&get(&r, &format!("/v1/orders/{}/events", hex(id(99)))).await, 404, "ORDER_NOT_FOUND");

    // --- Lists: pagination in lock order, filters.
    let mut all = Vec::new();
    let mut uri = "/v1/orders?limit=3".to_string();
    loop {
        let page = get(&r, &uri).await;
        assert_eq!(page.status, 200, "{}", page.text);
        schemas.check("OrderList", &page.json);
        let data = page.json["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        all.extend(data.iter().map(|o| o["orderId"].as_str().unwrap().to_string()));
        match page.json["nextCursor"].as_str() {
            Some(cur) => uri = format!("/v1/orders?limit=3&cursor={cur}"),
            None => break,
        }
    }
    assert_eq!(all, f.orders.iter().map(|o| hex(o.0)).collect::<Vec<_>>());
    let default_page = get(&r, "/v1/orders").await.json;
    assert_eq!(default_page["data"].as_array().unwrap().len(), 8);
    assert!(default_page["nextCursor"].is_null());
    let count = |v: &Value| v["data"].as_array().unwrap().len();
    assert_eq!(count(&get(&r, "/v1/orders?status=held").await.json), 2);
    assert_eq!(count(&get(&r, "/v1/orders?status=expired").await.json), 1);
    assert_eq!(count(&get(&r, &format!("/v1/orders?arbiter={:#x}", c.addr(3))).await.json), 2);
    let payee_upper = format!("0x{}", alloy::hex::encode(c.addr(2)).to_uppercase());
    assert_eq!(count(&get(&r, &format!("/v1/orders?payee={payee_upper}&chainId=31337")).await.json), 8);
    assert_eq!(count(&get(&r, &format!("/v1/orders?payer={:#x}", c.addr(2))).await.json), 0);
    assert_eq!(count(&get(&r, &format!("/v1/orders?escrow={lower_escrow}&status=split")).await.json), 1);
    let t8 = pending.json["lockedAt"].as_u64().unwrap();
    assert_eq!(count(&get(&r, &format!("/v1/orders?lockedFrom={t8}")).await.json), 1);
    assert_eq!(count(&get(&r, &format!("/v1/orders?lockedTo={t8}")).await.json), 7);

    // --- Transactions.
    let t = get(&r, &format!("/v1/transactions/{}", hex(f.lock_txs[0]))).await;
    assert_eq!(t.status, 200, "{}", t.text);
    schemas.check("TransactionRecord", &t.json);
    assert_eq!(t.json["status"], "indexed");
    assert_eq!(t.json["finality"], "finalized");
    assert_eq!(t.json["orders"][0]["orderId"], hex(id(1)));
    assert_eq!(t.json["orders"][0]["effects"][0], "locked");
    let t = get(&r, &format!("/v1/transactions/{}?finality=finalized&wait=5", hex(f.lock_txs[0]))).await;
    assert_eq!(t.status, 200);
    // Below the requested finality: without wait, answered at once; with wait, when it runs out.
    let t = get(&r, &format!("/v1/transactions/{}?finality=safe", hex(f.pending_lock))).await;
    err(&t, 408, "WAIT_TIMEOUT");
    schemas.check("ErrorEnvelope", &t.json);
    schemas.check("TransactionRecord", &t.json["error"]["details"]);
    assert_eq!(t.json["error"]["details"]["finality"], "pending");
    assert_eq!(t.json["error"]["retryable"], true);
    let started = Instant::now();
    let t = get(&r, &format!("/v1/transactions/{}?finality=finalized&wait=1", hex(f.pending_lock))).await;
    err(&t, 408, "WAIT_TIMEOUT");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let unknown_tx = hex(B256::repeat_byte(0xab));
    err(&get(&r, &format!("/v1/transactions/{unknown_tx}")).await, 404, "TX_NOT_FOUND");
    let started = Instant::now();
    err(&get(&r, &format!("/v1/transactions/{unknown_tx}?wait=1")).await, 404, "TX_NOT_FOUND");
    assert!(started.elapsed() >= Duration::from_millis(900));

    // --- Stream: replay the whole log from 0.
    let mut s = SseStream::open(&r, "/v1/stream?after=0", &[]).await;
    let heights = s.until(Duration::from_secs(5), "heights", |e| e.event == "heights").await;
    schemas.check("HeightsRecord", &heights.data);
    assert_eq!(heights.data["head"], head);
    let mut last_id = 0i64;
    let mut latest = std::collections::BTreeMap::new();
    let want: std::collections::BTreeMap<String, Value> =
        f.orders.iter().map(|(o, st, _)| (hex(*o), Value::from(*st))).collect();
    // Read until every order reached its current state (a deadline, not a silence, ends a slow replay).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while latest != want {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(e) = s.next_within(left).await else { break };
        assert_eq!(e.event, "order.updated");
        schemas.check("ChangeRecord", &e.data);
        let seq: i64 = e.id.unwrap().parse().unwrap();
        assert!(seq > last_id, "ids ascend");
        assert_eq!(e.data["seq"], seq);
        last_id = seq;
        latest.insert(e.data["orderId"].as_str().unwrap().to_string(), e.data["order"]["status"].clone());
    }
    assert_eq!(latest, want, "the replayed log ends in every order's current state");
    assert_eq!(
        s.next_within(Duration::from_millis(300)).await.map(|e| e.event),
        None,
        "nothing after the end"
    );
    // Filtered replay: only the split order's changes.
    let mut s = SseStream::open(&r, "/v1/stream?after=0&status=split", &[]).await;
    let e = s.until(Duration::from_secs(5), "order.updated", |e| e.event == "order.updated").await;
    assert_eq!(e.data["order"]["status"], "split");
    assert_eq!(s.next_within(Duration::from_millis(300)).await.map(|e| e.event), None);

    // --- Operations.
    let h = get(&r, "/healthz").await;
    assert_eq!((h.status.as_u16(), h.json["status"].as_str()), (200, Some("ok")));
    schemas.check("Health", &h.json);
    let ready = get(&r, "/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    schemas.check("Readiness", &ready.json);
    assert_eq!(ready.json["chains"][0]["head"], head);
    err(&get(&r, "/metrics").await, 404, "NOT_FOUND");
    let with_metrics = router(app(c, &store, None).with_metrics(|| "holdfast_test_metric 1\n".to_string()));
    let m = get(&with_metrics, "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(m.text, "holdfast_test_metric 1\n");

    // --- CORS and compression.
    let pre = crate::harness::send(
        &r,
        Request::builder()
            .method("OPTIONS")
            .uri("/v1/orders")
            .header("origin", "https://dapp.example")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "last-event-id")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(pre.status.is_success());
    assert_eq!(pre.headers["access-control-allow-origin"], "*");
    let cors = get_with(&r, "/v1/orders", &[("origin", "https://dapp.example")]).await;
    assert_eq!(cors.headers["access-control-allow-origin"], "*");
    let gz = get_with(&r, "/openapi.json", &[("accept-encoding", "gzip")]).await;
    assert_eq!(gz.headers["content-encoding"], "gzip");
    // A single record (under 2 KiB) is sent as is; a page of them is compressed.
    let one = get_with(&r, &format!("/v1/orders/{}", hex(id(1))), &[("accept-encoding", "gzip")]).await;
    assert_eq!(one.status, 200);
    assert!(!one.headers.contains_key("content-encoding"), "{:?}", one.headers);
    let page = get_with(&r, "/v1/orders?limit=5", &[("accept-encoding", "gzip")]).await;
    assert_eq!(page.headers["content-encoding"], "gzip");

    // --- Validation errors: never a 500.
    for uri in [
        "/v1/orders/0x123".to_string(),
        "/v1/orders/abc".to_string(),
        format!("/v1/orders/{}", "0x".to_string() + &"zz".repeat(32)),
        format!("/v1/orders/{}?foo=1", hex(id(1))),
        format!("/v1/orders/{}?escrow=0x1234", hex(id(1))),
        format!("/v1/orders/{}?chainId=-1", hex(id(1))),
        format!("/v1/orders/{}/payment?escrow=nope", hex(id(1))),
        "/v1/orders/0x00/events".to_string(),
        "/v1/orders?limit=0".to_string(),
        "/v1/orders?limit=501".to_string(),
        "/v1/orders?limit=abc".to_string(),
        "/v1/orders?status=lost".to_string(),
        "/v1/orders?payer=0xnothex".to_string(),
        "/v1/orders?payee=70997970c51812dc3a010c7d01b50e0d17dc79c8".to_string(),
        "/v1/orders?cursor=%%%".to_string(),
        "/v1/orders?cursor=AAAA".to_string(),
        "/v1/orders?chainId=1&chainId=2".to_string(),
        "/v1/orders?unknown=1".to_string(),
        format!("/v1/transactions/{}?wait=61", hex(f.lock_txs[0])),
        format!("/v1/transactions/{}?finality=final", hex(f.lock_txs[0])),
        "/v1/transactions/0xdead".to_string(),
        "/v1/stream?after=-1".to_string(),
        "/v1/stream?status=nope".to_string(),
        "/v1/stream?cursor=abc".to_string(),
    ] {
        let reply = get(&r, &uri).await;
        err(&reply, 400, "VALIDATION_ERROR");
        schemas.check("ErrorEnvelope", &reply.json);
    }
    // An empty lock-time interval is no orders, not an error (OpenAPI cannot relate two parameters).
    let empty = get(&r, "/v1/orders?lockedFrom=10&lockedTo=5").await;
    assert_eq!((empty.status.as_u16(), &empty.json["data"]), (200, &serde_json::json!([])));
    err(
        &get(&r, &format!("/v1/accounts/{}/credits?chainId=9223372036854775808", c.addr(1))).await,
        400,
        "VALIDATION_ERROR",
    );
    let bad_limit = get(&r, "/v1/orders?limit=501").await;
    assert_eq!(bad_limit.json["error"]["details"]["field"], "limit");
    err(&get_with(&r, "/v1/stream", &[("last-event-id", "x")]).await, 400, "VALIDATION_ERROR");
    err(&get(&r, "/nope").await, 404, "NOT_FOUND");
    let post = crate::harness::send(&r, Request::post("/v1/orders").body(Body::empty()).unwrap()).await;
    err(&post, 405, "METHOD_NOT_ALLOWED");
    err(&get(&r, &format!("/v1/orders?payer={}", "a".repeat(3000))).await, 414, "QUERY_TOO_LONG");
    // A plain OPTIONS (not a CORS preflight) is a method like any other but GET and HEAD.
    let options = crate::harness::send(&r, Request::options("/v1/orders").body(Body::empty()).unwrap()).await;
    err(&options, 405, "METHOD_NOT_ALLOWED");
    assert_eq!(options.headers["allow"], "GET, HEAD");
    assert_eq!(post.headers["allow"], "GET, HEAD");

    // --- Request limits (defaults: path 1 KiB, 100 headers, 16 KiB of headers, 1 KiB declared body).
    err(&get(&r, &format!("/v1/orders/0x{}", "a".repeat(1100))).await, 414, "PATH_TOO_LONG");
    let names: Vec<String> = (0..101).map(|i| format!("x-h{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let too_many = get_with(&r, "/v1/orders", &many).await;
    err(&too_many, 431, "HEADERS_TOO_LARGE");
    assert_eq!(get_with(&r, "/v1/orders", &many[..100]).await.status, 200);
    let big = "a".repeat(16 * 1024);
    err(&get_with(&r, "/v1/orders", &[("x-big", &big)]).await, 431, "HEADERS_TOO_LARGE");
    let body = |n: usize| {
        Request::get("/v1/orders").header("content-length", n).body(Body::from(vec![b'x'; n])).unwrap()
    };
    err(&crate::harness::send(&r, body(1025)).await, 413, "BODY_TOO_LARGE");
    assert_eq!(crate::harness::send(&r, body(1024)).await.status, 200);

    // --- TOO_MANY_WAITS: one place for waiters, taken by a stream.
    let one = router(app(c, &store, Some(ApiConfig { max_waits: 1, ..Default::default() })));
    let stream = SseStream::open(&one, "/v1/stream", &[]).await;
    let full = get(&one, "/v1/stream?after=0").await;
    err(&full, 503, "TOO_MANY_WAITS");
    assert_eq!(
        (full.headers["retry-after"].to_str().unwrap(), full.json["error"]["retryable"].as_bool()),
        ("5", Some(true))
    );
    let started = Instant::now();
    err(&get(&one, &format!("/v1/transactions/{}?wait=5", hex(f.pending_lock))).await, 503, "TOO_MANY_WAITS");
    assert!(started.elapsed() < Duration::from_secs(1), "refused at once, not after the wait");
    // Requests that do not wait need no place.
    assert_eq!(get(&one, &format!("/v1/transactions/{}", hex(f.pending_lock))).await.status, 200);
    drop(stream);
    let t = get(&one, &format!("/v1/transactions/{}?wait=1", hex(f.lock_txs[0]))).await;
    assert_eq!(t.status, 200, "the place is free again once the stream is gone: {}", t.text);

    // --- REQUEST_TIMEOUT: every connection of the router's pool is taken, so its query waits.
    let starved = db.store().await;
    let holdfast_store::Store::Sqlite(sq) = &starved else { unreachable!() };
    let mut held = Vec::new();
    for _ in 0..sq.pool().options().get_max_connections() {
        held.push(sq.pool().acquire().await.unwrap());
    }
    let slow = ApiConfig { request_timeout: Duration::from_millis(300), ..Default::default() };
    err(&get(&router(app(c, &starved, Some(slow))), "/v1/orders").await, 503, "REQUEST_TIMEOUT");
    drop(held);

    // --- SHUTTING_DOWN: a long-poll ends when shutdown starts.
    let st = app(c, &store, None);
    let sr = router(st.clone());
    let poll = tokio::spawn({
        let sr = sr.clone();
        async move { get(&sr, &format!("/v1/transactions/{unknown_tx}?wait=30")).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    st.shutdown();
    let reply = tokio::time::timeout(Duration::from_secs(5), poll).await.expect("ended at shutdown").unwrap();
    err(&reply, 503, "SHUTTING_DOWN");

    // --- NOT_READY: an empty store.
    let empty_db = TestDb::sqlite().await;
    let empty = empty_db.store().await;
    let not_ready = get(&router(app(c, &empty, None)), "/readyz").await;
    err(&not_ready, 503, "NOT_READY");
    schemas.check("Readiness", &not_ready.json["error"]["details"]);
    // ... and a stalled head.
    let stall = ApiConfig { ready_max_stall: Duration::ZERO, ..Default::default() };
    tokio::time::sleep(Duration::from_millis(1100)).await;
    err(&get(&router(app(c, &store, Some(stall))), "/readyz").await, 503, "NOT_READY");

    // --- NOT_READY from the in-process indexer (`holdfast run`): a fault it is retrying, or a halt; ready
    // again once it runs.
    let (health, health_rx) = tokio::sync::watch::channel(IndexerHealth::Running);
    let chain_id = c.anvil.chain_id();
    let reader = get(&router(app(c, &store, None)), "/readyz").await;
    assert_eq!(reader.json["chains"][0]["role"], "reader", "{}", reader.json);
    assert!(reader.json["chains"][0].get("indexer").is_none(), "{}", reader.json);
    let hr = router(app(c, &store, None).with_chain_health(chain_id, health_rx));
    let running = get(&hr, "/readyz").await;
    assert_eq!(running.status, 200, "a running indexer over a fresh store is ready");
    assert_eq!(running.json["chains"][0]["role"], "writer", "{}", running.json);
    assert_eq!(running.json["chains"][0]["indexer"], "running", "{}", running.json);
    // Per chain: a chain nobody indexes is not ready; the indexed one is.
    assert_eq!(get(&hr, &format!("/readyz?chainId={chain_id}")).await.status, 200);
    let other = get(&hr, "/readyz?chainId=999999").await;
    err(&other, 404, "NOT_FOUND");
    assert!(other.json["error"]["message"].as_str().unwrap().contains("chain 999999 is neither configured"));
    err(&get(&hr, "/readyz?chainId=x").await, 400, "VALIDATION_ERROR");
    err(&get(&hr, "/readyz?chainId=9223372036854775808").await, 400, "VALIDATION_ERROR");
    // A standby serves what the writer commits: ready while the store is fresh, with its role.
    health.send_replace(IndexerHealth::Standby { writer: Some("pid=1".into()) });
    let standby = get(&hr, "/readyz").await;
    assert_eq!(standby.status, 200, "{}", standby.json);
    assert_eq!(standby.json["chains"][0]["role"], "standby", "{}", standby.json);
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 7;
    health.send_replace(IndexerHealth::Faulted {
        fault: "rpc: cannot connect to http://127.0.0.1:1/: connection refused".into(),
        since,
        retries: 4,
    });
    let faulted = get(&hr, "/readyz").await;
    err(&faulted, 503, "NOT_READY");
    let reasons = faulted.json["error"]["details"]["reasons"].to_string();
    assert!(reasons.contains("connection refused") && reasons.contains("4 retries"), "{reasons}");
    health.send_replace(IndexerHealth::Halted { reason: "the chain was reset".into() });
    let halted = get(&hr, "/readyz").await;
    err(&halted, 503, "NOT_READY");
    assert!(
        halted.json["error"]["details"]["reasons"]
            .to_string()
            .contains(&format!("chain {chain_id}: indexing halted: the chain was reset"))
    );
    health.send_replace(IndexerHealth::Running);
    assert_eq!(get(&hr, "/readyz").await.status, 200, "ready again once the indexer runs");

    // --- INTERNAL: the store's pool is closed; the cause is logged, not served.
    let broken = db.store().await;
    let holdfast_store::Store::Sqlite(s) = &broken else { unreachable!() };
    s.pool().close().await;
    let internal = get(&router(AppState::new(broken.clone(), ApiConfig::default())), "/v1/orders").await;
    err(&internal, 500, "INTERNAL");
    assert_eq!(internal.json["error"]["message"], "internal error");

    // Re-deriving everything from the stored events logs no change when nothing changed.
    use holdfast_store::FeedReader;
    let before = store.last_change_seq().await.unwrap();
    holdfast_indexer::writer::rederive_all(&store, 31337).await.unwrap();
    assert_eq!(store.last_change_seq().await.unwrap(), before);

    // --- TX_REVERTED: waiting on a transaction a reorg removed is answered at once.
    let gone = c.lock(1, id(9), c.addr(2), 9, Address::ZERO, c.now().await + DAY, 60).await;
    index(c, &store).await;
    c.provider
        .anvil_reorg(alloy::rpc::types::anvil::ReorgOptions { depth: 1, tx_block_pairs: vec![] })
        .await
        .unwrap();
    index(c, &store).await;
    let started = Instant::now();
    let reverted = get(&r, &format!("/v1/transactions/{}?wait=10", hex(gone))).await;
    err(&reverted, 409, "TX_REVERTED");
    assert!(started.elapsed() < Duration::from_secs(5));
    schemas.check("TransactionRecord", &reverted.json["error"]["details"]);
    assert_eq!(reverted.json["error"]["retryable"], false);

    // --- TX_FAILED: with a node to ask, a transaction that failed on chain is answered at once, with or
    // without a wait; one mined without an escrow event in an indexed block is TX_NOT_FOUND at once.
    let failed = failed_release(c).await;
    let elsewhere =
        c.usdc().mint(c.addr(1), U256::from(1)).send().await.unwrap().get_receipt().await.unwrap();
    index(c, &store).await;
    let without_node = get(&r, &format!("/v1/transactions/{}", hex(failed.transaction_hash))).await;
    assert_error(&without_node, 404, "TX_NOT_FOUND");
    let with_node = router(app(c, &store, None).with_tx_lookup(crate::harness::TestNode(c.provider.clone())));
    for wait in ["", "?wait=10"] {
        let started = Instant::now();
        let reply =
            get(&with_node, &format!("/v1/transactions/{}{wait}", hex(failed.transaction_hash))).await;
        err(&reply, 409, "TX_FAILED");
        assert!(started.elapsed() < Duration::from_secs(5), "answered at once");
        assert_eq!(reply.json["error"]["retryable"], false);
        assert_eq!(reply.json["error"]["details"]["blockNumber"], failed.block_number.unwrap());
        assert_eq!(reply.json["error"]["details"]["transactionHash"], hex(failed.transaction_hash));
        let started = Instant::now();
        let reply =
            get(&with_node, &format!("/v1/transactions/{}{wait}", hex(elsewhere.transaction_hash))).await;
        err(&reply, 404, "TX_NOT_FOUND");
        assert!(started.elapsed() < Duration::from_secs(5), "answered at once");
    }
    // Not mined at all: the node cannot tell, so the wait runs its course.
    let started = Instant::now();
    err(
        &get(&with_node, &format!("/v1/transactions/{}?wait=1", hex(B256::repeat_byte(0x42)))).await,
        404,
        "TX_NOT_FOUND",
    );
    assert!(started.elapsed() >= Duration::from_secs(1));

    let all_codes: std::collections::BTreeSet<String> =
        ErrorCode::ALL.iter().map(|c| c.as_str().to_string()).collect();
    assert_eq!(seen_codes, all_codes, "every error code is exercised");
    empty_db.cleanup(empty).await;
    db.cleanup(store).await;
}

/// A transaction that fails on chain (the release of an order never locked): mined, receipt status 0, no event.
async fn failed_release(c: &Chain) -> alloy::rpc::types::TransactionReceipt {
    let escrow = c.escrow();
    let release = escrow.release(id(0x99), U256::from(1)).from(c.addr(1)).gas(300_000);
    let failed = release.send().await.unwrap().get_receipt().await.unwrap();
    assert!(!failed.status(), "the release of an unknown order fails on chain");
    failed
}

/// A node whose connection is black-holed: it never answers.
struct Hanging;

impl holdfast_api::TxLookup for Hanging {
    fn chain_id(&self) -> u64 {
        1
    }

    fn lookup(
        &self,
        _tx: B256,
    ) -> futures::future::BoxFuture<'_, Result<holdfast_api::NodeTx, holdfast_api::LookupError>> {
        Box::pin(futures::future::pending())
    }
}

/// A node that never answers holds up neither another chain's node (asked in the same request) nor the
/// request: a failed transaction is still TX_FAILED, and without a node that can tell the request ends as
/// TX_NOT_FOUND, not REQUEST_TIMEOUT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_answers_holds_up_no_transaction_lookup() {
    let c = Chain::start().await;
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let failed = failed_release(&c).await;
    index(&c, &store).await;
    let uri = format!("/v1/transactions/{}", hex(failed.transaction_hash));
    // The hanging node is asked first, as a chain listed before the one that knows the transaction.
    let both = router(
        app(&c, &store, None)
            .with_tx_lookup(Hanging)
            .with_tx_lookup(crate::harness::TestNode(c.provider.clone())),
    );
    let reply = get(&both, &uri).await;
    assert_error(&reply, 409, "TX_FAILED");
    assert_eq!(reply.json["error"]["details"]["chainId"], 31337);
    let only_hanging = router(app(&c, &store, None).with_tx_lookup(Hanging));
    assert_error(&get(&only_hanging, &uri).await, 404, "TX_NOT_FOUND");
    // Nor does it stretch a wait: the lookup at the wait's deadline gives the node 250 ms, not 2 s. (The
    // first lookup takes its 2 s, then the wait sleeps to its deadline at 3 s and checks once more: 3.25 s,
    // where a full node timeout at the deadline would end at 5 s.)
    let started = std::time::Instant::now();
    assert_error(&get(&only_hanging, &format!("{uri}?wait=3")).await, 404, "TX_NOT_FOUND");
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_secs(3), "the wait was cut short: {took:?}");
    assert!(took < std::time::Duration::from_millis(4500), "a hung node stretched a 3 s wait to {took:?}");
    db.cleanup(store).await;
}

trait EtagLike {
    fn etag_like(&self) -> bool;
}

impl EtagLike for crate::harness::Reply {
    fn etag_like(&self) -> bool {
        self.headers.get("etag").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("W/\""))
    }
}
