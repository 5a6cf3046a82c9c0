//! The SQL backends. SQLite and Postgres share every statement (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING`, multi-row `VALUES`), so one macro body generates both implementations; only connecting and
//! the migrations (DDL) differ per backend.
//!
//! Writes are batched: a commit inserts its events, loads the orders they touch, upserts the derived orders
//! and appends the change log with a few multi-row statements (chunked under SQLite's 32,766 bind-variable
//! limit), whatever the number of events. Every order is derived by one replay step, [`replay`], whether
//! the event is new (commit), re-read after a reorg (rollback) or re-read for a full re-derivation.

use std::{
    collections::{HashMap, HashSet},
    str::FromStr,
    time::Duration,
};

use alloy::primitives::{Address, B256, Bytes, U256};
use sqlx::{
    Row,
    postgres::{PgPool, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous},
};

use super::{
    Batch, BatchOutcome, BlockRef, ChainMeta, ChainReader, Change, ChangeKind, FeedReader, Heights,
    IndexWriter, OrderFilter, OrderReader, Reconciliation, RollbackOutcome, StoredEvent,
};
use super::{
    query::{self, Param, SqlQuery},
    sqlite_read::SqliteReader,
};
use crate::{
    Error, Result,
    events::{DecodedEvent, EscrowEvent, EventPos, RawEvent},
    state::{self, Applied, OrderState, OrderStatus},
};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Events replayed per page when re-deriving everything.
const REDERIVE_PAGE: i64 = 20_000;

/// Rows per multi-row statement of `cols` bound columns: under SQLite's limit of 32,766 bind variables
/// (Postgres allows 65,535), and small enough that a statement stays cheap to prepare. These statements
/// are not kept in the prepared-statement cache (`persistent(false)`): their text varies with the row
/// count, cached ones would hold megabytes each (SQLite), and Postgres plans an unnamed statement with
/// the actual values (a cached `IN (…)` lookup can switch to a generic plan that scans the table).
fn rows_per_statement(cols: usize) -> usize {
    (32_766 / cols).min(1_000)
}

fn i(v: u64) -> i64 {
    v as i64
}
fn u(v: i64) -> u64 {
    v as u64
}
fn b256(v: &[u8]) -> Result<B256> {
    B256::try_from(v).map_err(|_| Error::corrupt(format!("expected 32 bytes, got {}", v.len())))
}
fn address(v: &[u8]) -> Result<Address> {
    Address::try_from(v).map_err(|_| Error::corrupt(format!("expected 20 bytes, got {}", v.len())))
}
fn u256(s: &str) -> Result<U256> {
    U256::from_str_radix(s, 10).map_err(Error::corrupt)
}
fn topics_bytes(topics: &[B256]) -> Vec<u8> {
    topics.iter().flat_map(|t| t.0).collect()
}
fn parse_topics(v: &[u8]) -> Result<Vec<B256>> {
    if !v.len().is_multiple_of(32) {
        return Err(Error::corrupt("topics length not a multiple of 32"));
    }
    v.chunks(32).map(b256).collect()
}
fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
/// Decode a stored `state` column (both read paths, both backends).
pub(super) fn parse_state(json: &str) -> Result<OrderState> {
    serde_json::from_str(json).map_err(Error::corrupt)
}
fn state_json(o: &OrderState) -> Result<String> {
    serde_json::to_string(o).map_err(Error::corrupt)
}

const EVENT_COLUMNS: &str = "seq, chain_id, escrow, block_number, block_hash, block_timestamp, tx_hash, \
                             tx_index, log_index, topics, data, reverted";

fn event_from_row<R>(row: &R) -> Result<StoredEvent>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let raw = RawEvent {
        chain_id: u(row.try_get("chain_id")?),
        escrow: address(&row.try_get::<Vec<u8>, _>("escrow")?)?,
        pos: EventPos {
            block_number: u(row.try_get("block_number")?),
            block_hash: b256(&row.try_get::<Vec<u8>, _>("block_hash")?)?,
            block_timestamp: u(row.try_get("block_timestamp")?),
            tx_hash: b256(&row.try_get::<Vec<u8>, _>("tx_hash")?)?,
            tx_index: u(row.try_get("tx_index")?),
            log_index: u(row.try_get("log_index")?),
        },
        topics: parse_topics(&row.try_get::<Vec<u8>, _>("topics")?)?,
        data: Bytes::from(row.try_get::<Vec<u8>, _>("data")?),
    };
    let event = EscrowEvent::decode(&raw.topics, &raw.data)
        .ok_or_else(|| Error::corrupt("stored event does not decode"))?;
    Ok(StoredEvent { seq: row.try_get("seq")?, raw, event, reverted: row.try_get("reverted")? })
}

/// The fields a change-log entry is filed (and filtered) under.
#[derive(Clone)]
struct ChangeFixed {
    chain_id: u64,
    escrow: Address,
    order_id: B256,
    payer: Address,
    payee: Address,
    arbiter: Option<Address>,
    status: String,
    lock_time: u64,
}

impl ChangeFixed {
    fn of(o: &OrderState) -> Self {
        Self {
            chain_id: o.chain_id,
            escrow: o.escrow,
            order_id: o.order_id,
            payer: o.payer,
            payee: o.payee,
            arbiter: o.arbiter,
            status: o.status.as_str().to_string(),
            lock_time: o.locked.pos.block_timestamp,
        }
    }
}

/// One change-log entry to append: `state` is the state's JSON after the change (`None`: no order).
struct ChangeRow<'a> {
    kind: ChangeKind,
    fixed: ChangeFixed,
    block_number: u64,
    state: Option<&'a str>,
}

impl<'a> ChangeRow<'a> {
    /// An `order_updated` entry for a derived state and its JSON.
    fn updated(o: &OrderState, json: &'a str) -> Self {
        Self {
            kind: ChangeKind::OrderUpdated,
            fixed: ChangeFixed::of(o),
            block_number: o.last_pos().block_number,
            state: Some(json),
        }
    }
}

/// An illegal event, to be recorded in the `anomalies` table.
struct AnomalyRow {
    chain_id: u64,
    escrow: Address,
    order_id: Option<B256>,
    block_number: u64,
    block_hash: B256,
    log_index: u64,
    kind: &'static str,
    reason: String,
}

/// Credits changed by a batch: (escrow, account) → (added, withdrawn).
type CreditDeltas = HashMap<(Address, Address), (U256, U256)>;

/// An order's key within a chain: (escrow, order id).
type OrderKey = (Address, B256);

/// The one replay step: apply `event` to its order's state `slot`. An illegal event becomes an anomaly
/// (on the order, and in `anomalies` for the table); a deferred payout adds to `credits` when given.
/// Returns whether the event was an anomaly.
fn replay(
    slot: &mut Option<OrderState>,
    raw: &RawEvent,
    event: &EscrowEvent,
    anomalies: &mut Vec<AnomalyRow>,
    credits: Option<&mut CreditDeltas>,
) -> bool {
    match state::apply(slot, raw.chain_id, raw.escrow, &raw.pos, event) {
        Applied::Anomaly(reason) => {
            anomalies.push(AnomalyRow {
                chain_id: raw.chain_id,
                escrow: raw.escrow,
                order_id: event.order_id(),
                block_number: raw.pos.block_number,
                block_hash: raw.pos.block_hash,
                log_index: raw.pos.log_index,
                kind: event.kind(),
                reason,
            });
            true
        }
        _ => {
            if let (Some(credits), EscrowEvent::PayoutDeferred { recipient, amount, .. }) = (credits, event) {
                credits.entry((raw.escrow, *recipient)).or_default().0 += *amount;
            }
            false
        }
    }
}

