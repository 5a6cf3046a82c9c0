//! Subcommands, one file each.

pub(crate) mod dev;
pub(crate) mod index;
pub(crate) mod order;
pub(crate) mod reindex;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod webhooks;
