//! `holdfast order …`: the agent CLI — lock (by allowance, permit or gasless authorization), relay,
//! deliver, release, refund, freeze, resolve and show.
//!
//! Conventions: order ids (and evidence / reasons) are `0x` + 64 hex digits or a text reference hashed
//! as `keccak256(utf8(reference))`; amounts are exact decimals in token units, parsed against the token's
//! own `decimals()`; every rule the contract would enforce is checked before anything is sent, then the
//! call is simulated, and any revert is decoded into a sentence naming the rule. Output is text, or one
//! JSON document with `--json`; errors go to stderr with exit code 1.

mod amount;
mod context;
mod explain;
mod lock;
mod order_id;
mod relay;
mod settle;
mod show;
mod signer;

use clap::{Args, Subcommand};
use serde_json::json;

use self::explain::Violation;

pub(crate) const EXAMPLES: &str = "\
Examples (devnet: `make dev`, or anvil + script/deploy.sh + `holdfast run`):
  export HOLDFAST_PRIVATE_KEY=0x…          # the payer's key (never printed; or --keystore FILE)

  # Lock 12.50 USDC for an order referenced as \"invoice-42\" (id = keccak256(utf8(\"invoice-42\")))
  holdfast order lock invoice-42 --payee 0x3C44…93BC --amount 12.50 --deliver-by 7d --dispute-window 3d

  # Gasless: the payer signs, anyone relays
  holdfast order lock invoice-43 --payee 0x3C44…93BC --amount 5 --gasless --out auth.json
  HOLDFAST_PRIVATE_KEY=$RELAYER_KEY holdfast order relay auth.json

  # Payee delivers, payer releases part then the rest
  holdfast order deliver invoice-42 --evidence 'https://example.com/report.pdf sha256:…'
  holdfast order release invoice-42 5
  holdfast order release invoice-42

  # Read it back from the API, waiting until the latest state is safe
  holdfast order show invoice-42 --wait 60 --finality safe --json";

/// Arguments of `holdfast order`.
#[derive(Debug, Args)]
pub(crate) struct OrderArgs {
    #[command(subcommand)]
    pub(crate) command: OrderCommand,
}

/// The order subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum OrderCommand {
    /// Lock funds for a new order: by allowance (approving exactly the amount if needed), --permit, or
    /// --gasless (sign an authorization for `relay`; sends nothing).
    Lock(Box<lock::LockArgs>),
    /// Submit a gasless lock signed with `lock --gasless`, from any account (which pays the gas).
    Relay(Box<relay::RelayArgs>),
    /// Payee: mark the order delivered (starts the dispute window).
    Deliver(Box<settle::DeliverArgs>),
    /// Payer: release AMOUNT (default: all that remains) to the payee; anyone: the whole remainder once
    /// the dispute window after delivery has passed.
    Release(Box<settle::AmountArgs>),
    /// Payee: refund AMOUNT (default: all that remains) to the payer; anyone: the whole remainder of an
    /// undelivered order after its delivery deadline.
    Refund(Box<settle::AmountArgs>),
    /// Payee (held) or either party (delivered, within the dispute window): freeze the order for its arbiter.
    Freeze(Box<settle::FreezeArgs>),
    /// Arbiter: settle a frozen order, AMOUNT to the payee and the rest to the payer.
    Resolve(Box<settle::ResolveArgs>),
    /// Show the order from the API (optionally waiting until it is indexed at a finality).
    Show(Box<show::ShowArgs>),
}

impl OrderCommand {
    fn json(&self) -> bool {
        match self {
            Self::Lock(a) => a.tx.output.json,
            Self::Relay(a) => a.tx.output.json,
            Self::Deliver(a) => a.tx.output.json,
            Self::Release(a) | Self::Refund(a) => a.tx.output.json,
            Self::Freeze(a) => a.tx.output.json,
            Self::Resolve(a) => a.tx.output.json,
            Self::Show(a) => a.output.json,
        }
    }
}

/// Run an order subcommand; on failure print the reason to stderr (JSON with --json) and exit with 1.
pub(crate) async fn run(args: OrderArgs) -> eyre::Result<()> {
    let json = args.command.json();
    let result = match args.command {
        OrderCommand::Lock(a) => lock::run(*a).await,
        OrderCommand::Relay(a) => relay::run(*a).await,
        OrderCommand::Deliver(a) => settle::deliver(*a).await,
        OrderCommand::Release(a) => settle::release(*a).await,
        OrderCommand::Refund(a) => settle::refund(*a).await,
        OrderCommand::Freeze(a) => settle::freeze(*a).await,
        OrderCommand::Resolve(a) => settle::resolve(*a).await,
        OrderCommand::Show(a) => show::run(*a).await,
    };
    if let Err(e) = result {
        let v = e.downcast_ref::<Violation>();
        if json {
            let doc = json!({"error": {
                "rule": v.map(|v| v.rule.clone()),
                "message": v.map(|v| v.message.clone()).unwrap_or_else(|| format!("{e:#}")),
                "sent": v.map(|v| v.stage == explain::Stage::Mined),
            }});
            eprintln!("{doc}");
        } else {
            eprintln!("error: {e:#}");
        }
        std::process::exit(1);
    }
    Ok(())
}
