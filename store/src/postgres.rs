//! The Postgres backend: the production one. Bulk writes go through `UNNEST`: one array per column, so each
//! statement has a fixed text of a dozen parameters, prepared once per connection (with multi-row `VALUES`,
//! up to 12,000 parameters and a new text per row count, parsing and planning took ~28 % of the server's
//! backfill time).

use std::{collections::HashMap, time::Duration};

use alloy::primitives::{Address, B256, BlockNumber, U256};
use futures::TryStreamExt;
use holdfast_primitives::{
    BlockRef, ChainMeta, Change, DecodedEvent, Heights, OrderKey, OrderState, Reconciliation,
    change::{LastChange, NewChange},
    derive::{AnomalyRecord, CreditKey},
};
use sqlx::{
    Postgres, QueryBuilder,
    postgres::{PgPool, PgPoolOptions},
};

use crate::{
    ChainReader, ChangeWriter, CursorWriter, DeferredIndexes, EncodedOrder, EventWriter, FeedReader,
    LedgerWriter, MetaWriter, OrderFilter, OrderReader, OrderWriter, Result, ScanPosition, Storage,
    StoredEvent, WriteTx,
    indexes::{self, DEFERRABLE},
    now,
    query::{self, Param, SqlQuery},
    rows::{
        AmountRow, BlockRow, ChainMetaRow, ChangeRow, CountRow, CreditRow, EVENT_COLUMNS, EncodedChange,
        EventKeyRow, EventRow, KeyRow, LastChangeRow, OrderRow, ReconciliationRow, StateRow, i, parse_state,
        state_json, state_remaining, topics_bytes, u, u256,
    },
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Rows per statement of the (rare) multi-row `VALUES` writes (anomalies, headers): well under Postgres'
/// 65,535 bind parameters.
fn rows_per_statement(cols: usize) -> usize {
    (32_766 / cols).min(1_000)
}

/// Rows per `UNNEST` statement: bounds one statement's arrays (and the server's memory for them).
const UNNEST_ROWS: usize = 10_000;

/// How long a new connection may take before the pool gives up (and the caller retries).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Postgres store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The writer lease this handle's indexing transactions are fenced with: (chain id, epoch, liveness).
    pub(crate) fence: std::sync::Arc<std::sync::Mutex<Option<(u64, i64, Duration)>>>,
}

impl PgStore {
    /// Connect and migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool =
            PgPoolOptions::new().max_connections(16).acquire_timeout(CONNECT_TIMEOUT).connect(url).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool, fence: Default::default() })
    }

    /// A handle on the same pool without a writer fence (clones share theirs): one per indexed chain.
    pub fn unfenced(&self) -> Self {
        Self { pool: self.pool.clone(), fence: Default::default() }
    }

    /// A counter bumped whenever another process commits an indexing step or new heights (`LISTEN` on
    /// [`COMMIT_CHANNEL`], on a connection of its own), and also after the listener (re)connects (a
    /// notification may have been missed meanwhile). The listener task ends when every receiver is dropped.
    /// Wake-ups, not data: a reader re-reads the store, and still polls now and then as a safety net.
    pub fn commit_signals(&self) -> tokio::sync::watch::Receiver<u64> {
        let (tx, rx) = tokio::sync::watch::channel(0u64);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut failing = false;
            while !tx.is_closed() {
                let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(l) => l,
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, "cannot listen for commits; readers poll meanwhile");
                            failing = true;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if let Err(e) = listener.listen(COMMIT_CHANNEL).await {
                    // E.g. a read replica (no LISTEN during recovery): readers poll.
                    if !failing {
                        tracing::warn!(error = %e, "cannot listen for commits; readers poll meanwhile");
                        failing = true;
                    }
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
                failing = false;
                tx.send_modify(|n| *n += 1);
                loop {
                    tokio::select! {
                        () = tx.closed() => return,
                        r = listener.try_recv() => match r {
                            // `None`: the connection was lost; the next call re-establishes it.
                            Ok(_) => tx.send_modify(|n| *n += 1),
                            Err(e) => {
                                tracing::warn!(error = %e, "lost the commit listener; reconnecting");
                                break;
                            }
                        },
                    }
                }
            }
        });
        rx
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// `q` with its parameters bound, to run on the pool.
    fn bound<R>(q: &SqlQuery) -> sqlx::query::QueryAs<'_, Postgres, R, sqlx::postgres::PgArguments>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let mut s = sqlx::query_as(&q.sql);
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

