//! API integration tests: the router against a real SQLite / Postgres store filled by the real indexer from
//! a real anvil chain.
#![allow(missing_docs, unreachable_pub, dead_code, clippy::too_many_arguments)]

/// Send a contract call and wait for its receipt; evaluates to the transaction hash.
macro_rules! send {
    ($call:expr) => {
        $call.send().await.unwrap().get_receipt().await.unwrap().transaction_hash
    };
}

mod dapp;
mod e2e;
mod fuzz;
mod harness;
mod limits;
mod openapi;
mod order_wait;
mod retention;
mod router;
mod serve;