/// What re-deriving one range of orders must write: orders whose derived state differs from the stored
/// one (with their JSON), and orders that no longer derive to anything.
#[derive(Default)]
struct OrderDiff {
    upserts: Vec<(OrderState, String)>,
    deletes: Vec<OrderKey>,
}

/// Merge the derived states of a key range (ascending, complete) with the stored ones of the same range
/// (ascending): what has to change.
fn diff_orders(
    derived: Vec<(OrderKey, Option<OrderState>)>,
    stored: Vec<(OrderKey, String)>,
) -> Result<OrderDiff> {
    let mut out = OrderDiff::default();
    let mut stored = stored.into_iter().peekable();
    for (key, order) in derived {
        let mut existing = None;
        while let Some((k, _)) = stored.peek() {
            if *k < key {
                out.deletes.push(*k);
                stored.next();
            } else {
                if *k == key {
                    existing = stored.next().map(|(_, json)| json);
                }
                break;
            }
        }
        match order {
            Some(o) => {
                let json = state_json(&o)?;
                if existing.as_ref() != Some(&json) {
                    out.upserts.push((o, json));
                }
            }
            None if existing.is_some() => out.deletes.push(key),
            None => {}
        }
    }
    out.deletes.extend(stored.map(|(k, _)| k));
    Ok(out)
}

