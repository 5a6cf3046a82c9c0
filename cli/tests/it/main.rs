//! `holdfast` binary tests: the real process against a real anvil and real stores.
#![allow(missing_docs, unreachable_pub, dead_code, clippy::too_many_arguments)]

#[path = "../../../indexer/tests/it/harness.rs"]
mod harness;

mod common;
mod crash;
mod dev;
mod failover;
mod help;
mod multichain;
mod order;
mod outage;
mod quickstart;
mod replica;
mod run;
mod storage_faults;
mod webhooks;
