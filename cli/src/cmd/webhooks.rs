//! `holdfast webhooks …` (the operator's subscriptions, against the store; there is no HTTP write endpoint)
//! and `holdfast deliver` (the delivery worker as its own process).

use std::time::Duration;

use alloy::primitives::Address;
use clap::{Args, Subcommand, ValueEnum};
use eyre::{Context, bail};
use holdfast_primitives::{Finality, OrderStatus, webhook::SubscriptionFilter};
use holdfast_store::{NewSubscription, Store, Subscription, SubscriptionState, WebhookStore};
use holdfast_webhooks::{Worker, WorkerConfig, generate_secret, validate_url};

use crate::opts::{DbOpts, DeploymentOpts, Shutdown, install_metrics};

pub(crate) const EXAMPLES: &str = "\
Examples:
  # Tell a backend about every payment change, once its block is safe (prints the signing secret once)
  holdfast webhooks add --url https://merchant.example/holdfast --finality safe

  # Only one payee's orders, only when they are released or refunded
  holdfast webhooks add --url https://merchant.example/hooks --payee 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 \\
      --status released,refunded

  # On the devnet: a local receiver that verifies and prints each delivery
  holdfast webhooks listen --port 9000 --secret whsec_…
  holdfast webhooks add --url http://127.0.0.1:9000/ --allow-private-targets

  holdfast webhooks list
  holdfast webhooks deliveries 1
  holdfast webhooks pause 1 / resume 1 / remove 1
  holdfast webhooks rotate-secret 1 --grace-secs 86400";

/// `holdfast webhooks`.
#[derive(Debug, Args)]
pub(crate) struct WebhooksArgs {
    #[command(subcommand)]
    command: WebhooksCommand,
}

#[derive(Debug, Subcommand)]
enum WebhooksCommand {
    /// Add a subscription; prints its id and signing secret (the secret is never shown again).
    Add(AddArgs),
    /// List the subscriptions (never their secrets).
    List(DbArgs),
    /// Stop sending a subscription's deliveries (they queue up until `resume`).
    Pause(IdArgs),
    /// Send a paused or disabled subscription's deliveries again, its backlog first.
    Resume(IdArgs),
    /// Delete a subscription with its queue and attempt history.
    Remove(IdArgs),
    /// Replace the signing secret; the old one keeps signing too during the grace period (both signatures
    /// are sent). Prints the new secret once.
    RotateSecret(RotateArgs),
    /// Send again the delivered changes of a subscription from a change-log position on (same message ids).
    Replay(ReplayArgs),
    /// A subscription's recent deliveries with every attempt (status, latency, response code, error).
    Deliveries(DeliveriesArgs),
    /// Send one signed `webhook.test` message to a subscription's target now (not queued, not recorded)
    /// and print the answer.
    Test(TestArgs),
    /// A developer receiver: verifies each delivery's signature and prints it.
    Listen(ListenArgs),
}

#[derive(Debug, Args)]
struct TestArgs {
    /// Subscription id.
    id: i64,
    /// Accept a loopback, private or link-local target (development).
    #[arg(long)]
    allow_private_targets: bool,
    #[command(flatten)]
    db: DbOpts,
}

#[derive(Debug, Args)]
struct DbArgs {
    #[command(flatten)]
    db: DbOpts,
}