macro_rules! impl_sql_store {
    ($store:ident, $db:ty, $pool:ty) => {
        impl $store {
            /// The connection pool.
            pub fn pool(&self) -> &$pool {
                &self.pool
            }

            /// Insert events (no two with the same block hash and log index); returns the (block hash, log
            /// index) of those that were new or had been reverted (and are live again): the ones to apply.
            /// Multi-row `VALUES`, every value bound (SQLite; Postgres uses `UNNEST`, see [`PgStore`]).
            #[allow(dead_code)]
            async fn insert_events_values(
                conn: &mut <$db as sqlx::Database>::Connection,
                events: &[&DecodedEvent],
            ) -> Result<HashSet<(B256, u64)>> {
                let mut fresh = HashSet::with_capacity(events.len());
                for chunk in events.chunks(rows_per_statement(12)) {
                    let topics: Vec<Vec<u8>> = chunk.iter().map(|e| topics_bytes(&e.raw.topics)).collect();
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO events (chain_id, escrow, block_number, block_hash, block_timestamp, tx_hash, \
                         tx_index, log_index, kind, order_id, topics, data) ",
                    );
                    q.push_values(chunk.iter().zip(&topics), |mut b, (DecodedEvent { raw, event }, topics)| {
                        b.push_bind(i(raw.chain_id))
                            .push_bind(raw.escrow.as_slice())
                            .push_bind(i(raw.pos.block_number))
                            .push_bind(raw.pos.block_hash.as_slice())
                            .push_bind(i(raw.pos.block_timestamp))
                            .push_bind(raw.pos.tx_hash.as_slice())
                            .push_bind(i(raw.pos.tx_index))
                            .push_bind(i(raw.pos.log_index))
                            .push_bind(event.kind())
                            .push_bind(event.order_id().map(|o| o.to_vec()))
                            .push_bind(topics.as_slice())
                            .push_bind(raw.data.as_ref());
                    });
                    q.push(
                        " ON CONFLICT (chain_id, block_hash, log_index) DO UPDATE SET reverted = FALSE \
                         WHERE events.reverted RETURNING block_hash, log_index",
                    );
                    for row in q.build().persistent(false).fetch_all(&mut *conn).await? {
                        fresh.insert((
                            b256(&row.try_get::<Vec<u8>, _>("block_hash")?)?,
                            u(row.try_get("log_index")?),
                        ));
                    }
                }
                Ok(fresh)
            }

            /// The stored states of `keys` (missing ones are absent from the map).
            async fn load_orders(
                conn: &mut <$db as sqlx::Database>::Connection,
                chain_id: u64,
                keys: &[OrderKey],
            ) -> Result<HashMap<OrderKey, OrderState>> {
                let mut by_escrow: HashMap<Address, Vec<B256>> = HashMap::new();
                for (escrow, order_id) in keys {
                    by_escrow.entry(*escrow).or_default().push(*order_id);
                }
                // Not `with_capacity(keys.len())`: in a backfill most keys are new orders, not stored ones.
                let mut out = HashMap::new();
                for (escrow, ids) in &by_escrow {
                    for chunk in ids.chunks(rows_per_statement(1)) {
                        let mut q = sqlx::QueryBuilder::<$db>::new(
                            "SELECT order_id, state FROM orders WHERE chain_id = ",
                        );
                        q.push_bind(i(chain_id));
                        q.push(" AND escrow = ");
                        q.push_bind(escrow.as_slice());
                        q.push(" AND order_id IN (");
                        let mut list = q.separated(", ");
                        for id in chunk {
                            list.push_bind(id.as_slice());
                        }
                        q.push(")");
                        for row in q.build().persistent(false).fetch_all(&mut *conn).await? {
                            let id = b256(&row.try_get::<Vec<u8>, _>("order_id")?)?;
                            out.insert((*escrow, id), parse_state(&row.try_get::<String, _>("state")?)?);
                        }
                    }
                }
                Ok(out)
            }

            /// Insert or update derived orders; `json` is the state's JSON. Multi-row `VALUES` (SQLite;
            /// Postgres uses `UNNEST`, see [`PgStore`]).
            #[allow(dead_code)]
            async fn upsert_orders_values<O: std::borrow::Borrow<OrderState>>(
                conn: &mut <$db as sqlx::Database>::Connection,
                orders: &[(O, String)],
            ) -> Result<()> {
                for chunk in orders.chunks(rows_per_statement(13)) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO orders (chain_id, escrow, order_id, payer, payee, arbiter, status, lock_block, \
                         lock_log_index, lock_time, last_block, anomalies, state) ",
                    );
                    q.push_values(chunk, |mut b, (o, json)| {
                        let o: &OrderState = o.borrow();
                        b.push_bind(i(o.chain_id))
                            .push_bind(o.escrow.as_slice())
                            .push_bind(o.order_id.as_slice())
                            .push_bind(o.payer.as_slice())
                            .push_bind(o.payee.as_slice())
                            .push_bind(o.arbiter.as_ref().map(|a| a.as_slice()))
                            .push_bind(o.status.as_str())
                            .push_bind(i(o.locked.pos.block_number))
                            .push_bind(i(o.locked.pos.log_index))
                            .push_bind(i(o.locked.pos.block_timestamp))
                            .push_bind(i(o.last_pos().block_number))
                            .push_bind(o.anomalies.len() as i64)
                            .push_bind(json.as_str());
                    });
                    q.push(
                        " ON CONFLICT (chain_id, escrow, order_id) DO UPDATE SET status = excluded.status, \
                         last_block = excluded.last_block, anomalies = excluded.anomalies, state = excluded.state",
                    );
                    q.build().persistent(false).execute(&mut *conn).await?;
                }
                Ok(())
            }

            async fn delete_orders(
                conn: &mut <$db as sqlx::Database>::Connection,
                chain_id: u64,
                keys: &[OrderKey],
            ) -> Result<()> {
                for (escrow, order_id) in keys {
                    sqlx::query("DELETE FROM orders WHERE chain_id = $1 AND escrow = $2 AND order_id = $3")
                        .bind(i(chain_id))
                        .bind(escrow.as_slice())
                        .bind(order_id.as_slice())
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            }

            async fn insert_anomalies(
                conn: &mut <$db as sqlx::Database>::Connection,
                rows: &[AnomalyRow],
            ) -> Result<()> {
                for r in rows {
                    tracing::warn!(
                        chain_id = r.chain_id, escrow = %r.escrow, block = r.block_number, log_index = r.log_index,
                        kind = r.kind, reason = %r.reason, "illegal escrow event recorded as an anomaly"
                    );
                    metrics::counter!("holdfast_anomalies_total").increment(1);
                }
                for chunk in rows.chunks(rows_per_statement(8)) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO anomalies (chain_id, escrow, order_id, block_number, block_hash, log_index, \
                         kind, reason) ",
                    );
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(i(r.chain_id))
                            .push_bind(r.escrow.as_slice())
                            .push_bind(r.order_id.as_ref().map(|o| o.as_slice()))
                            .push_bind(i(r.block_number))
                            .push_bind(r.block_hash.as_slice())
                            .push_bind(i(r.log_index))
                            .push_bind(r.kind)
                            .push_bind(r.reason.as_str());
                    });
                    q.push(" ON CONFLICT (chain_id, block_hash, log_index) DO NOTHING");
                    q.build().persistent(false).execute(&mut *conn).await?;
                }
                Ok(())
            }

            async fn apply_credits(
                conn: &mut <$db as sqlx::Database>::Connection,
                chain_id: u64,
                deltas: &CreditDeltas,
            ) -> Result<()> {
                for ((escrow, account), (added, withdrawn)) in deltas {
                    let current = sqlx::query(
                        "SELECT amount FROM credits WHERE chain_id = $1 AND escrow = $2 AND account = $3",
                    )
                    .bind(i(chain_id))
                    .bind(escrow.as_slice())
                    .bind(account.as_slice())
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|r| u256(&r.try_get::<String, _>("amount")?))
                    .transpose()?
                    .unwrap_or_default();
                    let next = (current + *added).checked_sub(*withdrawn).ok_or_else(|| {
                        Error::corrupt(format!("withdrawal of {withdrawn} exceeds credit of {account}"))
                    })?;
                    sqlx::query(
                        "INSERT INTO credits (chain_id, escrow, account, amount) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (chain_id, escrow, account) DO UPDATE SET amount = excluded.amount",
                    )
                    .bind(i(chain_id))
                    .bind(escrow.as_slice())
                    .bind(account.as_slice())
                    .bind(next.to_string())
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            }

            /// Re-derive one order from its stored (non-reverted) events.
            async fn rederive_order(
                conn: &mut <$db as sqlx::Database>::Connection,
                chain_id: u64,
                escrow: Address,
                order_id: B256,
            ) -> Result<()> {
                let rows = sqlx::query(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE chain_id = $1 AND escrow = $2 AND order_id = $3 \
                     AND NOT reverted ORDER BY block_number, log_index"
                ))
                .bind(i(chain_id))
                .bind(escrow.as_slice())
                .bind(order_id.as_slice())
                .fetch_all(&mut *conn)
                .await?;
                let mut order = None;
                let mut anomalies = Vec::new();
                for row in &rows {
                    let ev = event_from_row(row)?;
                    replay(&mut order, &ev.raw, &ev.event, &mut anomalies, None);
                }
                Self::insert_anomalies(conn, &anomalies).await?;
                match order {
                    Some(o) => {
                        let json = state_json(&o)?;
                        Self::upsert_orders(conn, &[(o, json)]).await
                    }
                    None => Self::delete_orders(conn, chain_id, &[(escrow, order_id)]).await,
                }
            }

            /// Serialise change-log appends in commit order. SQLite writers are serialised by the database
            /// lock already; on Postgres two writers (one indexer per chain) could otherwise commit sequence
            /// numbers out of order, and a feed reader that saw the later one would skip the earlier. Taken
            /// right before the appends at the end of a transaction, so it is held only until the commit.
            async fn lock_change_log(conn: &mut <$db as sqlx::Database>::Connection) -> Result<()> {
                if <$db as sqlx::Database>::NAME == "PostgreSQL" {
                    sqlx::query("LOCK TABLE changes IN SHARE ROW EXCLUSIVE MODE").execute(&mut *conn).await?;
                }
                Ok(())
            }

            /// Append change-log entries, in order (takes the change-log lock first).
            async fn log_changes(
                conn: &mut <$db as sqlx::Database>::Connection,
                rows: &[ChangeRow<'_>],
            ) -> Result<()> {
                if rows.is_empty() {
                    return Ok(());
                }
                Self::lock_change_log(conn).await?;
                Self::append_changes(conn, rows).await
            }

            /// The change-log inserts, multi-row `VALUES` (SQLite; Postgres uses `UNNEST`, see [`PgStore`]).
            #[allow(dead_code)]
            async fn append_changes_values(
                conn: &mut <$db as sqlx::Database>::Connection,
                rows: &[ChangeRow<'_>],
            ) -> Result<()> {
                for chunk in rows.chunks(rows_per_statement(11)) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO changes (chain_id, escrow, order_id, kind, block_number, payer, payee, \
                         arbiter, status, lock_time, state) ",
                    );
                    q.push_values(chunk, |mut b, r| {
                        let f = &r.fixed;
                        b.push_bind(i(f.chain_id))
                            .push_bind(f.escrow.as_slice())
                            .push_bind(f.order_id.as_slice())
                            .push_bind(r.kind.as_str())
                            .push_bind(i(r.block_number))
                            .push_bind(f.payer.as_slice())
                            .push_bind(f.payee.as_slice())
                            .push_bind(f.arbiter.as_ref().map(|a| a.as_slice()))
                            .push_bind(f.status.as_str())
                            .push_bind(i(f.lock_time))
                            .push_bind(r.state);
                    });
                    q.build().persistent(false).execute(&mut *conn).await?;
                }
                Ok(())
            }

            async fn rebuild_credits(conn: &mut <$db as sqlx::Database>::Connection, chain_id: u64) -> Result<()> {
                sqlx::query("DELETE FROM credits WHERE chain_id = $1").bind(i(chain_id)).execute(&mut *conn).await?;
                let rows = sqlx::query(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE chain_id = $1 AND NOT reverted \
                     AND kind IN ('payout_deferred', 'withdrawn') ORDER BY block_number, log_index"
                ))
                .bind(i(chain_id))
                .fetch_all(&mut *conn)
                .await?;
                let mut deltas = CreditDeltas::new();
                for row in &rows {
                    let ev = event_from_row(row)?;
                    match ev.event {
                        EscrowEvent::PayoutDeferred { recipient, amount, .. } => {
                            deltas.entry((ev.raw.escrow, recipient)).or_default().0 += amount
                        }
                        EscrowEvent::Withdrawn { account, amount } => {
                            deltas.entry((ev.raw.escrow, account)).or_default().1 += amount
                        }
                        _ => {}
                    }
                }
                Self::apply_credits(conn, chain_id, &deltas).await
            }

            /// Re-derive the orders of one key range: `derived` holds every order with events in
            /// (`after`, `upto`] (ascending; `upto` `None`: to the end), fully replayed. Writes what differs
            /// from the stored orders of that range and logs each changed state.
            async fn sync_orders(
                conn: &mut <$db as sqlx::Database>::Connection,
                chain_id: u64,
                after: Option<OrderKey>,
                upto: Option<OrderKey>,
                derived: Vec<(OrderKey, Option<OrderState>)>,
            ) -> Result<()> {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "SELECT escrow, order_id, state FROM orders WHERE chain_id = ",
                );
                q.push_bind(i(chain_id));
                if let Some((e, o)) = &after {
                    q.push(" AND (escrow, order_id) > (");
                    q.push_bind(e.to_vec());
                    q.push(", ");
                    q.push_bind(o.to_vec());
                    q.push(")");
                }
                if let Some((e, o)) = &upto {
                    q.push(" AND (escrow, order_id) <= (");
                    q.push_bind(e.to_vec());
                    q.push(", ");
                    q.push_bind(o.to_vec());
                    q.push(")");
                }
                q.push(" ORDER BY escrow, order_id");
                let mut stored = Vec::new();
                for row in q.build().fetch_all(&mut *conn).await? {
                    let key = (
                        address(&row.try_get::<Vec<u8>, _>("escrow")?)?,
                        b256(&row.try_get::<Vec<u8>, _>("order_id")?)?,
                    );
                    stored.push((key, row.try_get::<String, _>("state")?));
                }
                let diff = diff_orders(derived, stored)?;
                Self::delete_orders(conn, chain_id, &diff.deletes).await?;
                Self::upsert_orders(conn, &diff.upserts).await?;
                let changes: Vec<ChangeRow<'_>> =
                    diff.upserts.iter().map(|(o, json)| ChangeRow::updated(o, json)).collect();
                Self::log_changes(conn, &changes).await
            }
        }

        impl ChainReader for $store {
            async fn chain_meta(&self, chain_id: u64) -> Result<Option<ChainMeta>> {
                let row = sqlx::query(
                    "SELECT genesis_hash, cursor_number, cursor_hash, head, safe, finalized, updated_at \
                     FROM chain_meta WHERE chain_id = $1",
                )
                .bind(i(chain_id))
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok(ChainMeta {
                        chain_id,
                        genesis_hash: b256(&r.try_get::<Vec<u8>, _>("genesis_hash")?)?,
                        cursor: u(r.try_get("cursor_number")?),
                        cursor_hash: b256(&r.try_get::<Vec<u8>, _>("cursor_hash")?)?,
                        heights: Heights {
                            head: u(r.try_get("head")?),
                            safe: u(r.try_get("safe")?),
                            finalized: u(r.try_get("finalized")?),
                        },
                        updated_at: u(r.try_get("updated_at")?),
                    })
                })
                .transpose()
            }

            async fn blocks_from(&self, chain_id: u64, from: u64) -> Result<Vec<BlockRef>> {
                let rows = sqlx::query(
                    "SELECT number, hash, parent_hash, timestamp FROM blocks \
                     WHERE chain_id = $1 AND number >= $2 ORDER BY number",
                )
                .bind(i(chain_id))
                .bind(i(from))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(BlockRef {
                            number: u(r.try_get("number")?),
                            hash: b256(&r.try_get::<Vec<u8>, _>("hash")?)?,
                            parent_hash: b256(&r.try_get::<Vec<u8>, _>("parent_hash")?)?,
                            timestamp: u(r.try_get("timestamp")?),
                        })
                    })
                    .collect()
            }
        }

        impl IndexWriter for $store {
            async fn commit_batch(&self, batch: &Batch) -> Result<BatchOutcome> {
                let mut tx = self.pool.begin().await?;
                let mut out = BatchOutcome::default();
                // Events, without repeats inside the batch (one multi-row statement must not hit a row twice).
                let mut seen = HashSet::with_capacity(batch.events.len());
                let unique: Vec<&DecodedEvent> = batch
                    .events
                    .iter()
                    .filter(|e| seen.insert((e.raw.pos.block_hash, e.raw.pos.log_index)))
                    .collect();
                let stored = Self::insert_events(&mut tx, &unique).await?;
                let fresh: Vec<&DecodedEvent> = unique
                    .into_iter()
                    .filter(|e| stored.contains(&(e.raw.pos.block_hash, e.raw.pos.log_index)))
                    .collect();
                out.inserted = fresh.len() as u64;
                out.duplicates = batch.events.len() as u64 - out.inserted;
                // The orders the new events touch, in first-touch order, loaded in bulk.
                let mut touched: Vec<OrderKey> = Vec::new();
                let mut slot_of: HashMap<OrderKey, usize> = HashMap::new();
                for e in &fresh {
                    if let Some(order_id) = e.event.order_id() {
                        let key = (e.raw.escrow, order_id);
                        slot_of.entry(key).or_insert_with(|| {
                            touched.push(key);
                            touched.len() - 1
                        });
                    }
                }
                let mut loaded = Self::load_orders(&mut tx, batch.chain_id, &touched).await?;
                let mut slots: Vec<Option<OrderState>> = touched.iter().map(|k| loaded.remove(k)).collect();
                // Apply in chain order, in memory.
                let mut credits = CreditDeltas::new();
                let mut anomalies = Vec::new();
                for DecodedEvent { raw, event } in &fresh {
                    match event {
                        EscrowEvent::Withdrawn { account, amount } => {
                            credits.entry((raw.escrow, *account)).or_default().1 += *amount;
                        }
                        _ => {
                            let Some(order_id) = event.order_id() else { continue };
                            let slot = &mut slots[slot_of[&(raw.escrow, order_id)]];
                            if replay(slot, raw, event, &mut anomalies, Some(&mut credits)) {
                                out.anomalies += 1;
                            }
                        }
                    }
                }
                let changed: Vec<(&OrderState, String)> =
                    slots.iter().flatten().map(|o| Ok((o, state_json(o)?))).collect::<Result<_>>()?;
                Self::upsert_orders(&mut tx, &changed).await?;
                Self::insert_anomalies(&mut tx, &anomalies).await?;
                Self::apply_credits(&mut tx, batch.chain_id, &credits).await?;
                for chunk in batch.blocks.chunks(rows_per_statement(5)) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO blocks (chain_id, number, hash, parent_hash, timestamp) ",
                    );
                    q.push_values(chunk, |mut b, blk| {
                        b.push_bind(i(batch.chain_id))
                            .push_bind(i(blk.number))
                            .push_bind(blk.hash.as_slice())
                            .push_bind(blk.parent_hash.as_slice())
                            .push_bind(i(blk.timestamp));
                    });
                    q.push(
                        " ON CONFLICT (chain_id, number) DO UPDATE SET hash = excluded.hash, \
                         parent_hash = excluded.parent_hash, timestamp = excluded.timestamp",
                    );
                    q.build().persistent(false).execute(&mut *tx).await?;
                }
                // Keep the headers from the finalized block (or the cursor, if lower) upwards.
                let keep_from = batch.heights.finalized.min(batch.cursor);
                sqlx::query("DELETE FROM blocks WHERE chain_id = $1 AND number < $2")
                    .bind(i(batch.chain_id))
                    .bind(i(keep_from))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO chain_meta (chain_id, genesis_hash, cursor_number, cursor_hash, head, safe, \
                     finalized, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (chain_id) DO UPDATE SET cursor_number = excluded.cursor_number, \
                     cursor_hash = excluded.cursor_hash, head = excluded.head, safe = excluded.safe, \
                     finalized = excluded.finalized, updated_at = excluded.updated_at",
                )
                .bind(i(batch.chain_id))
                .bind(batch.genesis_hash.as_slice())
                .bind(i(batch.cursor))
                .bind(batch.cursor_hash.as_slice())
                .bind(i(batch.heights.head))
                .bind(i(batch.heights.safe))
                .bind(i(batch.heights.finalized))
                .bind(i(now()))
                .execute(&mut *tx)
                .await?;
                // ---- change log (holdfast-api's change feed): one entry per order whose state changed ----
                let changes: Vec<ChangeRow<'_>> =
                    changed.iter().map(|(o, json)| ChangeRow::updated(o, json)).collect();
                Self::log_changes(&mut tx, &changes).await?;
                // ---- end change log ----
                tx.commit().await?;
                out.orders = touched;
                Ok(out)
            }

            async fn rollback_to(&self, chain_id: u64, fork: BlockRef) -> Result<RollbackOutcome> {
                let mut tx = self.pool.begin().await?;
                let rows = sqlx::query(
                    "SELECT DISTINCT escrow, order_id FROM events WHERE chain_id = $1 AND block_number > $2 \
                     AND NOT reverted AND order_id IS NOT NULL",
                )
                .bind(i(chain_id))
                .bind(i(fork.number))
                .fetch_all(&mut *tx)
                .await?;
                let mut orders = Vec::with_capacity(rows.len());
                for r in &rows {
                    orders.push((
                        address(&r.try_get::<Vec<u8>, _>("escrow")?)?,
                        b256(&r.try_get::<Vec<u8>, _>("order_id")?)?,
                    ));
                }
                let credit_events: i64 = sqlx::query(
                    "SELECT COUNT(*) AS n FROM events WHERE chain_id = $1 AND block_number > $2 AND NOT reverted \
                     AND kind IN ('payout_deferred', 'withdrawn')",
                )
                .bind(i(chain_id))
                .bind(i(fork.number))
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
                let reverted = sqlx::query(
                    "UPDATE events SET reverted = TRUE WHERE chain_id = $1 AND block_number > $2 AND NOT reverted",
                )
                .bind(i(chain_id))
                .bind(i(fork.number))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                sqlx::query("DELETE FROM anomalies WHERE chain_id = $1 AND block_number > $2")
                    .bind(i(chain_id))
                    .bind(i(fork.number))
                    .execute(&mut *tx)
                    .await?;
                for (escrow, order_id) in &orders {
                    Self::rederive_order(&mut tx, chain_id, *escrow, *order_id).await?;
                }
                if credit_events > 0 {
                    Self::rebuild_credits(&mut tx, chain_id).await?;
                }
                sqlx::query("DELETE FROM blocks WHERE chain_id = $1 AND number > $2")
                    .bind(i(chain_id))
                    .bind(i(fork.number))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE chain_meta SET cursor_number = $2, cursor_hash = $3, updated_at = $4 WHERE chain_id = $1",
                )
                .bind(i(chain_id))
                .bind(i(fork.number))
                .bind(fork.hash.as_slice())
                .bind(i(now()))
                .execute(&mut *tx)
                .await?;
                // ---- change log (holdfast-api's change feed): retract every logged state the reorg reverted,
                // carrying the re-derived state (none if the order no longer exists) ----
                let mut retractions: Vec<(ChangeFixed, Option<String>)> = Vec::new();
                for (escrow, order_id) in &orders {
                    let last = sqlx::query(
                        "SELECT payer, payee, arbiter, status, lock_time, state FROM changes \
                         WHERE chain_id = $1 AND escrow = $2 AND order_id = $3 ORDER BY seq DESC LIMIT 1",
                    )
                    .bind(i(chain_id))
                    .bind(escrow.as_slice())
                    .bind(order_id.as_slice())
                    .fetch_optional(&mut *tx)
                    .await?;
                    // Never logged: nobody was told about it, so there is nothing to retract.
                    let Some(last) = last else { continue };
                    let current: Option<String> = sqlx::query(
                        "SELECT state FROM orders WHERE chain_id = $1 AND escrow = $2 AND order_id = $3",
                    )
                    .bind(i(chain_id))
                    .bind(escrow.as_slice())
                    .bind(order_id.as_slice())
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get("state"))
                    .transpose()?;
                    if last.try_get::<Option<String>, _>("state")? == current {
                        continue;
                    }
                    let fixed = ChangeFixed {
                        chain_id,
                        escrow: *escrow,
                        order_id: *order_id,
                        payer: address(&last.try_get::<Vec<u8>, _>("payer")?)?,
                        payee: address(&last.try_get::<Vec<u8>, _>("payee")?)?,
                        arbiter: last.try_get::<Option<Vec<u8>>, _>("arbiter")?.map(|a| address(&a)).transpose()?,
                        status: last.try_get("status")?,
                        lock_time: u(last.try_get("lock_time")?),
                    };
                    retractions.push((fixed, current));
                }
                let changes: Vec<ChangeRow<'_>> = retractions
                    .iter()
                    .map(|(fixed, current)| ChangeRow {
                        kind: ChangeKind::OrderRetracted,
                        fixed: fixed.clone(),
                        block_number: fork.number,
                        state: current.as_deref(),
                    })
                    .collect();
                Self::log_changes(&mut tx, &changes).await?;
                // ---- end change log ----
                tx.commit().await?;
                Ok(RollbackOutcome { reverted_events: reverted, orders })
            }

            async fn update_heights(&self, chain_id: u64, h: Heights) -> Result<()> {
                sqlx::query(
                    "UPDATE chain_meta SET head = $2, safe = $3, finalized = $4, updated_at = $5 WHERE chain_id = $1",
                )
                .bind(i(chain_id))
                .bind(i(h.head))
                .bind(i(h.safe))
                .bind(i(h.finalized))
                .bind(i(now()))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn reset_chain(&self, chain_id: u64) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                for table in
                    ["events", "orders", "credits", "anomalies", "blocks", "reconciliations", "chain_meta"]
                {
                    sqlx::query(&format!("DELETE FROM {table} WHERE chain_id = $1"))
                        .bind(i(chain_id))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }


            async fn rederive_all(&self, chain_id: u64) -> Result<u64> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM anomalies WHERE chain_id = $1").bind(i(chain_id)).execute(&mut *tx).await?;
                // Replay order by order (keyset pages over the by-order index, so memory stays flat), and
                // merge each page's finished orders with the stored ones of the same key range: only the
                // orders whose derived state differs are written (and logged), the rest is left alone.
                let mut replayed = 0u64;
                let mut current: Option<(OrderKey, Option<OrderState>)> = None;
                let mut after: Option<(Vec<u8>, Vec<u8>, i64, i64)> = None;
                let mut synced_upto: Option<OrderKey> = None;
                loop {
                    let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {EVENT_COLUMNS}, order_id FROM events WHERE chain_id = "
                    ));
                    q.push_bind(i(chain_id));
                    q.push(" AND order_id IS NOT NULL AND NOT reverted");
                    if let Some((e, o, b, l)) = &after {
                        q.push(" AND (escrow, order_id, block_number, log_index) > (");
                        q.push_bind(e.clone());
                        q.push(", ");
                        q.push_bind(o.clone());
                        q.push(", ");
                        q.push_bind(*b);
                        q.push(", ");
                        q.push_bind(*l);
                        q.push(")");
                    }
                    q.push(" ORDER BY escrow, order_id, block_number, log_index LIMIT ");
                    q.push_bind(REDERIVE_PAGE);
                    let rows = q.build().fetch_all(&mut *tx).await?;
                    let last_page = (rows.len() as i64) < REDERIVE_PAGE;
                    let mut finished = Vec::new();
                    let mut anomalies = Vec::new();
                    for row in &rows {
                        let ev = event_from_row(row)?;
                        let order_id =
                            ev.event.order_id().ok_or_else(|| Error::corrupt("order event without order id"))?;
                        let key = (ev.raw.escrow, order_id);
                        if current.as_ref().is_none_or(|(k, _)| *k != key) {
                            finished.extend(current.take());
                            current = Some((key, None));
                        }
                        let slot = &mut current.as_mut().expect("set above").1;
                        replay(slot, &ev.raw, &ev.event, &mut anomalies, None);
                        replayed += 1;
                    }
                    if let Some(last) = rows.last() {
                        after = Some((
                            last.try_get("escrow")?,
                            last.try_get("order_id")?,
                            last.try_get("block_number")?,
                            last.try_get("log_index")?,
                        ));
                    }
                    drop(rows);
                    Self::insert_anomalies(&mut tx, &anomalies).await?;
                    if last_page {
                        finished.extend(current.take());
                        Self::sync_orders(&mut tx, chain_id, synced_upto, None, finished).await?;
                        break;
                    }
                    // The order still being replayed may continue on the next page: sync up to the one before.
                    if let Some(&(upto, _)) = finished.last() {
                        Self::sync_orders(&mut tx, chain_id, synced_upto, Some(upto), finished).await?;
                        synced_upto = Some(upto);
                    }
                }
                Self::rebuild_credits(&mut tx, chain_id).await?;
                tx.commit().await?;
                Ok(replayed)
            }

            async fn record_reconciliation(&self, r: &Reconciliation) -> Result<()> {
                sqlx::query(
                    "INSERT INTO reconciliations (chain_id, escrow, block_number, expected, actual, ok, checked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (chain_id, escrow) DO UPDATE SET \
                     block_number = excluded.block_number, expected = excluded.expected, actual = excluded.actual, \
                     ok = excluded.ok, checked_at = excluded.checked_at",
                )
                .bind(i(r.chain_id))
                .bind(r.escrow.as_slice())
                .bind(i(r.block_number))
                .bind(r.expected.to_string())
                .bind(r.actual.to_string())
                .bind(r.ok)
                .bind(i(r.checked_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }

        impl FeedReader for $store {
            async fn chain_metas(&self) -> Result<Vec<ChainMeta>> {
                let rows = sqlx::query(
                    "SELECT chain_id, genesis_hash, cursor_number, cursor_hash, head, safe, finalized, updated_at \
                     FROM chain_meta ORDER BY chain_id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(ChainMeta {
                            chain_id: u(r.try_get("chain_id")?),
                            genesis_hash: b256(&r.try_get::<Vec<u8>, _>("genesis_hash")?)?,
                            cursor: u(r.try_get("cursor_number")?),
                            cursor_hash: b256(&r.try_get::<Vec<u8>, _>("cursor_hash")?)?,
                            heights: Heights {
                                head: u(r.try_get("head")?),
                                safe: u(r.try_get("safe")?),
                                finalized: u(r.try_get("finalized")?),
                            },
                            updated_at: u(r.try_get("updated_at")?),
                        })
                    })
                    .collect()
            }

            async fn last_change_seq(&self) -> Result<i64> {
                let row = sqlx::query("SELECT MAX(seq) AS n FROM changes").fetch_one(&self.pool).await?;
                Ok(row.try_get::<Option<i64>, _>("n")?.unwrap_or(0))
            }

            async fn changes(&self, after: i64, upto: i64, f: &OrderFilter, limit: u32) -> Result<Vec<Change>> {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "SELECT seq, kind, chain_id, escrow, order_id, block_number, state FROM changes WHERE seq > ",
                );
                q.push_bind(after);
                q.push(" AND seq <= ");
                q.push_bind(upto);
                if let Some(c) = f.chain_id {
                    q.push(" AND chain_id = ");
                    q.push_bind(i(c));
                }
                for (col, v) in [("escrow", f.escrow), ("payer", f.payer), ("payee", f.payee), ("arbiter", f.arbiter)] {
                    if let Some(a) = v {
                        q.push(format!(" AND {col} = "));
                        q.push_bind(a.to_vec());
                    }
                }
                if let Some(s) = f.status {
                    q.push(" AND (kind = 'order_retracted' OR status = ");
                    q.push_bind(s.as_str());
                    q.push(")");
                }
                if let Some(t) = f.locked_from {
                    q.push(" AND lock_time >= ");
                    q.push_bind(i(t));
                }
                if let Some(t) = f.locked_to {
                    q.push(" AND lock_time < ");
                    q.push_bind(i(t));
                }
                q.push(" ORDER BY seq LIMIT ");
                q.push_bind(i64::from(limit));
                let rows = q.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        let kind: String = r.try_get("kind")?;
                        Ok(Change {
                            seq: r.try_get("seq")?,
                            kind: ChangeKind::parse(&kind)
                                .ok_or_else(|| Error::corrupt(format!("unknown change kind {kind:?}")))?,
                            chain_id: u(r.try_get("chain_id")?),
                            escrow: address(&r.try_get::<Vec<u8>, _>("escrow")?)?,
                            order_id: b256(&r.try_get::<Vec<u8>, _>("order_id")?)?,
                            block_number: u(r.try_get("block_number")?),
                            state: r.try_get::<Option<String>, _>("state")?.map(|s| parse_state(&s)).transpose()?,
                        })
                    })
                    .collect()
            }
        }

        impl $store {
            /// `q` with its parameters bound, to run on the pool.
            fn bound(q: &SqlQuery) -> sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments<'_>> {
                let mut s = sqlx::query(&q.sql);
                for p in &q.params {
                    s = match p {
                        Param::Int(v) => s.bind(*v),
                        Param::Word(w) => s.bind(w.as_slice()),
                        Param::Addr(a) => s.bind(a.as_slice()),
                        Param::Text(t) => s.bind(*t),
                    };
                }
                s
            }
        }

        impl OrderReader for $store {
            async fn order(
                &self,
                chain_id: Option<u64>,
                escrow: Option<Address>,
                order_id: B256,
            ) -> Result<Option<OrderState>> {
                let q = query::order(chain_id, escrow, order_id);
                if let Some(r) = self.inline_reader() {
                    let mut found = None;
                    if let Some(done) = r.for_each_state(&q, |o| found = Some(o)) {
                        return done.map(|()| found);
                    }
                }
                let row = Self::bound(&q).fetch_optional(&self.pool).await?;
                row.map(|r| parse_state(&r.try_get::<String, _>("state")?)).transpose()
            }

            async fn orders(&self, f: &OrderFilter) -> Result<Vec<OrderState>> {
                let q = query::orders(f);
                if let Some(r) = self.inline_reader() {
                    let mut page = Vec::new();
                    if let Some(done) = r.for_each_state(&q, |o| page.push(o)) {
                        return done.map(|()| page);
                    }
                }
                let rows = Self::bound(&q).fetch_all(&self.pool).await?;
                rows.iter().map(|r| parse_state(&r.try_get::<String, _>("state")?)).collect()
            }

            async fn order_events(&self, chain_id: u64, escrow: Address, order_id: B256) -> Result<Vec<StoredEvent>> {
                let rows = sqlx::query(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE chain_id = $1 AND escrow = $2 AND order_id = $3 \
                     ORDER BY block_number, log_index, seq"
                ))
                .bind(i(chain_id))
                .bind(escrow.as_slice())
                .bind(order_id.as_slice())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(event_from_row).collect()
            }

            async fn tx_events(&self, tx_hash: B256) -> Result<Vec<StoredEvent>> {
                let rows = sqlx::query(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE tx_hash = $1 ORDER BY block_number, log_index, seq"
                ))
                .bind(tx_hash.as_slice())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(event_from_row).collect()
            }

            async fn escrow_liabilities(&self, chain_id: u64, escrow: Address) -> Result<(U256, U256)> {
                let rows = sqlx::query(
                    "SELECT state FROM orders WHERE chain_id = $1 AND escrow = $2 \
                     AND status IN ('held', 'delivered', 'frozen')",
                )
                .bind(i(chain_id))
                .bind(escrow.as_slice())
                .fetch_all(&self.pool)
                .await?;
                let mut remaining = U256::ZERO;
                for r in &rows {
                    remaining += parse_state(&r.try_get::<String, _>("state")?)?.remaining;
                }
                let rows = sqlx::query("SELECT amount FROM credits WHERE chain_id = $1 AND escrow = $2")
                    .bind(i(chain_id))
                    .bind(escrow.as_slice())
                    .fetch_all(&self.pool)
                    .await?;
                let mut credits = U256::ZERO;
                for r in &rows {
                    credits += u256(&r.try_get::<String, _>("amount")?)?;
                }
                Ok((remaining, credits))
            }

            async fn reconciliations(&self, chain_id: u64) -> Result<Vec<Reconciliation>> {
                let rows = sqlx::query(
                    "SELECT escrow, block_number, expected, actual, ok, checked_at FROM reconciliations \
                     WHERE chain_id = $1 ORDER BY escrow",
                )
                .bind(i(chain_id))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(Reconciliation {
                            chain_id,
                            escrow: address(&r.try_get::<Vec<u8>, _>("escrow")?)?,
                            block_number: u(r.try_get("block_number")?),
                            expected: u256(&r.try_get::<String, _>("expected")?)?,
                            actual: u256(&r.try_get::<String, _>("actual")?)?,
                            ok: r.try_get("ok")?,
                            checked_at: u(r.try_get("checked_at")?),
                        })
                    })
                    .collect()
            }

            async fn counts(&self, chain_id: u64) -> Result<(u64, u64)> {
                let events: i64 =
                    sqlx::query("SELECT COUNT(*) AS n FROM events WHERE chain_id = $1 AND NOT reverted")
                        .bind(i(chain_id))
                        .fetch_one(&self.pool)
                        .await?
                        .try_get("n")?;
                let orders: i64 = sqlx::query("SELECT COUNT(*) AS n FROM orders WHERE chain_id = $1")
                    .bind(i(chain_id))
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("n")?;
                Ok((u(events), u(orders)))
            }
        }
    };
}

