//! holdfast-webhooks integration tests: signatures checked by the independent Python implementation,
//! deliveries against local receivers, and the developer receiver.
#![allow(missing_docs, unreachable_pub)]

mod deliver;
mod receive;
mod sign;

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds (the `webhook-timestamp` verifiers accept).
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A change record like the API's, as a delivery body.
pub fn change_body() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "seq": 1043, "type": "order.updated", "chainId": 31337,
        "escrow": "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512",
        "orderId": "0x000000000000000000000000000000000000000000000000000000000000002b",
        "blockNumber": 20311, "order": {"status": "released", "amount": "1000000", "note": "café ✓"}
    }))
    .unwrap()
}
