//! The HTTP client of deliveries and one delivery attempt.

use std::error::Error as StdError;
use std::time::{Duration, Instant, SystemTime};

use http::HeaderMap;
use reqwest::header::RETRY_AFTER;
use url::Url;

use crate::target::{GuardedResolver, check_url};
use crate::{Error, Result, backoff};

/// The `User-Agent` of deliveries.
pub const USER_AGENT: &str = concat!("holdfast-webhooks/", env!("CARGO_PKG_VERSION"));
/// The longest connection setup (TCP and TLS) allowed, whatever the total timeout.
pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a response body is read (and kept, in [`Attempt::response_excerpt`]): never more.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;

/// The client deliveries are sent with: redirects are not followed (a redirect could lead anywhere, and
/// is a failed attempt), every host name is resolved by [`GuardedResolver`], requests time out after
/// `timeout` in total (connection setup after at most [`MAX_CONNECT_TIMEOUT`]), no proxy is taken from
/// the environment, and the user agent is [`USER_AGENT`].
///
/// The resolver is not consulted for IP-literal hosts, so the URL must also be checked before every
/// request ([`crate::validate_url`]); [`post`] does that.
pub fn http_client(allow_private: bool, timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(GuardedResolver::new(allow_private))
        .timeout(timeout)
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .user_agent(USER_AGENT)
        .no_proxy()
        .build()
        .map_err(Error::Client)
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A 2xx response: the delivery is done.
    Delivered,
    /// A 410 Gone: the receiver asks to stop; disable the subscription.
    Gone,
    /// Anything else — another status (3xx included: redirects are not followed), a timeout, a
    /// connection error, a refused target: retry later ([`crate::retry_delay`]).
    Retry,
}

impl Outcome {
    /// A stable lower-case name, for storage and logs: `delivered`, `gone` or `retry`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Gone => "gone",
            Self::Retry => "retry",
        }
    }

    /// The outcome of a response status.
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=299 => Self::Delivered,
            410 => Self::Gone,
            _ => Self::Retry,
        }
    }
}

/// One delivery attempt, as the attempt history records it.
///
/// Exactly one of `status` and `error` is set: a response (whatever its status) or a failure before one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The response status, if a response arrived.
    pub status: Option<u16>,
    /// From sending the request to the response's headers (or to the failure).
    pub latency: Duration,
    /// The response's `Retry-After`, if any and well-formed.
    pub retry_after: Option<Duration>,
    /// Why no response arrived: the error and its causes, for humans (`refused target: …`, `… timed
    /// out`, `… connection refused`).
    pub error: Option<String>,
    /// The start of the response body, at most [`RESPONSE_EXCERPT_BYTES`] bytes (lossily decoded as UTF-8),
    /// `None` if empty.
    pub response_excerpt: Option<String>,
    /// What to do next.
    pub outcome: Outcome,
}

impl Attempt {
    fn failed(started: Instant, error: &(dyn StdError + 'static)) -> Self {
        Self {
            status: None,
            latency: started.elapsed(),
            retry_after: None,
            error: Some(error_chain(error)),
            response_excerpt: None,
            outcome: Outcome::Retry,
        }
    }
}

/// Sends one delivery: checks `url` ([`crate::validate_url`]'s checks, with `allow_private`), POSTs `body`
/// with `headers` (from [`crate::Signer::headers`]) using a client from [`http_client`], and reads at most
/// [`RESPONSE_EXCERPT_BYTES`] of the response. Never fails: every failure is an [`Attempt`] to retry.
pub async fn post(
    client: &reqwest::Client,
    url: &Url,
    headers: HeaderMap,
    body: Vec<u8>,
    allow_private: bool,
) -> Attempt {
    let started = Instant::now();
    if let Err(refused) = check_url(url, allow_private) {
        tracing::debug!(%url, error = &refused as &dyn StdError, "webhook target refused");
        return Attempt::failed(started, &refused);
    }
    let mut response = match client.post(url.clone()).headers(headers).body(body).send().await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%url, error = &error as &dyn StdError, "webhook delivery failed");
            return Attempt::failed(started, &error);
        }
    };
    let latency = started.elapsed();
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get(RETRY_AFTER).and_then(|v| backoff::parse_retry_after(v, SystemTime::now()));

    let mut excerpt = Vec::new();
    while excerpt.len() < RESPONSE_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = RESPONSE_EXCERPT_BYTES - excerpt.len();
                excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(error) => {
                // The status decides the outcome; a body cut short only shortens the excerpt.
                tracing::debug!(%url, status, error = &error as &dyn StdError, "reading the webhook response failed");
                break;
            }
        }
    }
    // Dropping the response here closes the connection if more body follows: it is never read.
    drop(response);

    Attempt {
        status: Some(status),
        latency,
        retry_after,
        error: None,
        response_excerpt: excerpt_text(&excerpt),
        outcome: Outcome::of_status(status),
    }
}

/// The excerpt as text, without a UTF-8 sequence cut at the end.
fn excerpt_text(bytes: &[u8]) -> Option<String> {
    let bytes = match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_none() => &bytes[..e.valid_up_to()],
        _ => bytes,
    };
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// An error and its causes, `: `-separated (skipping a cause whose text its parent already shows).
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_status() {
        assert_eq!(Outcome::of_status(200), Outcome::Delivered);
        assert_eq!(Outcome::of_status(204), Outcome::Delivered);
        assert_eq!(Outcome::of_status(299), Outcome::Delivered);
        assert_eq!(Outcome::of_status(410), Outcome::Gone);
        for status in [100, 301, 302, 400, 404, 429, 500, 503] {
            assert_eq!(Outcome::of_status(status), Outcome::Retry, "{status}");
        }
        assert_eq!(Outcome::Gone.as_str(), "gone");
    }

    #[test]
    fn excerpts_drop_a_cut_character_and_keep_the_rest() {
        assert_eq!(excerpt_text(b""), None);
        assert_eq!(excerpt_text("ok é".as_bytes()).as_deref(), Some("ok é"));
        assert_eq!(excerpt_text(&"ok é".as_bytes()[..4]).as_deref(), Some("ok "));
        assert_eq!(excerpt_text(b"a\xffb").as_deref(), Some("a\u{fffd}b"));
    }

    #[test]
    fn error_chains_show_every_cause() {
        let error = crate::validate_url("http://127.0.0.1/", false).unwrap_err();
        let text = error_chain(&error);
        assert!(text.starts_with("refused target address: 127.0.0.1 is a loopback address"), "{text}");
    }
}