/// SQLite store (WAL mode): the embedded default. Order reads ([`OrderReader::order`] and
/// [`OrderReader::orders`]) of a file store run inline on the calling thread ([`super::sqlite_read`]);
/// everything else goes through the sqlx pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    reader: Option<SqliteReader>,
}

impl SqliteStore {
    /// Open (creating if missing) and migrate. `url`: `sqlite://PATH` or `sqlite::memory:`.
    pub async fn connect(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let memory = url.contains(":memory:");
        if !memory {
            // Create the file, switch it to WAL and migrate on one connection before the pool opens several:
            // concurrent first connections racing to change the journal mode can fail with SQLITE_BUSY.
            use sqlx::{ConnectOptions, Connection};
            let mut conn = opts.clone().connect().await?;
            SQLITE_MIGRATOR.run(&mut conn).await?;
            conn.close().await?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { 8 })
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await?;
        SQLITE_MIGRATOR.run(&pool).await?;
        let reader = if memory || url.contains("mode=memory") {
            None
        } else {
            match SqliteReader::open(opts.get_filename()) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "no inline SQLite reader; order reads go through the pool");
                    None
                }
            }
        };
        Ok(Self { pool, reader })
    }

    /// The same store with every read going through the sqlx pool (no inline reader).
    pub fn without_inline_reads(mut self) -> Self {
        self.reader = None;
        self
    }

    /// Whether order reads run inline on the calling thread (a file store) rather than through the pool.
    pub fn inline_reads(&self) -> bool {
        self.reader.is_some()
    }

    /// Close the inline reader's connections and the pool (waits for checked-out connections to return).
    pub async fn close(&self) {
        if let Some(r) = &self.reader {
            r.close();
        }
        self.pool.close().await;
    }

    /// The inline reader, unless the pool was closed (then reads fail as they do through the pool).
    fn inline_reader(&self) -> Option<&SqliteReader> {
        self.reader.as_ref().filter(|_| !self.pool.is_closed())
    }
}

