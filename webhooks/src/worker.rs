//! The delivery worker: claims due deliveries from the store's outbox (with a lease, so that several
//! workers share one queue), renders each as the change record the API's stream sends, signs it (Standard
//! Webhooks), posts it, and records the attempt and what follows it: delivered; retried later with
//! exponential backoff and jitter (a longer `Retry-After` wins); or the subscription disabled (`410 Gone`,
//! or failing past the retry horizon; its backlog stays queued for a resume).
//!
//! Delivery is at least once: a worker that dies between the POST and the record leaves the lease to
//! expire, and the delivery is sent again with the same `webhook-id` and the same body.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use futures::StreamExt;
use holdfast_api::{
    ApiConfig,
    model::{ChangeRecord, ChangeType, OrderRecord},
};
use holdfast_primitives::{ChangeKind, Heights, IndexNotification};
use holdfast_store::{
    AfterAttempt, Attempt as AttemptRow, AttemptRecord, AttemptResult, Claim, Delivery, FeedReader, Store,
    WebhookStore, now_ms,
};
use tokio::sync::{broadcast, mpsc};
use url::Url;

use crate::{Outcome, Signer, backoff::retry_delay, client::post, http_client};

/// How the worker delivers.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Deliver to loopback, private and link-local targets too (development only).
    pub allow_private_targets: bool,
    /// Per request (connect, send, response headers).
    pub timeout: Duration,
    /// A delivery failing for longer than this (since its first attempt) disables its subscription.
    pub horizon: Duration,
    /// Requests in flight at once (across orders and endpoints; one order's deliveries go out in order).
    pub concurrency: usize,
    /// Deliveries claimed per pass (their lease covers the whole pass: see `lease`).
    pub batch: u32,
    /// How often the queue is read without a wake-up (the safety net; in `holdfast run` commits wake it).
    pub poll_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            timeout: Duration::from_secs(10),
            horizon: Duration::from_secs(3 * 24 * 3600),
            concurrency: 64,
            batch: 256,
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Delivers the outbox of one store.
#[derive(Debug, Clone)]
pub struct Worker {
    store: Store,
    api: ApiConfig,
    cfg: WorkerConfig,
    client: reqwest::Client,
    signals: Option<tokio::sync::watch::Receiver<u64>>,
}

/// The lease of a claimed delivery: longer than a whole pass can take (the claimed deliveries go out
/// `concurrency` at a time, each within the request timeout, then are recorded), so that only a dead
/// worker's claims are taken over by another worker, never those still waiting their turn.
fn lease(cfg: &WorkerConfig) -> Duration {
    let rounds = cfg.batch.div_ceil(u32::try_from(cfg.concurrency.max(1)).unwrap_or(u32::MAX)).max(1);
    cfg.timeout * (rounds + 1) + Duration::from_secs(5)
}

impl Worker {
    /// A worker over `store`; `api` renders the order records (token symbols and decimals).
    pub fn new(store: Store, api: ApiConfig, cfg: WorkerConfig) -> crate::Result<Self> {
        let client = http_client(cfg.allow_private_targets, cfg.timeout)?;
        Ok(Self { store, api, cfg, client, signals: None })
    }

    /// Also wake on another process's commits (`Store::commit_signals`: Postgres `LISTEN`), as `holdfast
    /// deliver` does beside a separate indexer.
    pub fn with_commit_signals(mut self, rx: tokio::sync::watch::Receiver<u64>) -> Self {
        self.signals = Some(rx);
        self
    }

