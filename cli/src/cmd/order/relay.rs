//! `holdfast order relay`: submit a gasless lock signed with `order lock --gasless`, from any account
//! (the relayer pays the gas; the payer's funds move by the signed authorization only).

use std::{io::Read, path::PathBuf};

use alloy::{primitives::U256, sol_types::SolStruct};
use clap::Args;
use eyre::{Context as _, bail};
use serde_json::json;

use super::{
    amount::format_amount,
    context::{Ctx, TxOpts, addr},
    explain::{Action, ITokenErrors, Terms, TokenErrors},
    lock::{AUTH_KIND, AuthorizationDoc, check_terms},
    order_id::{Bytes32Arg, utc},
};

/// Arguments of `holdfast order relay`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RelayArgs {
    /// The JSON document printed by `order lock --gasless` (a file, or - for stdin).
    #[arg(value_name = "FILE|-")]
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) tx: TxOpts,
}

pub(crate) async fn run(args: RelayArgs) -> eyre::Result<()> {
    let text = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).wrap_err("cannot read the authorization from stdin")?;
        s
    } else {
        std::fs::read_to_string(&args.file)
            .wrap_err_with(|| format!("cannot read {}", args.file.display()))?
    };
    let doc: AuthorizationDoc = serde_json::from_str(&text)
        .wrap_err("not a gasless lock document (from `holdfast order lock --gasless`)")?;
    if doc.kind != AUTH_KIND {
        bail!("unsupported document kind {:?} (expected {AUTH_KIND:?})", doc.kind);
    }
    let ctx = Ctx::connect(&args.tx, Some(doc.escrow)).await?;
    if doc.chain_id != ctx.chain_id || doc.escrow != ctx.escrow {
        bail!(
            "the authorization is for escrow {} on chain {}, but this relay targets escrow {} on chain {}",
            doc.escrow,
            doc.chain_id,
            ctx.escrow,
            ctx.chain_id
        );
    }
    if doc.token.address != ctx.token.address {
        bail!("the document names token {}, but the escrow holds {}", doc.token.address, ctx.token.address);
    }
    let o = &doc.order;
    let a = &doc.authorization;
    let id = Bytes32Arg { value: o.order_id, reference: o.order_ref.clone() };
    if a.from != o.payer || a.to != ctx.escrow || a.value != o.amount {
        bail!(
            "order {:#x}: the authorization (from, to, value) does not match the order's terms",
            o.order_id
        );
    }
    // The nonce binds every term: recompute it from the terms as the escrow will.
    let nonce = ctx
        .escrow()
        .authorizationNonce(o.order_id, o.payee, o.amount, o.arbiter, o.deliver_by, o.dispute_window)
        .call()
        .await?;
    if nonce != a.nonce {
        bail!(
            "order {:#x}: the authorization's nonce does not bind these terms (was a term altered?)",
            o.order_id
        );
    }
    let sc = ctx.scene(o.order_id, Action::Lock, None);
    // The signature must recover to the payer over exactly this message (else the token would revert).
    let domain = ctx.token_domain().await?;
    let hash = a.message().eip712_signing_hash(&domain);
    let sig = alloy::signers::Signature::from_scalars_and_parity(
        doc.signature.r,
        doc.signature.s,
        doc.signature.v.checked_sub(27).is_some_and(|p| p == 1),
    );
    if sig.recover_address_from_prehash(&hash).ok() != Some(o.payer) {
        ctx.precheck(Some(TokenErrors::InvalidSignature(ITokenErrors::InvalidSignature {})), &sc)?;
    }
    let at = U256::from(ctx.now().await? + 1);
    if at <= a.valid_after {
        let e = ITokenErrors::AuthorizationNotYetValid { validAfter: a.valid_after };
        ctx.precheck(Some(TokenErrors::AuthorizationNotYetValid(e)), &sc)?;
    }
    if at >= a.valid_before {
        let e = ITokenErrors::AuthorizationExpired { validBefore: a.valid_before };
        ctx.precheck(Some(TokenErrors::AuthorizationExpired(e)), &sc)?;
    }
    let terms = Terms {
        id: o.order_id,
        payer: o.payer,
        payee: o.payee,
        amount: o.amount,
        arbiter: o.arbiter,
        deliver_by: o.deliver_by,
        dispute_window: o.dispute_window,
    };
    check_terms(&ctx, &terms).await?;
    if let Ok(true) = ctx.token().authorizationState(o.payer, a.nonce).call().await {
        let e = ITokenErrors::AuthorizationUsedOrCanceled { authorizer: o.payer, nonce: a.nonce };
        ctx.precheck(Some(TokenErrors::AuthorizationUsedOrCanceled(e)), &sc)?;
    }
    let escrow = ctx.escrow();
    let call = escrow.lockWithAuthorization(
        o.payer,
        o.order_id,
        o.payee,
        o.amount,
        o.arbiter,
        o.deliver_by,
        o.dispute_window,
        a.valid_after,
        a.valid_before,
        doc.signature.v,
        doc.signature.r,
        doc.signature.s,
    );
    let receipt = ctx.execute(call, &sc).await?;
    let extra = json!({
        "payer": addr(o.payer), "payee": addr(o.payee), "arbiter": addr(o.arbiter), "relayer": addr(ctx.from()),
        "amount": o.amount.to_string(), "amountDecimal": format_amount(o.amount, ctx.token.decimals),
        "deliverBy": o.deliver_by, "disputeWindow": o.dispute_window,
    });
    ctx.report(&args.tx, "relay", "locked (relayed)", &id, &receipt, extra).await?;
    if !args.tx.output.json {
        println!(
            "  terms        {} from {} to {}, deliver by {} (relayed by {})",
            ctx.token.units(o.amount),
            o.payer,
            o.payee,
            utc(o.deliver_by),
            ctx.from()
        );
    }
    Ok(())
}