/// Postgres store: the production backend.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connect and migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new().max_connections(16).connect(url).await?;
        PG_MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// No inline reader on Postgres: every read goes through the pool.
    fn inline_reader(&self) -> Option<&SqliteReader> {
        None
    }
}

impl_sql_store!(SqliteStore, sqlx::Sqlite, SqlitePool);
impl_sql_store!(PgStore, sqlx::Postgres, PgPool);

/// The bulk writes of a batch, per backend. SQLite: multi-row `VALUES` with every value bound (a statement is
/// parsed in microseconds, in process). Postgres: one array per column through `UNNEST`, so each statement has
/// a fixed text of a dozen parameters, prepared once per connection; with multi-row `VALUES` (up to 12,000
/// parameters, a new text per row count) parsing and planning took ~28 % of the server's backfill time.
impl SqliteStore {
    async fn insert_events(
        conn: &mut sqlx::SqliteConnection,
        events: &[&DecodedEvent],
    ) -> Result<HashSet<(B256, u64)>> {
        Self::insert_events_values(conn, events).await
    }

    async fn upsert_orders<O: std::borrow::Borrow<OrderState>>(
        conn: &mut sqlx::SqliteConnection,
        orders: &[(O, String)],
    ) -> Result<()> {
        Self::upsert_orders_values(conn, orders).await
    }

