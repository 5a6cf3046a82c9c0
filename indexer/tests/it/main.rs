//! Indexer integration tests against a real anvil and real SQLite / Postgres stores.
#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

mod deferred_indexes;
mod faults;
mod fencing;
mod generator;
mod harness;
mod lifecycle;
mod memchain;
mod reorg;
mod safety;
mod sqlite_read;
mod webhook_outbox;
mod ws_backfill;
