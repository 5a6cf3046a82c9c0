//! `holdfast order lock`: by allowance (approving exactly the amount, only when the allowance is short),
//! with an EIP-2612 permit (`--permit`), or gasless (`--gasless`: sign an EIP-3009 authorization bound to
//! the order's terms and print it for `holdfast order relay`; nothing is sent).

use std::path::PathBuf;

use alloy::{
    primitives::{Address, B256, U256},
    signers::SignerSync,
    sol,
    sol_types::SolStruct,
};
use clap::Args;
use eyre::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    amount::{format_amount, parse_amount},
    context::{Ctx, TxOpts, addr},
    explain::{Action, ITokenErrors, Stage, Terms, TokenErrors, Violation, check_lock},
    order_id::{OrderId, OrderIdArg, Secs, When, human_secs, utc},
};

sol! {
    /// EIP-2612.
    struct Permit { address owner; address spender; uint256 value; uint256 nonce; uint256 deadline; }
    /// EIP-3009 (the type the escrow's `lockWithAuthorization` redeems).
    struct ReceiveWithAuthorization {
        address from; address to; uint256 value; uint256 validAfter; uint256 validBefore; bytes32 nonce;
    }
}

/// `kind` of a gasless lock document.
pub(crate) const AUTH_KIND: &str = "holdfast.lockWithAuthorization/v1";

/// Arguments of `holdfast order lock`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LockArgs {
    /// Order id: 0x + 64 hex digits, or a reference (e.g. invoice-42), whose id is
    /// keccak256(abi.encode(payer, payee, keccak256(utf8(reference)))) with you as the payer.
    #[arg(value_name = "ORDER")]
    pub(crate) order_id: OrderIdArg,
    /// Who is paid.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) payee: Address,
    /// Amount in token units, e.g. 12.50 (exact: more decimals than the token has is an error).
    #[arg(long)]
    pub(crate) amount: String,
    /// Who settles the order if frozen (default: none, and the order can never be frozen).
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) arbiter: Option<Address>,
    /// Delivery deadline: RFC 3339 time (2026-12-01T12:00:00Z) or a duration from now (7d, 36h). "Now" is
    /// the wall clock, or the latest block's timestamp if the chain is ahead of it.
    #[arg(long, default_value = "7d", value_name = "TIME")]
    pub(crate) deliver_by: When,
    /// Time after delivery during which either party may still freeze, before anyone can release.
    #[arg(long, default_value = "3d", value_name = "DURATION")]
    pub(crate) dispute_window: Secs,
    /// Lock with an EIP-2612 permit signature (valid for one hour) instead of an approve transaction.
    #[arg(long, conflicts_with = "gasless")]
    pub(crate) permit: bool,
    /// Sign an EIP-3009 authorization bound to these terms and print it (JSON) for `order relay`; sends
    /// nothing and needs no gas.
    #[arg(long)]
    pub(crate) gasless: bool,
    /// With --gasless: the authorization's end of validity, RFC 3339 or a duration from now (the wall
    /// clock, or the latest block's timestamp if later) (default: --deliver-by, after which the lock could
    /// not succeed anyway).
    #[arg(long, requires = "gasless", value_name = "TIME")]
    pub(crate) valid_until: Option<When>,
    /// With --gasless: write the document to this file instead of stdout.
    #[arg(long, requires = "gasless", value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) tx: TxOpts,
}