#[derive(Debug, Args)]
struct IdArgs {
    /// Subscription id.
    id: i64,
    #[command(flatten)]
    db: DbOpts,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FinalityArg {
    /// As soon as the change is indexed (a reorg may retract it: a retraction delivery follows).
    Pending,
    /// Once the change's block is at or below the node's safe block.
    Safe,
    /// Once the change's block is finalized (never retracted).
    Finalized,
}

#[derive(Debug, Args)]
struct AddArgs {
    /// Where to POST deliveries (http or https).
    #[arg(long)]
    url: String,
    /// A change is delivered once its block reaches this finality.
    #[arg(long, value_enum, default_value = "pending")]
    finality: FinalityArg,
    /// Only this chain.
    #[arg(long)]
    chain_id: Option<u64>,
    /// Only this escrow.
    #[arg(long)]
    escrow: Option<Address>,
    /// Only orders of this payer.
    #[arg(long)]
    payer: Option<Address>,
    /// Only orders of this payee.
    #[arg(long)]
    payee: Option<Address>,
    /// Only orders with this arbiter.
    #[arg(long)]
    arbiter: Option<Address>,
    /// Only changes into these statuses, comma-separated (held, delivered, frozen, released, refunded,
    /// expired, split). Retractions of a change that was sent always follow.
    #[arg(long, value_delimiter = ',')]
    status: Vec<String>,
    /// Free text for the operator.
    #[arg(long, default_value = "")]
    description: String,
    /// Accept a loopback, private or link-local target (development; `holdfast dev` targets are local).
    #[arg(long)]
    allow_private_targets: bool,
    #[command(flatten)]
    db: DbOpts,
}

#[derive(Debug, Args)]
struct RotateArgs {
    /// Subscription id.
    id: i64,
    /// Seconds the previous secret keeps signing.
    #[arg(long, default_value_t = 86_400)]
    grace_secs: u64,
    #[command(flatten)]
    db: DbOpts,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// Subscription id.
    id: i64,
    /// First change-log position to send again (the `seq` of the payloads).
    #[arg(long)]
    from_seq: i64,
    #[command(flatten)]
    db: DbOpts,
}

#[derive(Debug, Args)]
struct DeliveriesArgs {
    /// Subscription id.
    id: i64,
    /// How many of the newest deliveries.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[command(flatten)]
    db: DbOpts,
}

#[derive(Debug, Args)]
struct ListenArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// The subscription's signing secret (`whsec_…`), to verify signatures.
    #[arg(long, env = "HOLDFAST_WEBHOOK_SECRET")]
    secret: String,
}

/// How `holdfast run`, `dev` and `deliver` deliver webhooks.
#[derive(Debug, Clone, Args)]
pub(crate) struct DeliveryOpts {
    /// Seconds one delivery request may take (connect, send, response headers).
    #[arg(long, env = "HOLDFAST_WEBHOOK_TIMEOUT_SECS", default_value_t = 10)]
    pub(crate) webhook_timeout_secs: u64,
    /// A delivery failing for this many seconds (since its first attempt) disables its subscription; its
    /// backlog is kept for `holdfast webhooks resume`.
    #[arg(long, env = "HOLDFAST_WEBHOOK_HORIZON_SECS", default_value_t = 3 * 24 * 3600)]
    pub(crate) webhook_horizon_secs: u64,
    /// Delivery requests in flight at once.
    #[arg(long, env = "HOLDFAST_WEBHOOK_CONCURRENCY", default_value_t = 64)]
    pub(crate) webhook_concurrency: usize,
    /// Deliver to loopback, private and link-local targets too (development only).
    #[arg(long, env = "HOLDFAST_WEBHOOK_ALLOW_PRIVATE_TARGETS")]
    pub(crate) allow_private_targets: bool,
}

impl DeliveryOpts {
    /// The worker's config.
    pub(crate) fn config(&self) -> eyre::Result<WorkerConfig> {
        if self.webhook_timeout_secs == 0 || self.webhook_concurrency == 0 {
            bail!("--webhook-timeout-secs and --webhook-concurrency must be at least 1");
        }
        Ok(WorkerConfig {
            allow_private_targets: self.allow_private_targets,
            timeout: Duration::from_secs(self.webhook_timeout_secs),
            horizon: Duration::from_secs(self.webhook_horizon_secs),
            concurrency: self.webhook_concurrency,
            ..WorkerConfig::default()
        })
    }
}

/// `holdfast deliver`.
#[derive(Debug, Args)]
pub(crate) struct DeliverArgs {
    #[command(flatten)]
    db: DbOpts,
    #[command(flatten)]
    deployments: DeploymentOpts,
    #[command(flatten)]
    delivery: DeliveryOpts,
    /// Milliseconds between reads of the queue. On Postgres the worker also wakes on every commit of the
    /// indexer (LISTEN/NOTIFY), so this is only a safety net there; on SQLite it is the only wake-up.
    #[arg(long, env = "HOLDFAST_WEBHOOK_POLL_MS", default_value_t = 200)]
    webhook_poll_ms: u64,
}

pub(crate) const DELIVER_EXAMPLES: &str = "\
Examples:
  # A delivery worker beside `holdfast index` (several may share one Postgres queue)
  holdfast deliver --database-url postgres://holdfast@db/holdfast --deployment deployments/8453.json";

