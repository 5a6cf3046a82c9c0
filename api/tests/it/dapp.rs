//! What a dApp developer ran into in the first hour (issue 12, the API and the stream): validation errors
//! that name the parameter, a stream resumed beyond the end of the change log (resync), a status-filtered
//! stream that reports orders leaving the filter, and a transaction wait that ends at once when a reorg
//! removed the transaction. Against anvil and a real SQLite store filled by the real indexer.

use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, B256, U256},
    providers::ext::AnvilApi,
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

// --- Item 7: resuming beyond the end of the change log answers with a `resync` event, then the stream goes on.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_resumed_beyond_the_log_resyncs() {
    let c = Chain::start().await;
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let by = c.now().await + DAY;
    c.lock(1, id(1), c.addr(2), 1_000, Address::ZERO, by, 60).await;
    c.lock(1, id(2), c.addr(2), 2_000, Address::ZERO, by, 60).await;
    index(&c, &store).await;
    let last = store.last_change_seq().await.unwrap();
    assert!(last >= 2);
    let r = router(app(&c, &store, None));
    let schemas = Schemas::new(&get(&r, "/openapi.json").await.json);
    let within = Duration::from_secs(5);

    // A client left open across a store reset (or asking for 99999), by header and by `after`.
    let mut streams = Vec::new();
    for (uri, headers) in
        [("/v1/stream", vec![("last-event-id", "99999")]), ("/v1/stream?after=99999", vec![])]
    {
        let mut s = SseStream::open(&r, uri, &headers).await;
        let e = next_change(&mut s, within, "resync").await;
        assert_eq!(e.event, "resync", "{uri}: {e:?}");
        schemas.check("ResyncRecord", &e.data);
        assert_eq!(e.id, Some(last.to_string()), "{uri}: resumable from the current end");
        assert_eq!((e.data["after"].as_i64(), e.data["lastSeq"].as_i64()), (Some(99999), Some(last)));
        assert!(drain(&mut s, Duration::from_millis(300)).await.is_empty(), "{uri}: nothing before a change");
        streams.push(s);
    }
    // ... and then it receives the changes after the current end, not nothing until the log passes 99999.
    c.lock(1, id(3), c.addr(2), 3_000, Address::ZERO, by, 60).await;
    index(&c, &store).await;
    for s in &mut streams {
        let e = next_change(s, Duration::from_secs(10), "the next update").await;
        assert_eq!(
            (e.event.as_str(), e.data["orderId"].as_str()),
            ("order.updated", Some(hex(id(3)).as_str()))
        );
        assert_eq!(e.id, Some((last + 1).to_string()));
    }

    // Positions within the log resume as before, without a resync (the end itself, and an earlier one).
    let end = (last + 1).to_string();
    let mut s = SseStream::open(&r, "/v1/stream", &[("last-event-id", &end)]).await;
    assert!(drain(&mut s, Duration::from_millis(500)).await.is_empty());
    let mut s = SseStream::open(&r, &format!("/v1/stream?after={last}"), &[]).await;
    let e = next_change(&mut s, within, "the last update").await;
    assert_eq!((e.event.as_str(), e.id), ("order.updated", Some(end.clone())));

    // An empty log (a store just reset): the client continues from 0.
    let empty_db = TestDb::sqlite().await;
    let empty = empty_db.store().await;
    let er = router(app(&c, &empty, None));
    let mut s = SseStream::open(&er, "/v1/stream", &[("last-event-id", &end)]).await;
    let e = next_change(&mut s, within, "resync").await;
    assert_eq!((e.event.as_str(), e.id, e.data["lastSeq"].as_i64()), ("resync", Some("0".into()), Some(0)));
    empty_db.cleanup(empty).await;
    db.cleanup(store).await;
}