/// One indexing step's transaction on Postgres.
#[derive(Debug)]
pub struct PgTx(pub(crate) sqlx::Transaction<'static, Postgres>);

impl Storage for PgStore {
    type Tx = PgTx;
    async fn begin(&self) -> Result<PgTx> {
        let mut tx = self.pool.begin().await?;
        self.check_fence(&mut tx).await?;
        Ok(PgTx(tx))
    }
}

impl WriteTx for PgTx {
    /// Commits, with a notification on [`COMMIT_CHANNEL`] that Postgres sends only if the commit succeeds.
    async fn commit(mut self) -> Result<()> {
        sqlx::query(NOTIFY_COMMIT).execute(&mut *self.0).await?;
        Ok(self.0.commit().await?)
    }
}

/// The channel every indexing commit and heights update notifies (`NOTIFY`, sent by Postgres at the commit):
/// processes that do not run the indexer (`holdfast serve` replicas, `holdfast deliver` workers) wake on it
/// through [`PgStore::commit_signals`] instead of polling.
pub const COMMIT_CHANNEL: &str = "holdfast_commit";

const NOTIFY_COMMIT: &str = "SELECT pg_notify('holdfast_commit', '')";

impl EventWriter for PgTx {
    async fn insert_events(&mut self, events: &[&DecodedEvent]) -> Result<Vec<bool>> {
        let mut fresh = std::collections::HashSet::with_capacity(events.len());
        for chunk in events.chunks(UNNEST_ROWS) {
            let col_i = |f: fn(&DecodedEvent) -> u64| chunk.iter().map(|e| i(f(e))).collect::<Vec<i64>>();
            let topics: Vec<Vec<u8>> = chunk.iter().map(|e| topics_bytes(&e.raw.topics)).collect();
            let rows: Vec<EventKeyRow> = sqlx::query_as(
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
            .fetch_all(&mut *self.0)
            .await?;
            for row in rows {
                fresh.insert(row.key()?);
            }
        }
        Ok(events.iter().map(|e| fresh.contains(&(e.raw.pos.block_hash, e.raw.pos.log_index))).collect())
    }

    async fn revert_events_above(&mut self, chain_id: u64, block: BlockNumber) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE events SET reverted = TRUE WHERE chain_id = $1 AND block_number > $2 AND NOT reverted",
        )
        .bind(i(chain_id))
        .bind(i(block))
        .execute(&mut *self.0)
        .await?;
        Ok(done.rows_affected())
    }

    async fn orders_with_events_above(&mut self, chain_id: u64, block: BlockNumber) -> Result<Vec<OrderKey>> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT DISTINCT escrow, order_id FROM events WHERE chain_id = $1 AND block_number > $2 \
             AND NOT reverted AND order_id IS NOT NULL",
        )
        .bind(i(chain_id))
        .bind(i(block))
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter().map(KeyRow::key).collect()
    }

    async fn credit_events_above(&mut self, chain_id: u64, block: BlockNumber) -> Result<bool> {
        let row: CountRow = sqlx::query_as(
            "SELECT COUNT(*) AS n FROM events WHERE chain_id = $1 AND block_number > $2 AND NOT reverted \
             AND kind IN ('payout_deferred', 'withdrawn')",
        )
        .bind(i(chain_id))
        .bind(i(block))
        .fetch_one(&mut *self.0)
        .await?;
        Ok(row.n.unwrap_or(0) > 0)
    }

    async fn live_order_events(
        &mut self,
        chain_id: u64,
        (escrow, order_id): OrderKey,
    ) -> Result<Vec<DecodedEvent>> {
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE chain_id = $1 AND escrow = $2 AND order_id = $3 \
             AND NOT reverted ORDER BY block_number, log_index"
        ))
        .bind(i(chain_id))
        .bind(escrow.as_slice())
        .bind(order_id.as_slice())
        .fetch_all(&mut *self.0)
        .await?;
        rows.into_iter().map(EventRow::decoded).collect()
    }

    async fn live_credit_events(&mut self, chain_id: u64) -> Result<Vec<DecodedEvent>> {
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE chain_id = $1 AND NOT reverted \
             AND kind IN ('payout_deferred', 'withdrawn') ORDER BY block_number, log_index"
        ))
        .bind(i(chain_id))
        .fetch_all(&mut *self.0)
        .await?;
        rows.into_iter().map(EventRow::decoded).collect()
    }

    async fn live_events_by_order(
        &mut self,
        chain_id: u64,
        after: Option<ScanPosition>,
        limit: u32,
    ) -> Result<Vec<DecodedEvent>> {
        let q = query::live_events_by_order(chain_id, after, limit);
        let rows = PgStore::bound::<EventRow>(&q).fetch_all(&mut *self.0).await?;
        rows.into_iter().map(EventRow::decoded).collect()
    }
}

