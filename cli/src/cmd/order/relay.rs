//! `holdfast order relay`: submit a gasless lock signed with `order lock --gasless`, from any account
//! (the relayer pays the gas; the payer's funds move by the signed authorization only).

use std::{io::Read, path::PathBuf};

use alloy::{
    primitives::{Address, B256, U256},
    sol_types::SolStruct,
};
use clap::Args;
use eyre::{Context as _, bail};
use serde_json::json;

use super::{
    amount::format_amount,
    context::{Ctx, TxOpts, addr},
    explain::{Action, ITokenErrors, Terms, TokenErrors, TokenMeta},
    lock::{AUTH_KIND, AuthorizationDoc, SigDoc, check_terms},
    order_id::{OrderIdArg, reference_id, utc},
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
    if !signature_recovers_to(&doc.signature, &hash, o.payer) {
        ctx.precheck(Some(TokenErrors::InvalidSignature(ITokenErrors::InvalidSignature {})), &sc)?;
    }
    check_display_fields(&doc, &ctx.token)?;
    let id = match &o.order_ref {
        Some(r) => OrderIdArg::Reference(r.clone()).between(o.payer, o.payee),
        None => OrderIdArg::Id(o.order_id).between(o.payer, o.payee),
    };
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

/// Whether `sig` is the signature of `payer` over `hash` in the form the token accepts: `v` 27 or 28 and a
/// low `s` (OpenZeppelin's ECDSA and USDC reject the malleable high-`s` twin, which `recover` would accept).
fn signature_recovers_to(sig: &SigDoc, hash: &B256, payer: Address) -> bool {
    let parity = match sig.v {
        27 => false,
        28 => true,
        _ => return false,
    };
    let sig = alloy::signers::Signature::from_scalars_and_parity(sig.r, sig.s, parity);
    sig.normalize_s().is_none() && sig.recover_address_from_prehash(hash).ok() == Some(payer)
}

/// The document's fields that no signature covers (`orderRef`, `amountDecimal`, the token's symbol and
/// decimals) must agree with what is signed and with the chain, so that nothing shown is misleading.
fn check_display_fields(doc: &AuthorizationDoc, token: &TokenMeta) -> eyre::Result<()> {
    let o = &doc.order;
    if let Some(r) = &o.order_ref
        && reference_id(o.payer, o.payee, r) != o.order_id
    {
        bail!(
            "order {:#x}: orderRef {r:?} is not the reference of this id between payer {} and payee {} (was the \
             document altered?)",
            o.order_id,
            o.payer,
            o.payee
        );
    }
    if doc.token.decimals != token.decimals || doc.token.symbol != token.symbol {
        bail!(
            "the document describes the token as {} with {} decimals, but {} is {} with {} decimals",
            doc.token.symbol,
            doc.token.decimals,
            token.address,
            token.symbol,
            token.decimals
        );
    }
    if let Some(d) = &o.amount_decimal
        && *d != format_amount(o.amount, token.decimals)
    {
        bail!(
            "order {:#x}: amountDecimal {d:?} does not match the signed amount of {} base units ({}); was the \
             document altered?",
            o.order_id,
            o.amount,
            token.units(o.amount)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use alloy::{
        signers::{SignerSync, local::PrivateKeySigner},
        sol_types::eip712_domain,
    };

    use super::*;
    use crate::cmd::order::lock::ReceiveWithAuthorization;

    #[test]
    fn only_the_canonical_signature_form_passes() {
        let signer = PrivateKeySigner::random();
        let domain = eip712_domain! {
            name: "USD Coin",
            version: "2",
            chain_id: 31337,
            verifying_contract: Address::with_last_byte(1),
        };
        let msg = ReceiveWithAuthorization {
            from: signer.address(),
            to: Address::with_last_byte(2),
            value: U256::from(3_250_000u64),
            validAfter: U256::ZERO,
            validBefore: U256::from(2_000_000_000u64),
            nonce: B256::repeat_byte(7),
        };
        let hash = msg.eip712_signing_hash(&domain);
        let sig = signer.sign_hash_sync(&hash).unwrap();
        let good = SigDoc { v: 27 + sig.v() as u8, r: sig.r().into(), s: sig.s().into() };
        assert!(signature_recovers_to(&good, &hash, signer.address()));
        assert!(!signature_recovers_to(&good, &hash, Address::with_last_byte(3)));
        // The same signature with a raw parity (0/1) instead of 27/28: ecrecover returns zero on chain.
        let raw = SigDoc { v: sig.v() as u8, ..good.clone() };
        assert!(!signature_recovers_to(&raw, &hash, signer.address()));
        // The malleable twin (n - s, flipped parity) recovers to the payer too, but tokens reject it.
        let n = U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16)
            .unwrap();
        let twin = SigDoc { v: 27 + u8::from(!sig.v()), r: good.r, s: (n - sig.s()).into() };
        assert!(!signature_recovers_to(&twin, &hash, signer.address()));
    }
}
