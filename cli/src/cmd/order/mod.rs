//! `holdfast order …`: the agent CLI — lock (by allowance, permit or gasless authorization), relay,
//! deliver, release, refund, freeze, resolve and show.
//!
//! Conventions: an order is named by its id (`0x` + 64 hex digits) or by a reference such as `invoice-42`,
//! whose id is `keccak256(abi.encode(payer, payee, keccak256(utf8(reference))))` (see `order_id`), so
//! that nobody can take it in advance without knowing the payer; evidence and reasons are `0x` + 64 hex
//! digits or text hashed as `keccak256(utf8(text))`; amounts are exact decimals in token units, parsed
//! against the token's own `decimals()`; every rule the contract would enforce is checked before anything
//! is sent, then the call is simulated, and any revert is decoded into a sentence naming the rule. Output
//! is text, or one JSON document with `--json`; errors go to stderr with exit code 1.

mod amount;
mod context;
mod domain;
mod explain;
mod lock;
mod order_id;
mod relay;
mod settle;
mod show;
mod signer;

pub(crate) use self::order_id::reference_id;

use clap::{Args, Subcommand};
use serde_json::json;

use self::explain::Violation;

pub(crate) const EXAMPLES: &str = "\
Order ids:
  ORDER is an order id (0x + 64 hex digits, used as is) or a reference such as invoice-42. A reference
  names an order between a payer and a payee; its id is
      keccak256(abi.encode(payer, payee, keccak256(utf8(reference))))
  so nobody can take that id first without knowing the payer's address, and each merchant has its own
  references. With a reference, `lock` takes you as the payer and --payee; the other commands take
  --payer and/or --payee, the one omitted being your own account (the signer); or pass the 0x id that
  `lock` printed. Merchant and payer agree on the reference (e.g. in the checkout); the merchant
  recomputes the id from it, the payer's address and its own, and checks the order's terms. A merchant
  that wants the id fixed before it knows the payer hands out a random 0x id instead.