impl OrderWriter for PgTx {
    async fn load_orders(
        &mut self,
        chain_id: u64,
        keys: &[OrderKey],
    ) -> Result<HashMap<OrderKey, OrderState>> {
        // Not `with_capacity(keys.len())`: in a backfill most keys are new orders, not stored ones.
        let mut out = HashMap::new();
        for chunk in keys.chunks(UNNEST_ROWS) {
            // One primary-key lookup per key, whatever the table's statistics say. With `escrow = $2 AND
            // order_id IN (…)` and no statistics yet (a table filled by a backfill, before any ANALYZE),
            // Postgres used only (chain_id, escrow) of the key and rechecked the ids on every order of the
            // escrow: a scan of the whole table per batch, which made a 1M-event backfill quadratic.
            let rows: Vec<OrderRow> = sqlx::query_as(
                "SELECT o.escrow, o.order_id, o.state FROM UNNEST($2::bytea[], $3::bytea[]) AS k(escrow, id) \
                 CROSS JOIN LATERAL (SELECT escrow, order_id, state FROM orders \
                 WHERE chain_id = $1 AND escrow = k.escrow AND order_id = k.id) o",
            )
            .bind(i(chain_id))
            .bind(chunk.iter().map(|(e, _)| e.as_slice()).collect::<Vec<&[u8]>>())
            .bind(chunk.iter().map(|(_, o)| o.as_slice()).collect::<Vec<&[u8]>>())
            .fetch_all(&mut *self.0)
            .await?;
            for row in rows {
                let (key, state) = row.keyed()?;
                out.insert(key, state);
            }
        }
        Ok(out)
    }

    async fn orders_in_range(
        &mut self,
        chain_id: u64,
        after: Option<OrderKey>,
        upto: Option<OrderKey>,
    ) -> Result<Vec<(OrderKey, EncodedOrder)>> {
        let q = query::orders_in_range(chain_id, after, upto);
        let rows = PgStore::bound::<OrderRow>(&q).fetch_all(&mut *self.0).await?;
        rows.into_iter().map(OrderRow::encoded).collect()
    }

    async fn upsert_orders(&mut self, orders: &[OrderState], log: bool) -> Result<()> {
        let encoded: Vec<String> = orders.iter().map(state_json).collect::<Result<_>>()?;
        for (chunk, json) in orders.chunks(UNNEST_ROWS).zip(encoded.chunks(UNNEST_ROWS)) {
            let col_i = |f: fn(&OrderState) -> u64| chunk.iter().map(|o| i(f(o))).collect::<Vec<i64>>();
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
            .bind(chunk.iter().map(|o| o.escrow.as_slice()).collect::<Vec<&[u8]>>())
            .bind(chunk.iter().map(|o| o.order_id.as_slice()).collect::<Vec<&[u8]>>())
            .bind(chunk.iter().map(|o| o.payer.as_slice()).collect::<Vec<&[u8]>>())
            .bind(chunk.iter().map(|o| o.payee.as_slice()).collect::<Vec<&[u8]>>())
            .bind(
                chunk
                    .iter()
                    .map(|o| o.arbiter.as_ref().map(|a| a.as_slice()))
                    .collect::<Vec<Option<&[u8]>>>(),
            )
            .bind(chunk.iter().map(|o| o.status.as_str()).collect::<Vec<&str>>())
            .bind(col_i(|o| o.locked.pos.block_number))
            .bind(col_i(|o| o.locked.pos.log_index))
            .bind(col_i(|o| o.locked.pos.block_timestamp))
            .bind(col_i(|o| o.last_pos().block_number))
            .bind(col_i(|o| o.anomalies.len() as u64))
            .bind(json.iter().map(String::as_str).collect::<Vec<&str>>())
            .execute(&mut *self.0)
            .await?;
        }
        if log {
            let rows: Vec<EncodedChange<'_>> =
                orders.iter().zip(&encoded).map(|(o, json)| EncodedChange::updated(o, json)).collect();
            self.insert_changes(&rows).await?;
        }
        Ok(())
    }

