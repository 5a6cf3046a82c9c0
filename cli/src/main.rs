//! `holdfast`: one binary for the whole stack — indexer, API, devnet and the agent CLI.

mod chain_task;
mod chains;
mod cmd;
mod logging;
mod node_lookup;
mod opts;
mod sqlite_lock;

use clap::{Parser, Subcommand};

/// Holdfast: on-chain escrow for agent and marketplace payments.
#[derive(Debug, Parser)]
#[command(name = "holdfast", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    log: logging::LogOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole stack on a local anvil: chain, MockUSDC + escrow, indexer and API (Ctrl-C stops it).
    #[command(after_help = cmd::dev::EXAMPLES)]
    Dev(cmd::dev::DevArgs),
    /// Follow the escrow's logs into the store (backfill, then live), surviving reorgs and restarts.
    #[command(after_help = cmd::index::EXAMPLES)]
    Index(Box<cmd::index::IndexArgs>),
    /// Indexer and read API in one process: the production entry.
    #[command(after_help = cmd::run::EXAMPLES)]
    Run(Box<cmd::run::RunArgs>),
    /// The read API alone, over a store an indexer writes (several replicas on Postgres).
    #[command(after_help = cmd::serve::EXAMPLES)]
    Serve(cmd::serve::ServeArgs),
    /// Re-derive every order from the stored events, without any RPC.
    #[command(after_help = cmd::reindex::EXAMPLES)]
    Reindex(cmd::reindex::ReindexArgs),
    /// Signed webhooks: add, list, pause, resume, remove, rotate-secret, replay, deliveries, listen.
    #[command(after_help = cmd::webhooks::EXAMPLES)]
    Webhooks(cmd::webhooks::WebhooksArgs),
    /// Deliver the webhook queue (a worker beside `holdfast index`; `holdfast run` delivers by itself).
    #[command(after_help = cmd::webhooks::DELIVER_EXAMPLES)]
    Deliver(Box<cmd::webhooks::DeliverArgs>),
    /// The agent CLI: lock, relay, deliver, release, refund, freeze, resolve and show orders.
    #[command(after_help = cmd::order::EXAMPLES)]
    Order(cmd::order::OrderArgs),
}

fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    logging::init(&cli.log)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Dev(args) => cmd::dev::run(args).await,
            Command::Index(args) => cmd::index::run(*args).await,
            Command::Run(args) => cmd::run::run(*args).await,
            Command::Serve(args) => cmd::serve::run(args).await,
            Command::Reindex(args) => cmd::reindex::run(args).await,
            Command::Order(args) => cmd::order::run(args).await,
            Command::Webhooks(args) => cmd::webhooks::run(args).await,
            Command::Deliver(args) => cmd::webhooks::deliver(*args).await,
        }
    })
}