    /// One pass: claim what is due, deliver it (concurrently), record every attempt. Returns how many were
    /// attempted.
    ///
    /// Attempts are recorded as they finish, several to a transaction: whatever finished while the previous
    /// record was being written goes into the next one (one commit for many attempts under load, at once for
    /// a lone delivery).
    pub async fn deliver_due(&self) -> holdfast_store::Result<usize> {
        let lease_ms = lease(&self.cfg).as_millis() as i64;
        let claims = self.store.claim_deliveries(now_ms(), lease_ms, self.cfg.batch).await?;
        if claims.is_empty() {
            return Ok(0);
        }
        let heights: HashMap<u64, Heights> =
            self.store.chain_metas().await?.into_iter().map(|m| (m.chain_id, m.heights)).collect();
        let n = claims.len();
        let (done_tx, mut done) = mpsc::unbounded_channel::<AttemptRecord>();
        let send = {
            let heights = &heights;
            async move {
                let mut attempts = futures::stream::iter(claims)
                    .map(|c| self.attempt(c, heights))
                    .buffer_unordered(self.cfg.concurrency.max(1));
                while let Some(r) = attempts.next().await {
                    let _ = done_tx.send(r);
                }
            }
        };
        let record = async {
            let mut failed = None;
            let mut records = Vec::new();
            while done.recv_many(&mut records, n).await > 0 {
                // A failed record leaves the lease to expire: the delivery is sent again (same id), never lost.
                if let Err(e) = self.store.record_attempts(&records).await {
                    failed.get_or_insert(e);
                }
                records.clear();
            }
            failed
        };
        let ((), failed) = tokio::join!(send, record);
        match failed {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Sign and post one claimed delivery; the attempt to record.
    async fn attempt(&self, c: Claim, heights: &HashMap<u64, Heights>) -> AttemptRecord {
        let d = &c.delivery;
        let body = match &d.payload {
            Some(p) => p.clone(),
            None => render(d, &self.api, heights.get(&d.chain_id).copied().unwrap_or_default()),
        };
        let now_s = now_ms() / 1000;
        let (current, previous) = c.subscription.signing_secrets(now_s as u64);
        let started = Instant::now();
        let attempted_at = now_ms();
        let sent = match (Signer::new(current, previous), Url::parse(&c.subscription.url)) {
            (Ok(signer), Ok(url)) => match signer.headers(&d.message_id(), now_s, body.as_bytes()) {
                Ok(headers) => Ok(post(
                    &self.client,
                    &url,
                    headers,
                    body.clone().into_bytes(),
                    self.cfg.allow_private_targets,
                )
                .await),
                Err(e) => Err(format!("cannot sign: {e}")),
            },
            (Err(e), _) => Err(format!("invalid signing secret: {e}")),
            (_, Err(e)) => Err(format!("invalid target URL: {e}")),
        };
        let (attempt, after) = match sent {
            Ok(a) => {
                let after = match a.outcome {
                    Outcome::Delivered => AfterAttempt::Delivered,
                    Outcome::Gone => AfterAttempt::Disable("the endpoint answered 410 Gone".into()),
                    Outcome::Retry => {
                        self.retry_or_disable(d, attempted_at, a.retry_after, a.error.as_deref())
                    }
                };
                let result = match a.outcome {
                    Outcome::Delivered => AttemptResult::Delivered,
                    Outcome::Gone => AttemptResult::Gone,
                    Outcome::Retry => AttemptResult::Failed,
                };
                let row = AttemptRow {
                    delivery_id: d.id,
                    attempted_at,
                    latency_ms: a.latency.as_millis() as u64,
                    status_code: a.status,
                    result,
                    error: a.error,
                    response: a.response_excerpt,
                };
                (row, after)
            }
            // Nothing was sent: the subscription itself is broken, so it is disabled with the reason.
            Err(reason) => {
                let row = AttemptRow {
                    delivery_id: d.id,
                    attempted_at,
                    latency_ms: started.elapsed().as_millis() as u64,
                    status_code: None,
                    result: AttemptResult::Failed,
                    error: Some(reason.clone()),
                    response: None,
                };
                (row, AfterAttempt::Disable(reason))
            }
        };
        metrics::counter!("holdfast_webhook_attempts_total", "result" => attempt.result.as_str())
            .increment(1);
        metrics::histogram!("holdfast_webhook_attempt_duration_seconds")
            .record(attempt.latency_ms as f64 / 1000.0);
        match &after {
            AfterAttempt::Delivered => {
                metrics::histogram!("holdfast_webhook_delivery_lag_seconds")
                    .record((attempted_at - d.created_at).max(0) as f64 / 1000.0);
            }
            AfterAttempt::Disable(reason) => {
                tracing::warn!(subscription = c.subscription.id, %reason, "webhook subscription disabled");
            }
            AfterAttempt::RetryAt(_) => {}
        }
        AttemptRecord { attempt, payload: body, after }
    }

    /// After a failed attempt: the next try, unless the delivery has been failing past the horizon.
    fn retry_or_disable(
        &self,
        d: &Delivery,
        now: i64,
        retry_after: Option<Duration>,
        error: Option<&str>,
    ) -> AfterAttempt {
        let first = d.first_attempt_at.unwrap_or(now);
        if now - first >= self.cfg.horizon.as_millis() as i64 {
            let why = error.unwrap_or("no 2xx answer");
            return AfterAttempt::Disable(format!(
                "failing for longer than the retry horizon ({} s): {why}",
                self.cfg.horizon.as_secs()
            ));
        }
        AfterAttempt::RetryAt(now + retry_delay(d.attempts + 1, retry_after).as_millis() as i64)
    }

    /// Deliver until `shutdown`: a pass whenever the indexer commits (`wake`, in the same process), and every
    /// `poll_interval` regardless. Store faults are logged and retried; they never end the worker.
    pub async fn run(
        mut self,
        mut wake: Option<broadcast::Receiver<IndexNotification>>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut fault_since: Option<Instant> = None;
        let mut last_stats: Option<Instant> = None;
        loop {
            let mut full = false;
            match self.deliver_due().await {
                Ok(n) => {
                    if let Some(since) = fault_since.take() {
                        tracing::info!(after_s = since.elapsed().as_secs(), "webhook queue reachable again");
                    }
                    full = n >= self.cfg.batch as usize;
                }
                Err(e) => {
                    if fault_since.is_none() {
                        tracing::warn!(
                            error = &e as &dyn std::error::Error,
                            "webhook queue unreachable; retrying"
                        );
                        fault_since = Some(Instant::now());
                    }
                }
            }
            if last_stats.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                last_stats = Some(Instant::now());
                if let Ok(s) = self.store.queue_stats().await {
                    metrics::gauge!("holdfast_webhook_queue_depth").set(s.pending as f64);
                    let age = s.oldest_created_at.map_or(0, |t| (now_ms() - t).max(0));
                    metrics::gauge!("holdfast_webhook_oldest_pending_seconds").set(age as f64 / 1000.0);
                }
            }
            if full {
                continue;
            }
            let woken = async {
                match wake.as_mut() {
                    Some(rx) => match rx.recv().await {
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
                    },
                    None => std::future::pending().await,
                }
            };
            let signalled = async {
                match self.signals.as_mut() {
                    Some(rx) => {
                        if rx.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = woken => {}
                () = signalled => {}
                () = tokio::time::sleep(self.cfg.poll_interval) => {}
            }
        }
    }
}

/// The body of a delivery: the change record the API's `/v1/stream` sends for the change (`order.updated`
/// or `order.retracted`), the order's finality as of the first attempt.
pub fn render(d: &Delivery, api: &ApiConfig, h: Heights) -> String {
    let rec = ChangeRecord {
        seq: d.change_seq,
        change_type: match d.kind {
            ChangeKind::OrderUpdated => ChangeType::OrderUpdated,
            ChangeKind::OrderRetracted => ChangeType::OrderRetracted,
        },
        chain_id: d.chain_id,
        escrow: holdfast_api::format::addr(d.escrow),
        order_id: holdfast_api::format::hash(d.order_id),
        block_number: d.block_number,
        order: d.state.as_ref().map(|o| OrderRecord::new(o, api, &h)),
    };
    serde_json::to_string(&rec).unwrap_or_default()
}
