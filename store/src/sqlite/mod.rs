//! The SQLite backend (WAL): the embedded default. Order reads ([`OrderReader::order`] and
//! [`OrderReader::orders`]) of a file store run inline on the calling thread ([`read`]); everything else
//! goes through the sqlx pool. Bulk writes are multi-row `VALUES` statements with every value bound (a
//! statement is parsed in microseconds, in process), chunked under SQLite's 32,766 bind-variable limit.

mod read;

use std::{collections::HashMap, str::FromStr, time::Duration};

use alloy::primitives::{Address, B256, BlockNumber, U256};
use futures::TryStreamExt;
use holdfast_primitives::{
    BlockRef, ChainMeta, Change, DecodedEvent, Heights, OrderKey, OrderState, Reconciliation,
    change::{LastChange, NewChange},
    derive::{AnomalyRecord, CreditKey},
};
use sqlx::{
    QueryBuilder, Sqlite,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous},
};

use self::read::SqliteReader;
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

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Rows per multi-row statement of `cols` bound columns: under SQLite's limit of 32,766 bind variables,
/// and small enough that a statement stays cheap to prepare. These statements are not kept in the
/// prepared-statement cache (`persistent(false)`): their text varies with the row count, and cached ones
/// would hold megabytes each.
fn rows_per_statement(cols: usize) -> usize {
    (32_766 / cols).min(1_000)
}

/// SQLite store (WAL mode).
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
            // Under an exclusive lock on `<file>.migrate.lock`: sqlx does not serialise SQLite migrations
            // between processes, and two processes opening a fresh file at once (`holdfast index` and
            // `serve`, a test and the process it started) both ran migration 1, the second failing with
            // "table chain_meta already exists". The lock is released when the file closes (or the process
            // dies).
            use sqlx::{ConnectOptions, Connection};
            let path = format!("{}.migrate.lock", opts.get_filename().display());
            let lock_err = |source| crate::Error::MigrationLock { path: path.clone(), source };
            let lock = {
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    let file =
                        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
                    file.lock()?;
                    Ok::<_, std::io::Error>(file)
                })
                .await
                .map_err(|e| lock_err(std::io::Error::other(e)))?
                .map_err(lock_err)?
            };
            let mut conn = opts.clone().connect().await?;
            MIGRATOR.run(&mut conn).await?;
            conn.close().await?;
            drop(lock);
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { 8 })
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
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

    /// The connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
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

    /// `q` with its parameters bound, to run on the pool.
    fn bound<R>(q: &SqlQuery) -> sqlx::query::QueryAs<'_, Sqlite, R, sqlx::sqlite::SqliteArguments<'_>>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
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

/// One indexing step's transaction on SQLite (the database's single writer lock is held from the first
/// write until the commit).
///
/// Written by hand over a pooled connection rather than with `sqlx::Transaction`, because a transaction
/// that did not commit must never go back to the pool: SQLite rolls a whole transaction back by itself on
/// some errors (a full disk, an I/O error), after which sqlx's `ROLLBACK` on drop fails, its transaction
/// depth stays at 1, and the connection's next `begin` opens a `SAVEPOINT` whose rollback leaves a
/// transaction open, holding the write lock, with its later "commits" never reaching the file (seen in the
/// disk-full drill: every other connection got `database is locked`, the API never saw new orders). Here a
/// transaction that is dropped, or whose `COMMIT` fails, closes its connection instead, and closing a
/// SQLite connection rolls back whatever it holds and releases its locks.
#[derive(Debug)]
pub struct SqliteTx {
    pub(crate) conn: sqlx::pool::PoolConnection<Sqlite>,
    committed: bool,
    /// The store's inline reader, for [`EventWriter::live_events_by_order`] (see there).
    reader: Option<SqliteReader>,
    /// Whether this transaction has written to `events` (its own reads must then see its writes).
    events_written: bool,
    /// The greatest order key this transaction has upserted or deleted (reads of greater keys may skip
    /// its writes).
    orders_written_upto: Option<OrderKey>,
}

