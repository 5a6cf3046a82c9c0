//! An http transport for `eth_getLogs` ranges that reads at most a set number of bytes of a response.
//!
//! Our own and not alloy's `Http`: that one reads a whole body into memory before anything can look at
//! it, so one range grown across empty blocks into the dense part of a history (100,000+ logs) held the
//! body, alloy's copy and the decoded logs at once (issue 10: the backfill's peak memory). Here the body is
//! read chunk by chunk and abandoned at the cap, and the range is split ([`ResponseTooLarge`] is classified
//! as too large): what one response may hold is bounded by construction, whatever the node sends.

use std::task;

use alloy::{
    rpc::json_rpc::{RequestPacket, ResponsePacket},
    transports::{TransportError, TransportErrorKind, TransportFut, http::reqwest},
};
use url::Url;

/// A response body over the cap: the range that asked for it is split.
#[derive(Debug, thiserror::Error)]
#[error("the response is over {cap} bytes (the log-range response cap); splitting the range")]
pub struct ResponseTooLarge {
    /// The cap, in bytes.
    pub cap: usize,
    /// The response's size, when the node said it (`Content-Length`): the range is then split into as
    /// many parts as it takes at once, instead of in halves, each of which the node would answer in full.
    pub size: Option<u64>,
}

impl ResponseTooLarge {
    /// How many parts a range should be split into so that each is about half the cap: from the size the
    /// node announced, else 2 (halves).
    pub fn parts(&self) -> u64 {
        match self.size {
            Some(size) => size.div_ceil((self.cap as u64 / 2).max(1)).max(2),
            None => 2,
        }
    }
}

/// JSON-RPC over http, reading at most `cap` bytes of each response body.
#[derive(Debug, Clone)]
pub(crate) struct CappedHttp {
    client: reqwest::Client,
    url: Url,
    cap: usize,
}

impl CappedHttp {
    /// A transport to `url` whose responses may hold at most `cap` bytes.
    pub(crate) fn new(url: Url, cap: usize) -> Self {
        Self { client: reqwest::Client::new(), url, cap }
    }

    async fn request(self, req: RequestPacket) -> Result<ResponsePacket, TransportError> {
        let cap = self.cap;
        let too_large = |size| TransportErrorKind::custom(ResponseTooLarge { cap, size });
        let mut resp = self
            .client
            .post(self.url.clone())
            .json(&req)
            .headers(req.headers())
            .send()
            .await
            .map_err(TransportErrorKind::custom)?;
        let status = resp.status();
        if let Some(n) = resp.content_length().filter(|n| *n > self.cap as u64) {
            return Err(too_large(Some(n)));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(TransportErrorKind::custom)? {
            if body.len() + chunk.len() > self.cap {
                // Dropping the response closes its connection: the rest is never read.
                return Err(too_large(None));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(TransportErrorKind::http_error(
                status.as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        serde_json::from_slice(&body)
            .map_err(|e| TransportError::deser_err(e, String::from_utf8_lossy(&body)))
    }
}

impl tower::Service<RequestPacket> for CappedHttp {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _: &mut task::Context<'_>) -> task::Poll<Result<(), Self::Error>> {
        task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: RequestPacket) -> Self::Future {
        Box::pin(self.clone().request(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_size_splits_into_parts_of_half_the_cap_else_halves() {
        let cap = 8 * 1024 * 1024;
        assert_eq!(ResponseTooLarge { cap, size: None }.parts(), 2);
        assert_eq!(ResponseTooLarge { cap, size: Some(cap as u64 + 1) }.parts(), 3);
        assert_eq!(ResponseTooLarge { cap, size: Some(90 * 1024 * 1024) }.parts(), 23);
        assert_eq!(ResponseTooLarge { cap: 1, size: Some(5) }.parts(), 5);
    }
}
