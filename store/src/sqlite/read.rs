//! Inline SQLite reads: the order queries ([`super::query`]) run on the calling thread (a Tokio worker)
//! over a small pool of `rusqlite` connections, instead of being handed to the sqlx connection's worker
//! thread and back. That handoff (a channel send, a futex wake and a context switch each way) costs several
//! times what a point read on a warm page cache does (tens of microseconds), so the API's order reads skip it.
//!
//! Consistency: every statement runs in autocommit mode, so it opens its own WAL read transaction when it
//! starts and ends it when it is reset, right after its rows are read. It therefore sees every transaction
//! committed before it started, by any connection of any process, exactly like a read through the sqlx
//! pool; and no connection holds a read transaction (or a WAL snapshot) between queries.
//!
//! The connections are query-only (`PRAGMA query_only`), with a short busy timeout so that a reader never
//! blocks a Tokio worker for long: when the database is busy (WAL recovery, an exclusive lock taken by
//! another process), [`SqliteReader::for_each_state`] answers `None` and the caller runs the same query
//! through sqlx instead.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rusqlite::{
    Connection, ErrorCode, OpenFlags,
    types::{ToSql, ToSqlOutput, ValueRef},
};

use holdfast_primitives::OrderState;

use crate::{
    Error, Result,
    query::{Param, SqlQuery},
    rows::{EventRow, OrderRow, parse_state},
};

/// How long a read waits for a busy database before the caller falls back to sqlx.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5);

/// Bytes of the database file each connection maps into memory: pages are then read from the OS page cache
/// in place (shared by every connection and process) instead of being copied by a `pread` call into each
/// connection's own page cache. Pages still in the WAL are read from it as usual.
const MMAP_SIZE: i64 = 1 << 30;

/// Prepared statements kept per connection (the order lookup has 4 shapes, the list a few per filter).
const STATEMENT_CACHE: usize = 64;

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Int(v) => ValueRef::Integer(*v),
            Self::Word(w) => ValueRef::Blob(w.as_slice()),
            Self::Addr(a) => ValueRef::Blob(a.as_slice()),
            Self::Text(t) => ValueRef::Text(t.as_bytes()),
        }))
    }
}

/// A pool of query-only connections to one SQLite file, used inline on the calling thread. Cheap to clone.
#[derive(Clone)]
pub(crate) struct SqliteReader {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Connections not in use. A connection is only held for the duration of one synchronous query, so
    /// at most one per thread that reads is ever in use.
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
    closed: AtomicBool,
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReader")
            .field("path", &self.inner.path)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SqliteReader {
    /// A reader of the (existing, migrated) database at `path`; opens one connection to check it.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let max_idle = std::thread::available_parallelism().map_or(4, |n| n.get() * 2).max(4);
        let reader = Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
                max_idle,
                closed: AtomicBool::new(false),
            }),
        };
        let conn = reader.connect()?;
        reader.put(conn);
        Ok(reader)
    }

    fn connect(&self) -> Result<Connection> {
        // Read-write (without create) rather than read-only: a read-only connection cannot always use the
        // WAL's shared memory; `query_only` refuses every write instead.
        let conn = Connection::open_with_flags(
            &self.inner.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "query_only", true)?;
        conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, or a new one; `None` once closed.
    fn take(&self) -> Option<Result<Connection>> {
        if self.inner.closed.load(Ordering::Acquire) {
            return None;
        }
        let idle = self.idle().pop();
        Some(idle.map_or_else(|| self.connect(), Ok))
    }

    fn put(&self, conn: Connection) {
        let surplus = {
            let mut idle = self.idle();
            if idle.len() < self.inner.max_idle && !self.inner.closed.load(Ordering::Acquire) {
                idle.push(conn);
                None
            } else {
                Some(conn)
            }
        };
        drop(surplus);
    }

    /// Close the idle connections; later reads answer `None` (the caller's sqlx pool is closed too).
    pub(crate) fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let idle = std::mem::take(&mut *self.idle());
        drop(idle);
    }

    /// Run `q`, a `SELECT state …` query, and pass each row's decoded state to `f`, in row order. `None`:
    /// the reader cannot answer now (closed, or the database is busy); run the query through sqlx instead.
    pub(crate) fn for_each_state(&self, q: &SqlQuery, mut f: impl FnMut(OrderState)) -> Option<Result<()>> {
        self.for_each_row(q, |row| {
            let json = row.get_ref(0)?.as_str().map_err(|e| Error::corrupt("order state", e))?;
            f(parse_state(json)?);
            Ok(())
        })
    }

    /// Run `q` and pass each row to `f`, in row order; `f`'s error ends the query with it. `None`: the
    /// reader cannot answer now (closed, or the database is busy); run the query through sqlx instead.
    pub(crate) fn for_each_row(
        &self,
        q: &SqlQuery,
        mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<()>,
    ) -> Option<Result<()>> {
        let conn = match self.take()? {
            Ok(c) => c,
            Err(e) if is_busy(&e) => return None,
            Err(e) => return Some(Err(e)),
        };
        let result = (|| {
            let mut stmt = conn.prepare_cached(&q.sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(&q.params))?;
            while let Some(row) = rows.next()? {
                f(row)?;
            }
            Ok(())
        })();
        self.put(conn);
        match result {
            Err(e) if is_busy(&e) => {
                tracing::debug!(error = %e, "the SQLite database is busy; reading through the pool");
                None
            }
            r => Some(r),
        }
    }
}