/// A gasless lock: the terms, the EIP-3009 authorization and the payer's signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AuthorizationDoc {
    pub(crate) kind: String,
    pub(crate) chain_id: u64,
    #[serde(with = "checksum")]
    pub(crate) escrow: Address,
    pub(crate) token: TokenDoc,
    pub(crate) order: TermsDoc,
    pub(crate) authorization: AuthDoc,
    pub(crate) signature: SigDoc,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TokenDoc {
    #[serde(with = "checksum")]
    pub(crate) address: Address,
    pub(crate) symbol: String,
    pub(crate) decimals: u8,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TermsDoc {
    pub(crate) order_id: B256,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) order_ref: Option<String>,
    #[serde(with = "checksum")]
    pub(crate) payer: Address,
    #[serde(with = "checksum")]
    pub(crate) payee: Address,
    /// Base units.
    #[serde(with = "dec")]
    pub(crate) amount: U256,
    /// For humans only; `amount` is authoritative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) amount_decimal: Option<String>,
    #[serde(with = "checksum")]
    pub(crate) arbiter: Address,
    pub(crate) deliver_by: u64,
    pub(crate) dispute_window: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AuthDoc {
    #[serde(with = "checksum")]
    pub(crate) from: Address,
    #[serde(with = "checksum")]
    pub(crate) to: Address,
    #[serde(with = "dec")]
    pub(crate) value: U256,
    #[serde(with = "dec")]
    pub(crate) valid_after: U256,
    #[serde(with = "dec")]
    pub(crate) valid_before: U256,
    pub(crate) nonce: B256,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SigDoc {
    pub(crate) v: u8,
    pub(crate) r: B256,
    pub(crate) s: B256,
}

impl AuthDoc {
    pub(crate) fn message(&self) -> ReceiveWithAuthorization {
        ReceiveWithAuthorization {
            from: self.from,
            to: self.to,
            value: self.value,
            validAfter: self.valid_after,
            validBefore: self.valid_before,
            nonce: self.nonce,
        }
    }
}

/// Checks shared by `lock` and `relay`: the lock rules, then the payer's balance.
pub(crate) async fn check_terms(ctx: &Ctx, t: &Terms) -> eyre::Result<()> {
    let sc = ctx.scene(t.id, Action::Lock, None);
    let existing = ctx.order(t.id).await?;
    let at = ctx.now().await? + 1;
    ctx.precheck(check_lock(t, existing.status(), ctx.escrow, at), &sc)?;
    let balance = ctx.token().balanceOf(t.payer).call().await?;
    if balance < t.amount {
        let e = TokenErrors::ERC20InsufficientBalance(ITokenErrors::ERC20InsufficientBalance {
            sender: t.payer,
            balance,
            needed: t.amount,
        });
        ctx.precheck(Some(e), &sc)?;
    }
    Ok(())
}

fn vrs(sig: &alloy::signers::Signature) -> (u8, B256, B256) {
    (27 + sig.v() as u8, B256::from(sig.r()), B256::from(sig.s()))
}

pub(crate) async fn run(args: LockArgs) -> eyre::Result<()> {
    let ctx = Ctx::connect(&args.tx, None).await?;
    let id = &args.order_id.between(ctx.from(), args.payee);
    let amount = parse_amount(&args.amount, ctx.token.decimals, &ctx.token.symbol)?;
    let now = ctx.now().await?;
    let deliver_by = args.deliver_by.resolve(Ctx::relative_base(now));
    let dispute_window = u32::try_from(args.dispute_window.0)
        .map_err(|_| eyre::eyre!("--dispute-window is too long (at most 2^32-1 seconds)"))?;
    let terms = Terms {
        id: id.value,
        payer: ctx.from(),
        payee: args.payee,
        amount,
        arbiter: args.arbiter.unwrap_or(Address::ZERO),
        deliver_by,
        dispute_window,
    };
    check_terms(&ctx, &terms).await?;
    let sc = ctx.scene(id.value, Action::Lock, None);
    let e = ctx.escrow();
    let mut extra = json!({
        "payer": addr(terms.payer), "payee": addr(terms.payee), "arbiter": addr(terms.arbiter),
        "amount": amount.to_string(), "amountDecimal": format_amount(amount, ctx.token.decimals),
        "deliverBy": deliver_by, "disputeWindow": dispute_window,
    });

    if args.gasless {
        return gasless(&ctx, &args, id, &terms).await;
    }
    let receipt = if args.permit {
        let domain = ctx.token_domain().await?;
        let nonce =
            ctx.token().nonces(terms.payer).call().await.wrap_err("the token has no nonces(): no permit")?;
        let deadline = U256::from(now + 3_600);
        let msg = Permit { owner: terms.payer, spender: ctx.escrow, value: amount, nonce, deadline };
        let sig = ctx.signer.sign_hash_sync(&msg.eip712_signing_hash(&domain))?;
        let (v, r, s) = vrs(&sig);
        let call = e.lockWithPermit(
            id.value,
            terms.payee,
            amount,
            terms.arbiter,
            deliver_by,
            dispute_window,
            deadline,
            v,
            r,
            s,
        );
        ctx.execute(call, &sc).await?
    } else {
        let allowance = ctx.token().allowance(terms.payer, ctx.escrow).call().await?;
        let mut approved = None;
        if allowance < amount {
            // `approve` sets the allowance (it does not add to it): exactly the amount, which the lock
            // then spends entirely.
            tracing::debug!(%allowance, %amount, "approving exactly the amount");
            let token = ctx.token();
            let approve = token.approve(ctx.escrow, amount);
            let r = ctx.execute(approve, &sc).await?;
            extra["approveTransaction"] = json!(format!("{:#x}", r.transaction_hash));
            if !args.tx.output.json {
                println!(
                    "approved {} to the escrow (allowance was {}): {:#x}",
                    ctx.token.units(amount),
                    ctx.token.units(allowance),
                    r.transaction_hash
                );
            }
            approved = Some(r.transaction_hash);
        }
        let call = e.lock(id.value, terms.payee, amount, terms.arbiter, deliver_by, dispute_window);
        match (ctx.execute(call, &sc).await, approved) {
            (Ok(r), _) => r,
            (Err(err), None) => return Err(err),
            // The approve is on chain even though the lock failed: say so, never "nothing was sent".
            (Err(err), Some(tx)) => {
                let note = format!(
                    "the approve transaction {tx:#x} was mined, so the escrow may now spend {} of {}'s {}; \
                     the lock itself was not sent",
                    ctx.token.units(amount),
                    terms.payer,
                    ctx.token.symbol
                );
                return Err(match err.downcast::<Violation>() {
                    Ok(v) if matches!(v.stage, Stage::Mined | Stage::Sent) => v.into(),
                    Ok(v) => Violation { message: format!("{}; {note}", v.message), stage: Stage::Sent, ..v }
                        .into(),
                    Err(other) => Violation {
                        rule: "NodeRejected".into(),
                        message: format!("{other:#}; {note}"),
                        stage: Stage::Sent,
                    }
                    .into(),
                });
            }
        }
    };
    ctx.report(&args.tx, "lock", "locked", id, &receipt, extra).await?;
    if !args.tx.output.json {
        println!(
            "  terms        {} to {}, deliver by {}, dispute window {}{}",
            ctx.token.units(amount),
            terms.payee,
            utc(deliver_by),
            human_secs(dispute_window as u64),
            if terms.arbiter.is_zero() {
                ", no arbiter".to_string()
            } else {
                format!(", arbiter {}", terms.arbiter)
            }
        );
    }
    Ok(())
}

async fn gasless(ctx: &Ctx, args: &LockArgs, id: &OrderId, t: &Terms) -> eyre::Result<()> {
    let domain = ctx.token_domain().await?;
    let now = ctx.now().await?;
    let valid_before = args.valid_until.map(|w| w.resolve(Ctx::relative_base(now))).unwrap_or(t.deliver_by);
    if valid_before <= now + 1 {
        eyre::bail!("--valid-until {} is not in the future (chain time {})", utc(valid_before), utc(now));
    }
    let nonce = ctx
        .escrow()
        .authorizationNonce(t.id, t.payee, t.amount, t.arbiter, t.deliver_by, t.dispute_window)
        .call()
        .await?;
    let auth = AuthDoc {
        from: t.payer,
        to: ctx.escrow,
        value: t.amount,
        valid_after: U256::ZERO,
        valid_before: U256::from(valid_before),
        nonce,
    };
    let sig = ctx.signer.sign_hash_sync(&auth.message().eip712_signing_hash(&domain))?;
    let (v, r, s) = vrs(&sig);
    let doc = AuthorizationDoc {
        kind: AUTH_KIND.into(),
        chain_id: ctx.chain_id,
        escrow: ctx.escrow,
        token: TokenDoc {
            address: ctx.token.address,
            symbol: ctx.token.symbol.clone(),
            decimals: ctx.token.decimals,
        },
        order: TermsDoc {
            order_id: t.id,
            order_ref: id.text().map(str::to_string),
            payer: t.payer,
            payee: t.payee,
            amount: t.amount,
            amount_decimal: Some(format_amount(t.amount, ctx.token.decimals)),
            arbiter: t.arbiter,
            deliver_by: t.deliver_by,
            dispute_window: t.dispute_window,
        },
        authorization: auth,
        signature: SigDoc { v, r, s },
    };
    let text = serde_json::to_string_pretty(&doc)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, format!("{text}\n"))
                .wrap_err_with(|| format!("cannot write {}", path.display()))?;
            if args.tx.output.json {
                let doc = json!({"action": "signed", "orderId": format!("{:#x}", t.id), "orderRef": id.text(), "file": path});
                println!("{doc}");
            } else {
                println!(
                    "signed a gasless lock of {} for order {} (valid until {}); relay it with: holdfast order relay {}",
                    ctx.token.units(t.amount),
                    id,
                    utc(valid_before),
                    path.display()
                );
            }
        }
        None => println!("{text}"),
    }
    Ok(())
}

/// U256 as a decimal string ("12500000"); `0x` hex is accepted when reading.
mod dec {
    use alloy::primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(v: &U256, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<U256, D::Error> {
        let s = String::deserialize(d)?;
        let r = match s.strip_prefix("0x") {
            Some(h) => U256::from_str_radix(h, 16),
            None => U256::from_str_radix(&s, 10),
        };
        r.map_err(|_| D::Error::custom(format!("{s:?} is not an integer (base units as a decimal string)")))
    }
}

/// Addresses written EIP-55 checksummed (as the API does); any letter case is read.
mod checksum {
    use alloy::primitives::Address;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(a: &Address, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&a.to_checksum(None))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        Address::deserialize(d)
    }
}
