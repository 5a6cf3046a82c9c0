//! Operations endpoints: liveness, readiness, metrics.

use holdfast_primitives::IndexerHealth;
use std::collections::BTreeSet;

use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::{
    error::{ApiError, ApiResult, ErrorEnvelope},
    http::{ApiQuery, fresh_json},
    model::{ChainStatus, Health, Readiness},
    state::{AppState, now_ms},
};

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", body = Health)))]
pub(crate) async fn healthz() -> Response {
    fresh_json(StatusCode::OK, &Health { status: "ok".into() })
}

/// Which chain `/readyz` judges.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadyQuery {
    /// Judge only this chain (a load balancer in front of one chain's traffic); default: every chain.
    pub(crate) chain_id: Option<u64>,
}

/// Readiness: the store is readable and every indexed chain (or the one asked for) is close to its head
/// and advancing.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    params(ReadyQuery),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 400, description = "VALIDATION_ERROR: a bad `chainId`, or an unknown or repeated parameter", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND: `chainId` is neither configured nor indexed", body = ErrorEnvelope),
        (status = 503, description = "NOT_READY; `error.details` is the Readiness report", body = ErrorEnvelope),
    )
)]
pub(crate) async fn readyz(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ReadyQuery>,
) -> ApiResult<Response> {
    let cfg = &state.config;
    let mut reasons = Vec::new();
    let now = now_ms();
    let stale_after = (cfg.poll_interval * 10).max(std::time::Duration::from_secs(5)).as_millis() as u64;
    let last_ok = state.last_ok_ms();
    let snap = match state.snapshot().await {
        Ok(s) => Some(s),
        Err(_) => {
            reasons.push("the store is not readable".to_string());
            None
        }
    };
    if snap.is_some() && last_ok != 0 && now.saturating_sub(last_ok) > stale_after {
        reasons.push(format!("the store has not been readable for {} s", now.saturating_sub(last_ok) / 1000));
    }
    // The chains to judge: those configured (deployments), indexed here, or found in the store.
    let mut wanted: BTreeSet<u64> = cfg.escrows.iter().map(|e| e.chain_id).collect();
    wanted.extend(state.indexers.keys().copied());
    if wanted.is_empty()
        && let Some(snap) = &snap
    {
        wanted = snap.chains.keys().copied().collect();
    }
    if let Some(only) = q.chain_id {
        if only > i64::MAX as u64 {
            return Err(ApiError::invalid("chainId", "chainId is out of range"));
        }
        // A chain this process neither follows nor finds in the store is a wrong question, not a chain
        // that is not ready (an unreadable store cannot tell: then it is not ready).
        if snap.is_some() && !wanted.contains(&only) {
            return Err(ApiError::NotFound(format!(
                "chain {only} is neither configured here nor indexed in the store"
            )));
        }
        wanted = BTreeSet::from([only]);
    }
    if wanted.is_empty() && snap.is_some() {
        reasons.push("nothing is indexed yet".to_string());
    }
    let mut chains = Vec::new();
    for chain_id in wanted {
        // The in-process indexer of this chain (`holdfast run`) says at once when the node or the database
        // fails, or why it halted. A standby reads what the writer commits: the store's freshness decides.
        let indexer = state.indexers.get(&chain_id).map(|rx| rx.borrow().clone());
        match &indexer {
            Some(IndexerHealth::Faulted { fault, since, retries }) => reasons.push(format!(
                "chain {chain_id}: indexer: {fault} (failing for {} s, {retries} retries; it keeps retrying)",
                (now / 1000).saturating_sub(*since)
            )),
            Some(IndexerHealth::Halted { reason }) => reasons.push(format!(
                "chain {chain_id}: indexing halted: {reason} (the data indexed so far is still served)"
            )),
            Some(IndexerHealth::Starting) => {
                reasons.push(format!("chain {chain_id}: indexer: connecting to the node"))
            }
            Some(IndexerHealth::Running | IndexerHealth::Standby { .. }) | None => {}
        }
        let Some(snap) = &snap else { continue };
        let Some(m) = snap.chains.get(&chain_id) else {
            reasons.push(format!("chain {chain_id} is not indexed yet"));
            continue;
        };
        let lag = m.heights.head.saturating_sub(m.cursor);
        let idle = (now / 1000).saturating_sub(m.updated_at);
        if lag > cfg.ready_max_lag_blocks {
            reasons.push(format!(
                "chain {chain_id}: the indexer is {lag} blocks behind the head (limit {})",
                cfg.ready_max_lag_blocks
            ));
        }
        if idle > cfg.ready_max_stall.as_secs() {
            reasons.push(format!(
                "chain {chain_id}: the indexer has not confirmed the node's head for {idle} s (limit {} s: the \
                 node or the indexer is down)",
                cfg.ready_max_stall.as_secs()
            ));
        }
        chains.push(ChainStatus {
            chain_id,
            cursor: m.cursor,
            head: m.heights.head,
            safe: m.heights.safe,
            finalized: m.heights.finalized,
            lag_blocks: lag,
            updated_at: m.updated_at,
            seconds_since_update: idle,
            role: indexer.as_ref().map_or("reader", IndexerHealth::role).to_string(),
            indexer: indexer.as_ref().map(|h| h.state_name().to_string()),
        });
    }
    let reconciliation = match &snap {
        Some(snap) => crate::ledger::reconciliations(&state, snap).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let ready = reasons.is_empty();
    let report = Readiness {
        status: if ready { "ready" } else { "not_ready" }.into(),
        reasons,
        chains,
        reconciliation,
    };
    if ready {
        return Ok(fresh_json(StatusCode::OK, &report));
    }
    Err(ApiError::NotReady {
        message: report.reasons.join("; "),
        details: serde_json::to_value(&report).map_err(|e| ApiError::Internal(e.to_string()))?,
    })
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 404, description = "NOT_FOUND: metrics are not enabled", body = ErrorEnvelope),
    )
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let render =
        state.metrics.as_ref().ok_or_else(|| ApiError::NotFound("metrics are not enabled".into()))?;
    let mut resp = render().into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