/// A row of `escrow, order_id, state`.
pub(crate) fn order_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<OrderRow> {
    Ok(OrderRow { escrow: row.get(0)?, order_id: row.get(1)?, state: row.get(2)? })
}

/// A row of [`crate::rows::EVENT_COLUMNS`], in that order.
pub(crate) fn event_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        seq: row.get(0)?,
        chain_id: row.get(1)?,
        escrow: row.get(2)?,
        block_number: row.get(3)?,
        block_hash: row.get(4)?,
        block_timestamp: row.get(5)?,
        tx_hash: row.get(6)?,
        tx_index: row.get(7)?,
        log_index: row.get(8)?,
        topics: row.get(9)?,
        data: row.get(10)?,
        reverted: row.get(11)?,
    })
}

fn is_busy(e: &Error) -> bool {
    matches!(
        e,
        Error::Sqlite(rusqlite::Error::SqliteFailure(f, _))
            if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use alloy::primitives::B256;

    use super::*;
    use crate::query;

    #[test]
    fn query_only_busy_falls_back_closed_declines() {
        let path = std::env::temp_dir().join(format!("holdfast-reader-{:016x}.db", rand::random::<u64>()));
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE orders (chain_id BIGINT, escrow BLOB, order_id BLOB, \
                 state TEXT);",
            )
            .unwrap();
        let reader = SqliteReader::open(&path).unwrap();
        let q = query::order(None, None, B256::ZERO);
        assert!(matches!(reader.for_each_state(&q, |_| panic!("no rows")), Some(Ok(()))));

        // Query-only: a write through the reader's connection fails.
        let conn = reader.take().unwrap().unwrap();
        let err = conn.execute("INSERT INTO orders VALUES (1, x'00', x'00', '{}')", []).unwrap_err();
        assert_eq!(err.sqlite_error_code(), Some(ErrorCode::ReadOnly), "{err}");
        reader.put(conn);

        // Closed: declines.
        reader.close();
        assert!(reader.for_each_state(&q, |_| {}).is_none());

        // Another connection holds the database exclusively: a reader declines (the caller uses the pool)
        // after its short busy timeout instead of blocking.
        writer.execute_batch("PRAGMA locking_mode = EXCLUSIVE; DELETE FROM orders;").unwrap();
        let reader = SqliteReader::open(&path).unwrap();
        let started = std::time::Instant::now();
        assert!(reader.for_each_state(&q, |_| {}).is_none());
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(writer);
        assert!(matches!(reader.for_each_state(&q, |_| {}), Some(Ok(()))));
        for suffix in ["", "-wal", "-shm", ".migrate.lock"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