impl Storage for SqliteStore {
    type Tx = SqliteTx;
    async fn begin(&self) -> Result<SqliteTx> {
        let conn = self.pool.acquire().await?;
        // Constructed before `BEGIN` runs, so that a failed `BEGIN` also closes the connection.
        let mut tx = SqliteTx {
            conn,
            committed: false,
            reader: self.inline_reader().cloned(),
            events_written: false,
            orders_written_upto: None,
        };
        // IMMEDIATE: the write lock is taken (or waited for, up to the busy timeout) now. A deferred
        // transaction that read first could not upgrade once another writer (a second chain's indexer, the
        // webhook queue) committed after its snapshot: WAL answers that with SQLITE_BUSY at once, no wait.
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *tx.conn).await?;
        Ok(tx)
    }
}

impl WriteTx for SqliteTx {
    async fn commit(mut self) -> Result<()> {
        sqlx::query("COMMIT").execute(&mut *self.conn).await?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

/// The multi-row insert of `chunk`: an event already stored is revived if it was reverted, and otherwise
/// left alone; with `returning`, the statement answers the (block hash, log index) of every row written.
fn insert_events_query<'a>(chunk: &'a [&'a DecodedEvent], returning: bool) -> QueryBuilder<'a, Sqlite> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO events (chain_id, escrow, block_number, block_hash, block_timestamp, tx_hash, tx_index, \
         log_index, kind, order_id, topics, data) ",
    );
    q.push_values(chunk, |mut b, DecodedEvent { raw, event }| {
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
            .push_bind(topics_bytes(&raw.topics))
            .push_bind(raw.data.as_ref());
    });
    q.push(
        " ON CONFLICT (chain_id, block_hash, log_index) DO UPDATE SET reverted = FALSE WHERE events.reverted",
    );
    if returning {
        q.push(" RETURNING block_hash, log_index");
    }
    q
}

impl EventWriter for SqliteTx {
    /// Each chunk is first inserted without `RETURNING`, under a savepoint: when every row of it was
    /// written (inserted, or revived from reverted), all are fresh, and no row had to be handed back
    /// through sqlx's worker thread (about a tenth of a SQLite backfill, measured). Only a chunk that held
    /// events already stored is rolled back to the savepoint and inserted again with `RETURNING`, to learn
    /// which.
    async fn insert_events(&mut self, events: &[&DecodedEvent]) -> Result<Vec<bool>> {
        self.events_written = true;
        let mut fresh = Vec::with_capacity(events.len());
        for chunk in events.chunks(rows_per_statement(12)) {
            sqlx::query("SAVEPOINT insert_events").execute(&mut *self.conn).await?;
            let written =
                insert_events_query(chunk, false).build().persistent(false).execute(&mut *self.conn).await?;
            if written.rows_affected() == chunk.len() as u64 {
                sqlx::query("RELEASE insert_events").execute(&mut *self.conn).await?;
                fresh.extend(std::iter::repeat_n(true, chunk.len()));
                continue;
            }
            sqlx::query("ROLLBACK TO insert_events").execute(&mut *self.conn).await?;
            sqlx::query("RELEASE insert_events").execute(&mut *self.conn).await?;
            let mut q = insert_events_query(chunk, true);
            let mut written = std::collections::HashSet::with_capacity(chunk.len());
            for row in q.build_query_as::<EventKeyRow>().persistent(false).fetch_all(&mut *self.conn).await? {
                written.insert(row.key()?);
            }
            fresh
                .extend(chunk.iter().map(|e| written.contains(&(e.raw.pos.block_hash, e.raw.pos.log_index))));
        }
        Ok(fresh)
    }

    async fn revert_events_above(&mut self, chain_id: u64, block: BlockNumber) -> Result<u64> {
        self.events_written = true;
        let done = sqlx::query(
            "UPDATE events SET reverted = TRUE WHERE chain_id = $1 AND block_number > $2 AND NOT reverted",
        )
        .bind(i(chain_id))
        .bind(i(block))
        .execute(&mut *self.conn)
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
        .fetch_all(&mut *self.conn)
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
        .fetch_one(&mut *self.conn)
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
        .fetch_all(&mut *self.conn)
        .await?;
        rows.into_iter().map(EventRow::decoded).collect()
    }