pub(crate) async fn deliver(args: DeliverArgs) -> eyre::Result<()> {
    let stop = Shutdown::install()?;
    let _render = install_metrics()?;
    let url = args.db.url()?;
    let store = Store::connect(&url).await.wrap_err_with(|| format!("cannot open store {url}"))?;
    let mut cfg = args.delivery.config()?;
    cfg.poll_interval = Duration::from_millis(args.webhook_poll_ms.max(1));
    let signals = store.commit_signals();
    let mut worker = Worker::new(store, args.deployments.records_config()?, cfg)?;
    if let Some(rx) = signals {
        // Postgres: woken by the indexer's commits (LISTEN); the poll stays as a safety net.
        worker = worker.with_commit_signals(rx);
    }
    tracing::info!("delivering webhooks");
    worker.run(None, stop.requested()).await;
    Ok(())
}

fn finality(f: FinalityArg) -> Finality {
    match f {
        FinalityArg::Pending => Finality::Pending,
        FinalityArg::Safe => Finality::Safe,
        FinalityArg::Finalized => Finality::Finalized,
    }
}

fn finality_name(f: Finality) -> &'static str {
    match f {
        Finality::Pending => "pending",
        Finality::Safe => "safe",
        Finality::Finalized => "finalized",
    }
}

async fn open(db: &DbOpts) -> eyre::Result<Store> {
    let url = db.url()?;
    Store::connect(&url).await.wrap_err_with(|| format!("cannot open store {url}"))
}

