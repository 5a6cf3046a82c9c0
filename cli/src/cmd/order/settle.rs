//! `deliver`, `release`, `refund`, `freeze`, `resolve`: each pre-checked against the order's state with the
//! contract's own rules, simulated, then sent.

use alloy::primitives::U256;
use clap::Args;
use serde_json::json;

use super::{
    amount::{format_amount, parse_amount},
    context::{Ctx, TxOpts, addr},
    explain::{Action, check_deliver, check_freeze, check_refund, check_release, check_resolve},
    order_id::{Bytes32Arg, OrderIdArg, PartyOpts},
};

/// Arguments of `holdfast order deliver`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DeliverArgs {
    /// Order id (0x + 64 hex digits), or the order's reference (e.g. invoice-42) with --payer or --payee.
    #[arg(value_name = "ORDER")]
    pub(crate) order_id: OrderIdArg,
    #[command(flatten)]
    pub(crate) parties: PartyOpts,
    /// Evidence of delivery (only logged): 0x + 64 hex digits (e.g. a document hash), or text used as
    /// keccak256(utf8(text)). Default: zero (none).
    #[arg(long, value_name = "BYTES32|TEXT")]
    pub(crate) evidence: Option<Bytes32Arg>,
    #[command(flatten)]
    pub(crate) tx: TxOpts,
}

/// Arguments of `holdfast order release` and `holdfast order refund`.
#[derive(Debug, Clone, Args)]
pub(crate) struct AmountArgs {
    /// Order id (0x + 64 hex digits), or the order's reference (e.g. invoice-42) with --payer or --payee.
    #[arg(value_name = "ORDER")]
    pub(crate) order_id: OrderIdArg,
    #[command(flatten)]
    pub(crate) parties: PartyOpts,
    /// Amount in token units (e.g. 5 or 2.50). Default: everything that remains.
    pub(crate) amount: Option<String>,
    #[command(flatten)]
    pub(crate) tx: TxOpts,
}

/// Arguments of `holdfast order freeze`.
#[derive(Debug, Clone, Args)]
pub(crate) struct FreezeArgs {
    /// Order id (0x + 64 hex digits), or the order's reference (e.g. invoice-42) with --payer or --payee.
    #[arg(value_name = "ORDER")]
    pub(crate) order_id: OrderIdArg,
    #[command(flatten)]
    pub(crate) parties: PartyOpts,
    /// Reason (only logged): 0x + 64 hex digits, or text used as keccak256(utf8(text)).
    #[arg(long, value_name = "BYTES32|TEXT")]
    pub(crate) reason: Bytes32Arg,
    #[command(flatten)]
    pub(crate) tx: TxOpts,
}

/// Arguments of `holdfast order resolve`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ResolveArgs {
    /// Order id (0x + 64 hex digits), or the order's reference (e.g. invoice-42) with --payer or --payee.
    #[arg(value_name = "ORDER")]
    pub(crate) order_id: OrderIdArg,
    #[command(flatten)]
    pub(crate) parties: PartyOpts,
    /// Amount to the payee in token units (0 to everything that remains); the rest goes to the payer.
    #[arg(long, value_name = "AMOUNT")]
    pub(crate) to_payee: String,
    #[command(flatten)]
    pub(crate) tx: TxOpts,
}

pub(crate) async fn deliver(args: DeliverArgs) -> eyre::Result<()> {
    let ctx = Ctx::connect(&args.tx, None).await?;
    let order_id = args.order_id.resolve(&args.parties, Some(ctx.from()))?;
    let id = order_id.value;
    let o = ctx.existing_order(&order_id).await?;
    let sc = ctx.scene(id, Action::Deliver, Some(&o));
    ctx.precheck(check_deliver(id, &o, ctx.from(), ctx.now().await? + 1), &sc)?;
    let evidence = args.evidence.as_ref().map(|e| e.value).unwrap_or_default();
    let receipt = ctx.execute(ctx.escrow().deliver(id, evidence), &sc).await?;
    let extra = json!({
        "evidence": format!("{evidence:#x}"),
        "evidenceRef": args.evidence.as_ref().and_then(|e| e.reference.clone()),
    });
    ctx.report(&args.tx, "deliver", "delivered", &order_id, &receipt, extra).await
}