    async fn append_changes(conn: &mut sqlx::SqliteConnection, rows: &[ChangeRow<'_>]) -> Result<()> {
        Self::append_changes_values(conn, rows).await
    }
}

/// Rows per `UNNEST` statement: bounds one statement's arrays (and the server's memory for them).
const UNNEST_ROWS: usize = 10_000;

impl PgStore {
    async fn insert_events(
        conn: &mut sqlx::PgConnection,
        events: &[&DecodedEvent],
    ) -> Result<HashSet<(B256, u64)>> {
        let mut fresh = HashSet::with_capacity(events.len());
        for chunk in events.chunks(UNNEST_ROWS) {
            let col_i = |f: fn(&DecodedEvent) -> u64| chunk.iter().map(|e| i(f(e))).collect::<Vec<i64>>();
            let topics: Vec<Vec<u8>> = chunk.iter().map(|e| topics_bytes(&e.raw.topics)).collect();
            let rows = sqlx::query(
                "INSERT INTO events (chain_id, escrow, block_number, block_hash, block_timestamp, tx_hash, \
                 tx_index, log_index, kind, order_id, topics, data) \
                 SELECT * FROM UNNEST($1::int8[], $2::bytea[], $3::int8[], $4::bytea[], $5::int8[], $6::bytea[], \
                 $7::int8[], $8::int8[], $9::text[], $10::bytea[], $11::bytea[], $12::bytea[]) \
                 ON CONFLICT (chain_id, block_hash, log_index) DO UPDATE SET reverted = FALSE \
                 WHERE events.reverted RETURNING block_hash, log_index",
            )
            .bind(col_i(|e| e.raw.chain_id))
            .bind(chunk.iter().map(|e| e.raw.escrow.as_slice()).collect::<Vec<&[u8]>>())
            .bind(col_i(|e| e.raw.pos.block_number))
            .bind(chunk.iter().map(|e| e.raw.pos.block_hash.as_slice()).collect::<Vec<&[u8]>>())
            .bind(col_i(|e| e.raw.pos.block_timestamp))
            .bind(chunk.iter().map(|e| e.raw.pos.tx_hash.as_slice()).collect::<Vec<&[u8]>>())
            .bind(col_i(|e| e.raw.pos.tx_index))
            .bind(col_i(|e| e.raw.pos.log_index))
            .bind(chunk.iter().map(|e| e.event.kind()).collect::<Vec<&str>>())
            .bind(chunk.iter().map(|e| e.event.order_id().map(|o| o.to_vec())).collect::<Vec<Option<Vec<u8>>>>())
            .bind(topics.iter().map(Vec::as_slice).collect::<Vec<&[u8]>>())
            .bind(chunk.iter().map(|e| e.raw.data.as_ref()).collect::<Vec<&[u8]>>())
            .fetch_all(&mut *conn)
            .await?;
            for row in rows {
                fresh
                    .insert((b256(&row.try_get::<Vec<u8>, _>("block_hash")?)?, u(row.try_get("log_index")?)));
            }
        }
        Ok(fresh)
    }