fn describe(s: &Subscription) -> String {
    let f = &s.filter;
    let mut filters = Vec::new();
    if let Some(c) = f.chain_id {
        filters.push(format!("chain={c}"));
    }
    for (name, a) in [("escrow", f.escrow), ("payer", f.payer), ("payee", f.payee), ("arbiter", f.arbiter)] {
        if let Some(a) = a {
            filters.push(format!("{name}={a}"));
        }
    }
    if !f.statuses.is_empty() {
        filters
            .push(format!("status={}", f.statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")));
    }
    let state = match &s.state_reason {
        Some(r) => format!("{} ({r})", s.state.as_str()),
        None => s.state.as_str().to_string(),
    };
    format!(
        "{:>4}  {:<9} {:<10} {}  {}{}",
        s.id,
        state,
        finality_name(s.finality),
        s.url,
        if filters.is_empty() { "all orders".to_string() } else { filters.join(" ") },
        if s.description.is_empty() { String::new() } else { format!("  — {}", s.description) },
    )
}

pub(crate) async fn run(args: WebhooksArgs) -> eyre::Result<()> {
    match args.command {
        WebhooksCommand::Add(a) => {
            let statuses = a
                .status
                .iter()
                .map(|s| OrderStatus::parse(s).ok_or_else(|| eyre::eyre!("unknown status {s:?}")))
                .collect::<eyre::Result<Vec<_>>>()?;
            let url = validate_url(&a.url, a.allow_private_targets).wrap_err_with(|| {
                format!(
                    "refused target {:?} (--allow-private-targets accepts local ones in development)",
                    a.url
                )
            })?;
            let store = open(&a.db).await?;
            let secret = generate_secret();
            let s = store
                .add_subscription(&NewSubscription {
                    url: url.to_string(),
                    description: a.description,
                    filter: SubscriptionFilter {
                        chain_id: a.chain_id,
                        escrow: a.escrow,
                        payer: a.payer,
                        payee: a.payee,
                        arbiter: a.arbiter,
                        statuses,
                    },
                    finality: finality(a.finality),
                    secret: secret.clone(),
                })
                .await?;
            println!("subscription {}: {}", s.id, describe(&s).trim_start());
            println!("signing secret (shown once; verify deliveries with it): {secret}");
        }
        WebhooksCommand::List(a) => {
            let store = open(&a.db).await?;
            let subs = store.subscriptions().await?;
            if subs.is_empty() {
                println!("no subscriptions (add one with `holdfast webhooks add --url …`)");
            }
            for s in subs {
                println!("{}", describe(&s));
            }
            let q = store.queue_stats().await?;
            println!("undelivered: {}", q.pending);
        }
        WebhooksCommand::Pause(a) => {
            set_state(&a, SubscriptionState::Paused, Some("paused by the operator")).await?
        }
        WebhooksCommand::Resume(a) => set_state(&a, SubscriptionState::Active, None).await?,
        WebhooksCommand::Remove(a) => {
            let store = open(&a.db).await?;
            if !store.remove_subscription(a.id).await? {
                bail!("no subscription {}", a.id);
            }
            println!("subscription {} removed", a.id);
        }
        WebhooksCommand::RotateSecret(a) => {
            let store = open(&a.db).await?;
            let secret = generate_secret();
            let until = holdfast_store::now_ms() as u64 / 1000 + a.grace_secs;
            if !store.rotate_secret(a.id, &secret, until).await? {
                bail!("no subscription {}", a.id);
            }
            println!("new signing secret (shown once): {secret}");
            println!("the previous secret also signs for {} s (both signatures are sent)", a.grace_secs);
        }
        WebhooksCommand::Replay(a) => {
            let store = open(&a.db).await?;
            if store.subscription(a.id).await?.is_none() {
                bail!("no subscription {}", a.id);
            }
            let n = store.replay(a.id, a.from_seq).await?;
            println!("{n} deliveries queued again");
        }
        WebhooksCommand::Deliveries(a) => {
            let store = open(&a.db).await?;
            if store.subscription(a.id).await?.is_none() {
                bail!("no subscription {}", a.id);
            }
            for d in store.deliveries(a.id, a.limit).await? {
                let status = d.state.as_ref().map_or("(none)", |o| o.status.as_str());
                println!(
                    "{}  {:<9} {} {} order {}  block {}  status={status}  attempts {}",
                    d.message_id(),
                    d.status.as_str(),
                    d.change_seq,
                    d.kind.as_str(),
                    d.order_id,
                    d.block_number,
                    d.attempts
                );
                for t in store.attempts(d.id).await? {
                    let at = chrono::DateTime::from_timestamp_millis(t.attempted_at)
                        .map_or_else(|| t.attempted_at.to_string(), |t| t.to_rfc3339());
                    println!(
                        "    {at}  {:<9} {:>5} ms  {}{}",
                        t.result.as_str(),
                        t.latency_ms,
                        t.status_code.map_or_else(|| "no response".to_string(), |c| format!("HTTP {c}")),
                        t.error.map(|e| format!("  {e}")).unwrap_or_default()
                    );
                }
            }
        }
        WebhooksCommand::Test(a) => {
            let store = open(&a.db).await?;
            let Some(s) = store.subscription(a.id).await? else { bail!("no subscription {}", a.id) };
            let now = holdfast_store::now_ms();
            let (current, previous) = s.signing_secrets(now as u64 / 1000);
            let signer = holdfast_webhooks::Signer::new(current, previous)?;
            let id = format!("msg_{}_test_{now}", s.id);
            let body = serde_json::json!({ "type": "webhook.test", "subscriptionId": s.id }).to_string();
            let headers = signer.headers(&id, now / 1000, body.as_bytes())?;
            let client = holdfast_webhooks::http_client(a.allow_private_targets, Duration::from_secs(10))?;
            let url = url::Url::parse(&s.url)?;
            let t =
                holdfast_webhooks::post(&client, &url, headers, body.into_bytes(), a.allow_private_targets)
                    .await;
            let answer = t.status.map_or_else(|| "no response".to_string(), |c| format!("HTTP {c}"));
            println!("{id} → {}: {answer} in {} ms", s.url, t.latency.as_millis());
            if let Some(e) = &t.error {
                println!("  {e}");
            }
            if t.outcome != holdfast_webhooks::Outcome::Delivered {
                bail!("the target did not accept the test message ({answer})");
            }
        }
        WebhooksCommand::Listen(a) => {
            let stop = Shutdown::install()?;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", a.port))
                .await
                .wrap_err_with(|| format!("cannot listen on 127.0.0.1:{}", a.port))?;
            println!("listening on http://127.0.0.1:{}/ (Ctrl-C stops)", a.port);
            holdfast_webhooks::listen(
                listener,
                &a.secret,
                |r| println!("{}", holdfast_webhooks::describe(&r)),
                stop.requested(),
            )
            .await?;
        }
    }
    Ok(())
}

async fn set_state(a: &IdArgs, state: SubscriptionState, reason: Option<&str>) -> eyre::Result<()> {
    let store = open(&a.db).await?;
    if !store.set_subscription_state(a.id, state, reason).await? {
        bail!("no subscription {}", a.id);
    }
    println!("subscription {} {}", a.id, state.as_str());
    Ok(())
}
