//! Delivery-side building blocks of Holdfast's signed webhooks, following the
//! [Standard Webhooks](https://www.standardwebhooks.com/) specification.
//!
//! The store and the outbox live in `holdfast-store` (the indexer fills the outbox); this crate delivers it:
//!
//! - [`secret`]: secret generation and the [`Signer`] producing the `webhook-*` headers (with rotation:
//!   two secrets valid during a grace period);
//! - [`target`]: the SSRF guard — [`check_ip`], [`validate_url`] and the [`GuardedResolver`] that re-checks
//!   every resolved address at connect time;
//! - [`backoff`]: the retry schedule ([`retry_delay`], a pure function of the persisted attempt count) and
//!   [`parse_retry_after`];
//! - [`client`]: the locked-down HTTP client ([`http_client`]) and one delivery attempt ([`post`]);
//! - [`listen`](mod@listen): a developer receiver that verifies deliveries ([`listen()`], [`describe`]);
//! - [`worker`]: the delivery worker over the store's queue ([`Worker`]).

pub mod backoff;
pub mod client;
pub mod listen;
pub mod secret;
pub mod target;
pub mod worker;

pub use backoff::{parse_retry_after, retry_delay};
pub use client::{Attempt, Outcome, http_client, post};
pub use listen::{Received, ReceivedBody, describe, listen};
pub use secret::{SecretError, Signer, generate_secret};
pub use target::{GuardedResolver, RefusedTarget, TargetError, check_ip, validate_url};
pub use worker::{Worker, WorkerConfig};

/// What can go wrong in this crate's fallible operations (an attempt's failures are not errors: see
/// [`Attempt`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A webhook secret is malformed.
    #[error("invalid webhook secret")]
    Secret(#[from] SecretError),
    /// The Standard Webhooks library refused to sign the payload (it must be UTF-8).
    #[error("signing the webhook payload failed")]
    Sign(#[source] standardwebhooks::WebhookError),
    /// A value does not fit in an HTTP header (e.g. a message id with control characters).
    #[error("the {name} header value is invalid")]
    HeaderValue {
        /// The header's name.
        name: &'static str,
        /// Why `http` refused it.
        #[source]
        source: http::header::InvalidHeaderValue,
    },
    /// A webhook target is refused.
    #[error("refused webhook target")]
    Target(#[from] TargetError),
    /// The HTTP client could not be built.
    #[error("building the webhook HTTP client failed")]
    Client(#[source] reqwest::Error),
    /// The receiver's server failed.
    #[error("the webhook receiver failed")]
    Serve(#[source] std::io::Error),
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