    async fn upsert_orders<O: std::borrow::Borrow<OrderState>>(
        conn: &mut sqlx::PgConnection,
        orders: &[(O, String)],
    ) -> Result<()> {
        for chunk in orders.chunks(UNNEST_ROWS) {
            let o = |k: usize| -> &OrderState { chunk[k].0.borrow() };
            let n = chunk.len();
            let col_i = |f: fn(&OrderState) -> u64| (0..n).map(|k| i(f(o(k)))).collect::<Vec<i64>>();
            sqlx::query(
                "INSERT INTO orders (chain_id, escrow, order_id, payer, payee, arbiter, status, lock_block, \
                 lock_log_index, lock_time, last_block, anomalies, state) \
                 SELECT * FROM UNNEST($1::int8[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[], \
                 $6::bytea[], $7::text[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], \
                 $13::text[]) \
                 ON CONFLICT (chain_id, escrow, order_id) DO UPDATE SET status = excluded.status, \
                 last_block = excluded.last_block, anomalies = excluded.anomalies, state = excluded.state",
            )
            .bind(col_i(|o| o.chain_id))
            .bind((0..n).map(|k| o(k).escrow.as_slice()).collect::<Vec<&[u8]>>())
            .bind((0..n).map(|k| o(k).order_id.as_slice()).collect::<Vec<&[u8]>>())
            .bind((0..n).map(|k| o(k).payer.as_slice()).collect::<Vec<&[u8]>>())
            .bind((0..n).map(|k| o(k).payee.as_slice()).collect::<Vec<&[u8]>>())
            .bind((0..n).map(|k| o(k).arbiter.as_ref().map(|a| a.as_slice())).collect::<Vec<Option<&[u8]>>>())
            .bind((0..n).map(|k| o(k).status.as_str()).collect::<Vec<&str>>())
            .bind(col_i(|o| o.locked.pos.block_number))
            .bind(col_i(|o| o.locked.pos.log_index))
            .bind(col_i(|o| o.locked.pos.block_timestamp))
            .bind(col_i(|o| o.last_pos().block_number))
            .bind(col_i(|o| o.anomalies.len() as u64))
            .bind(chunk.iter().map(|(_, json)| json.as_str()).collect::<Vec<&str>>())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// In array order (`WITH ORDINALITY … ORDER BY`), so sequence numbers follow the order of `rows`.
    async fn append_changes(conn: &mut sqlx::PgConnection, rows: &[ChangeRow<'_>]) -> Result<()> {
        for chunk in rows.chunks(UNNEST_ROWS) {
            let col_i = |f: fn(&ChangeRow<'_>) -> u64| chunk.iter().map(|r| i(f(r))).collect::<Vec<i64>>();
            sqlx::query(
                "INSERT INTO changes (chain_id, escrow, order_id, kind, block_number, payer, payee, arbiter, \
                 status, lock_time, state) \
                 SELECT c, e, o, k, b, pr, pe, a, s, t, st FROM UNNEST($1::int8[], $2::bytea[], $3::bytea[], \
                 $4::text[], $5::int8[], $6::bytea[], $7::bytea[], $8::bytea[], $9::text[], $10::int8[], \
                 $11::text[]) WITH ORDINALITY AS r(c, e, o, k, b, pr, pe, a, s, t, st, n) ORDER BY n",
            )
            .bind(col_i(|r| r.fixed.chain_id))
            .bind(chunk.iter().map(|r| r.fixed.escrow.as_slice()).collect::<Vec<&[u8]>>())
            .bind(chunk.iter().map(|r| r.fixed.order_id.as_slice()).collect::<Vec<&[u8]>>())
            .bind(chunk.iter().map(|r| r.kind.as_str()).collect::<Vec<&str>>())
            .bind(col_i(|r| r.block_number))
            .bind(chunk.iter().map(|r| r.fixed.payer.as_slice()).collect::<Vec<&[u8]>>())
            .bind(chunk.iter().map(|r| r.fixed.payee.as_slice()).collect::<Vec<&[u8]>>())
            .bind(
                chunk
                    .iter()
                    .map(|r| r.fixed.arbiter.as_ref().map(|a| a.as_slice()))
                    .collect::<Vec<Option<&[u8]>>>(),
            )
            .bind(chunk.iter().map(|r| r.fixed.status.as_str()).collect::<Vec<&str>>())
            .bind(col_i(|r| r.fixed.lock_time))
            .bind(chunk.iter().map(|r| r.state).collect::<Vec<Option<&str>>>())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

#[allow(dead_code)]
fn _status_names_are_stable() -> [&'static str; 3] {
    [OrderStatus::Held.as_str(), OrderStatus::Delivered.as_str(), OrderStatus::Frozen.as_str()]
}