    async fn live_credit_events(&mut self, chain_id: u64) -> Result<Vec<DecodedEvent>> {
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE chain_id = $1 AND NOT reverted \
             AND kind IN ('payout_deferred', 'withdrawn') ORDER BY block_number, log_index"
        ))
        .bind(i(chain_id))
        .fetch_all(&mut *self.conn)
        .await?;
        rows.into_iter().map(EventRow::decoded).collect()
    }

    /// Scanned off the writer connection, by the inline reader on a blocking thread, when this transaction
    /// has not written to `events`: every row then skips the handoff through sqlx's worker thread, which
    /// dominated a re-derivation on SQLite (a channel send and wake-up per row). That reader sees what was
    /// committed, which is exactly what this transaction sees: it holds the database's write lock since
    /// `BEGIN IMMEDIATE`, so nothing can commit in between, and it has not changed `events` itself.
    async fn live_events_by_order(
        &mut self,
        chain_id: u64,
        after: Option<ScanPosition>,
        limit: u32,
    ) -> Result<Vec<DecodedEvent>> {
        let q = query::live_events_by_order(chain_id, after, limit);
        if !self.events_written
            && let Some(events) = self.scan_inline(&q, |row| read::event_row(row)?.decoded()).await
        {
            return events;
        }
        let rows = SqliteStore::bound::<EventRow>(&q).fetch_all(&mut *self.conn).await?;
        rows.into_iter().map(EventRow::decoded).collect()
    }
}

impl OrderWriter for SqliteTx {
    async fn load_orders(
        &mut self,
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
                let mut q = QueryBuilder::<Sqlite>::new(
                    "SELECT escrow, order_id, state FROM orders WHERE chain_id = ",
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
                for row in q.build_query_as::<OrderRow>().persistent(false).fetch_all(&mut *self.conn).await?
                {
                    let (key, state) = row.keyed()?;
                    out.insert(key, state);
                }
            }
        }
        Ok(out)
    }

    /// Scanned off the writer connection like [`EventWriter::live_events_by_order`] when this transaction
    /// has written no order key above `after` (so none in the range): re-derivation reads each range before
    /// it writes it, in key order.
    async fn orders_in_range(
        &mut self,
        chain_id: u64,
        after: Option<OrderKey>,
        upto: Option<OrderKey>,
    ) -> Result<Vec<(OrderKey, EncodedOrder)>> {
        let q = query::orders_in_range(chain_id, after, upto);
        let untouched = self.orders_written_upto.is_none_or(|w| after.is_some_and(|a| w <= a));
        if untouched && let Some(orders) = self.scan_inline(&q, |row| read::order_row(row)?.encoded()).await {
            return orders;
        }
        let rows = SqliteStore::bound::<OrderRow>(&q).fetch_all(&mut *self.conn).await?;
        rows.into_iter().map(OrderRow::encoded).collect()
    }

    async fn upsert_orders(&mut self, orders: &[OrderState], log: bool) -> Result<()> {
        self.wrote_orders(orders.iter().map(|o| (o.escrow, o.order_id)));
        let encoded: Vec<String> = orders.iter().map(state_json).collect::<Result<_>>()?;
        for (chunk, json) in orders.chunks(rows_per_statement(13)).zip(encoded.chunks(rows_per_statement(13)))
        {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO orders (chain_id, escrow, order_id, payer, payee, arbiter, status, lock_block, \
                 lock_log_index, lock_time, last_block, anomalies, state) ",
            );
            q.push_values(chunk.iter().zip(json), |mut b, (o, json)| {
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
            q.build().persistent(false).execute(&mut *self.conn).await?;
        }
        if log {
            let rows: Vec<EncodedChange<'_>> =
                orders.iter().zip(&encoded).map(|(o, json)| EncodedChange::updated(o, json)).collect();
            self.insert_changes(&rows).await?;
        }
        Ok(())
    }

    async fn delete_orders(&mut self, chain_id: u64, keys: &[OrderKey]) -> Result<()> {
        self.wrote_orders(keys.iter().copied());
        for (escrow, order_id) in keys {
            sqlx::query("DELETE FROM orders WHERE chain_id = $1 AND escrow = $2 AND order_id = $3")
                .bind(i(chain_id))
                .bind(escrow.as_slice())
                .bind(order_id.as_slice())
                .execute(&mut *self.conn)
                .await?;
        }
        Ok(())
    }
}