// --- Item 9: waiting on a transaction a reorg removed ends at once with TX_REVERTED (not retryable).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_removed_by_a_reorg_ends_the_wait() {
    let c = Chain::start().await;
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let by = c.now().await + DAY;
    let tx = c.lock(1, id(1), c.addr(2), 1_000, Address::ZERO, by, 60).await;
    index(&c, &store).await;
    let r = router(app(&c, &store, None));
    let schemas = Schemas::new(&get(&r, "/openapi.json").await.json);
    let uri = |q: &str| format!("/v1/transactions/{}?{q}", hex(tx));
    assert_eq!(get(&r, &uri("wait=1")).await.status, 200);

    // A wait open when the reorg happens is answered as soon as the revert is indexed.
    let waiting = tokio::spawn({
        let (r, u) = (r.clone(), uri("wait=30&finality=safe"));
        async move {
            let started = Instant::now();
            (get(&r, &u).await, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    reorg_last_block(&c).await;
    index(&c, &store).await;
    let (t, took) = tokio::time::timeout(Duration::from_secs(15), waiting).await.expect("answered").unwrap();
    assert_error(&t, 409, "TX_REVERTED");
    assert!(took < Duration::from_secs(10), "answered at the revert, not when the wait ran out: {took:?}");
    schemas.check("ErrorEnvelope", &t.json);
    schemas.check("TransactionRecord", &t.json["error"]["details"]);
    assert_eq!(t.json["error"]["retryable"], false);
    assert_eq!(t.json["error"]["details"]["status"], "reverted");
    assert!(t.headers.get("retry-after").is_none());

    // Waits that start after the revert: answered at once, at any finality, and `finality` alone too.
    for q in ["wait=10", "wait=10&finality=finalized", "finality=safe"] {
        let started = Instant::now();
        let t = get(&r, &uri(q)).await;
        assert_error(&t, 409, "TX_REVERTED");
        assert!(started.elapsed() < Duration::from_secs(2), "{q}: {:?}", started.elapsed());
    }
    // A plain read still shows the record.
    let t = get(&r, &format!("/v1/transactions/{}", hex(tx))).await;
    assert_eq!((t.status.as_u16(), t.json["status"].as_str()), (200, Some("reverted")));
    db.cleanup(store).await;
}

// --- Item 8: a stream filtered by status reports the orders that leave the filter (`order.left`).

/// `event orderId status` of each event, with the order ids shortened to their last byte.
fn summary(events: &[Sse]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let o = e.data["orderId"].as_str().map_or(String::new(), |o| o[o.len() - 2..].to_uppercase());
            format!("{} {o} {}", e.event, e.data["order"]["status"].as_str().unwrap_or("null"))
        })
        .collect()
}

async fn orders_leaving_the_filter(backend: &str) {
    let c = Chain::start().await;
    let db = TestDb::of(backend).await;
    let store = db.store().await;
    let by = c.now().await + DAY;
    let e = c.escrow();
    let (a, b, cc) = (id(0x0A), id(0x0B), id(0x0C));
    c.lock(1, a, c.addr(2), 1_000, Address::ZERO, by, 60).await;
    c.lock(1, b, c.addr(2), 2_000, Address::ZERO, by, 60).await;
    index(&c, &store).await;
    let r = router(app(&c, &store, None));
    let schemas = Schemas::new(&get(&r, "/openapi.json").await.json);
    let quiet = Duration::from_millis(1500);

    // A dApp lists the held orders (A and B) and follows `?status=held` from now on.
    let mut live = SseStream::open(&r, "/v1/stream?status=held", &[]).await;
    // A is delivered, B released at once: both leave the filter, with their new state.
    send!(e.deliver(a, B256::ZERO).from(c.addr(2)));
    send!(e.release(b, U256::from(2_000)).from(c.addr(1)));
    index(&c, &store).await;
    let got = drain(&mut live, quiet).await;
    assert_eq!(summary(&got), ["order.left 0A delivered", "order.left 0B released"], "{got:#?}");
    for ev in &got {
        schemas.check("ChangeRecord", &ev.data);
        assert_eq!(ev.data["type"], "order.left");
        assert_eq!(ev.data["seq"].to_string(), ev.id.clone().unwrap());
    }
    let left_a = got[0].id.clone().unwrap();
    // A, already gone from the list, is released: nothing more about it. C is locked: held.
    send!(e.release(a, U256::from(1_000)).from(c.addr(1)));
    c.lock(1, cc, c.addr(2), 3_000, Address::ZERO, by, 60).await;
    index(&c, &store).await;
    assert_eq!(summary(&drain(&mut live, quiet).await), ["order.updated 0C held"]);
    // C is delivered (leaves), the delivery is reorged away (the retraction brings it back as held), and C
    // is delivered again: it leaves again, as the last state the stream announced for it was held.
    send!(e.deliver(cc, B256::ZERO).from(c.addr(2)));
    index(&c, &store).await;
    assert_eq!(summary(&drain(&mut live, quiet).await), ["order.left 0C delivered"]);
    reorg_last_block(&c).await;
    index(&c, &store).await;
    assert_eq!(summary(&drain(&mut live, quiet).await), ["order.retracted 0C held"]);
    send!(e.deliver(cc, B256::with_last_byte(1)).from(c.addr(2)));
    index(&c, &store).await;
    assert_eq!(summary(&drain(&mut live, quiet).await), ["order.left 0C delivered"]);

    // The same from the log: a replay, a replay with a fixed-field filter, and a resume in the middle.
    let held_history = [
        "order.updated 0A held",
        "order.updated 0B held",
        "order.left 0A delivered",
        "order.left 0B released",
        "order.updated 0C held",
        "order.left 0C delivered",
        "order.retracted 0C held",
        "order.left 0C delivered",
    ];
    let payer = format!("{:#x}", c.addr(1));
    for uri in [
        "/v1/stream?after=0&status=held".to_string(),
        format!("/v1/stream?after=0&status=held&payer={payer}"),
    ] {
        let mut s = SseStream::open(&r, &uri, &[]).await;
        assert_eq!(summary(&drain(&mut s, quiet).await), held_history, "{uri}");
    }
    let mut s = SseStream::open(&r, "/v1/stream?status=held", &[("last-event-id", &left_a)]).await;
    assert_eq!(summary(&drain(&mut s, quiet).await), held_history[3..], "resumed after A left");
    // Another status: orders enter and leave it; the retraction is sent whatever its status.
    let mut s = SseStream::open(&r, "/v1/stream?after=0&status=delivered", &[]).await;
    assert_eq!(
        summary(&drain(&mut s, quiet).await),
        [
            "order.updated 0A delivered",
            "order.left 0A released",
            "order.updated 0C delivered",
            "order.retracted 0C held",
            "order.updated 0C delivered",
        ]
    );
    // Without a status filter nothing leaves: updates and the retraction only.
    let mut s = SseStream::open(&r, "/v1/stream?after=0", &[]).await;
    let all = summary(&drain(&mut s, quiet).await);
    assert!(all.iter().all(|e| !e.starts_with("order.left")), "{all:#?}");
    assert_eq!(all.len(), 9, "{all:#?}");
    // A filter no order's fixed fields match sends nothing, leaving included.
    let mut s = SseStream::open(&r, &format!("/v1/stream?after=0&status=held&payee={payer}"), &[]).await;
    assert!(drain(&mut s, quiet).await.is_empty());
    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_stream_reports_orders_leaving_it_sqlite() {
    orders_leaving_the_filter("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_stream_reports_orders_leaving_it_postgres() {
    orders_leaving_the_filter("postgres").await;
}

// --- Items 10 and 11: deferred payouts with their withdrawal, an account's credits, reconciliation.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_payouts_credits_and_reconciliation_on_sqlite() {
    deferred_payouts_show_their_withdrawal_and_credits_and_reconciliation_are_served(TestDb::sqlite().await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_payouts_credits_and_reconciliation_on_postgres() {
    deferred_payouts_show_their_withdrawal_and_credits_and_reconciliation_are_served(
        TestDb::postgres().await,
    )
    .await;
}

async fn deferred_payouts_show_their_withdrawal_and_credits_and_reconciliation_are_served(db: TestDb) {
    let c = Chain::start().await;
    let store = db.store().await;
    let r = router(app(&c, &store, None));
    let schemas = Schemas::new(&get(&r, "/openapi.json").await.json);
    let (payer, payee) = (1usize, 5usize);
    let deliver_by = c.now().await + DAY;
    c.lock(payer, id(0xd1), c.addr(payee), 33_000_000, Address::ZERO, deliver_by, 60).await;
    c.usdc().blacklist(c.addr(payee)).send().await.unwrap().get_receipt().await.unwrap();
    let release = c
        .escrow()
        .release(id(0xd1), U256::from(33_000_000))
        .from(c.addr(payer))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let indexer = index(&c, &store).await;
    indexer.reconcile().await.unwrap();

    // Credited, not yet withdrawn: on the order, on the payment and on the account.
    let order = get(&r, &format!("/v1/orders/{}", hex(id(0xd1)))).await;
    assert_eq!(order.status, 200, "{}", order.text);
    schemas.check("OrderRecord", &order.json);
    let payouts = &order.json["deferredPayouts"];
    assert_eq!(payouts.as_array().map(Vec::len), Some(1), "one deferred payout: {}", order.json);
    assert_eq!(payouts[0]["recipient"], format!("{}", c.addr(payee)));
    assert_eq!(payouts[0]["amount"], "33000000");
    assert_eq!(payouts[0]["amountDecimal"], "33");
    assert_eq!(payouts[0]["credited"]["transactionHash"], hex(release.transaction_hash));
    assert!(payouts[0]["withdrawn"].is_null(), "not withdrawn yet: {}", payouts);
    let payment = get(&r, &format!("/v1/orders/{}/payment", hex(id(0xd1)))).await;
    schemas.check("PaymentRecord", &payment.json);
    assert_eq!(payment.json["deferred"], "33000000");
    assert_eq!(payment.json["deferredPayouts"], *payouts);
    let credits_uri = format!("/v1/accounts/{}/credits", c.addr(payee));
    let credits = get(&r, &credits_uri).await;
    assert_eq!(credits.status, 200, "{}", credits.text);
    schemas.check("AccountCredits", &credits.json);
    let book = &credits.json["data"][0];
    assert_eq!(
        (book["withdrawable"].as_str(), book["withdrawableDecimal"].as_str()),
        (Some("33000000"), Some("33"))
    );
    assert_eq!(book["history"].as_array().map(Vec::len), Some(1));
    assert_eq!(book["history"][0]["kind"], "credited");
    assert_eq!(book["history"][0]["orderId"], hex(id(0xd1)));
    assert!(book["history"][0]["withdrawnIn"].is_null());
    // An order without deferred payouts has no such field; an account never credited has no entries.
    let none = get(&r, &format!("/v1/accounts/{}/credits", c.addr(payer))).await;
    assert_eq!(none.json["data"], serde_json::json!([]));
    let bad = get(&r, "/v1/accounts/0x1234/credits").await;
    assert_error(&bad, 400, "VALIDATION_ERROR");

    // Reconciliation: the escrow holds exactly the credit.
    let rec = get(&r, "/v1/reconciliation").await;
    assert_eq!(rec.status, 200, "{}", rec.text);
    schemas.check("ReconciliationList", &rec.json);
    let first = &rec.json["data"][0];
    assert_eq!(first["result"], "match", "{}", rec.json);
    assert_eq!(
        (first["liabilities"].as_str(), first["balance"].as_str()),
        (Some("33000000"), Some("33000000"))
    );
    assert_eq!(first["escrow"], format!("{}", c.escrow));

    // The payee is cleared and withdraws; someone also sends 5 base units straight to the escrow.
    c.usdc().unBlacklist(c.addr(payee)).send().await.unwrap().get_receipt().await.unwrap();
    let withdrawal = c
        .escrow()
        .withdraw(c.addr(payee))
        .from(c.addr(payee))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    c.usdc()
        .transfer(c.escrow, U256::from(5))
        .from(c.addr(payer))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let indexer = index(&c, &store).await;
    indexer.reconcile().await.unwrap();

    let order = get(&r, &format!("/v1/orders/{}", hex(id(0xd1)))).await;
    let withdrawn = &order.json["deferredPayouts"][0]["withdrawn"];
    assert_eq!(withdrawn["transactionHash"], hex(withdrawal.transaction_hash), "{}", order.json);
    assert_eq!(withdrawn["blockNumber"], withdrawal.block_number.unwrap());
    let list = get(&r, &format!("/v1/orders?payee={}", c.addr(payee))).await;
    assert_eq!(list.json["data"][0]["deferredPayouts"], order.json["deferredPayouts"]);
    let credits = get(&r, &credits_uri).await;
    schemas.check("AccountCredits", &credits.json);
    let book = &credits.json["data"][0];
    assert_eq!(book["withdrawable"], "0");
    let kinds: Vec<&str> =
        book["history"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["credited", "withdrawn"]);
    assert_eq!(book["history"][0]["withdrawnIn"], hex(withdrawal.transaction_hash));
    assert_eq!(book["history"][1]["amount"], "33000000");

    let rec = get(&r, "/v1/reconciliation").await;
    let first = &rec.json["data"][0];
    assert_eq!(first["result"], "surplus", "{}", rec.json);
    assert_eq!((first["liabilities"].as_str(), first["balance"].as_str()), (Some("0"), Some("5")));
    assert_eq!(first["difference"], "5");
    // `/readyz` carries the same report (in `error.details` when not ready).
    let ready = get(&r, "/readyz").await;
    let report = if ready.status == 200 { &ready.json } else { &ready.json["error"]["details"] };
    let served = &report["reconciliation"][0];
    for field in ["escrow", "blockNumber", "liabilities", "balance", "difference", "result", "checkedAt"] {
        assert_eq!(served[field], first[field], "{field} in /readyz: {}", ready.text);
    }
    db.cleanup(store).await;
}
