//! `holdfast order show`: the order as the API serves it; `--wait` long-polls until it exists at a finality.
//! An order the API does not serve is explained from its event history: a reorg that removed it is named
//! with the block of its reverted lock.

use alloy::primitives::{Address, keccak256};
use clap::Args;
use serde_json::Value;
use url::Url;

use super::{
    context::{ApiUrlOpts, Finality, NotFound, OutputOpts, get_order, order_events, wait_order},
    order_id::{OrderId, OrderIdArg, PartyOpts, human_secs, utc},
    signer::SignerOpts,
};

/// Arguments of `holdfast order show`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ShowArgs {
    /// Order id (0x + 64 hex digits), or the order's reference (e.g. invoice-42) with --payer and --payee
    /// (or one of them, the other being your account when a key or keystore is set).
    #[arg(value_name = "ORDER")]
    pub(crate) order_id: OrderIdArg,
    #[command(flatten)]
    pub(crate) parties: PartyOpts,
    /// Wait up to SECONDS (default 60) until the order is indexed and its latest state is at --finality
    /// (the API's long-poll; no busy polling).
    #[arg(long, num_args = 0..=1, default_missing_value = "60", value_name = "SECONDS")]
    pub(crate) wait: Option<u64>,
    /// Finality to wait for with --wait.
    #[arg(long, value_enum, default_value_t = Finality::Pending, requires = "wait")]
    pub(crate) finality: Finality,
    /// Pick the order of this escrow when the API serves several.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) escrow: Option<Address>,
    /// Pick the order of this chain when the API serves several.
    #[arg(long)]
    pub(crate) chain_id: Option<u64>,
    #[command(flatten)]
    pub(crate) api: ApiUrlOpts,
    #[command(flatten)]
    pub(crate) output: OutputOpts,
    /// Your account, only for a reference given with one of --payer / --payee: it is the other party.
    #[command(flatten, next_help_heading = "Your account (with a reference, the party not given)")]
    pub(crate) signer: SignerOpts,
}

pub(crate) async fn run(args: ShowArgs) -> eyre::Result<()> {
    let mut query = Vec::new();
    if let Some(c) = args.chain_id {
        query.push(("chainId".to_string(), c.to_string()));
    }
    if let Some(e) = args.escrow {
        query.push(("escrow".to_string(), e.to_string()));
    }
    let needs_me = matches!(args.order_id, OrderIdArg::Reference(_))
        && (args.parties.payer.is_none() || args.parties.payee.is_none());
    let me = if needs_me { args.signer.address_if_set()? } else { None };
    let id = args.order_id.resolve(&args.parties, me)?;
    let api = &args.api.api_url;
    let found = match args.wait {
        Some(secs) => wait_order(api, id.value, &query, args.finality, secs).await,
        None => get_order(api, id.value, &query).await,
    };
    let o = match found {
        Ok(o) => o,
        Err(e) => match e.downcast::<NotFound>() {
            Ok(NotFound(why)) => return Err(not_found(api, &id, &query, why, args.wait).await?),
            Err(e) => return Err(e),
        },
    };
    if args.output.json {
        println!("{}", serde_json::to_string_pretty(&o)?);
    } else {
        print_human(&id, &o);
    }
    Ok(())
}

/// The error for an order a reorg removed (`"rule": "OrderReorged"` with `--json`).
#[derive(Debug)]
pub(crate) struct Reorged(pub(crate) String);

impl std::fmt::Display for Reorged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Reorged {}

/// Why the API does not serve the order: a reorg removed it (its events are all reverted), or `why` (never
/// indexed), with what gave the id of a reference and, if there is one, the order locked under the
/// reference's bare keccak256 (the id older versions of holdfast used).
async fn not_found(
    api: &Url,
    id: &OrderId,
    query: &[(String, String)],
    why: String,
    waited: Option<u64>,
) -> eyre::Result<eyre::Report> {
    // The events are only an explanation: if they cannot be read, the plain "not found" stands.
    if let Some(events) = order_events(api, id.value, query).await.ok().flatten()
        && let Some(reorg) = reorged(id, &events)
    {
        let after = match waited {
            Some(secs) => format!("; it was not locked again within the wait ({secs} s)"),
            None => "; add --wait to wait in case it is locked again".into(),
        };
        return Ok(Reorged(format!("{reorg}{after}")).into());
    }
    let mut msg = why;
    if let Some(d) = id.derivation() {
        msg.push_str(&format!("; this is the id of the {d}: check --payer and --payee"));
        let legacy = keccak256(id.text().unwrap_or_default().as_bytes());
        if get_order(api, legacy, query).await.is_ok() {
            msg.push_str(&format!(
                "; the API has an order {legacy:#x} = keccak256({:?}) (the id an older holdfast derived from the \
                 reference alone): show it by that id",
                id.text().unwrap_or_default()
            ));
        }
    }
    Ok(eyre::eyre!("{msg}"))
}

