//! Every lifecycle path on a real anvil ends in the right derived state, on both backends; reconciliation
//! agrees with the token; re-deriving from the store alone reproduces the same orders.

use alloy::primitives::{Address, B256, U256};
use holdfast_primitives::OrderStatus;
use holdfast_store::OrderReader;

use crate::harness::{Chain, TestDb, index, snapshot};

const DAY: u64 = 86_400;

async fn lifecycle(backend: &str) {
    let c = Chain::start().await;
    let (payer, payee, arbiter, stranger) = (1usize, 2usize, 3usize, 4usize);
    let now = c.now().await;
    let by = now + DAY;
    let id = |n: u8| B256::with_last_byte(n);

    // A: allowance lock, deliver, partial release, release the rest → released.
    c.lock(payer, id(1), c.addr(payee), 100_000_000, Address::ZERO, by, 3_600).await;
    c.escrow()
        .deliver(id(1), B256::with_last_byte(0xEE))
        .from(c.addr(payee))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    c.escrow()
        .release(id(1), U256::from(40_000_000))
        .from(c.addr(payer))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    c.escrow()
        .release(id(1), U256::from(60_000_000))
        .from(c.addr(payer))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    // B: permit lock, payee refunds part, payer releases the rest → split.
    c.lock_with_permit(payer, id(2), c.addr(payee), 50, by).await;
    c.escrow()
        .refund(id(2), U256::from(20))
        .from(c.addr(payee))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    c.escrow()
        .release(id(2), U256::from(30))
        .from(c.addr(payer))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    // C: EIP-3009 lock relayed by a stranger; never delivered → expired (refunded by anyone after deliverBy).
    c.lock_with_authorization(payer, stranger, id(3), c.addr(payee), 7, now + 100).await;
    // D: delivered, dispute window passes, auto-released by a stranger.
    c.lock(payer, id(4), c.addr(payee), 9, Address::ZERO, by, 60).await;
    c.escrow()
        .deliver(id(4), B256::ZERO)
        .from(c.addr(payee))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    // E: frozen by the payee before delivery, arbiter splits.
    c.lock(payer, id(5), c.addr(payee), 1_000, c.addr(arbiter), by, 60).await;
    c.escrow()
        .freeze(id(5), B256::with_last_byte(1))
        .from(c.addr(payee))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    c.escrow()
        .resolve(id(5), U256::from(250))
        .from(c.addr(arbiter))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    // F: delivered then frozen; the arbiter never acts; the timeout default releases to the payee.
    c.lock(payer, id(6), c.addr(payee), 77, c.addr(arbiter), by, 3_600).await;
    c.escrow()
        .deliver(id(6), B256::ZERO)
        .from(c.addr(payee))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    c.escrow()
        .freeze(id(6), B256::ZERO)
        .from(c.addr(payer))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    // G: payout to a blacklisted payee is credited; the order still settles.
    let blocked = 5usize;
    c.lock(payer, id(7), c.addr(blocked), 33, Address::ZERO, by, 60).await;
    c.usdc().blacklist(c.addr(blocked)).send().await.unwrap().get_receipt().await.unwrap();
    c.escrow()
        .release(id(7), U256::from(33))
        .from(c.addr(payer))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    // H: still held.
    c.lock(payer, id(8), c.addr(payee), 5, c.addr(arbiter), by, 60).await;

    // Time passes: C expires, D's window closes, F's arbiter times out.
    c.warp(31 * DAY).await;
    c.escrow()
        .refund(id(3), U256::from(7))
        .from(c.addr(stranger))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    c.escrow()
        .release(id(4), U256::from(9))
        .from(c.addr(stranger))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    c.escrow()
        .resolveByTimeout(id(6))
        .from(c.addr(stranger))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    let db = TestDb::of(backend).await;
    let store = db.store().await;
    let indexer = index(&c, &store).await;

    let get = |n: u8| {
        let store = store.clone();
        async move {
            store.order(Some(31337), None, B256::with_last_byte(n)).await.unwrap().expect("order indexed")
        }
    };
    let a = get(1).await;
    assert_eq!(a.status, OrderStatus::Released);
    assert_eq!(a.released, U256::from(100_000_000));
    assert_eq!(a.remaining, U256::ZERO);
    assert_eq!(a.evidence, Some(B256::with_last_byte(0xEE)));
    assert_eq!(
        a.steps.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(),
        ["delivered", "released", "released"]
    );
    let b = get(2).await;
    assert_eq!((b.status, b.released, b.refunded), (OrderStatus::Split, U256::from(30), U256::from(20)));
    let cc = get(3).await;
    assert_eq!((cc.status, cc.refunded, cc.payer), (OrderStatus::Expired, U256::from(7), c.addr(payer)));
    let d = get(4).await;
    assert_eq!((d.status, d.released), (OrderStatus::Released, U256::from(9)));
    assert!(d.releasable_at.is_some());
    let e = get(5).await;
    assert_eq!((e.status, e.released, e.refunded), (OrderStatus::Split, U256::from(250), U256::from(750)));
    assert_eq!(e.frozen_by, Some(c.addr(payee)));
    let f = get(6).await;
    assert_eq!((f.status, f.released, f.resolved_by_timeout), (OrderStatus::Released, U256::from(77), true));
    let g = get(7).await;
    assert_eq!((g.status, g.deferred), (OrderStatus::Released, U256::from(33)));
    let h = get(8).await;
    assert_eq!((h.status, h.remaining, h.arbiter), (OrderStatus::Held, U256::from(5), Some(c.addr(arbiter))));
    for o in [&a, &b, &cc, &d, &e, &f, &g, &h] {
        assert!(o.anomalies.is_empty(), "unexpected anomaly on {}: {:?}", o.order_id, o.anomalies);
    }

    // Reconciliation: the escrow's balance equals the remainders (5) plus credits (33).
    let rec = indexer.reconcile().await.unwrap();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].expected, U256::from(38));
    assert!(rec[0].ok, "reconciliation mismatch: {:?}", rec[0]);

    // Re-deriving everything from the stored events, with no RPC, gives the same orders.
    let before = snapshot(&store).await;
    assert_eq!(before.len(), 8);
    let replayed = holdfast_indexer::writer::rederive_all(&store, 31337).await.unwrap();
    // 4 (A) + 3 (B) + 2 (C) + 3 (D) + 3 (E) + 4 (F) + 3 (G, with PayoutDeferred) + 1 (H).
    assert_eq!(replayed, 23);
    assert_eq!(snapshot(&store).await, before);

    // Indexing again is a no-op: nothing duplicated.
    let (events, orders) = store.counts(31337).await.unwrap();
    indexer.sync_to_head().await.unwrap();
    assert_eq!(store.counts(31337).await.unwrap(), (events, orders));

    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_sqlite() {
    lifecycle("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_postgres() {
    lifecycle("postgres").await;
}
