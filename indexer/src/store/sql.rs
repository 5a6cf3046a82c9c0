//! The SQL backends. SQLite and Postgres share every statement (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING`), so one macro body generates both implementations; only connecting and the migrations
//! (DDL) differ per backend.

use std::{collections::HashMap, str::FromStr, time::Duration};

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
use crate::{
    Error, Result,
    events::{DecodedEvent, EscrowEvent, EventPos, RawEvent},
    state::{self, Applied, OrderState, OrderStatus},
};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Events replayed per page when re-deriving everything.
const REDERIVE_PAGE: i64 = 20_000;

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
fn parse_state(json: &str) -> Result<OrderState> {
    serde_json::from_str(json).map_err(Error::corrupt)
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

/// Credits changed by a batch: (escrow, account) → (added, withdrawn).
type CreditDeltas = HashMap<(Address, Address), (U256, U256)>;

macro_rules! impl_sql_store {
    ($store:ident, $db:ty, $pool:ty) => {
        impl $store {
            /// The connection pool.
            pub fn pool(&self) -> &$pool {
                &self.pool
            }

            async fn load_order(
                conn: &mut <$db as sqlx::Database>::Connection,
                chain_id: u64,
                escrow: Address,
                order_id: B256,
            ) -> Result<Option<OrderState>> {
                let row = sqlx::query(
                    "SELECT state FROM orders WHERE chain_id = $1 AND escrow = $2 AND order_id = $3",
                )
                .bind(i(chain_id))
                .bind(escrow.as_slice())
                .bind(order_id.as_slice())
                .fetch_optional(&mut *conn)
                .await?;
                row.map(|r| parse_state(&r.try_get::<String, _>("state")?)).transpose()
            }

            async fn save_order(conn: &mut <$db as sqlx::Database>::Connection, o: &OrderState) -> Result<()> {
                let json = serde_json::to_string(o).map_err(Error::corrupt)?;
                sqlx::query(
                    "INSERT INTO orders (chain_id, escrow, order_id, payer, payee, arbiter, status, lock_block, \
                     lock_log_index, lock_time, last_block, anomalies, state) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT (chain_id, escrow, order_id) DO UPDATE SET status = excluded.status, \
                     last_block = excluded.last_block, anomalies = excluded.anomalies, state = excluded.state",
                )
                .bind(i(o.chain_id))
                .bind(o.escrow.as_slice())
                .bind(o.order_id.as_slice())
                .bind(o.payer.as_slice())
                .bind(o.payee.as_slice())
                .bind(o.arbiter.as_ref().map(|a| a.as_slice()))
                .bind(o.status.as_str())
                .bind(i(o.locked.pos.block_number))
                .bind(i(o.locked.pos.log_index))
                .bind(i(o.locked.pos.block_timestamp))
                .bind(i(o.last_pos().block_number))
                .bind(o.anomalies.len() as i64)
                .bind(json)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            async fn record_anomaly(
                conn: &mut <$db as sqlx::Database>::Connection,
                raw: &RawEvent,
                kind: &str,
                order_id: Option<B256>,
                reason: &str,
            ) -> Result<()> {
                tracing::warn!(
                    chain_id = raw.chain_id, escrow = %raw.escrow, block = raw.pos.block_number,
                    log_index = raw.pos.log_index, kind, reason, "illegal escrow event recorded as an anomaly"
                );
                metrics::counter!("holdfast_anomalies_total").increment(1);
                sqlx::query(
                    "INSERT INTO anomalies (chain_id, escrow, order_id, block_number, block_hash, log_index, kind, \
                     reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (chain_id, block_hash, log_index) DO NOTHING",
                )
                .bind(i(raw.chain_id))
                .bind(raw.escrow.as_slice())
                .bind(order_id.as_ref().map(|o| o.as_slice()))
                .bind(i(raw.pos.block_number))
                .bind(raw.pos.block_hash.as_slice())
                .bind(i(raw.pos.log_index))
                .bind(kind)
                .bind(reason)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// Apply one event to the order cache; records anomalies. Returns whether it was one.
            async fn apply_event(
                conn: &mut <$db as sqlx::Database>::Connection,
                cache: &mut HashMap<(Address, B256), Option<OrderState>>,
                touched: &mut Vec<(Address, B256)>,
                credits: &mut CreditDeltas,
                raw: &RawEvent,
                event: &EscrowEvent,
            ) -> Result<bool> {
                match event {
                    EscrowEvent::Withdrawn { account, amount } => {
                        credits.entry((raw.escrow, *account)).or_default().1 += *amount;
                        Ok(false)
                    }
                    _ => {
                        let Some(order_id) = event.order_id() else { return Ok(false) };
                        let key = (raw.escrow, order_id);
                        if !cache.contains_key(&key) {
                            let loaded = Self::load_order(conn, raw.chain_id, raw.escrow, order_id).await?;
                            cache.insert(key, loaded);
                            touched.push(key);
                        }
                        let slot = cache.get_mut(&key).expect("inserted above");
                        match state::apply(slot, raw.chain_id, raw.escrow, &raw.pos, event) {
                            Applied::Anomaly(reason) => {
                                Self::record_anomaly(conn, raw, event.kind(), Some(order_id), &reason).await?;
                                Ok(true)
                            }
                            _ => {
                                if let EscrowEvent::PayoutDeferred { recipient, amount, .. } = event {
                                    credits.entry((raw.escrow, *recipient)).or_default().0 += *amount;
                                }
                                Ok(false)
                            }
                        }
                    }
                }
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

            async fn rederive_order(
                conn: &mut <$db as sqlx::Database>::Connection,
                chain_id: u64,
                escrow: Address,
                order_id: B256,
            ) -> Result<()> {
                sqlx::query("DELETE FROM orders WHERE chain_id = $1 AND escrow = $2 AND order_id = $3")
                    .bind(i(chain_id))
                    .bind(escrow.as_slice())
                    .bind(order_id.as_slice())
                    .execute(&mut *conn)
                    .await?;
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
                for row in &rows {
                    let ev = event_from_row(row)?;
                    if let Applied::Anomaly(reason) =
                        state::apply(&mut order, chain_id, escrow, &ev.raw.pos, &ev.event)
                    {
                        Self::record_anomaly(conn, &ev.raw, ev.event.kind(), Some(order_id), &reason).await?;
                    }
                }
                if let Some(o) = order {
                    Self::save_order(conn, &o).await?;
                }
                Ok(())
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

            /// Append one change-log entry. `fixed`: the order whose payer, payee, arbiter, status and lock time
            /// the entry is filed under; `state`: the state's JSON after the change (`None`: no order).
            async fn log_change(
                conn: &mut <$db as sqlx::Database>::Connection,
                kind: ChangeKind,
                fixed: &ChangeFixed,
                block_number: u64,
                state: Option<&str>,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO changes (chain_id, escrow, order_id, kind, block_number, payer, payee, arbiter, \
                     status, lock_time, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(i(fixed.chain_id))
                .bind(fixed.escrow.to_vec())
                .bind(fixed.order_id.to_vec())
                .bind(kind.as_str())
                .bind(i(block_number))
                .bind(fixed.payer.to_vec())
                .bind(fixed.payee.to_vec())
                .bind(fixed.arbiter.map(|a| a.to_vec()))
                .bind(fixed.status.clone())
                .bind(i(fixed.lock_time))
                .bind(state)
                .execute(&mut *conn)
                .await?;
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
                let mut cache = HashMap::new();
                let mut touched = Vec::new();
                let mut credits = CreditDeltas::new();
                for DecodedEvent { raw, event } in &batch.events {
                    let inserted = sqlx::query(
                        "INSERT INTO events (chain_id, escrow, block_number, block_hash, block_timestamp, tx_hash, \
                         tx_index, log_index, kind, order_id, topics, data) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                         ON CONFLICT (chain_id, block_hash, log_index) DO UPDATE SET reverted = FALSE \
                         WHERE events.reverted RETURNING seq",
                    )
                    .bind(i(raw.chain_id))
                    .bind(raw.escrow.as_slice())
                    .bind(i(raw.pos.block_number))
                    .bind(raw.pos.block_hash.as_slice())
                    .bind(i(raw.pos.block_timestamp))
                    .bind(raw.pos.tx_hash.as_slice())
                    .bind(i(raw.pos.tx_index))
                    .bind(i(raw.pos.log_index))
                    .bind(event.kind())
                    .bind(event.order_id().as_ref().map(|o| o.as_slice()))
                    .bind(topics_bytes(&raw.topics))
                    .bind(raw.data.as_ref())
                    .fetch_optional(&mut *tx)
                    .await?;
                    if inserted.is_none() {
                        out.duplicates += 1;
                        continue;
                    }
                    out.inserted += 1;
                    if Self::apply_event(&mut tx, &mut cache, &mut touched, &mut credits, raw, event).await? {
                        out.anomalies += 1;
                    }
                }
                for key in &touched {
                    if let Some(Some(o)) = cache.get(key) {
                        Self::save_order(&mut tx, o).await?;
                    }
                }
                Self::apply_credits(&mut tx, batch.chain_id, &credits).await?;
                for b in &batch.blocks {
                    sqlx::query(
                        "INSERT INTO blocks (chain_id, number, hash, parent_hash, timestamp) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (chain_id, number) DO UPDATE SET \
                         hash = excluded.hash, parent_hash = excluded.parent_hash, timestamp = excluded.timestamp",
                    )
                    .bind(i(batch.chain_id))
                    .bind(i(b.number))
                    .bind(b.hash.as_slice())
                    .bind(b.parent_hash.as_slice())
                    .bind(i(b.timestamp))
                    .execute(&mut *tx)
                    .await?;
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
                let changed: Vec<&OrderState> =
                    touched.iter().filter_map(|k| cache.get(k).and_then(|o| o.as_ref())).collect();
                if !changed.is_empty() {
                    Self::lock_change_log(&mut tx).await?;
                }
                for o in changed {
                    let json = serde_json::to_string(o).map_err(Error::corrupt)?;
                    let block = o.last_pos().block_number;
                    Self::log_change(&mut tx, ChangeKind::OrderUpdated, &ChangeFixed::of(o), block, Some(&json))
                        .await?;
                }
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
                if !orders.is_empty() {
                    Self::lock_change_log(&mut tx).await?;
                }
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
                    Self::log_change(&mut tx, ChangeKind::OrderRetracted, &fixed, fork.number, current.as_deref())
                        .await?;
                }
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
                for table in ["orders", "credits", "anomalies"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE chain_id = $1"))
                        .bind(i(chain_id))
                        .execute(&mut *tx)
                        .await?;
                }
                // Replay order by order (keyset pages over the by-order index), so memory stays flat.
                let mut replayed = 0u64;
                let mut current: Option<((Address, B256), Option<OrderState>)> = None;
                let mut after: Option<(Vec<u8>, Vec<u8>, i64, i64)> = None;
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
                    if rows.is_empty() {
                        break;
                    }
                    for row in &rows {
                        let ev = event_from_row(row)?;
                        let order_id =
                            ev.event.order_id().ok_or_else(|| Error::corrupt("order event without order id"))?;
                        let key = (ev.raw.escrow, order_id);
                        if current.as_ref().is_none_or(|(k, _)| *k != key) {
                            if let Some((_, Some(o))) = current.take() {
                                Self::save_order(&mut tx, &o).await?;
                            }
                            current = Some((key, None));
                        }
                        let slot = &mut current.as_mut().expect("set above").1;
                        if let Applied::Anomaly(reason) =
                            state::apply(slot, chain_id, ev.raw.escrow, &ev.raw.pos, &ev.event)
                        {
                            Self::record_anomaly(&mut tx, &ev.raw, ev.event.kind(), Some(order_id), &reason)
                                .await?;
                        }
                        replayed += 1;
                    }
                    let last = rows.last().expect("non-empty");
                    after = Some((
                        last.try_get("escrow")?,
                        last.try_get("order_id")?,
                        last.try_get("block_number")?,
                        last.try_get("log_index")?,
                    ));
                }
                if let Some((_, Some(o))) = current.take() {
                    Self::save_order(&mut tx, &o).await?;
                }
                Self::rebuild_credits(&mut tx, chain_id).await?;
                // ---- change log (holdfast-api's change feed): log every order whose re-derived state differs
                // from the state last logged for it ----
                Self::lock_change_log(&mut tx).await?;
                sqlx::query(
                    "INSERT INTO changes (chain_id, escrow, order_id, kind, block_number, payer, payee, arbiter, \
                     status, lock_time, state) \
                     SELECT o.chain_id, o.escrow, o.order_id, 'order_updated', o.last_block, o.payer, o.payee, \
                     o.arbiter, o.status, o.lock_time, o.state FROM orders o WHERE o.chain_id = $1 \
                     AND o.state IS DISTINCT FROM (SELECT c.state FROM changes c WHERE c.chain_id = o.chain_id \
                     AND c.escrow = o.escrow AND c.order_id = o.order_id ORDER BY c.seq DESC LIMIT 1) \
                     ORDER BY o.lock_block, o.lock_log_index, o.escrow",
                )
                .bind(i(chain_id))
                .execute(&mut *tx)
                .await?;
                // ---- end change log ----
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

        impl OrderReader for $store {
            async fn order(
                &self,
                chain_id: Option<u64>,
                escrow: Option<Address>,
                order_id: B256,
            ) -> Result<Option<OrderState>> {
                let mut q = sqlx::QueryBuilder::<$db>::new("SELECT state FROM orders WHERE order_id = ");
                q.push_bind(order_id.to_vec());
                if let Some(c) = chain_id {
                    q.push(" AND chain_id = ");
                    q.push_bind(i(c));
                }
                if let Some(e) = escrow {
                    q.push(" AND escrow = ");
                    q.push_bind(e.to_vec());
                }
                q.push(" ORDER BY chain_id, escrow LIMIT 1");
                let row = q.build().fetch_optional(&self.pool).await?;
                row.map(|r| parse_state(&r.try_get::<String, _>("state")?)).transpose()
            }

            async fn orders(&self, f: &OrderFilter) -> Result<Vec<OrderState>> {
                let mut q = sqlx::QueryBuilder::<$db>::new("SELECT state FROM orders WHERE 1 = 1");
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
                    q.push(" AND status = ");
                    q.push_bind(s.as_str());
                }
                if let Some(t) = f.locked_from {
                    q.push(" AND lock_time >= ");
                    q.push_bind(i(t));
                }
                if let Some(t) = f.locked_to {
                    q.push(" AND lock_time < ");
                    q.push_bind(i(t));
                }
                if let Some((b, l)) = f.after {
                    q.push(" AND (lock_block, lock_log_index) > (");
                    q.push_bind(i(b));
                    q.push(", ");
                    q.push_bind(i(l));
                    q.push(")");
                }
                q.push(" ORDER BY lock_block, lock_log_index, chain_id, escrow LIMIT ");
                q.push_bind(i64::from(f.limit));
                let rows = q.build().fetch_all(&self.pool).await?;
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

/// SQLite store (WAL mode): the embedded default.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
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
            .connect_with(opts)
            .await?;
        SQLITE_MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
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
}

impl_sql_store!(SqliteStore, sqlx::Sqlite, SqlitePool);
impl_sql_store!(PgStore, sqlx::Postgres, PgPool);

#[allow(dead_code)]
fn _status_names_are_stable() -> [&'static str; 3] {
    [OrderStatus::Held.as_str(), OrderStatus::Delivered.as_str(), OrderStatus::Frozen.as_str()]
}