/// The sentence for an order whose every indexed event a reorg reverted, naming the block of its (last)
/// reverted lock; `None` if any event is still on the chain, or there is none.
fn reorged(id: &OrderId, events: &[Value]) -> Option<String> {
    if events.is_empty() || events.iter().any(|e| e["reverted"].as_bool() != Some(true)) {
        return None;
    }
    let i = events.iter().rposition(|e| e["kind"] == "locked").unwrap_or(events.len() - 1);
    let (lock, later) = (&events[i], events.len() - 1 - i);
    let steps = match later {
        0 => String::new(),
        1 => " with the step after it".into(),
        n => format!(" with the {n} steps after it"),
    };
    Some(format!(
        "order {id}: removed from the chain by a reorg: its lock in block {} (transaction {}){steps} was \
         reverted, and no lock of it is on the current chain",
        s(&lock["blockNumber"]),
        s(&lock["transactionHash"]),
    ))
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        v => v.to_string(),
    }
}

fn print_human(id: &OrderId, o: &Value) {
    let sym = s(&o["token"]["symbol"]);
    let amt = |k: &str| format!("{} {sym}", s(&o[format!("{k}Decimal")]));
    println!("order        {id}");
    println!(
        "status       {}{} ({} finality, {})",
        s(&o["status"]),
        if o["settled"].as_bool() == Some(true) { ", settled" } else { "" },
        s(&o["finality"]),
        super::confirmations(&o["confirmations"])
    );
    println!("payer        {}", s(&o["payer"]));
    println!("payee        {}", s(&o["payee"]));
    println!("arbiter      {}", if o["arbiter"].is_null() { "none".into() } else { s(&o["arbiter"]) });
    println!(
        "amount       {}  (released {}, refunded {}, remaining {})",
        amt("amount"),
        amt("released"),
        amt("refunded"),
        amt("remaining")
    );
    let d = &o["deadlines"];
    let t = |k: &str| d[k].as_u64().map(utc);
    if let Some(by) = t("deliverBy") {
        println!("deliver by   {by}");
    }
    if let Some(w) = o["disputeWindow"].as_u64() {
        println!("dispute      {} after delivery", human_secs(w));
    }
    if let Some(r) = t("releasableAt") {
        println!("releasable   {r}");
    }
    if let Some(f) = t("freezeTimeoutAt") {
        println!("arbiter until {f}");
    }
    if let Some(e) = o["evidence"].as_str() {
        println!("evidence     {e}");
    }
    if let Some(r) = o["freezeReason"].as_str() {
        println!("freeze       reason {r}, by {}", s(&o["frozenBy"]));
    }
    for p in o["deferredPayouts"].as_array().into_iter().flatten() {
        let state = match p["withdrawn"]["transactionHash"].as_str() {
            Some(tx) => format!("withdrawn in {tx}"),
            None => "withdrawable by the recipient (withdraw)".to_string(),
        };
        println!(
            "deferred     {} {sym} to {}: refused by the token, credited; {state}",
            s(&p["amountDecimal"]),
            s(&p["recipient"])
        );
    }
    if o["resolvedByTimeout"].as_bool() == Some(true) {
        println!("resolved     by the default outcome after the arbiter's timeout");
    }
    if let Some(steps) = o["steps"].as_array() {
        for step in steps {
            println!(
                "  {:<10} block {:<8} {} {}",
                s(&step["kind"]),
                s(&step["blockNumber"]),
                s(&step["transactionHash"]),
                s(&step["finality"])
            );
        }
    }
    if o["anomalies"].as_array().is_some_and(|a| !a.is_empty()) {
        println!("anomalies    {}", o["anomalies"]);
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::B256;
    use serde_json::json;

    use super::*;

    fn event(kind: &str, block: u64, reverted: bool) -> Value {
        json!({"kind": kind, "blockNumber": block, "transactionHash": format!("0x{block:064x}"), "reverted": reverted})
    }

    #[test]
    fn a_reorged_order_is_named_with_the_block_of_its_lock() {
        let id = OrderId { value: B256::with_last_byte(1), reference: None };
        let tx = |b: u64| format!("0x{b:064x}");
        assert_eq!(reorged(&id, &[]), None);
        assert_eq!(reorged(&id, &[event("locked", 7, false)]), None);
        assert_eq!(reorged(&id, &[event("locked", 7, true), event("delivered", 8, false)]), None);
        let one = reorged(&id, &[event("locked", 7, true)]).unwrap();
        assert_eq!(
            one,
            format!(
                "order {:#x}: removed from the chain by a reorg: its lock in block 7 (transaction {}) was reverted, \
                 and no lock of it is on the current chain",
                id.value,
                tx(7)
            )
        );
        // Locked, reorged, locked again in another block and reorged again: the last lock, with its step.
        let events = [event("locked", 7, true), event("locked", 9, true), event("delivered", 10, true)];
        let again = reorged(&id, &events).unwrap();
        assert!(
            again.contains(&format!("its lock in block 9 (transaction {}) with the step after it", tx(9)))
        );
    }
}