Examples (devnet: `make dev`, or anvil + script/deploy.sh + `holdfast run`):
  # the payer's key (never printed; or --keystore FILE); this one is the devnet's account 0
  export HOLDFAST_PRIVATE_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80

  # Lock 12.50 USDC for the order \"invoice-42\" between you and the payee (lock prints its id)
  holdfast order lock invoice-42 --payee 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC --amount 12.50 --deliver-by 7d --dispute-window 3d

  # Gasless: the payer signs, anyone relays
  holdfast order lock invoice-43 --payee 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC --amount 5 --gasless --out auth.json
  HOLDFAST_PRIVATE_KEY=$RELAYER_KEY holdfast order relay auth.json

  # The payee delivers (naming the payer); the payer releases part, then the rest (naming the payee)
  HOLDFAST_PRIVATE_KEY=$PAYEE_KEY holdfast order deliver invoice-42 --payer 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 --evidence 'https://example.com/report.pdf sha256:6466e450a16b77b865c5829d6b6c56d9f892956475642dbeb9ccc4340fe01b15'
  holdfast order release invoice-42 5 --payee 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC
  holdfast order release invoice-42 --payee 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC

  # Read it back from the API, waiting until the latest state is safe (you are the payer)
  holdfast order show invoice-42 --payee 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC --wait 60 --finality safe --json";

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
    #[command(after_help = "Examples:
  holdfast order lock invoice-42 --payee 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --amount 12.50
  holdfast order lock invoice-42 --payee 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --amount 12.50 --arbiter 0x90F79bf6EB2c4f870365E785982E1f101E93b906 --deliver-by 2026-12-01T12:00:00Z --dispute-window 2d
  holdfast order lock invoice-42 --payee 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --amount 12.50 --permit --wait safe
  holdfast order lock invoice-43 --payee 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --amount 5 --gasless --valid-until 24h --out auth.json")]
    Lock(Box<lock::LockArgs>),
    /// Submit a gasless lock signed with `lock --gasless`, from any account (which pays the gas).
    #[command(after_help = "Examples:
  HOLDFAST_PRIVATE_KEY=$RELAYER_KEY holdfast order relay auth.json
  holdfast order lock invoice-43 --payee 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --amount 5 --gasless | HOLDFAST_PRIVATE_KEY=$RELAYER_KEY holdfast order relay -")]
    Relay(Box<relay::RelayArgs>),
    /// Payee: mark the order delivered (starts the dispute window).
    #[command(after_help = "Examples:
  holdfast order deliver invoice-42 --payer 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266   # you are the payee
  holdfast order deliver invoice-42 --payer 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 --evidence 'parcel 1Z999 delivered 2026-11-21'   # stored as keccak256 of the text
  holdfast order deliver 0x876694d64580ba7994ab2644dd2b32c425d7a86f64d8259d367e71774f3e994b --evidence 0x72d7fcbcb7963cd470a74beb4a5213d6a4f5f1fe8faf8df614367b2e74cb9220 --json")]
    Deliver(Box<settle::DeliverArgs>),
    /// Payer: release AMOUNT (default: all that remains) to the payee; anyone: the whole remainder once
    /// the dispute window after delivery has passed.
    #[command(after_help = "Examples:
  holdfast order release invoice-42 5 --payee 0x70997970C51812dc3A010C7d01b50e0d17dc79C8     # you are the payer; part: 5 USDC
  holdfast order release invoice-42 --payee 0x70997970C51812dc3A010C7d01b50e0d17dc79C8       # everything that remains
  holdfast order release 0x876694d64580ba7994ab2644dd2b32c425d7a86f64d8259d367e71774f3e994b --wait finalized --json")]
    Release(Box<settle::AmountArgs>),
    /// Payee: refund AMOUNT (default: all that remains) to the payer; anyone: the whole remainder of an
    /// undelivered order after its delivery deadline.
    #[command(after_help = "Examples:
  holdfast order refund invoice-42 2.50 --payer 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266   # you are the payee; part
  holdfast order refund invoice-42 --payer 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266        # everything that remains
  holdfast order refund 0x876694d64580ba7994ab2644dd2b32c425d7a86f64d8259d367e71774f3e994b   # anyone, after the delivery deadline")]
    Refund(Box<settle::AmountArgs>),
    /// Payee (held) or either party (delivered, within the dispute window): freeze the order for its arbiter.
    #[command(after_help = "Examples:
  holdfast order freeze invoice-42 --payee 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --reason 'item not as described'   # you are the payer
  holdfast order freeze invoice-42 --payer 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 --reason 0x5ab160e1f4d41c5558a3c7072d391d9d7e034dafb6f6827de095a427cd333ef0   # you are the payee")]
    Freeze(Box<settle::FreezeArgs>),
    /// Arbiter: settle a frozen order, AMOUNT to the payee and the rest to the payer.
    #[command(after_help = "Examples:
  holdfast order resolve invoice-42 --payer 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 --payee 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --to-payee 4.25   # 4.25 to the payee, the rest to the payer
  holdfast order resolve 0x876694d64580ba7994ab2644dd2b32c425d7a86f64d8259d367e71774f3e994b --to-payee 0      # all back to the payer")]
    Resolve(Box<settle::ResolveArgs>),
    /// Show the order from the API (optionally waiting until it is indexed at a finality).
    #[command(after_help = "Examples:
  holdfast order show invoice-42 --payer 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 --payee 0x70997970C51812dc3A010C7d01b50e0d17dc79C8
  holdfast order show invoice-42 --payee 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --wait 60 --finality safe     # you are the payer (HOLDFAST_PRIVATE_KEY); long-poll until the latest state is safe
  holdfast order show 0x876694d64580ba7994ab2644dd2b32c425d7a86f64d8259d367e71774f3e994b --json")]
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
        // Found before anything is signed or sent.
        let d = e.downcast_ref::<domain::TokenDomainError>();
        if json {
            let rule = v
                .map(|v| v.rule.clone())
                .or_else(|| e.downcast_ref::<show::Reorged>().map(|_| "OrderReorged".to_string()));
            let doc = json!({"error": {
                "rule": rule.or_else(|| d.map(|d| d.rule().to_owned())),
                "message": v.map(|v| v.message.clone()).unwrap_or_else(|| format!("{e:#}")),
                "sent": v.map(|v| matches!(v.stage, explain::Stage::Mined | explain::Stage::Sent)).or(d.map(|_| false)),
            }});
            eprintln!("{doc}");
        } else {
            eprintln!("error: {e:#}");
        }
        std::process::exit(1);
    }
    Ok(())
}

/// "1 confirmation", "N confirmations" from the API's `confirmations` field ("? confirmations" if absent).
fn confirmations(n: &serde_json::Value) -> String {
    match n.as_u64() {
        Some(1) => "1 confirmation".into(),
        Some(n) => format!("{n} confirmations"),
        None => "? confirmations".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn confirmations_plural() {
        assert_eq!(super::confirmations(&json!(0)), "0 confirmations");
        assert_eq!(super::confirmations(&json!(1)), "1 confirmation");
        assert_eq!(super::confirmations(&json!(2)), "2 confirmations");
        assert_eq!(super::confirmations(&serde_json::Value::Null), "? confirmations");
    }
}
