//! `GET /v1/stream`: the change feed as Server-Sent Events, read from the store's durable change log.
//!
//! Every `order.updated` / `order.left` / `order.retracted` event carries its change-log sequence number as
//! the SSE `id`, so a client resumes from any past position with `Last-Event-ID` (browsers' `EventSource`
//! does it by itself on reconnect). The stream wakes on the watcher's snapshot (a new change-log entry or
//! new heights), never polls the store on its own.

use std::{collections::BTreeMap, convert::Infallible, time::Duration};

use axum::{
    extract::State,
    http::HeaderMap,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::Stream;
use holdfast_primitives::ChangeKind;
use holdfast_store::FeedReader;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::{
    error::{ApiError, ApiResult, ErrorEnvelope},
    http::ApiQuery,
    model::{ChangeRecord, ChangeType, HeightsRecord, OrderRecord, OrderStatusName, ResyncRecord},
    routes::RawFilter,
    state::AppState,
};

/// Change-log entries read per store query.
const PAGE: u32 = 500;

/// Filters and start of `GET /v1/stream`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Payer address (any letter case).
    #[param(pattern = r"^0[xX][0-9a-fA-F]{40}$")]
    pub payer: Option<String>,
    /// Payee address.
    #[param(pattern = r"^0[xX][0-9a-fA-F]{40}$")]
    pub payee: Option<String>,
    /// Arbiter address.
    #[param(pattern = r"^0[xX][0-9a-fA-F]{40}$")]
    pub arbiter: Option<String>,
    /// Escrow contract.
    #[param(pattern = r"^0[xX][0-9a-fA-F]{40}$")]
    pub escrow: Option<String>,
    /// Order status. Retractions are sent regardless of it; an order that changes from it to another status is
    /// sent once more, as `order.left`.
    pub status: Option<OrderStatusName>,
    /// Chain id.
    pub chain_id: Option<u64>,
    /// Locked at or after (unix seconds).
    pub locked_from: Option<u64>,
    /// Locked before (unix seconds).
    pub locked_to: Option<u64>,
    /// Start after this change-log position (0: replay the whole log). Default: only changes from now on.
    /// A `Last-Event-ID` header takes precedence. Beyond the end of the log: a `resync` event, then the
    /// changes after the current end.
    pub after: Option<i64>,
}

/// The `resync` record of a stream resumed (or fallen) behind what retention kept.
fn compacted(after: i64, through: i64, last: i64) -> ResyncRecord {
    let message = format!(
        "position {after} is older than the change log keeps (entries through {through} may have been \
         compacted): changes after it may be missing; re-read the orders, and continue from {last}"
    );
    ResyncRecord { after, last_seq: last, message }
}

fn event<T: Serialize>(name: &str, id: Option<i64>, data: &T) -> Event {
    let ev = Event::default().event(name).data(serde_json::to_string(data).unwrap_or_default());
    match id {
        Some(id) => ev.id(id.to_string()),
        None => ev,
    }
}

