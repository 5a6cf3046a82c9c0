//! Request plumbing: extractors that turn every rejection into the error envelope, the middleware
//! (query size limit, per-route timeouts, metrics and logging) and conditional-GET caching.

use std::time::{Duration, Instant};

use axum::{
    extract::{FromRequestParts, MatchedPath, Path, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    config::ApiConfig,
    error::{ApiError, ApiResult},
    state::AppState,
};

/// Query parameters; unknown or repeated parameters and bad values are `VALIDATION_ERROR`s.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        parse_query(&parts.uri).map(Self)
    }
}

/// The query string of `uri` as `T`, decoded as axum's `Query` decodes it (`form_urlencoded`, so keys are
/// percent-decoded too: `w%61it` is `wait`). A bad value is a `VALIDATION_ERROR` whose `details.field` names
/// the parameter (from `serde_path_to_error`, which axum's `Query` also uses but does not expose).
pub(crate) fn parse_query<T: DeserializeOwned>(uri: &Uri) -> ApiResult<T> {
    let query = uri.query().unwrap_or_default();
    // A repeated parameter is refused by serde as a "duplicate field" at the level of the whole query (no
    // path), so it is found here first, by its decoded name.
    let mut seen = std::collections::HashSet::new();
    for (key, _) in form_urlencoded::parse(query.as_bytes()) {
        if !seen.insert(key.clone()) {
            return Err(ApiError::invalid(key.clone(), format!("invalid query: {key} is repeated")));
        }
    }
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        let message = match &field {
            Some(f) => format!("invalid query: {f}: {}", e.inner()),
            None => format!("invalid query: {}", e.inner()),
        };
        ApiError::Validation { message, field }
    })
}

/// The `wait` parameter alone (other parameters ignored), to size a long-poll's timeout before the
/// handler validates the whole query.
#[derive(Debug, Deserialize)]
struct WaitParam {
    wait: Option<u64>,
}

/// Seconds the request asks to wait (`None`: no `wait`, or a query the handler will reject).
pub(crate) fn requested_wait(uri: &Uri) -> Option<u64> {
    parse_query::<WaitParam>(uri).ok().and_then(|p| p.wait)
}

/// Path parameters, rejections as `VALIDATION_ERROR`s.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Self(v))
            .map_err(|e| ApiError::Validation { message: e.body_text(), field: None })
    }
}

/// Reject a request over the configured size limits before routing: path and query (414), header count and
/// bytes (431), declared body (413), each with the envelope.
///
/// hyper parses the request first and answers by itself (no envelope possible) when its own limits are
/// exceeded; [`crate::serve_with`] sets those well above these, so that an oversized request reaches this
/// check and gets the envelope.
pub(crate) async fn limit_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check_limits(&state.config, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

fn check_limits(cfg: &ApiConfig, req: &Request) -> ApiResult<()> {
    let path = req.uri().path().len();
    if path > cfg.max_path_bytes {
        return Err(ApiError::PathTooLong(path, cfg.max_path_bytes));
    }
    let query = req.uri().query().map_or(0, str::len);
    if query > cfg.max_query_bytes {
        return Err(ApiError::QueryTooLong(query, cfg.max_query_bytes));
    }
    let headers = req.headers();
    if headers.len() > cfg.max_headers {
        return Err(ApiError::HeadersTooLarge(format!(
            "{} request headers exceed the limit of {}",
            headers.len(),
            cfg.max_headers
        )));
    }
    let bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if bytes > cfg.max_header_bytes {
        return Err(ApiError::HeadersTooLarge(format!(
            "request headers of {bytes} bytes exceed the limit of {}",
            cfg.max_header_bytes
        )));
    }
    // hyper has already refused a malformed or repeated-and-different Content-Length.
    let body = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(len) = body
        && len > cfg.max_body_bytes
    {
        return Err(ApiError::BodyTooLarge(len, cfg.max_body_bytes));
    }
    Ok(())
}

/// `OPTIONS` is only answered as a CORS preflight (`Origin` and `Access-Control-Request-Method`, handled by
/// the CORS layer inside this one); any other `OPTIONS` is a 405 like every method but GET and HEAD. (The
/// CORS layer answers every `OPTIONS` request with 200 by itself.)
pub(crate) async fn options_only_preflight(req: Request, next: Next) -> Response {
    let h = req.headers();
    if req.method() == Method::OPTIONS
        && !(h.contains_key(header::ORIGIN) && h.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD))
    {
        return ApiError::MethodNotAllowed.into_response();
    }
    next.run(req).await
}

/// Fail a request that takes longer than `limit` with `REQUEST_TIMEOUT`.
pub(crate) async fn with_timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::RequestTimeout(limit).into_response(),
    }
}

/// A `'static` copy of a metric label value: route templates and status codes are a small fixed set, so each
/// distinct value is leaked once and later requests record without allocating.
fn label(value: &str) -> &'static str {
    use std::{
        collections::HashSet,
        sync::{OnceLock, RwLock},
    };
    static LABELS: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    let labels = LABELS.get_or_init(Default::default);
    if let Some(v) = labels.read().unwrap_or_else(|e| e.into_inner()).get(value) {
        return v;
    }
    let mut w = labels.write().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = w.get(value) {
        return v;
    }
    let v: &'static str = Box::leak(value.to_owned().into_boxed_str());
    w.insert(v);
    v
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        // Any other (extension) method: one label, so clients cannot grow the metric set.
        _ => "OTHER",
    }
}

/// Count and time every request by route and status; log it at debug level. Labels are `'static` (no
/// per-request allocation).
pub(crate) async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| label(p.as_str()));
    let resp = next.run(req).await;
    let status = resp.status();
    let secs = started.elapsed().as_secs_f64();
    metrics::counter!("holdfast_api_requests_total", "method" => method, "route" => route,
        "status" => label(status.as_str()))
    .increment(1);
    metrics::histogram!("holdfast_api_request_duration_seconds", "route" => route).record(secs);
    tracing::debug!(method, route, status = status.as_u16(), ms = secs * 1e3, "request");
    resp
}

/// Cache policy of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cacheable {
    /// Settled and finalized: can no longer change.
    Immutable,
    /// May still change: revalidate every time.
    Revalidate,
}

/// A JSON response with a weak ETag over `version` (the record's logical version), answering a matching
/// `If-None-Match` with 304.
pub(crate) fn cached_json<T: Serialize>(
    headers: &HeaderMap,
    body: &T,
    version: &[u8],
    cache: Cacheable,
) -> Response {
    // SHA-256 (hardware-accelerated where the CPU has SHA extensions; several times cheaper than keccak
    // here), truncated to 128 bits.
    let digest = <sha2::Sha256 as sha2::Digest>::digest(version);
    let tag = format!("W/\"{}\"", alloy::hex::encode(&digest[..16]));
    let cache_control = match cache {
        Cacheable::Immutable => "public, max-age=31536000, immutable",
        Cacheable::Revalidate => "no-cache",
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*" || weak_eq(t.trim(), &tag)));
    let mut resp =
        if matches { StatusCode::NOT_MODIFIED.into_response() } else { axum::Json(body).into_response() };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    resp
}

fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

/// `no-store` JSON.
pub(crate) fn fresh_json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
