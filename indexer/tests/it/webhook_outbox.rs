//! The webhook outbox, written by the indexer in the transaction of each step: who is owed which change,
//! when a delivery becomes due (finality, order within an order), and what a reorg does to deliveries still
//! queued (cancelled) or already seen (a retraction follows). Store-level: no HTTP here (the `holdfast` tests
//! deliver to a real receiver).

use alloy::{
    primitives::{Address, B256},
    providers::ext::AnvilApi,
    rpc::types::anvil::ReorgOptions,
};
use holdfast_indexer::sync::Indexer;
use holdfast_primitives::{
    ChangeKind, Finality, OrderStatus, bindings::IHoldfastEscrow, webhook::SubscriptionFilter,
};
use holdfast_store::{
    AfterAttempt, Attempt, AttemptResult, Claim, DeliveryStatus, NewSubscription, Store, Subscription,
    WebhookStore, now_ms,
};

use crate::harness::{Chain, TestDb};

async fn subscribe(store: &Store, filter: SubscriptionFilter, finality: Finality) -> Subscription {
    store
        .add_subscription(&NewSubscription {
            url: "https://merchant.example/hooks".into(),
            description: String::new(),
            filter,
            finality,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        })
        .await
        .unwrap()
}

/// Claim everything due now (a lease of a minute).
async fn due(store: &Store) -> Vec<Claim> {
    store.claim_deliveries(now_ms(), 60_000, 100).await.unwrap()
}

async fn record(store: &Store, c: &Claim, result: AttemptResult, after: AfterAttempt) {
    let attempt = Attempt {
        delivery_id: c.delivery.id,
        attempted_at: now_ms(),
        latency_ms: 1,
        status_code: Some(if result == AttemptResult::Delivered { 204 } else { 503 }),
        result,
        error: None,
        response: None,
    };
    store.record_attempt(&attempt, &format!("body of {}", c.delivery.message_id()), &after).await.unwrap();
}

/// (kind, status after the change) of a subscription's deliveries, oldest first, with their status.
async fn queue(store: &Store, s: &Subscription) -> Vec<(ChangeKind, Option<OrderStatus>, DeliveryStatus)> {
    let mut d = store.deliveries(s.id, 100).await.unwrap();
    d.reverse();
    d.into_iter().map(|d| (d.kind, d.state.map(|o| o.status), d.status)).collect()
}