/// Live changes of orders as Server-Sent Events.
#[utoipa::path(
    get,
    path = "/v1/stream",
    tag = "stream",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this change-log position (the `id` of \
            the last event received). Beyond the end of the log (a reset store): a `resync` event first"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`. Events: `order.updated`, `order.left` (with `status`: \
            an order last sent in that status changed to another; the new record) and `order.retracted` (data: \
            ChangeRecord; `id`: change-log position), `heights` (data: HeightsRecord, no id; at the start and when a \
            chain's heights move), `resync` (data: ResyncRecord; `id`: the current end of the log; first, when the \
            position to resume after is beyond the end of the log: re-read the orders, the stream continues after \
            that end), `error` (data: ErrorEnvelope; the stream then ends, reconnect with Last-Event-ID). \
            Keep-alive comments every 15 s.", content_type = "text/event-stream", body = ChangeRecord),
        (status = 400, description = "VALIDATION_ERROR (bad filter, Last-Event-ID or after)", body = ErrorEnvelope),
        (status = 503, description = "TOO_MANY_WAITS: the server's cap on open long-polls and streams is reached \
            (`Retry-After`)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let filter = RawFilter {
        payer: q.payer,
        payee: q.payee,
        arbiter: q.arbiter,
        escrow: q.escrow,
        status: q.status,
        chain_id: q.chain_id,
        locked_from: q.locked_from,
        locked_to: q.locked_to,
    }
    .parse()?;
    let resume = match headers.get("last-event-id") {
        Some(v) => {
            Some(v.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()).filter(|n| *n >= 0).ok_or_else(
                || ApiError::invalid("Last-Event-ID", "Last-Event-ID must be a change-log position"),
            )?)
        }
        None => match q.after {
            Some(a) if a < 0 => return Err(ApiError::invalid("after", "after must be 0 or more")),
            a => a,
        },
    };
    let last = state.snapshot().await?.last_seq;
    let (start, resync) = match resume {
        None => (last, None),
        Some(n) if n <= last => (n, None),
        // A position beyond the end of the log cannot be resumed from: the store was reset (its log starts
        // again at 1) or the position was never served. Say so with a `resync` event, then continue from the
        // current end, rather than silently skipping every change until the log passes the old position.
        // (The watcher's snapshot may lag a commit by a poll interval: the store decides.)
        Some(n) => match state.store.last_change_seq().await? {
            last if n <= last => (n, None),
            last => {
                let message = format!(
                    "position {n} is beyond the end of the change log ({last}): the store was reset or the \
                     position was never served; discard what you hold, re-read the orders, and continue \
                     from {last}"
                );
                (last, Some(ResyncRecord { after: n, last_seq: last, message }))
            }
        },
    };
    // A position older than what retention kept: changes after it may be gone.
    let (start, resync) = match (resume, resync) {
        (Some(n), None) => match state.store.compacted_through().await? {
            through if n < through => (last, Some(compacted(n, through, last))),
            _ => (start, None),
        },
        (_, r) => (start, r),
    };
    let keep_alive = state.config.sse_keep_alive.max(Duration::from_secs(1));
    // Held by the body: the stream occupies a waiter's place until the client goes or shutdown ends it.
    let slot = state.wait_slot()?;
    let body = async_stream::stream! {
        let _slot = slot;
        let mut rx = state.subscribe();
        let shutdown = crate::state::until_shutdown(state.shutdown_signal());
        tokio::pin!(shutdown);
        let mut after = start;
        let position = state.reader_at(start);
        let mut sent_heights: BTreeMap<u64, HeightsRecord> = BTreeMap::new();
        if let Some(r) = resync {
            yield Ok(event("resync", Some(r.last_seq), &r));
        }
        loop {
            let snap = rx.borrow_and_update().clone();
            for (chain_id, m) in snap.chains.iter().filter(|(c, _)| filter.chain_id.is_none_or(|f| f == **c)) {
                let rec = HeightsRecord {
                    chain_id: *chain_id,
                    cursor: m.cursor,
                    head: m.heights.head,
                    safe: m.heights.safe,
                    finalized: m.heights.finalized,
                };
                if sent_heights.get(chain_id) != Some(&rec) {
                    yield Ok(event("heights", None, &rec));
                    sent_heights.insert(*chain_id, rec);
                }
            }
            let upto = snap.last_seq;
            while after < upto {
                let read = async {
                    let page = state.store.changes(after, upto, &filter, PAGE).await?;
                    // Read after the page: retention records how far it may delete before deleting, so a
                    // page missing entries is always seen with a position past `after` here (another
                    // process's retention; this process's never passes what its streams were sent).
                    let through = state.store.compacted_through().await?;
                    Ok::<_, holdfast_store::Error>((page, through))
                };
                let page = match read.await {
                    Ok((_, through)) if through > after => {
                        let last = upto.max(through);
                        let r = compacted(after, through, last);
                        yield Ok(event("resync", Some(last), &r));
                        after = last;
                        position.advance(after);
                        continue;
                    }
                    Ok((p, _)) => p,
                    Err(e) => {
                        tracing::error!(error = %e, "change feed read failed; ending the stream");
                        yield Ok(event("error", None, &ApiError::Internal(e.to_string()).envelope()));
                        return;
                    }
                };
                let full = page.len() as u32 == PAGE;
                for ch in page {
                    after = ch.seq;
                    let h = snap.heights(ch.chain_id);
                    // The store sends an update out of the filtered status only when the order's previous entry
                    // announced that status: the order leaves the filter.
                    let left = filter.status.is_some()
                        && ch.state.as_ref().map(|o| o.status) != filter.status;
                    let (name, change_type) = match ch.kind {
                        ChangeKind::OrderUpdated if left => ("order.left", ChangeType::OrderLeft),
                        ChangeKind::OrderUpdated => ("order.updated", ChangeType::OrderUpdated),
                        ChangeKind::OrderRetracted => ("order.retracted", ChangeType::OrderRetracted),
                    };
                    let rec = ChangeRecord {
                        seq: ch.seq,
                        change_type,
                        chain_id: ch.chain_id,
                        escrow: crate::format::addr(ch.escrow),
                        order_id: crate::format::hash(ch.order_id),
                        block_number: ch.block_number,
                        order: ch.state.as_ref().map(|o| OrderRecord::new(o, &state.config, &h)),
                    };
                    yield Ok(event(name, Some(ch.seq), &rec));
                }
                if !full {
                    after = upto;
                }
                position.advance(after);
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return },
                _ = &mut shutdown => return,
            }
        }
    };
    Ok(Sse::new(body).keep_alive(KeepAlive::new().interval(keep_alive)))
}