impl LedgerWriter for SqliteTx {
    async fn insert_anomalies(&mut self, rows: &[AnomalyRecord]) -> Result<()> {
        for chunk in rows.chunks(rows_per_statement(8)) {
            let mut q = QueryBuilder::<Sqlite>::new(
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
            q.build().persistent(false).execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    async fn delete_anomalies(&mut self, chain_id: u64, above: Option<BlockNumber>) -> Result<()> {
        sqlx::query("DELETE FROM anomalies WHERE chain_id = $1 AND block_number > $2")
            .bind(i(chain_id))
            .bind(above.map_or(-1, i))
            .execute(&mut *self.conn)
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
            .fetch_optional(&mut *self.conn)
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
            .execute(&mut *self.conn)
            .await?;
        }
        Ok(())
    }

    async fn clear_credits(&mut self, chain_id: u64) -> Result<()> {
        sqlx::query("DELETE FROM credits WHERE chain_id = $1")
            .bind(i(chain_id))
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }
}

impl ChangeWriter for SqliteTx {
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
            .fetch_optional(&mut *self.conn)
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

impl CursorWriter for SqliteTx {
    async fn put_blocks(&mut self, chain_id: u64, blocks: &[BlockRef]) -> Result<()> {
        for chunk in blocks.chunks(rows_per_statement(5)) {
            let mut q = QueryBuilder::<Sqlite>::new(
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
            q.build().persistent(false).execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    async fn forget_blocks_below(&mut self, chain_id: u64, number: BlockNumber) -> Result<()> {
        sqlx::query("DELETE FROM blocks WHERE chain_id = $1 AND number < $2")
            .bind(i(chain_id))
            .bind(i(number))
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn forget_blocks_above(&mut self, chain_id: u64, number: BlockNumber) -> Result<()> {
        sqlx::query("DELETE FROM blocks WHERE chain_id = $1 AND number > $2")
            .bind(i(chain_id))
            .bind(i(number))
            .execute(&mut *self.conn)
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
        .execute(&mut *self.conn)
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
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }
}

impl DeferredIndexes for SqliteStore {
    fn defers_by_default(&self) -> bool {
        false
    }

    async fn defer_indexes(&self) -> Result<bool> {
        // `begin` takes the write lock: one decider at a time.
        let mut tx = self.begin().await?;
        let (deferred, has_events): (bool, bool) =
            sqlx::query_as(indexes::DEFERRED_AND_HAS_EVENTS).fetch_one(&mut *tx.conn).await?;
        if deferred || has_events {
            tx.commit().await?;
            return Ok(deferred);
        }
        for (name, _) in DEFERRABLE {
            sqlx::query(&format!("DROP INDEX IF EXISTS {name}")).execute(&mut *tx.conn).await?;
        }
        sqlx::query(indexes::RECORD_DEFERRED).bind(i(now())).execute(&mut *tx.conn).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn build_deferred_indexes(&self) -> Result<bool> {
        let mut tx = self.begin().await?;
        let (deferred,): (bool,) = sqlx::query_as(indexes::IS_DEFERRED).fetch_one(&mut *tx.conn).await?;
        if !deferred {
            tx.commit().await?;
            return Ok(false);
        }
        for (_, create) in DEFERRABLE {
            sqlx::query(create).execute(&mut *tx.conn).await?;
        }
        sqlx::query(indexes::CLEAR_DEFERRED).execute(&mut *tx.conn).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn indexes_deferred(&self) -> Result<bool> {
        let (deferred,): (bool,) = sqlx::query_as(indexes::IS_DEFERRED).fetch_one(&self.pool).await?;
        Ok(deferred)
    }
}

impl MetaWriter for SqliteStore {
    async fn refresh_statistics(&self) -> Result<()> {
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
        let mut tx = self.begin().await?;
        for table in ["events", "orders", "credits", "anomalies", "blocks", "reconciliations", "chain_meta"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE chain_id = $1"))
                .bind(i(chain_id))
                .execute(&mut *tx.conn)
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

impl ChainReader for SqliteStore {
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

impl FeedReader for SqliteStore {
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
        let q = query::changes(after, upto, f, limit, query::Dialect::Sqlite);
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

impl OrderReader for SqliteStore {
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
        let row = Self::bound::<StateRow>(&q).fetch_optional(&self.pool).await?;
        row.map(|r| parse_state(&r.state)).transpose()
    }

    async fn orders(&self, f: &OrderFilter) -> Result<Vec<OrderState>> {
        let q = query::orders(f);
        if let Some(r) = self.inline_reader() {
            let mut page = Vec::new();
            if let Some(done) = r.for_each_state(&q, |o| page.push(o)) {
                return done.map(|()| page);
            }
        }
        let rows = Self::bound::<StateRow>(&q).fetch_all(&self.pool).await?;
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
             AND ($1 IS NULL OR chain_id = $1) AND ($2 IS NULL OR escrow = $2) ORDER BY chain_id, escrow, block_number, log_index"
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

impl SqliteTx {
    fn wrote_orders(&mut self, keys: impl Iterator<Item = OrderKey>) {
        self.orders_written_upto = self.orders_written_upto.into_iter().chain(keys).max();
    }

    /// Run `q` on the inline reader, on a blocking thread, mapping each row with `f`. `None`: no reader, or
    /// it cannot answer now (closed, busy); the caller reads through its connection instead. Only for reads
    /// that this transaction's own writes cannot affect: the reader sees what was committed, which (this
    /// transaction holding the write lock since `BEGIN IMMEDIATE`) is all that was committed since it
    /// began.
    async fn scan_inline<T: Send + 'static>(
        &self,
        q: &SqlQuery,
        f: impl Fn(&rusqlite::Row<'_>) -> Result<T> + Send + 'static,
    ) -> Option<Result<Vec<T>>> {
        let (reader, q) = (self.reader.clone()?, q.clone());
        let scanned = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            reader
                .for_each_row(&q, |row| {
                    out.push(f(row)?);
                    Ok(())
                })
                .map(|done| done.map(|()| out))
        })
        .await;
        match scanned {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }

    /// The change-log inserts. SQLite writers are serialised by the database lock, held until the commit:
    /// sequence numbers become visible in order without a lock of our own.
    async fn insert_changes(&mut self, rows: &[EncodedChange<'_>]) -> Result<()> {
        for chunk in rows.chunks(rows_per_statement(11)) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO changes (chain_id, escrow, order_id, kind, block_number, payer, payee, arbiter, \
                 status, lock_time, state) ",
            );
            q.push_values(chunk, |mut b, r| {
                let f = &r.filing;
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
            q.build().persistent(false).execute(&mut *self.conn).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// A store file for one test: removed with its WAL, shared-memory and lock files when dropped, also when
    /// the test fails.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new() -> Self {
            Self(std::env::temp_dir().join(format!("holdfast-store-{}.db", rand::random::<u64>())))
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm", ".migrate.lock"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    /// Whether another connection (as another process would) can take the write lock right now.
    fn writable_from_outside(path: &std::path::Path) -> bool {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(Duration::ZERO).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK").is_ok()
    }

    /// A stored `Locked` event of order `n` in block `n`.
    fn locked(n: u8) -> DecodedEvent {
        use alloy::sol_types::SolEvent;
        use holdfast_primitives::{EventPos, RawEvent, bindings::IHoldfastEscrow};
        let log = IHoldfastEscrow::Locked {
            orderId: B256::with_last_byte(n),
            payer: Address::with_last_byte(1),
            payee: Address::with_last_byte(2),
            arbiter: Address::ZERO,
            amount: U256::from(1_000 + u64::from(n)),
            deliverBy: 10_000,
            disputeWindow: 60,
            status: IHoldfastEscrow::Status::Held,
        }
        .encode_log_data();
        let pos = EventPos {
            block_number: n.into(),
            block_hash: B256::with_last_byte(n),
            block_timestamp: 100 + u64::from(n),
            tx_hash: B256::with_last_byte(n),
            tx_index: 0,
            log_index: 0,
        };
        let raw = RawEvent {
            chain_id: 1,
            escrow: Address::with_last_byte(9),
            pos,
            topics: log.topics().to_vec(),
            data: log.data.clone(),
        };
        raw.decode().expect("an escrow event")
    }

    fn keys(orders: &[(OrderKey, EncodedOrder)]) -> Vec<u8> {
        orders.iter().map(|((_, id), _)| id.0[31]).collect()
    }

    /// The re-derivation's scans read off the writer connection (the inline reader sees only what was
    /// committed), but only while this transaction's own writes cannot be missed: events it inserted, orders
    /// it wrote at or above the range.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scans_off_the_writer_never_miss_the_transactions_own_writes() {
        let file = TempFile::new();
        let path = &file.0;
        let store = SqliteStore::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        assert!(store.inline_reads());
        let events: Vec<DecodedEvent> = (1..=3).map(locked).collect();
        let refs: Vec<&DecodedEvent> = events.iter().collect();
        let orders = holdfast_primitives::derive::apply_batch(HashMap::new(), &refs).orders;
        assert_eq!(orders.len(), 3);

        // Uncommitted inserts: both scans see them.
        let mut tx = store.begin().await.unwrap();
        tx.insert_events(&refs).await.unwrap();
        assert_eq!(tx.live_events_by_order(1, None, 10).await.unwrap(), events);
        tx.upsert_orders(&orders, false).await.unwrap();
        assert_eq!(keys(&tx.orders_in_range(1, None, None).await.unwrap()), [1, 2, 3]);
        tx.commit().await.unwrap();

        // A transaction that wrote nothing reads what was committed (off the writer), page by page.
        let mut tx = store.begin().await.unwrap();
        let first = tx.live_events_by_order(1, None, 2).await.unwrap();
        assert_eq!(first, events[..2]);
        let at = |e: &DecodedEvent| (e.raw.escrow, e.event.order_id().unwrap(), e.raw.pos.block_number, 0);
        assert_eq!(tx.live_events_by_order(1, Some(at(&first[1])), 2).await.unwrap(), events[2..]);
        let key = |n: u8| (Address::with_last_byte(9), B256::with_last_byte(n));
        let stored = tx.orders_in_range(1, None, Some(key(2))).await.unwrap();
        assert_eq!(keys(&stored), [1, 2]);
        // The stored states compare equal to the derived ones, and unequal once a field differs.
        use holdfast_primitives::derive::StoredOrder;
        assert!(stored[0].1.holds(&orders[0]) && stored[1].1.holds(&orders[1]));
        assert!(!stored[0].1.holds(&orders[1]));
        let mut changed = orders[0].clone();
        changed.remaining -= U256::from(1);
        assert!(!stored[0].1.holds(&changed));
        // Order 3 deleted in this transaction: a range from order 1 must not see it, a range from order 3
        // (nothing written above it) holds nothing.
        tx.delete_orders(1, &[key(3)]).await.unwrap();
        assert_eq!(keys(&tx.orders_in_range(1, Some(key(1)), None).await.unwrap()), [2]);
        assert!(tx.orders_in_range(1, Some(key(3)), None).await.unwrap().is_empty());
        // An event reverted in this transaction: the scan reads through the writer from then on.
        tx.revert_events_above(1, 2).await.unwrap();
        assert_eq!(tx.live_events_by_order(1, None, 10).await.unwrap(), events[..2]);
        drop(tx);

        store.close().await;
    }

    /// Which events of a batch are fresh: new ones and reverted ones revived are, live ones already stored
    /// are not (and are left alone), whether or not the chunk held any of the latter.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn insert_events_tells_fresh_from_already_stored() {
        let file = TempFile::new();
        let path = &file.0;
        let store = SqliteStore::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        let events: Vec<DecodedEvent> = (1..=4).map(locked).collect();
        let refs: Vec<&DecodedEvent> = events.iter().collect();
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.insert_events(&refs[..2]).await.unwrap(), [true, true]);
        assert_eq!(tx.insert_events(&refs[..2]).await.unwrap(), [false, false]);
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.revert_events_above(1, 1).await.unwrap(), 1);
        // Event 1 live (stored), 2 reverted (revived), 3 new.
        assert_eq!(tx.insert_events(&refs[..3]).await.unwrap(), [false, true, true]);
        // All revived or new: fresh, without the second statement.
        assert_eq!(tx.revert_events_above(1, 1).await.unwrap(), 2);
        assert_eq!(tx.insert_events(&refs[1..]).await.unwrap(), [true, true, true]);
        tx.commit().await.unwrap();
        let (stored, _) = store.counts(1).await.unwrap();
        assert_eq!(stored, 4, "nothing stored twice");
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.live_events_by_order(1, None, 10).await.unwrap(), events);
        drop(tx);

        store.close().await;
    }

    /// Several openers of one fresh file at once (processes, here tasks with their own descriptors of the
    /// lock file) all get a migrated store: the migrations run under the file lock, once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_openers_of_a_fresh_file_all_get_a_migrated_store() {
        for _ in 0..5 {
            let file = TempFile::new();
            let path = &file.0;
            let url = format!("sqlite://{}", path.display());
            let open = || SqliteStore::connect(&url);
            let (a, b, c, d, e, f) = tokio::join!(open(), open(), open(), open(), open(), open());
            for open in [a, b, c, d, e, f] {
                let store = open.expect("every opener gets the store");
                let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM _sqlx_migrations")
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
                assert_eq!(n as usize, MIGRATOR.iter().count());
                store.pool().close().await;
            }
        }
    }

    /// SQLite rolls a whole transaction back by itself on a full disk or an I/O error; `INSERT OR ROLLBACK`
    /// does the same on demand. After such transactions, and after failed statements in the next ones on
    /// the same pool, no connection may be left holding the write lock, and a committed transaction must
    /// reach the file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_sqlite_rolled_back_itself_leaves_no_lock_behind() {
        let file = TempFile::new();
        let path = &file.0;
        let store = SqliteStore::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        sqlx::query("CREATE TABLE scratch (k INTEGER PRIMARY KEY)").execute(store.pool()).await.unwrap();
        for round in 0..4i64 {
            let mut tx = store.begin().await.unwrap();
            let insert = format!("INSERT OR ROLLBACK INTO scratch (k) VALUES ({})", 1000 + round);
            sqlx::query(&insert).execute(&mut *tx.conn).await.unwrap();
            let err = sqlx::query(&insert).execute(&mut *tx.conn).await;
            assert!(err.is_err(), "the duplicate key is refused");
            drop(tx);
            tokio::time::sleep(Duration::from_millis(50)).await;

            let mut tx = store.begin().await.unwrap();
            sqlx::query(&format!("INSERT INTO scratch (k) VALUES ({})", 2000 + round))
                .execute(&mut *tx.conn)
                .await
                .unwrap();
            let err = sqlx::query(&format!("INSERT INTO scratch (k) VALUES ({})", 2000 + round))
                .execute(&mut *tx.conn)
                .await;
            assert!(err.is_err(), "the duplicate key is refused");
            drop(tx);

            let started = Instant::now();
            while !writable_from_outside(path) {
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "round {round}: a dropped transaction still holds the write lock"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }

            let mut tx = store.begin().await.unwrap();
            sqlx::query(&format!("INSERT INTO scratch (k) VALUES ({})", 3000 + round))
                .execute(&mut *tx.conn)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let outside = rusqlite::Connection::open(path).unwrap();
            let committed: i64 =
                outside.query_row("SELECT count(*) FROM scratch WHERE k >= 3000", [], |r| r.get(0)).unwrap();
            assert_eq!(committed, round + 1, "round {round}: every committed transaction reached the file");
            let rolled_back: i64 =
                outside.query_row("SELECT count(*) FROM scratch WHERE k < 3000", [], |r| r.get(0)).unwrap();
            assert_eq!(rolled_back, 0, "round {round}: nothing of a dropped transaction reached the file");
        }
        store.close().await;
    }
}