/// The amount argument, defaulting to the whole remainder.
fn amount_or_remaining(ctx: &Ctx, amount: Option<&str>, remaining: U256) -> eyre::Result<U256> {
    match amount {
        Some(a) => Ok(parse_amount(a, ctx.token.decimals, &ctx.token.symbol)?),
        None => Ok(remaining),
    }
}

pub(crate) async fn release(args: AmountArgs) -> eyre::Result<()> {
    settle(args, Action::Release).await
}

pub(crate) async fn refund(args: AmountArgs) -> eyre::Result<()> {
    settle(args, Action::Refund).await
}

async fn settle(args: AmountArgs, action: Action) -> eyre::Result<()> {
    let ctx = Ctx::connect(&args.tx, None).await?;
    let order_id = args.order_id.resolve(&args.parties, Some(ctx.from()))?;
    let id = order_id.value;
    let o = ctx.existing_order(&order_id).await?;
    let amount = amount_or_remaining(&ctx, args.amount.as_deref(), o.remaining())?;
    let sc = ctx.scene(id, action, Some(&o));
    let at = ctx.now().await? + 1;
    let (verb, what) =
        if action == Action::Release { ("release", "released") } else { ("refund", "refunded") };
    let receipt = if action == Action::Release {
        ctx.precheck(check_release(id, &o, ctx.from(), amount, at), &sc)?;
        ctx.execute(ctx.escrow().release(id, amount), &sc).await?
    } else {
        ctx.precheck(check_refund(id, &o, ctx.from(), amount, at), &sc)?;
        ctx.execute(ctx.escrow().refund(id, amount), &sc).await?
    };
    let extra =
        json!({"amount": amount.to_string(), "amountDecimal": format_amount(amount, ctx.token.decimals)});
    ctx.report(&args.tx, verb, &format!("{what} {}", ctx.token.units(amount)), &order_id, &receipt, extra)
        .await
}

pub(crate) async fn freeze(args: FreezeArgs) -> eyre::Result<()> {
    let ctx = Ctx::connect(&args.tx, None).await?;
    let order_id = args.order_id.resolve(&args.parties, Some(ctx.from()))?;
    let id = order_id.value;
    let o = ctx.existing_order(&order_id).await?;
    let sc = ctx.scene(id, Action::Freeze, Some(&o));
    ctx.precheck(check_freeze(id, &o, ctx.from(), ctx.now().await? + 1), &sc)?;
    let receipt = ctx.execute(ctx.escrow().freeze(id, args.reason.value), &sc).await?;
    let extra = json!({
        "reason": format!("{:#x}", args.reason.value),
        "reasonRef": args.reason.reference,
        "arbiter": addr(o.arbiter),
    });
    ctx.report(&args.tx, "freeze", "frozen", &order_id, &receipt, extra).await
}

pub(crate) async fn resolve(args: ResolveArgs) -> eyre::Result<()> {
    let ctx = Ctx::connect(&args.tx, None).await?;
    let order_id = args.order_id.resolve(&args.parties, Some(ctx.from()))?;
    let id = order_id.value;
    let o = ctx.existing_order(&order_id).await?;
    let to_payee = parse_amount(&args.to_payee, ctx.token.decimals, &ctx.token.symbol)?;
    let sc = ctx.scene(id, Action::Resolve, Some(&o));
    ctx.precheck(check_resolve(id, &o, ctx.from(), to_payee), &sc)?;
    let receipt = ctx.execute(ctx.escrow().resolve(id, to_payee), &sc).await?;
    let to_payer = o.remaining().saturating_sub(to_payee);
    let d = ctx.token.decimals;
    let extra = json!({
        "toPayee": to_payee.to_string(), "toPayeeDecimal": format_amount(to_payee, d),
        "toPayer": to_payer.to_string(), "toPayerDecimal": format_amount(to_payer, d),
    });
    let what = format!(
        "resolved ({} to the payee, {} to the payer)",
        ctx.token.units(to_payee),
        ctx.token.units(to_payer)
    );
    ctx.report(&args.tx, "resolve", &what, &order_id, &receipt, extra).await
}