async fn outbox(backend: &str) {
    use ChangeKind::{OrderRetracted as Retracted, OrderUpdated as Updated};
    use DeliveryStatus::{Cancelled, Delivered, Pending};
    let c = Chain::start().await;
    let db = TestDb::of(backend).await;
    let store = db.store().await;
    let indexer = Indexer::new(c.config(false), store.clone()).await.unwrap();
    let deliver_by = c.now().await + 86_400;
    // A lock from before any subscription is owed to nobody.
    c.lock(1, B256::with_last_byte(0xa0), c.addr(7), 5, Address::ZERO, deliver_by, 60).await;
    indexer.sync_to_head().await.unwrap();

    let all = subscribe(&store, SubscriptionFilter::default(), Finality::Pending).await;
    let other_payer = subscribe(
        &store,
        SubscriptionFilter { payer: Some(c.addr(3)), ..Default::default() },
        Finality::Pending,
    )
    .await;
    let releases = subscribe(
        &store,
        SubscriptionFilter { statuses: vec![OrderStatus::Released], ..Default::default() },
        Finality::Pending,
    )
    .await;
    let finalized = subscribe(&store, SubscriptionFilter::default(), Finality::Finalized).await;

    // Order 1: locked, then released, one step each.
    let one = B256::with_last_byte(1);
    c.lock(1, one, c.addr(7), 1_000, Address::ZERO, deliver_by, 60).await;
    indexer.sync_to_head().await.unwrap();
    c.release_all(1, one).await;
    indexer.sync_to_head().await.unwrap();

    let held = Some(OrderStatus::Held);
    let released = Some(OrderStatus::Released);
    assert_eq!(queue(&store, &all).await, vec![(Updated, held, Pending), (Updated, released, Pending)]);
    assert!(queue(&store, &other_payer).await.is_empty(), "another payer's subscription was owed nothing");
    assert_eq!(queue(&store, &releases).await, vec![(Updated, released, Pending)]);
    assert_eq!(queue(&store, &finalized).await.len(), 2);

    // Due: one per (subscription, order), the earliest; the finalized subscription waits.
    let claims = due(&store).await;
    let mut got: Vec<_> =
        claims.iter().map(|c| (c.subscription.id, c.delivery.state.as_ref().unwrap().status)).collect();
    got.sort_by_key(|(id, _)| *id);
    assert_eq!(got, vec![(all.id, OrderStatus::Held), (releases.id, OrderStatus::Released)]);
    assert!(due(&store).await.is_empty(), "leased deliveries are not claimed twice");
    let first = claims.iter().find(|c| c.subscription.id == all.id).unwrap();
    assert_eq!(first.delivery.message_id(), format!("msg_{}_{}", all.id, first.delivery.change_seq));
    // A failed attempt keeps the order's later change behind it.
    record(&store, first, AttemptResult::Failed, AfterAttempt::RetryAt(now_ms() - 1)).await;
    let again = due(&store).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.id, first.delivery.id, "the failed delivery is retried before the next one");
    assert_eq!(
        again[0].delivery.payload.as_deref(),
        Some(format!("body of {}", first.delivery.message_id()).as_str())
    );
    record(&store, &again[0], AttemptResult::Delivered, AfterAttempt::Delivered).await;
    let next = due(&store).await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].delivery.state.as_ref().unwrap().status, OrderStatus::Released);
    // The receiver of `all` sees the release; the one of `releases` never does before the reorg.
    record(&store, &next[0], AttemptResult::Delivered, AfterAttempt::Delivered).await;
    assert_eq!(store.attempts(first.delivery.id).await.unwrap().len(), 2);

    // A reorg drops the release's block.
    c.provider.anvil_reorg(ReorgOptions { depth: 1, tx_block_pairs: vec![] }).await.unwrap();
    assert_eq!(
        c.escrow().getOrder(one).call().await.unwrap().order.status,
        IHoldfastEscrow::Status::Held,
        "the reorg did not revert the release"
    );
    indexer.sync_to_head().await.unwrap();
    // `all` saw the release: a retraction follows, carrying the order as it is now.
    assert_eq!(
        queue(&store, &all).await,
        vec![(Updated, held, Delivered), (Updated, released, Delivered), (Retracted, held, Pending)]
    );
    // `releases` never saw it: cancelled, nothing to retract.
    assert_eq!(queue(&store, &releases).await, vec![(Updated, released, Cancelled)]);
    // `finalized` was never sent the release: cancelled; the lock still waits for finality.
    assert_eq!(
        queue(&store, &finalized).await,
        vec![(Updated, held, Pending), (Updated, released, Cancelled)]
    );
    let retraction = due(&store).await;
    assert_eq!(retraction.len(), 1);
    assert_eq!(retraction[0].delivery.kind, Retracted);
    record(&store, &retraction[0], AttemptResult::Delivered, AfterAttempt::Delivered).await;

    // Once the lock's block is finalized, the finalized subscription gets it, and only it.
    c.provider.anvil_mine(Some(70), None).await.unwrap();
    indexer.sync_to_head().await.unwrap();
    let fin = due(&store).await;
    assert_eq!(fin.len(), 1);
    assert_eq!((fin[0].subscription.id, fin[0].delivery.kind), (finalized.id, Updated));

    // 410 Gone disables the subscription; its backlog is kept for a resume.
    record(&store, &fin[0], AttemptResult::Gone, AfterAttempt::Disable("410 Gone".into())).await;
    let s = store.subscription(finalized.id).await.unwrap().unwrap();
    assert_eq!((s.state.as_str(), s.state_reason.as_deref()), ("disabled", Some("410 Gone")));
    assert!(due(&store).await.is_empty(), "a disabled subscription is not delivered to");
    assert_eq!(store.queue_stats().await.unwrap().pending, 1);
    assert!(
        store
            .set_subscription_state(finalized.id, holdfast_store::SubscriptionState::Active, None)
            .await
            .unwrap()
    );
    assert_eq!(due(&store).await.len(), 1, "resumed: its backlog is due again");

    // Removing a subscription removes its queue.
    assert!(store.remove_subscription(all.id).await.unwrap());
    assert!(store.deliveries(all.id, 10).await.unwrap().is_empty());
    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_follows_the_change_log_sqlite() {
    outbox("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_follows_the_change_log_postgres() {
    outbox("postgres").await;
}