    async fn delete_orders(&mut self, chain_id: u64, keys: &[OrderKey]) -> Result<()> {
        for (escrow, order_id) in keys {
            sqlx::query("DELETE FROM orders WHERE chain_id = $1 AND escrow = $2 AND order_id = $3")
                .bind(i(chain_id))
                .bind(escrow.as_slice())
                .bind(order_id.as_slice())
                .execute(&mut *self.0)
                .await?;
        }
        Ok(())
    }
}

impl LedgerWriter for PgTx {
    async fn insert_anomalies(&mut self, rows: &[AnomalyRecord]) -> Result<()> {
        for chunk in rows.chunks(rows_per_statement(8)) {
            let mut q = QueryBuilder::<Postgres>::new(
                "INSERT INTO anomalies (chain_id, escrow, order_id, block_number, block_hash, log_index, kind, \
                 reason) ",
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
            q.build().persistent(false).execute(&mut *self.0).await?;
        }
        Ok(())
    }

    async fn delete_anomalies(&mut self, chain_id: u64, above: Option<BlockNumber>) -> Result<()> {
        sqlx::query("DELETE FROM anomalies WHERE chain_id = $1 AND block_number > $2")
            .bind(i(chain_id))
            .bind(above.map_or(-1, i))
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn load_credits(&mut self, chain_id: u64, keys: &[CreditKey]) -> Result<HashMap<CreditKey, U256>> {
        let mut out = HashMap::with_capacity(keys.len());
        for (escrow, account) in keys {
            let row: Option<CreditRow> = sqlx::query_as(
                "SELECT escrow, account, amount FROM credits WHERE chain_id = $1 AND escrow = $2 AND account = $3",
            )
            .bind(i(chain_id))
            .bind(escrow.as_slice())
            .bind(account.as_slice())
            .fetch_optional(&mut *self.0)
            .await?;
            if let Some(row) = row {
                let (key, amount) = row.entry()?;
                out.insert(key, amount);
            }
        }
        Ok(out)
    }

    async fn put_credits(&mut self, chain_id: u64, credits: &[(CreditKey, U256)]) -> Result<()> {
        for ((escrow, account), amount) in credits {
            sqlx::query(
                "INSERT INTO credits (chain_id, escrow, account, amount) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (chain_id, escrow, account) DO UPDATE SET amount = excluded.amount",
            )
            .bind(i(chain_id))
            .bind(escrow.as_slice())
            .bind(account.as_slice())
            .bind(amount.to_string())
            .execute(&mut *self.0)
            .await?;
        }
        Ok(())
    }

    async fn clear_credits(&mut self, chain_id: u64) -> Result<()> {
        sqlx::query("DELETE FROM credits WHERE chain_id = $1")
            .bind(i(chain_id))
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }
}

impl ChangeWriter for PgTx {
    async fn last_changes(
        &mut self,
        chain_id: u64,
        keys: &[OrderKey],
    ) -> Result<HashMap<OrderKey, LastChange>> {
        let mut out = HashMap::new();
        for (escrow, order_id) in keys {
            let row: Option<LastChangeRow> = sqlx::query_as(
                "SELECT chain_id, escrow, order_id, payer, payee, arbiter, status, lock_time, state FROM changes \
                 WHERE chain_id = $1 AND escrow = $2 AND order_id = $3 ORDER BY seq DESC LIMIT 1",
            )
            .bind(i(chain_id))
            .bind(escrow.as_slice())
            .bind(order_id.as_slice())
            .fetch_optional(&mut *self.0)
            .await?;
            if let Some(row) = row {
                let (key, last) = row.keyed()?;
                out.insert(key, last);
            }
        }
        Ok(out)
    }

    async fn append_changes(&mut self, rows: &[NewChange]) -> Result<()> {
        let json = EncodedChange::encode_all(rows)?;
        self.insert_changes(&EncodedChange::views(rows, &json)).await
    }
}

impl CursorWriter for PgTx {
    async fn put_blocks(&mut self, chain_id: u64, blocks: &[BlockRef]) -> Result<()> {
        for chunk in blocks.chunks(rows_per_statement(5)) {
            let mut q = QueryBuilder::<Postgres>::new(
                "INSERT INTO blocks (chain_id, number, hash, parent_hash, timestamp) ",
            );
            q.push_values(chunk, |mut b, blk| {
                b.push_bind(i(chain_id))
                    .push_bind(i(blk.number))
                    .push_bind(blk.hash.as_slice())
                    .push_bind(blk.parent_hash.as_slice())
                    .push_bind(i(blk.timestamp));
            });
            q.push(
                " ON CONFLICT (chain_id, number) DO UPDATE SET hash = excluded.hash, \
                 parent_hash = excluded.parent_hash, timestamp = excluded.timestamp",
            );
            q.build().persistent(false).execute(&mut *self.0).await?;
        }
        Ok(())
    }

    async fn forget_blocks_below(&mut self, chain_id: u64, number: BlockNumber) -> Result<()> {
        sqlx::query("DELETE FROM blocks WHERE chain_id = $1 AND number < $2")
            .bind(i(chain_id))
            .bind(i(number))
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn forget_blocks_above(&mut self, chain_id: u64, number: BlockNumber) -> Result<()> {
        sqlx::query("DELETE FROM blocks WHERE chain_id = $1 AND number > $2")
            .bind(i(chain_id))
            .bind(i(number))
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn advance_cursor(
        &mut self,
        chain_id: u64,
        genesis_hash: B256,
        cursor: &BlockRef,
        heights: Heights,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO chain_meta (chain_id, genesis_hash, cursor_number, cursor_hash, head, safe, finalized, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (chain_id) DO UPDATE SET cursor_number = excluded.cursor_number, \
             cursor_hash = excluded.cursor_hash, head = excluded.head, safe = excluded.safe, \
             finalized = excluded.finalized, updated_at = excluded.updated_at",
        )
        .bind(i(chain_id))
        .bind(genesis_hash.as_slice())
        .bind(i(cursor.number))
        .bind(cursor.hash.as_slice())
        .bind(i(heights.head))
        .bind(i(heights.safe))
        .bind(i(heights.finalized))
        .bind(i(now()))
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn rewind_cursor(&mut self, chain_id: u64, fork: &BlockRef) -> Result<()> {
        sqlx::query(
            "UPDATE chain_meta SET cursor_number = $2, cursor_hash = $3, updated_at = $4 WHERE chain_id = $1",
        )
        .bind(i(chain_id))
        .bind(i(fork.number))
        .bind(fork.hash.as_slice())
        .bind(i(now()))
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }
}

impl DeferredIndexes for PgStore {
    fn defers_by_default(&self) -> bool {
        true
    }

    async fn defer_indexes(&self) -> Result<bool> {
        let mut tx = self.begin().await?;
        // One decider at a time: two chains' indexers may start on one fresh store together.
        sqlx::query("LOCK TABLE deferred_indexes IN EXCLUSIVE MODE").execute(&mut *tx.0).await?;
        let (deferred, has_events): (bool, bool) =
            sqlx::query_as(indexes::DEFERRED_AND_HAS_EVENTS).fetch_one(&mut *tx.0).await?;
        if deferred || has_events {
            return Ok(deferred);
        }
        for (name, _) in DEFERRABLE {
            sqlx::query(&format!("DROP INDEX IF EXISTS {name}")).execute(&mut *tx.0).await?;
        }
        sqlx::query(indexes::RECORD_DEFERRED).bind(i(now())).execute(&mut *tx.0).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn build_deferred_indexes(&self) -> Result<bool> {
        let mut tx = self.begin().await?;
        sqlx::query("LOCK TABLE deferred_indexes IN EXCLUSIVE MODE").execute(&mut *tx.0).await?;
        let (deferred,): (bool,) = sqlx::query_as(indexes::IS_DEFERRED).fetch_one(&mut *tx.0).await?;
        if !deferred {
            return Ok(false);
        }
        // Sort memory for the builds (the server's default is 64 MB), for this transaction only.
        sqlx::query("SET LOCAL maintenance_work_mem = '256MB'").execute(&mut *tx.0).await?;
        for (_, create) in DEFERRABLE {
            sqlx::query(create).execute(&mut *tx.0).await?;
        }
        // The statistics a backfill leaves behind are those of empty tables (autovacuum may be off, or
        // not have run yet).
        sqlx::query("ANALYZE events, orders, changes").execute(&mut *tx.0).await?;
        sqlx::query(indexes::CLEAR_DEFERRED).execute(&mut *tx.0).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn indexes_deferred(&self) -> Result<bool> {
        let (deferred,): (bool,) = sqlx::query_as(indexes::IS_DEFERRED).fetch_one(&self.pool).await?;
        Ok(deferred)
    }
}

impl MetaWriter for PgStore {
    async fn refresh_statistics(&self) -> Result<()> {
        sqlx::query("ANALYZE events, orders, changes").execute(&self.pool).await?;
        Ok(())
    }

    async fn mark_compacted(&self, upto: i64) -> Result<()> {
        sqlx::query(query::MARK_COMPACTED).bind(upto).execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_superseded_changes(&self, upto: i64, batch: u32) -> Result<u64> {
        let q = sqlx::query(query::COMPACT_CHANGES).bind(upto).bind(i64::from(batch));
        Ok(q.execute(&self.pool).await?.rows_affected())
    }

    async fn update_heights(&self, chain_id: u64, h: Heights) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE chain_meta SET head = $2, safe = $3, finalized = $4, updated_at = $5 WHERE chain_id = $1",
        )
        .bind(i(chain_id))
        .bind(i(h.head))
        .bind(i(h.safe))
        .bind(i(h.finalized))
        .bind(i(now()))
        .execute(&mut *tx.0)
        .await?;
        tx.commit().await
    }

    async fn reset_chain(&self, chain_id: u64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for table in ["events", "orders", "credits", "anomalies", "blocks", "reconciliations", "chain_meta"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE chain_id = $1"))
                .bind(i(chain_id))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
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

impl ChainReader for PgStore {
    async fn chain_meta(&self, chain_id: u64) -> Result<Option<ChainMeta>> {
        let row: Option<ChainMetaRow> = sqlx::query_as(
            "SELECT chain_id, genesis_hash, cursor_number, cursor_hash, head, safe, finalized, updated_at \
             FROM chain_meta WHERE chain_id = $1",
        )
        .bind(i(chain_id))
        .fetch_optional(&self.pool)
        .await?;
        row.map(ChainMeta::try_from).transpose()
    }

    async fn blocks_from(&self, chain_id: u64, from: BlockNumber) -> Result<Vec<BlockRef>> {
        let rows: Vec<BlockRow> = sqlx::query_as(
            "SELECT number, hash, parent_hash, timestamp FROM blocks WHERE chain_id = $1 AND number >= $2 \
             ORDER BY number",
        )
        .bind(i(chain_id))
        .bind(i(from))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(BlockRef::try_from).collect()
    }
}

impl FeedReader for PgStore {
    async fn chain_metas(&self) -> Result<Vec<ChainMeta>> {
        let rows: Vec<ChainMetaRow> = sqlx::query_as(
            "SELECT chain_id, genesis_hash, cursor_number, cursor_hash, head, safe, finalized, updated_at \
             FROM chain_meta ORDER BY chain_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(ChainMeta::try_from).collect()
    }

    async fn compacted_through(&self) -> Result<i64> {
        let row: CountRow = sqlx::query_as(query::COMPACTED_THROUGH).fetch_one(&self.pool).await?;
        Ok(row.n.unwrap_or(0))
    }

    async fn last_change_seq(&self) -> Result<i64> {
        let row: CountRow = sqlx::query_as("SELECT MAX(seq) AS n FROM changes").fetch_one(&self.pool).await?;
        Ok(row.n.unwrap_or(0))
    }

    async fn changes(&self, after: i64, upto: i64, f: &OrderFilter, limit: u32) -> Result<Vec<Change>> {
        let q = query::changes(after, upto, f, limit, query::Dialect::Postgres);
        let mut s = sqlx::query_as::<_, ChangeRow>(&q.sql);
        for p in &q.params {
            s = match p {
                Param::Int(v) => s.bind(*v),
                Param::Word(w) => s.bind(w.as_slice()),
                Param::Addr(a) => s.bind(a.as_slice()),
                Param::Text(t) => s.bind(*t),
            };
        }
        s.fetch_all(&self.pool).await?.into_iter().map(Change::try_from).collect()
    }
}

impl OrderReader for PgStore {
    async fn order(
        &self,
        chain_id: Option<u64>,
        escrow: Option<Address>,
        order_id: B256,
    ) -> Result<Option<OrderState>> {
        let q = query::order(chain_id, escrow, order_id);
        let row = Self::bound::<StateRow>(&q).fetch_optional(&self.pool).await?;
        row.map(|r| parse_state(&r.state)).transpose()
    }

    async fn orders(&self, f: &OrderFilter) -> Result<Vec<OrderState>> {
        let rows = Self::bound::<StateRow>(&query::orders(f)).fetch_all(&self.pool).await?;
        rows.iter().map(|r| parse_state(&r.state)).collect()
    }

    async fn order_events(&self, chain_id: u64, escrow: Address, order_id: B256) -> Result<Vec<StoredEvent>> {
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE chain_id = $1 AND escrow = $2 AND order_id = $3 \
             ORDER BY block_number, log_index, seq"
        ))
        .bind(i(chain_id))
        .bind(escrow.as_slice())
        .bind(order_id.as_slice())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(EventRow::stored).collect()
    }

    async fn tx_events(&self, tx_hash: B256) -> Result<Vec<StoredEvent>> {
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE tx_hash = $1 ORDER BY block_number, log_index, seq"
        ))
        .bind(tx_hash.as_slice())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(EventRow::stored).collect()
    }

    async fn escrow_liabilities(&self, chain_id: u64, escrow: Address) -> Result<(U256, U256)> {
        // Streamed and folded: the open orders grow with the history, so they are never held at once
        // (collected, they were the largest allocation of a 1M-event backfill: 235 MB).
        let mut rows = sqlx::query_as::<_, StateRow>(
            "SELECT state FROM orders WHERE chain_id = $1 AND escrow = $2 AND status IN ('held', 'delivered', 'frozen')",
        )
        .bind(i(chain_id))
        .bind(escrow.as_slice())
        .fetch(&self.pool);
        let mut remaining = U256::ZERO;
        while let Some(r) = rows.try_next().await? {
            remaining += state_remaining(&r.state)?;
        }
        drop(rows);
        let rows: Vec<AmountRow> =
            sqlx::query_as("SELECT amount FROM credits WHERE chain_id = $1 AND escrow = $2")
                .bind(i(chain_id))
                .bind(escrow.as_slice())
                .fetch_all(&self.pool)
                .await?;
        let mut credits = U256::ZERO;
        for r in &rows {
            credits += u256(&r.amount)?;
        }
        Ok((remaining, credits))
    }

    async fn account_credit_events(
        &self,
        chain_id: Option<u64>,
        escrow: Option<Address>,
        account: Address,
    ) -> Result<Vec<StoredEvent>> {
        // Credit events are rare (a payout the token refused, a withdrawal), and the partial index
        // `events_credit` holds only them: the account (a topic) is matched after decoding.
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE kind IN ('payout_deferred', 'withdrawn') AND NOT reverted \
             AND ($1::BIGINT IS NULL OR chain_id = $1) AND ($2::BYTEA IS NULL OR escrow = $2) ORDER BY chain_id, escrow, block_number, log_index"
        ))
        .bind(chain_id.map(i))
        .bind(escrow.as_ref().map(|e| e.as_slice()))
        .fetch_all(&self.pool)
        .await?;
        EventRow::credit_events_of(rows, account)
    }

    async fn reconciliations(&self, chain_id: u64) -> Result<Vec<Reconciliation>> {
        let rows: Vec<ReconciliationRow> = sqlx::query_as(
            "SELECT chain_id, escrow, block_number, expected, actual, ok, checked_at FROM reconciliations \
             WHERE chain_id = $1 ORDER BY escrow",
        )
        .bind(i(chain_id))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Reconciliation::try_from).collect()
    }

    async fn counts(&self, chain_id: u64) -> Result<(u64, u64)> {
        let events: CountRow =
            sqlx::query_as("SELECT COUNT(*) AS n FROM events WHERE chain_id = $1 AND NOT reverted")
                .bind(i(chain_id))
                .fetch_one(&self.pool)
                .await?;
        let orders: CountRow = sqlx::query_as("SELECT COUNT(*) AS n FROM orders WHERE chain_id = $1")
            .bind(i(chain_id))
            .fetch_one(&self.pool)
            .await?;
        Ok((u(events.n.unwrap_or(0)), u(orders.n.unwrap_or(0))))
    }
}

impl PgTx {
    /// The change-log inserts. Takes the change-log lock first (`LOCK TABLE changes`, held until the commit): two
    /// writers (one indexer per chain) could otherwise commit sequence numbers out of order, and a feed reader
    /// that saw the later one would skip the earlier. Rows go in array order (`WITH ORDINALITY … ORDER BY`), so
    /// sequence numbers follow the order of `rows`.
    async fn insert_changes(&mut self, rows: &[EncodedChange<'_>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query("LOCK TABLE changes IN SHARE ROW EXCLUSIVE MODE").execute(&mut *self.0).await?;
        for chunk in rows.chunks(UNNEST_ROWS) {
            let col_i =
                |f: fn(&EncodedChange<'_>) -> u64| chunk.iter().map(|r| i(f(r))).collect::<Vec<i64>>();
            sqlx::query(
                "INSERT INTO changes (chain_id, escrow, order_id, kind, block_number, payer, payee, arbiter, \
                 status, lock_time, state) \
                 SELECT c, e, o, k, b, pr, pe, a, s, t, st FROM UNNEST($1::int8[], $2::bytea[], $3::bytea[], \
                 $4::text[], $5::int8[], $6::bytea[], $7::bytea[], $8::bytea[], $9::text[], $10::int8[], \
                 $11::text[]) WITH ORDINALITY AS r(c, e, o, k, b, pr, pe, a, s, t, st, n) ORDER BY n",
            )
            .bind(col_i(|r| r.filing.chain_id))
            .bind(chunk.iter().map(|r| r.filing.escrow.as_slice()).collect::<Vec<&[u8]>>())
            .bind(chunk.iter().map(|r| r.filing.order_id.as_slice()).collect::<Vec<&[u8]>>())
            .bind(chunk.iter().map(|r| r.kind.as_str()).collect::<Vec<&str>>())
            .bind(col_i(|r| r.block_number))
            .bind(chunk.iter().map(|r| r.filing.payer.as_slice()).collect::<Vec<&[u8]>>())
            .bind(chunk.iter().map(|r| r.filing.payee.as_slice()).collect::<Vec<&[u8]>>())
            .bind(
                chunk
                    .iter()
                    .map(|r| r.filing.arbiter.as_ref().map(|a| a.as_slice()))
                    .collect::<Vec<Option<&[u8]>>>(),
            )
            .bind(chunk.iter().map(|r| r.filing.status.as_str()).collect::<Vec<&str>>())
            .bind(col_i(|r| r.filing.lock_time))
            .bind(chunk.iter().map(|r| r.state).collect::<Vec<Option<&str>>>())
            .execute(&mut *self.0)
            .await?;
        }
        Ok(())
    }
}
