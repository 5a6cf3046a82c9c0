//! `holdfast order show`: the order as the API serves it; `--wait` long-polls until it exists at a finality.

use alloy::primitives::Address;
use clap::Args;
use serde_json::Value;

use super::{
    context::{ApiUrlOpts, Finality, OutputOpts, get_order, wait_order},
    order_id::{Bytes32Arg, human_secs, utc},
};

/// Arguments of `holdfast order show`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ShowArgs {
    /// Order id: 0x + 64 hex digits, or a reference used as keccak256(utf8(reference)).
    pub(crate) order_id: Bytes32Arg,
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
}

pub(crate) async fn run(args: ShowArgs) -> eyre::Result<()> {
    let mut query = Vec::new();
    if let Some(c) = args.chain_id {
        query.push(("chainId".to_string(), c.to_string()));
    }
    if let Some(e) = args.escrow {
        query.push(("escrow".to_string(), e.to_string()));
    }
    let id = args.order_id.value;
    let o = match args.wait {
        Some(secs) => wait_order(&args.api.api_url, id, &query, args.finality, secs).await?,
        None => get_order(&args.api.api_url, id, &query).await?,
    };
    if args.output.json {
        println!("{}", serde_json::to_string_pretty(&o)?);
    } else {
        print_human(&args.order_id, &o);
    }
    Ok(())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        v => v.to_string(),
    }
}

fn print_human(id: &Bytes32Arg, o: &Value) {
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
